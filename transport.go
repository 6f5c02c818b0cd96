package cbr

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// This file is the request pipeline: one call goes through send, which runs
// go-retryablehttp's loop; each attempt is a whole exchange in
// attemptTransport (authenticate, send, read the whole body within the
// attempt's time bound); checkRetry (retry.go) classifies each attempt and
// waits before the next; send then turns the last answer into a result or an
// error.

// maxResponseBody caps the body of a 2xx answer; a longer one is a
// *ResponseError.
const maxResponseBody = 16 << 20

// call is what an operation asks of the pipeline.
type call struct {
	op        string // names the operation in errors and logs
	method    string
	url       string // absolute, escaped
	path      string // url's path, for logs
	projectID string // sent as X-Project-Id when set
	body      []byte // sent with every attempt; nil for none
	out       any    // decodes a 2xx body; nil to discard it
	// settle ends the call at the first failed attempt that may have taken
	// effect, instead of retrying it, for an operation that checks what
	// happened before it sends again.
	settle bool
	// failed counts the failed attempts of the operation's earlier calls,
	// against the same MaxAttempts.
	failed int
}

// outcome is what happened to a call.
type outcome struct {
	attempts  int    // attempts handed to the network
	failures  int    // attempts that failed (throttled ones not included)
	acted     bool   // an attempt may have taken effect on the server
	status    int    // the last answer's status; 0 for none
	requestID string // the last answer's X-Request-Id
}

// The values of the constant headers, shared by every request.
var (
	contentTypeJSON = []string{"application/json;charset=UTF-8"}
	acceptJSON      = []string{"application/json"}
)

// urlPath returns the path of an absolute URL, without its query, for logs.
func urlPath(u string) string {
	u = u[strings.Index(u, "://")+3:]
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[i:]
	} else {
		u = "/"
	}
	path, _, _ := strings.Cut(u, "?")
	return path
}

// unusable returns the error of a 2xx answer that lacks what op needs.
func (o outcome) unusable(op, reason string) *ResponseError {
	return &ResponseError{Op: op, StatusCode: o.status, RequestID: o.requestID, Reason: reason}
}

// exchange is the state of one call's attempts. It rides in the request's
// context, the only thing that go-retryablehttp hands to checkRetry and to the
// transport beneath it; only one attempt of a call runs at a time.
type exchange struct {
	call      call
	policy    *RetryPolicy
	logs      *callLog  // nil without WithLogger
	start     time.Time // of the operation: its waits and MaxDuration count from it
	began     time.Time // of this call, for its log record
	attempts  int
	acted     bool
	failures  int           // failed attempts so far
	throttled int           // throttling answers so far
	respBody  []byte        // the whole body of the last answer
	header    http.Header   // the header of the last answer
	reason    string        // why the last attempt is retried, for errors and logs
	waitCut   bool          // the caller's context ended during a wait
	timeout   time.Duration // the bound of one attempt
	firstBody bytes.Reader  // the body of the first attempt; later ones get their own

	// phase is how far the attempt under way got, set by trace's hooks from
	// the transport's goroutines: phaseNone before anything (or with a
	// transport that reports nothing), then phaseConnecting, phaseConnected,
	// phaseWritten once the request's headers were written.
	phase atomic.Int32
	trace httptrace.ClientTrace
}

// The phases of an attempt; see exchange.phase.
const (
	phaseNone int32 = iota
	phaseConnecting
	phaseConnected
	phaseWritten
)

type exchangeKey struct{}

// startKey carries the start of an operation that makes several calls, such
// as RegisterAgent's check after a failed attempt, so that its calls share
// one throttling schedule and one MaxDuration.
type startKey struct{}

// withStart returns ctx carrying start as the start of the operation, unless
// ctx already carries one.
func withStart(ctx context.Context, start time.Time) context.Context {
	if _, ok := ctx.Value(startKey{}).(time.Time); ok {
		return ctx
	}
	return context.WithValue(ctx, startKey{}, start)
}

// pipeline sends calls to one host: go-retryablehttp's loop on top, then the
// authentication and the whole exchange of each attempt, then the base
// transport.
type pipeline struct {
	host      string
	userAgent []string // the User-Agent header's value; nil for none
	projectID []string // the X-Project-Id header's value when the project is known up front
	policy    RetryPolicy
	logs      *callLog     // nil without WithLogger
	base      *http.Client // read for each attempt: its Transport and Timeout
	rc        *retryablehttp.Client
}

