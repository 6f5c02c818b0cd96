package cbr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
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
//     are random and grow with the time the call has spent, from about
//     ThrottleMinWait up to ThrottleMaxWait (a wait drawn from [W/2, W) with
//     W = 2.5·√(ThrottleMinWait·elapsed)), so that a crowd of clients spreads
//     out over the time the gateway needs to let it through, whatever its
//     size, and its last members are not left waiting once the gateway is
//     idle. A Retry-After is a minimum: the client waits at least that long,
//     plus up to a tenth of it at random, and never comes back at the exact
//     instant the header names. A Retry-After that the deadline leaves no room
//     for ends the call at once with the 429 or 503, as an *APIError that
//     still matches ErrRateLimited (for a 429).
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
	// ThrottleMinWait is the shortest wait after a throttling answer, and the
	// time scale of the waits that follow: the first is between 1.25 and 2.5
	// times it, and after t of the call they are about 1.9·√(ThrottleMinWait·t)
	// on average.
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
// waited out with waits from 1.25s up to 60s; 15 minutes at most for a call whose
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
// With the defaults, one failure costs 250ms on average and 500ms at most.
func (p RetryPolicy) failureWait(n int) time.Duration {
	return fullJitter(p.MinWait, p.MaxWait, max(n, 1)-1)
}

// throttleGrowth sets how fast the waits after throttling answers grow with
// the time the call has spent: the window of the next wait is
// throttleGrowth·√(ThrottleMinWait·elapsed). It was chosen with cmd/fleet
// (see docs/RELIABILITY.md): larger values cost fewer attempts but leave the
// gateway idle longer at the end of a crowd.
const throttleGrowth = 2.5

// throttleWait returns the wait before the attempt that follows throttling
// answer number n (1 for the first). retryAfter is the answer's Retry-After,
// or negative when it has none; elapsed is the time since the call began.
//
// The wait is drawn uniformly from [W/2, W), where
//
//	W = throttleGrowth·√(ThrottleMinWait·max(elapsed, ThrottleMinWait)),
//
// at most ThrottleMinWait·4ⁿ and ThrottleMaxWait, and the wait itself is at
// least ThrottleMinWait. The window grows with the time the call has already
// waited, which a lone client can measure and which grows with the crowd in
// front of it: a crowd of N clients behind a gateway that lets R requests a
// second through spreads over about N/R seconds without anyone knowing N or R.
// It grows as a square root, not in proportion, so that a client that has
// waited long comes back relatively sooner than one that has just begun:
// the last of a crowd is not left waiting long after the gateway has become
// idle. The lower half of the window is never drawn, which saves attempts
// that would be throttled again. The cap 4ⁿ only matters for a call whose
// first attempts were slow: its first throttling answer does not cost more
// than a few seconds.
//
// A Retry-After is a minimum: the wait is the larger of the draw above and
// the Retry-After plus up to a tenth of it, random. A Retry-After that is
// short or the same for every client (such as 1s) thus changes nothing, and
// one that gives each client its own turn is followed within 10%, without
// every client that was told the same second coming back at the same instant.
// A Retry-After longer than ThrottleMaxWait is honoured; the pipeline does not
// begin a wait that would outlast the call's deadline.
func (p RetryPolicy) throttleWait(n int, retryAfter, elapsed time.Duration) time.Duration {
	base, ceil := p.ThrottleMinWait, p.ThrottleMaxWait
	if n < 1 {
		n = 1
	}
	// In float64 nanoseconds, which neither overflows nor loses anything
	// that matters for a wait.
	w := throttleGrowth * math.Sqrt(float64(base)*float64(max(elapsed, base)))
	if n < 30 { // 4ⁿ beyond this exceeds any Duration
		w = min(w, float64(base)*math.Pow(4, float64(n)))
	}
	w = min(w, float64(ceil))
	var wait time.Duration
	if w >= 1 {
		wait = time.Duration(w/2 + rand.Float64()*w/2)
	}
	wait = max(min(wait, ceil), base)
	if retryAfter >= 0 {
		ra := retryAfter + rand.N(retryAfter/10+1)
		if ra < 0 { // a Retry-After near the largest Duration
			ra = math.MaxInt64
		}
		wait = max(wait, ra)
	}
	return wait
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

// checkRetry is go-retryablehttp's CheckRetry: it decides whether the attempt
// that ended with resp or err is retried, and waits before the next one.
// Throttling answers are retried until the deadline (the context's, else
// MaxDuration from the start of the call); failures until MaxAttempts have
// failed. A wait that would outlast the deadline is not begun.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	if x == nil {
		return false, err
	}
	p := x.policy
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = x.start.Add(p.MaxDuration)
	}
	left := time.Until(deadline)

	var wait time.Duration
	switch {
	case err != nil:
		if !retryableError(err) {
			return false, nil
		}
		x.failures++
		if x.call.failed+x.failures >= p.MaxAttempts || x.call.settle && x.acted {
			return false, nil
		}
		wait = p.failureWait(x.failures)
		x.reason = attemptReason(err)
	case isThrottled(resp):
		x.throttled++
		ra, ok := retryAfter(resp)
		if !ok {
			ra = -1
		}
		if ra >= left {
			return false, nil // the 429 or 503 now, not after the deadline
		}
		wait = p.throttleWait(x.throttled, ra, time.Since(x.start))
		if floor := max(ra, 0); wait >= left {
			if left-floor < p.ThrottleMinWait {
				return false, nil // no time left for another turn
			}
			wait = floor + randN(left-floor) // the time left, spread
		}
		x.reason = statusText(resp.StatusCode)
	case retryableStatus(resp.StatusCode):
		x.failures++
		if x.call.failed+x.failures >= p.MaxAttempts || x.call.settle && x.acted {
			return false, nil
		}
		wait = p.failureWait(x.failures)
		x.reason = statusText(resp.StatusCode)
	default:
		return false, nil // an answer to keep, even if ctx has ended since
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if wait >= left {
		return false, nil
	}
	if x.logs != nil {
		x.logs.retry(ctx, x, wait, resp != nil && isThrottled(resp))
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			x.waitCut = true
			return false, ctx.Err()
		case <-t.C:
		}
	}
	return true, nil
}

