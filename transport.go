package cbr

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// This file holds the transport stack beneath (*Client).do: the retry policy
// and backoff on top of go-retryablehttp, the authentication of every attempt,
// and the base transport.

// newRetryClient builds the transport stack: retries on top, then
// authentication for every attempt, then the base transport.
func newRetryClient(cfg config, host string) *retryablehttp.Client {
	base := cfg.httpClient
	inner := &http.Client{
		Transport:     &authTransport{creds: cfg.creds, host: host, base: base.Transport},
		Timeout:       base.Timeout,
		Jar:           base.Jar,
		CheckRedirect: refuseRedirect,
	}
	p := cfg.retry
	rc := &retryablehttp.Client{
		HTTPClient:   inner,
		RetryWaitMin: p.MinWait,
		RetryWaitMax: p.MaxWait,
		RetryMax:     p.MaxAttempts - 1,
		CheckRetry:   retryPolicy(p.MaxWait),
		Backoff:      backoff,
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) { return resp, err },
	}
	if cfg.logger != nil {
		rc.Logger = cfg.logger
	}
	return rc
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

// retryPolicy returns the CheckRetry of a client: retry connection failures and
// 429, 500, 502, 503, 504; never a done context, a TLS or certificate failure,
// another status, or a Retry-After longer than maxWait.
func retryPolicy(maxWait time.Duration) retryablehttp.CheckRetry {
	return func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err != nil {
			return retryableError(err), nil
		}
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			if wait, ok := retryAfter(resp); ok && wait > maxWait {
				return false, nil
			}
			return true, nil
		case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
			return true, nil
		}
		return false, nil
	}
}

// retryableError reports whether a failed attempt is worth another: connection
// failures and dropped connections are; TLS and certificate failures, requests
// to another host, malformed requests and failed credentials are not, unless the
// credentials failed on a connection failure or a retryable status.
func retryableError(err error) bool {
	var (
		apiErr   *APIError
		credErr  *credentialsError
		netErr   net.Error
		redirErr *redirectError
	)
	switch {
	// The retry policy has already stopped on the call's own context, so a
	// DeadlineExceeded here is a per-attempt timeout (a dial, TLS-handshake,
	// response-header or http.Client timeout), which is worth another attempt.
	case errors.Is(err, context.Canceled):
		return false
	case errors.As(err, &apiErr):
		return apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode >= 500 && apiErr.StatusCode != http.StatusNotImplemented
	case isTLSFailure(err), errors.As(err, &redirErr):
		return false
	case errors.As(err, &credErr):
		// err is a *url.Error, itself a net.Error: look beneath the credentials.
		return errors.As(credErr.err, &netErr) || errors.Is(credErr.err, io.ErrUnexpectedEOF) || errors.Is(credErr.err, io.EOF)
	}
	msg := err.Error()
	return !strings.Contains(msg, "unsupported protocol scheme") && !strings.Contains(msg, "invalid header")
}

// isTLSFailure reports whether err is a failed TLS handshake: an untrusted or
// invalid certificate, or a server that does not speak TLS.
func isTLSFailure(err error) bool {
	var (
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
		unknown x509.UnknownAuthorityError
		hostErr x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	return errors.As(err, &certErr) || errors.As(err, &recErr) || errors.As(err, &unknown) ||
		errors.As(err, &hostErr) || errors.As(err, &invalid)
}

// backoff returns the wait before retry number attempt+1: the Retry-After of a
// 429 or 503 when it has one (the retry policy has already refused one longer
// than maxWait), else a uniformly random wait in
// [0, min(maxWait, minWait·2^attempt)).
func backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if wait, ok := retryAfter(resp); ok {
			return wait
		}
	}
	ceiling := maxWait
	if attempt < 63 && minWait <= maxWait>>attempt { // minWait<<attempt <= maxWait, without overflow
		ceiling = minWait << attempt
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}

// callState follows one call through its attempts. It rides in the request's
// context from the pipeline down to the authentication transport.
type callState struct {
	body     []byte       // the exact body of every attempt
	attempts atomic.Int32 // authenticated attempts handed to the base transport
	// acted is set when an attempt may have taken effect on the server: it
	// was answered 2xx or 5xx, or it failed after a connection was made.
	acted atomic.Bool
}

type callStateKey struct{}

// authTransport authenticates every attempt afresh, beneath the retry loop.
type authTransport struct {
	creds Credentials
	host  string
	base  http.RoundTripper
}

// credentialsError wraps a failure of Credentials.Authenticate.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "authenticate: " + trimPrefix(e.err) }
func (e *credentialsError) Unwrap() error { return e.err }

// redirectError is a request to another host than the endpoint's, which the
// client refuses to authenticate.
type redirectError struct{ host string }

func (e *redirectError) Error() string {
	return "cbr: refusing to send credentials to another host " + e.host
}

// RoundTrip authenticates a copy of req and sends it with the base transport.
// A request to another host than the endpoint's is refused. When credentials
// that can be renewed (a token, temporary keys) are refused with a 401, they
// are renewed and the attempt is sent once more, unless they are less than
// minAgeToRenew old: then the 401 is returned.
func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != t.host {
		closeBody(req)
		return nil, &redirectError{host: req.URL.Host}
	}
	var body []byte
	st, _ := req.Context().Value(callStateKey{}).(*callState)
	if st != nil {
		body = st.body
	}
	r := req.Clone(req.Context())
	resp, err := t.send(r, body, st)
	rn, renewable := t.creds.(renewer)
	resendable := st != nil || req.Body == nil || req.Body == http.NoBody
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !renewable || !resendable || !rn.expire(r) {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	r = req.Clone(req.Context())
	r.Body, r.GetBody = http.NoBody, nil
	if len(body) > 0 {
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.Body, _ = r.GetBody()
	}
	return t.send(r, body, st)
}

// send authenticates r and sends it with the base transport.
func (t *authTransport) send(r *http.Request, body []byte, st *callState) (*http.Response, error) {
	if err := t.creds.Authenticate(r, body); err != nil {
		closeBody(r)
		return nil, &credentialsError{err: err}
	}
	if st != nil {
		st.attempts.Add(1)
	}
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(r)
	if st != nil && mayHaveActed(resp, err) {
		st.acted.Store(true)
	}
	return resp, err
}

// mayHaveActed reports whether an attempt may have taken effect on the server:
// every outcome but a 3xx or 4xx answer and a failure to connect (to dial, or
// to agree on TLS, which happens before the request is written).
func mayHaveActed(resp *http.Response, err error) bool {
	if err != nil {
		var opErr *net.OpError
		return !(errors.As(err, &opErr) && opErr.Op == "dial") && !isTLSFailure(err)
	}
	return resp.StatusCode >= 500 || resp.StatusCode >= 200 && resp.StatusCode <= 299
}

// closeBody closes a request body, as a RoundTripper must even on failure.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