// newPipeline returns the pipeline of calls to host with cfg's credentials,
// retry policy, logger and base HTTP client.
func newPipeline(cfg config, host, userAgent string) *pipeline {
	p := &pipeline{host: host, policy: cfg.retry, logs: cfg.logs, base: cfg.httpClient}
	if userAgent != "" {
		p.userAgent = []string{userAgent}
	}
	if cfg.projectID != "" {
		p.projectID = []string{cfg.projectID}
	}
	p.rc = &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport:     &attemptTransport{creds: cfg.creds, host: host, base: cfg.httpClient},
			CheckRedirect: refuseRedirect,
		},
		RetryMax:     math.MaxInt32, // checkRetry bounds the attempts
		CheckRetry:   checkRetry,
		Backoff:      func(time.Duration, time.Duration, int, *http.Response) time.Duration { return 0 }, // checkRetry waits
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) { return resp, err },
	}
	return p
}

// send runs one call: every attempt, the waits between them, and the
// decoding of the last answer. A non-2xx answer is an *APIError, a 2xx it
// cannot decode a *ResponseError, and anything else an *opError.
func (p *pipeline) send(ctx context.Context, cl *call) (outcome, error) {
	x := &exchange{call: *cl, policy: &p.policy, logs: p.logs, start: time.Now(), timeout: p.policy.AttemptTimeout}
	x.began = x.start
	if start, ok := ctx.Value(startKey{}).(time.Time); ok {
		x.start = start // a later call of an operation: its waits go on from the first's
	}
	if t := p.base.Timeout; t > 0 && t < x.timeout {
		x.timeout = t
	}
	// The trace says how far each attempt got, so that a failed attempt that
	// never wrote its request is known not to have taken effect.
	x.trace = httptrace.ClientTrace{
		GetConn:      func(string) { x.phase.Store(phaseConnecting) },
		GotConn:      func(httptrace.GotConnInfo) { x.phase.Store(phaseConnected) },
		WroteHeaders: func() { x.phase.Store(phaseWritten) },
	}
	ctx = httptrace.WithClientTrace(context.WithValue(ctx, exchangeKey{}, x), &x.trace)
	req, err := retryablehttp.NewRequestWithContext(ctx, cl.method, cl.url, nil)
	if err != nil {
		return outcome{}, &opError{op: cl.op, err: err}
	}
	// Header values are shared, read-only slices: net/http never changes
	// them, and a header is set with a slice of its own (Header.Set), never
	// changed in place.
	if cl.body != nil {
		req.Header["Content-Type"] = contentTypeJSON
	}
	req.Header["Accept"] = acceptJSON
	if p.userAgent != nil {
		req.Header["User-Agent"] = p.userAgent
	}
	switch {
	case cl.projectID == "":
	case len(p.projectID) == 1 && p.projectID[0] == cl.projectID:
		req.Header["X-Project-Id"] = p.projectID
	default:
		req.Header["X-Project-Id"] = []string{cl.projectID}
	}

	resp, err := p.rc.Do(req)
	res := outcome{attempts: x.attempts, failures: x.failures, acted: x.acted}
	if resp != nil {
		res.status, res.requestID = resp.StatusCode, resp.Header.Get("X-Request-Id")
	}
	err = p.result(ctx, x, res, err)
	if p.logs != nil {
		p.logs.call(ctx, x, res, err)
	}
	return res, err
}

// result returns the error of a call whose last attempt ended with res and
// err, decoding a 2xx body into the call's out.
func (p *pipeline) result(ctx context.Context, x *exchange, res outcome, err error) error {
	op := x.call.op
	if err != nil {
		var credErr *credentialsError
		if errors.As(err, &credErr) {
			err = credErr // the request's URL adds nothing to why credentials failed
		}
		var respErr *ResponseError
		if errors.As(err, &respErr) && respErr.Op == op { // this call's answer, not a credential's
			return respErr
		}
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%v)", ctxErr, err)
		} else if x.waitCut {
			err = fmt.Errorf("%w (while waiting to retry after %s)", err, x.reason)
		}
		return &opError{op: op, attempts: res.attempts, err: err}
	}
	if res.status < 200 || res.status > 299 {
		return apiError(op, res.status, x.header, x.respBody, res.attempts)
	}
	if x.call.out == nil {
		return nil
	}
	if err := json.Unmarshal(x.respBody, x.call.out); err != nil {
		e := res.unusable(op, "decode body: "+err.Error())
		e.err = err
		return e
	}
	return nil
}

