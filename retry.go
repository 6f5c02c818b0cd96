package cbr

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy says which attempts of a call are retried, how long the client
// waits between them, and how long one attempt and one call may take.
//
// Two kinds of answers are retried, differently:
//
//   - Failures: a connection that could not be made or broke, an attempt that
//     timed out (see AttemptTimeout), and the statuses 500, 502, 503 (without
//     Retry-After) and 504. They are retried until MaxAttempts attempts have
//     failed, after a random wait (full jitter) below MinWait·2ⁿ, capped at
//     MaxWait.
//   - Throttling: 429, and 503 with a Retry-After header. The API gateway is
//     telling the client to come back later, which is a queue to wait in, not a
//     failure: the call is retried until its context ends (or MaxDuration, when
//     the context has no deadline), however many attempts that takes. The waits
//     are random (full jitter) and grow from ThrottleMinWait up to
//     ThrottleMaxWait, so that a crowd of clients spreads out. A Retry-After is
//     a minimum: the client waits at least that long, plus jitter, and never
//     comes back at the exact instant the header names. A Retry-After that the
//     deadline leaves no room for ends the call at once with the 429 or 503, as
//     an *APIError that still matches ErrRateLimited (for a 429).
//
// The context's deadline bounds the whole call, waits included: a wait that
// would outlast it is not begun, and the call returns the last answer instead.
//
// A zero ThrottleMinWait, ThrottleMaxWait, MaxDuration or AttemptTimeout takes
// the value of DefaultRetryPolicy, so a policy that sets only the first three
// fields keeps the defaults for the rest.
type RetryPolicy struct {
	// MaxAttempts bounds the attempts of a call that fails: it counts every
	// attempt that failed, the first included; 1 means no retry. Throttled
	// attempts do not count.
	MaxAttempts int
	// MinWait is the base of the exponential backoff after a failure.
	MinWait time.Duration
	// MaxWait caps each wait after a failure.
	MaxWait time.Duration
	// ThrottleMinWait is the base of the exponential backoff after a throttling
	// answer.
	ThrottleMinWait time.Duration
	// ThrottleMaxWait caps each wait after a throttling answer, except one that
	// a longer Retry-After asks for.
	ThrottleMaxWait time.Duration
	// MaxDuration bounds a call whose context has no deadline, waits included:
	// no wait is begun that would end after it.
	MaxDuration time.Duration
	// AttemptTimeout bounds one attempt: connecting, sending, the response
	// headers and reading the whole body. An attempt that times out is a
	// failure, retried like a dropped connection; the error after the last one
	// matches ErrAttemptTimeout, not context.DeadlineExceeded.
	AttemptTimeout time.Duration
}

// DefaultRetryPolicy returns the policy of a client built without WithRetry:
// 4 attempts at most for failures, with waits from 500ms up to 20s; throttling
// waited out with waits from 1s up to 60s; 15 minutes at most for a call whose
// context has no deadline; 30s for one attempt.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxAttempts:     4,
		MinWait:         500 * time.Millisecond,
		MaxWait:         20 * time.Second,
		ThrottleMinWait: time.Second,
		ThrottleMaxWait: time.Minute,
		MaxDuration:     15 * time.Minute,
		AttemptTimeout:  30 * time.Second,
	}
}

// WithRetry sets the retry policy; see RetryPolicy. It accepts MaxAttempts
// from 1 to 20, 0 <= MinWait <= MaxWait with MinWait above 0 when MaxAttempts
// is more than 1, ThrottleMinWait <= ThrottleMaxWait once zeros take their
// defaults, and no negative duration.
func WithRetry(p RetryPolicy) Option {
	return func(c *config) error {
		p, err := p.withDefaults()
		if err != nil {
			return err
		}
		c.retry = p
		return nil
	}
}

// withDefaults checks p and fills its zero fields from DefaultRetryPolicy.
func (p RetryPolicy) withDefaults() (RetryPolicy, error) {
	switch {
	case p.MaxAttempts < 1 || p.MaxAttempts > 20:
		return p, fmt.Errorf("cbr: retry policy: MaxAttempts %d is not within 1 to 20", p.MaxAttempts)
	case p.MinWait < 0 || p.MaxWait < p.MinWait:
		return p, fmt.Errorf("cbr: retry policy: waits must satisfy 0 <= MinWait (%v) <= MaxWait (%v)", p.MinWait, p.MaxWait)
	case p.MaxAttempts > 1 && p.MinWait == 0:
		// Retries without a wait would hammer a server that is already failing.
		return p, fmt.Errorf("cbr: retry policy: MinWait must be positive when MaxAttempts is more than 1")
	case p.ThrottleMinWait < 0 || p.ThrottleMaxWait < 0 || p.MaxDuration < 0 || p.AttemptTimeout < 0:
		return p, fmt.Errorf("cbr: retry policy: ThrottleMinWait, ThrottleMaxWait, MaxDuration and AttemptTimeout must not be negative")
	}
	d := DefaultRetryPolicy()
	if p.ThrottleMaxWait == 0 {
		p.ThrottleMaxWait = max(d.ThrottleMaxWait, p.ThrottleMinWait)
	}
	if p.ThrottleMinWait == 0 {
		p.ThrottleMinWait = min(d.ThrottleMinWait, p.ThrottleMaxWait)
	}
	if p.MaxDuration == 0 {
		p.MaxDuration = d.MaxDuration
	}
	if p.AttemptTimeout == 0 {
		p.AttemptTimeout = d.AttemptTimeout
	}
	if p.ThrottleMaxWait < p.ThrottleMinWait {
		return p, fmt.Errorf("cbr: retry policy: waits must satisfy ThrottleMinWait (%v) <= ThrottleMaxWait (%v)", p.ThrottleMinWait, p.ThrottleMaxWait)
	}
	return p, nil
}

// failureWait returns the wait before the attempt that follows failure number
// n (1 for the first): a uniformly random wait below min(MaxWait, MinWait·2ⁿ⁻¹).
func (p RetryPolicy) failureWait(n int) time.Duration {
	return fullJitter(p.MinWait, p.MaxWait, n-1)
}

// throttleWait returns the wait before the attempt that follows throttling
// answer number n (1 for the first). retryAfter is the answer's Retry-After,
// or negative when it has none; elapsed is the time since the call began.
func (p RetryPolicy) throttleWait(n int, retryAfter, elapsed time.Duration) time.Duration {
	_ = elapsed
	w := fullJitter(p.ThrottleMinWait, p.ThrottleMaxWait, n-1)
	if retryAfter >= 0 {
		return retryAfter + w
	}
	return w
}

// fullJitter returns a uniformly random wait in [0, min(ceil, base·2ⁿ)).
func fullJitter(base, ceil time.Duration, n int) time.Duration {
	c := ceil
	if n < 63 && base <= ceil>>n { // base<<n <= ceil, without overflow
		c = base << n
	}
	if c <= 0 {
		return 0
	}
	return rand.N(c)
}

// retryAfter parses a Retry-After header, in seconds or as an HTTP date.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if strings.Trim(v, "0123456789") == "" {
		// Seconds. A value too large for a Duration is a very long wait,
		// not an absent one.
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64, true
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}
