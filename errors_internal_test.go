package cbr

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestOneLine(t *testing.T) {
	assert.Equal(t, "a b c d e", oneLine("a\nb\u2028c\u0085d\te", 100), "line breaks and controls become spaces")
	assert.Equal(t, "short", oneLine("short", 5))
	assert.Equal(t, "abc...", oneLine("abcdef", 3))

	cut := oneLine(strings.Repeat("错", 10), 8) // 3 bytes a character: the cut falls inside the third
	assert.True(t, utf8.ValidString(cut), cut)
	assert.Equal(t, "错错...", cut)
}