// attemptTransport makes each attempt a whole exchange: it authenticates the
// attempt afresh, sends it with the base transport, and reads the whole answer
// within the attempt's time bound, so that a body that breaks or stalls is a
// failed attempt like a dropped connection. The answer goes up with an empty
// Body; its bytes are in the exchange.
type attemptTransport struct {
	creds Credentials
	host  string
	base  *http.Client // its Transport is read for every attempt
}

// RoundTrip sends one attempt. A request to another host than the endpoint's
// is refused. When credentials that can be renewed (a token, temporary keys)
// are refused with a 401, they are renewed and the attempt is sent once more,
// unless they are less than minAgeToRenew old: then the 401 is returned.
func (t *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody(req) // go-retryablehttp gave none; the body comes from the exchange
	if req.URL.Host != t.host {
		return nil, &redirectError{host: req.URL.Host}
	}
	x, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if x == nil {
		return nil, errors.New("cbr: request without an exchange")
	}
	if x.attempts > 0 {
		// The last attempt's connection may still read the headers it was
		// sent with; this attempt signs its own.
		req.Header = req.Header.Clone()
	}
	resp, err := t.attempt(req, x)
	rn, renewable := t.creds.(renewer)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !renewable || !rn.expire(req) {
		return resp, err
	}
	req.Header = req.Header.Clone()
	return t.attempt(req, x)
}

// attempt authenticates req, sends it and reads the whole answer.
func (t *attemptTransport) attempt(req *http.Request, x *exchange) (*http.Response, error) {
	ctx := req.Context()
	if err := t.creds.Authenticate(req, x.call.body); err != nil {
		return nil, &credentialsError{err: err}
	}
	x.attempts++
	actx, cancel := context.WithTimeout(ctx, x.timeout)
	defer cancel()
	r := req.WithContext(actx)
	if x.call.body != nil {
		body := &x.firstBody
		if x.attempts > 1 { // the last attempt's connection may still read its body
			body = bytes.NewReader(nil)
		}
		body.Reset(x.call.body)
		// A *bytes.Reader in a NopCloser is a body net/http knows to be in
		// memory: it writes it with the headers, in one write.
		r.Body, r.ContentLength = io.NopCloser(body), int64(len(x.call.body))
	}
	rt := t.base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	x.phase.Store(phaseNone)
	resp, err := rt.RoundTrip(r)
	if err != nil {
		if mayHaveSent(x.phase.Load(), err) {
			x.acted = true
		}
		return nil, attemptError(ctx, err)
	}
	if resp == nil {
		return nil, fmt.Errorf("cbr: transport %T returned neither an answer nor an error", rt)
	}
	x.respBody = nil
	if resp.Body == nil { // a RoundTripper of the caller's may leave it out
		resp.Body = http.NoBody
	}
	data, err := readBody(resp)
	resp.Body.Close()
	if err != nil {
		x.acted = true // the server answered: it had the request
		var respErr *ResponseError
		if errors.As(err, &respErr) {
			respErr.Op, respErr.RequestID = x.call.op, resp.Header.Get("X-Request-Id")
			return nil, respErr
		}
		return nil, attemptError(ctx, fmt.Errorf("read %d response: %w", resp.StatusCode, err))
	}
	// A 2xx or 5xx may have taken effect; a throttling answer (a 503 with
	// Retry-After, like a 429) says the request was not taken.
	if resp.StatusCode >= 500 && !isThrottled(resp) || resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		x.acted = true
	}
	x.respBody = data
	resp.Body = http.NoBody
	x.header = resp.Header
	return resp, nil
}

