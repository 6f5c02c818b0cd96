package cbr_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
)

func TestTokenSetsXAuthToken(t *testing.T) {
	req, err := http.NewRequest("POST", agentsURL, nil)
	require.NoError(t, err)
	require.NoError(t, cbr.Token(testToken).Authenticate(req, []byte(`{}`)))
	assert.Equal(t, testToken, req.Header.Get("X-Auth-Token"))
	assert.Len(t, req.Header, 1, "nothing but the token")

	assert.EqualError(t, cbr.Token("").Authenticate(req, nil), "cbr: token is empty")
}

func TestTokenPrintsRedacted(t *testing.T) {
	tok := cbr.Token(testToken)
	holder := struct {
		Name  string
		Creds cbr.Token
		Any   cbr.Credentials
	}{"x", tok, tok}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s"} {
		for _, v := range []any{tok, &tok, holder, &holder} {
			out := fmt.Sprintf(format, v)
			assert.NotContains(t, out, testToken, "%s of %T", format, v)
			assert.NotContains(t, out, fmt.Sprintf("%x", testToken), "%s of %T", format, v)
			assert.Contains(t, out, "REDACTED", "%s of %T", format, v)
		}
	}
	assert.Equal(t, "cbr.Token(REDACTED)", tok.String())

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("creds", "token", tok, "holder", holder)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("creds", "token", tok, slog.Any("creds", cbr.Credentials(tok)))
	assert.NotContains(t, buf.String(), testToken)
	assert.Contains(t, buf.String(), "REDACTED")
}

func TestTokenMarshalsRedacted(t *testing.T) {
	data, err := json.Marshal(struct{ Token cbr.Token }{cbr.Token(testToken)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"Token":"cbr.Token(REDACTED)"}`, string(data))
}