// attemptReason says why an attempt failed, without the method and URL that
// a *url.Error adds: they are in the call's log record.
func attemptReason(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return trimPrefix(err)
}

// pause waits before the next round of an operation that settled a failed
// call itself, as checkRetry waits after failure n. It reports false, without
// waiting, when the wait would outlast ctx's deadline (or MaxDuration from
// start, without one), or ctx ends during it.
func (p *pipeline) pause(ctx context.Context, n int, start time.Time) bool {
	wait := p.policy.failureWait(n)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = start.Add(p.policy.MaxDuration)
	}
	if time.Until(deadline) <= wait {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// isThrottled reports whether resp asks the client to come back later: a 429,
// or a 503 with a Retry-After header.
func isThrottled(resp *http.Response) bool {
	return resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != ""
}

// retryableStatus reports whether a status is a failure worth another attempt.
func retryableStatus(status int) bool {
	switch status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// statusText returns "503 Service Unavailable" for 503.
func statusText(status int) string {
	return strconv.Itoa(status) + " " + http.StatusText(status)
}

// randN returns a random duration in [0, d), or 0 when d is not positive.
func randN(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return fullJitter(d, d, 0)
}

// retryableError reports whether a failed attempt is worth another: connection
// failures, dropped connections, bodies cut short and attempt timeouts are;
// TLS and certificate failures, requests to another host, unusable answers,
// malformed requests and failed credentials are not, unless the credentials
// failed on a connection failure.
func retryableError(err error) bool {
	var (
		apiErr   *APIError
		credErr  *credentialsError
		netErr   net.Error
		redirErr *redirectError
		respErr  *ResponseError
	)
	switch {
	case errors.Is(err, ErrAttemptTimeout):
		return true
	case errors.As(err, &apiErr): // from credentials: IAM's or the metadata service's answer
		return apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode >= 500 && apiErr.StatusCode != http.StatusNotImplemented
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false // the caller's context: checkRetry has seen it done
	case isTLSFailure(err), errors.As(err, &redirErr), errors.As(err, &respErr):
		return false
	case errors.As(err, &credErr):
		// err is a *url.Error, itself a net.Error: look beneath the credentials.
		return errors.As(credErr.err, &netErr) || errors.Is(credErr.err, io.ErrUnexpectedEOF) || errors.Is(credErr.err, io.EOF)
	}
	msg := err.Error()
	return !strings.Contains(msg, "unsupported protocol scheme") && !strings.Contains(msg, "invalid header")
}

// isTLSFailure reports whether err is a failed TLS handshake: an untrusted or
// invalid certificate, a server that does not speak TLS, or a handshake that
// either side ended with an alert (such as "remote error: tls: protocol
// version not supported"). Another attempt would fail the same way.
func isTLSFailure(err error) bool {
	var (
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
		unknown x509.UnknownAuthorityError
		hostErr x509.HostnameError
		invalid x509.CertificateInvalidError
		alert   tls.AlertError
		opErr   *net.OpError
	)
	return errors.As(err, &certErr) || errors.As(err, &recErr) || errors.As(err, &unknown) ||
		errors.As(err, &hostErr) || errors.As(err, &invalid) || errors.As(err, &alert) ||
		errors.As(err, &opErr) && (opErr.Op == "remote error" || opErr.Op == "local error")
}