// attemptError returns err, the failure of an attempt of a call whose context
// is ctx, as an attemptTimeoutError when the attempt timed out while ctx is
// still alive.
func attemptError(ctx context.Context, err error) error {
	var netErr net.Error
	if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()) {
		return &attemptTimeoutError{cause: err}
	}
	return err
}

// mayHaveSent reports whether an attempt that failed with err, after it got
// to phase, may have reached the server: only once its request's headers were
// written. A transport that reports no phase (a fake, or a RoundTripper of its
// own) is judged by err: every failure may have reached the server but one to
// connect (to dial, or to agree on TLS, which comes before the request).
func mayHaveSent(phase int32, err error) bool {
	switch phase {
	case phaseConnecting, phaseConnected:
		return false
	case phaseWritten:
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" || isTLSFailure(err) {
		return false
	}
	return !strings.Contains(err.Error(), "TLS handshake")
}

// readBody reads the whole body of resp: at most maxResponseBody bytes of a
// 2xx answer (a longer one is a *ResponseError), and the first maxErrorBody
// bytes of any other, whose rest is left unread.
func readBody(resp *http.Response) ([]byte, error) {
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	limit := int64(maxErrorBody)
	if ok {
		limit = maxResponseBody
	}
	n := resp.ContentLength
	switch {
	case n == 0 && resp.Body == http.NoBody:
		return nil, nil
	case n > limit && ok:
		return nil, &ResponseError{StatusCode: resp.StatusCode, Reason: "body of " + strconv.FormatInt(n, 10) + " bytes is over the limit of 16 MiB"}
	case n > 0:
		buf := make([]byte, min(n, limit))
		_, err := io.ReadFull(resp.Body, buf)
		return buf, err
	}
	buf, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if int64(len(buf)) > limit {
		if ok {
			return nil, &ResponseError{StatusCode: resp.StatusCode, Reason: "body is over the limit of 16 MiB"}
		}
		buf = buf[:limit]
	}
	return buf, err
}

// closeBody closes a request body, as a RoundTripper must even on failure.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// refuseRedirect is the CheckRedirect of every HTTP client of the package.
// CBR, IAM and the metadata service never redirect: a 3xx is returned as the
// answer (an *APIError), and credentials never follow it to another host.
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// newTransport returns a dedicated pooled transport with timeouts on every
// phase before the response body, the proxy from the environment and TLS 1.2 or later.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   8,
		ForceAttemptHTTP2:     true,
	}
}

// callLog writes the client's log records. Only WithLogger makes one, so
// that a program that never logs links no logging code.
type callLog struct {
	// call logs one call when it ends: at level Info when it succeeded, Warn
	// when it failed.
	call func(ctx context.Context, x *exchange, res outcome, err error)
	// retry logs the retry that checkRetry is about to wait for: at level
	// Info after throttling, Warn after a failure.
	retry func(ctx context.Context, x *exchange, wait time.Duration, throttled bool)
}

// newCallLog returns the callLog that writes to l.
func newCallLog(l *slog.Logger) *callLog {
	return &callLog{
		call: func(ctx context.Context, x *exchange, res outcome, err error) {
			level, msg := slog.LevelInfo, "cbr: call"
			attrs := []slog.Attr{
				slog.String("op", x.call.op),
				slog.String("method", x.call.method),
				slog.String("path", x.call.path),
				slog.Int("status", res.status),
				slog.Int("attempts", res.attempts),
				slog.Duration("duration", time.Since(x.began)),
				slog.String("request_id", res.requestID),
			}
			if err != nil {
				// Warn, not Error: the operation may still settle the call
				// (RegisterAgent's check, an uninstall already done), and
				// the error, if it stands, is returned for the caller to log.
				level, msg = slog.LevelWarn, "cbr: call failed"
				attrs = append(attrs, slog.String("error", err.Error()))
			}
			l.LogAttrs(ctx, level, msg, attrs...)
		},
		retry: func(ctx context.Context, x *exchange, wait time.Duration, throttled bool) {
			level := slog.LevelWarn
			if throttled {
				level = slog.LevelInfo
			}
			l.LogAttrs(ctx, level, "cbr: retrying",
				slog.String("op", x.call.op),
				slog.Int("attempt", x.attempts),
				slog.String("reason", x.reason),
				slog.Duration("wait", wait))
		},
	}
}
