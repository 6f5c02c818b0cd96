package cbr

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// draws is how many random waits each check draws: enough that a wait
// outside its bounds, or a draw that is not random, shows up.
const draws = 2000

// drawRange draws waits and returns the smallest and the largest, and how
// many distinct values came up.
func drawRange(wait func() time.Duration) (lo, hi time.Duration, distinct int) {
	seen := map[time.Duration]bool{}
	lo, hi = time.Duration(math.MaxInt64), time.Duration(math.MinInt64)
	for range draws {
		w := wait()
		lo, hi = min(lo, w), max(hi, w)
		seen[w] = true
	}
	return lo, hi, len(seen)
}

// assertSpread checks that waits lie in [from, to] and cover most of it:
// their extremes fall within the outer tenths of the range.
func assertSpread(t *testing.T, wait func() time.Duration, from, to time.Duration, msg string) {
	t.Helper()
	lo, hi, distinct := drawRange(wait)
	assert.GreaterOrEqual(t, lo, from, "%s: shortest wait", msg)
	assert.LessOrEqual(t, hi, to, "%s: longest wait", msg)
	tenth := (to - from) / 10
	assert.Less(t, lo, from+tenth, "%s: waits reach down to the bottom of the range", msg)
	assert.Greater(t, hi, to-tenth, "%s: waits reach up to the top of the range", msg)
	assert.Greater(t, distinct, draws/2, "%s: waits are random", msg)
}

func TestFailureWaitIsFullJitterCappedAtMaxWait(t *testing.T) {
	p := DefaultRetryPolicy()
	for n, ceil := range map[int]time.Duration{
		1: 500 * time.Millisecond, // one 503 costs well under a second
		2: time.Second,
		3: 2 * time.Second,
		6: 16 * time.Second,
		7: 20 * time.Second, // MaxWait
		9: 20 * time.Second,
	} {
		assertSpread(t, func() time.Duration { return p.failureWait(n) }, 0, ceil, fmt.Sprintf("failure %d", n))
	}
}

func TestFailureWaitNeverOverflows(t *testing.T) {
	p := RetryPolicy{MinWait: time.Hour, MaxWait: math.MaxInt64}
	for _, n := range []int{0, 1, 40, 63, 64, 1000, math.MaxInt} {
		w := p.failureWait(n)
		assert.GreaterOrEqual(t, w, time.Duration(0), "failure %d", n)
	}
	assert.Less(t, p.failureWait(0), time.Hour, "failure 0 waits like failure 1")
}

func TestFullJitterBounds(t *testing.T) {
	assert.Equal(t, time.Duration(0), fullJitter(0, time.Second, 3), "a zero base does not wait")
	assert.Equal(t, time.Duration(0), fullJitter(time.Second, 0, 3), "a zero ceiling does not wait")
	for _, n := range []int{62, 63, 64, 200} {
		w := fullJitter(time.Second, time.Minute, n)
		assert.True(t, w >= 0 && w < time.Minute, "shift %d: %v", n, w)
	}
}

func TestThrottleWaitGrowsWithTheSquareRootOfElapsed(t *testing.T) {
	p := DefaultRetryPolicy()
	tests := []struct {
		n        int
		elapsed  time.Duration
		from, to time.Duration // [W/2, W]
	}{
		// W = 2.5·√(1s·max(elapsed, 1s))
		{1, 0, 1250 * time.Millisecond, 2500 * time.Millisecond},
		{1, 500 * time.Millisecond, 1250 * time.Millisecond, 2500 * time.Millisecond},
		{2, 4 * time.Second, 2500 * time.Millisecond, 5 * time.Second},
		{3, 16 * time.Second, 5 * time.Second, 10 * time.Second},
		{5, 100 * time.Second, 12500 * time.Millisecond, 25 * time.Second},
		{9, 400 * time.Second, 25 * time.Second, 50 * time.Second},
		// Capped at ThrottleMaxWait from 576s on.
		{12, time.Hour, 30 * time.Second, time.Minute},
		// At most 4ⁿ·ThrottleMinWait: a call whose attempts were slow is not
		// made to wait long at its first throttling answer.
		{1, 100 * time.Second, 2 * time.Second, 4 * time.Second},
		{2, 400 * time.Second, 8 * time.Second, 16 * time.Second},
	}
	for _, tt := range tests {
		msg := fmt.Sprintf("answer %d after %v", tt.n, tt.elapsed)
		assertSpread(t, func() time.Duration { return p.throttleWait(tt.n, -1, tt.elapsed) }, tt.from, tt.to, msg)
	}
}

func TestThrottleWaitFollowsThePolicy(t *testing.T) {
	p := RetryPolicy{ThrottleMinWait: 10 * time.Millisecond, ThrottleMaxWait: 40 * time.Millisecond}
	// W = 2.5·√(10ms·1s) = 250ms, capped at 40ms.
	assertSpread(t, func() time.Duration { return p.throttleWait(9, -1, time.Second) }, 20*time.Millisecond, 40*time.Millisecond, "capped")
	// A cap below twice the minimum: every wait is at least ThrottleMinWait.
	p = RetryPolicy{ThrottleMinWait: 30 * time.Millisecond, ThrottleMaxWait: 40 * time.Millisecond}
	lo, hi, _ := drawRange(func() time.Duration { return p.throttleWait(1, -1, 0) })
	assert.Equal(t, 30*time.Millisecond, lo, "narrow: draws below ThrottleMinWait wait ThrottleMinWait")
	assert.True(t, hi > 39*time.Millisecond && hi <= 40*time.Millisecond, "narrow: longest wait %v", hi)
	p = RetryPolicy{ThrottleMinWait: 30 * time.Millisecond, ThrottleMaxWait: 30 * time.Millisecond}
	lo, hi, _ = drawRange(func() time.Duration { return p.throttleWait(4, -1, time.Minute) })
	assert.Equal(t, [2]time.Duration{30 * time.Millisecond, 30 * time.Millisecond}, [2]time.Duration{lo, hi}, "equal bounds")
}

func TestThrottleWaitRetryAfterIsAMinimumWithJitterOnTop(t *testing.T) {
	p := DefaultRetryPolicy()
	// A short Retry-After changes nothing: the schedule's own wait is longer.
	assertSpread(t, func() time.Duration { return p.throttleWait(1, time.Second, 0) },
		1250*time.Millisecond, 2500*time.Millisecond, "Retry-After: 1 at first")
	assertSpread(t, func() time.Duration { return p.throttleWait(4, time.Second, 16*time.Second) },
		5*time.Second, 10*time.Second, "Retry-After: 1 later")
	assertSpread(t, func() time.Duration { return p.throttleWait(1, 0, 0) },
		1250*time.Millisecond, 2500*time.Millisecond, "Retry-After: 0")
	// A longer one is waited, plus up to a tenth of it, never exactly.
	assertSpread(t, func() time.Duration { return p.throttleWait(1, 30*time.Second, 0) },
		30*time.Second, 33*time.Second, "Retry-After: 30")
	assertSpread(t, func() time.Duration { return p.throttleWait(1, 12*time.Second, 0) },
		12*time.Second, 13200*time.Millisecond, "Retry-After: 12")
	// Beyond ThrottleMaxWait too: the pipeline decides whether the deadline
	// leaves room for it.
	assertSpread(t, func() time.Duration { return p.throttleWait(3, 2*time.Hour, 10*time.Second) },
		2*time.Hour, 132*time.Minute, "Retry-After: 7200")
	// Where the two overlap, the longer wins.
	lo, hi, _ := drawRange(func() time.Duration { return p.throttleWait(3, 8*time.Second, 16*time.Second) })
	assert.GreaterOrEqual(t, lo, 8*time.Second)
	assert.LessOrEqual(t, hi, 10*time.Second)
}

func TestThrottleWaitNeverOverflows(t *testing.T) {
	huge := time.Duration(math.MaxInt64)
	tests := []struct {
		p                   RetryPolicy
		n                   int
		retryAfter, elapsed time.Duration
		from, to            time.Duration
	}{
		{DefaultRetryPolicy(), math.MaxInt, -1, huge, 30 * time.Second, time.Minute},
		{DefaultRetryPolicy(), 0, -1, -time.Hour, 1250 * time.Millisecond, 2500 * time.Millisecond},
		{DefaultRetryPolicy(), 1, huge, 0, huge - huge/10, huge},
		{DefaultRetryPolicy(), 1, huge - time.Second, huge, huge - huge/10, huge},
		{RetryPolicy{ThrottleMinWait: huge, ThrottleMaxWait: huge}, math.MaxInt, -1, huge, huge, huge},
		{RetryPolicy{}, 3, -1, time.Minute, 0, 0},
	}
	for i, tt := range tests {
		for range 100 {
			w := tt.p.throttleWait(tt.n, tt.retryAfter, tt.elapsed)
			require.True(t, w >= tt.from && w <= tt.to, "case %d: %v not in [%v, %v]", i, w, tt.from, tt.to)
		}
	}
}

func TestDefaultRetryPolicyIsValid(t *testing.T) {
	d := DefaultRetryPolicy()
	p, err := d.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, d, p)
	assert.Equal(t, RetryPolicy{
		MaxAttempts:     4,
		MinWait:         500 * time.Millisecond,
		MaxWait:         20 * time.Second,
		ThrottleMinWait: time.Second,
		ThrottleMaxWait: time.Minute,
		MaxDuration:     15 * time.Minute,
		AttemptTimeout:  30 * time.Second,
	}, d)
}
