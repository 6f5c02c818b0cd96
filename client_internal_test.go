package cbr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// response returns a bodiless response with a status and headers.
func response(status int, header ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &http.Response{StatusCode: status, Header: h, Body: http.NoBody}
}

func TestRetryAfterParsing(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{"9223372036", 9223372036 * time.Second, true},   // the most a Duration holds
		{"9223372037", math.MaxInt64, true},              // one second more
		{"99999999999999999999999", math.MaxInt64, true}, // more than an int64 holds
		{"-1", 0, false},
		{"1.5", 0, false},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0, true}, // in the past
		{"tomorrow", 0, false},
	}
	for _, tt := range tests {
		got, ok := retryAfter(response(429, "Retry-After", tt.value))
		assert.Equal(t, tt.ok, ok, "%q", tt.value)
		assert.Equal(t, tt.want, got, "%q", tt.value)
	}
}

// withExchange returns ctx carrying the exchange of a call with policy p.
func withExchange(ctx context.Context, p RetryPolicy) (context.Context, *exchange) {
	x := &exchange{call: call{op: "test"}, policy: &p, start: time.Now()}
	return context.WithValue(ctx, exchangeKey{}, x), x
}

func TestCheckRetry(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 3, MinWait: time.Microsecond, MaxWait: time.Microsecond,
		ThrottleMinWait: time.Microsecond, ThrottleMaxWait: time.Microsecond, MaxDuration: time.Minute}
	live := context.Background()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	soon, cancel3 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel3()

	urlErr := func(err error) error {
		return &url.Error{Op: "Post", URL: "https://cbr.example.com/v3/p/agents", Err: err}
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{}}
	tests := []struct {
		name    string
		ctx     context.Context
		resp    *http.Response
		err     error
		retry   bool
		wantErr error
	}{
		{"200", live, response(200), nil, false, nil},
		{"400", live, response(400), nil, false, nil},
		{"401", live, response(401), nil, false, nil},
		{"404", live, response(404), nil, false, nil},
		{"501", live, response(501), nil, false, nil},
		{"429", live, response(429), nil, true, nil},
		{"500", live, response(500), nil, true, nil},
		{"502", live, response(502), nil, true, nil},
		{"503", live, response(503), nil, true, nil},
		{"504", live, response(504), nil, true, nil},
		{"429 Retry-After within the deadline", soon, response(429, "Retry-After", "0"), nil, true, nil},
		{"429 Retry-After beyond the deadline", soon, response(429, "Retry-After", "6"), nil, false, nil},
		{"503 Retry-After beyond MaxDuration", live, response(503, "Retry-After", "3600"), nil, false, nil},
		{"canceled context", canceled, response(503), nil, false, context.Canceled},
		{"expired context", expired, nil, urlErr(context.DeadlineExceeded), false, nil}, // the attempt's error is the call's
		{"expired context after an answer to keep", expired, response(200), nil, false, nil},
		{"EOF", live, nil, urlErr(io.EOF), true, nil},
		{"unexpected EOF", live, nil, urlErr(io.ErrUnexpectedEOF), true, nil},
		{"connection refused", live, nil, urlErr(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true, nil},
		{"connection reset", live, nil, urlErr(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), true, nil},
		{"DNS failure", live, nil, urlErr(refused), true, nil},
		{"attempt timeout", live, nil, urlErr(&attemptTimeoutError{cause: timeoutErr{}}), true, nil},
		{"unusable answer", live, nil, urlErr(&ResponseError{StatusCode: 200, Reason: "too long"}), false, nil},
		{"certificate not verified", live, nil, urlErr(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), false, nil},
		{"unknown authority", live, nil, urlErr(x509.UnknownAuthorityError{}), false, nil},
		{"wrong host name", live, nil, urlErr(x509.HostnameError{Host: "x"}), false, nil},
		{"invalid certificate", live, nil, urlErr(x509.CertificateInvalidError{}), false, nil},
		{"TLS to a plain server", live, nil, urlErr(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), false, nil},
		{"another host", live, nil, urlErr(&redirectError{host: "evil.example.com"}), false, nil},
		{"credentials failed", live, nil, urlErr(&credentialsError{err: errors.New("cbr: token is empty")}), false, nil},
		{"credentials failed on the network", live, nil, urlErr(&credentialsError{err: refused}), true, nil},
		{"unsupported scheme", live, nil, urlErr(errors.New("unsupported protocol scheme \"ftp\"")), false, nil},
		{"invalid header", live, nil, urlErr(errors.New("net/http: invalid header field value for \"X\"")), false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, _ := withExchange(tt.ctx, p)
			retry, err := checkRetry(ctx, tt.resp, tt.err)
			assert.Equal(t, tt.retry, retry)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestCheckRetryCountsFailuresNotThrottling(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 3, MinWait: time.Microsecond, MaxWait: time.Microsecond,
		ThrottleMinWait: time.Microsecond, ThrottleMaxWait: time.Microsecond, MaxDuration: time.Minute}
	ctx, x := withExchange(context.Background(), p)
	for i := range 50 {
		retry, err := checkRetry(ctx, response(429), nil)
		require.NoError(t, err)
		require.True(t, retry, "throttling answer %d", i+1)
	}
	for i, want := range []bool{true, true, false} { // the third failure is the last
		retry, err := checkRetry(ctx, response(502), nil)
		require.NoError(t, err)
		assert.Equal(t, want, retry, "failure %d", i+1)
	}
	assert.Equal(t, 50, x.throttled)
	assert.Equal(t, 3, x.failures)
}

func TestCheckRetryMaxDurationBoundsACallWithoutDeadline(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 3, MinWait: time.Microsecond, MaxWait: time.Microsecond,
		ThrottleMinWait: time.Microsecond, ThrottleMaxWait: time.Microsecond, MaxDuration: time.Minute}
	ctx, x := withExchange(context.Background(), p)
	x.start = time.Now().Add(-time.Minute) // the call's time is up
	retry, err := checkRetry(ctx, response(429), nil)
	require.NoError(t, err)
	assert.False(t, retry)
}

func TestCheckRetryCanceledDuringWait(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 3, MinWait: time.Hour, MaxWait: time.Hour,
		ThrottleMinWait: time.Hour, ThrottleMaxWait: time.Hour, MaxDuration: 10 * time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	ctx, _ = withExchange(ctx, p)
	time.AfterFunc(10*time.Millisecond, cancel)
	for { // a random wait may be short: the context ends during one of them
		retry, err := checkRetry(ctx, response(429), nil)
		if !retry {
			assert.ErrorIs(t, err, context.Canceled)
			return
		}
	}
}

// timeoutErr is the shape of net/http's per-attempt timeouts (Client.Timeout,
// ResponseHeaderTimeout): a net.Error that also matches context.DeadlineExceeded.
type timeoutErr struct{}

func (timeoutErr) Error() string        { return "net/http: timeout awaiting response headers" }
func (timeoutErr) Timeout() bool        { return true }
func (timeoutErr) Temporary() bool      { return true }
func (timeoutErr) Is(target error) bool { return target == context.DeadlineExceeded }

func TestNewTransport(t *testing.T) {
	tr := newTransport()
	assert.Equal(t, reflect.ValueOf(http.ProxyFromEnvironment).Pointer(), reflect.ValueOf(tr.Proxy).Pointer(), "proxy from the environment")
	assert.NotNil(t, tr.DialContext)
	require.NotNil(t, tr.TLSClientConfig)
	assert.Equal(t, uint16(tls.VersionTLS12), tr.TLSClientConfig.MinVersion)
	assert.False(t, tr.TLSClientConfig.InsecureSkipVerify)
	assert.Equal(t, 10*time.Second, tr.TLSHandshakeTimeout)
	assert.Equal(t, 30*time.Second, tr.ResponseHeaderTimeout)
	assert.Equal(t, time.Second, tr.ExpectContinueTimeout)
	assert.Equal(t, 90*time.Second, tr.IdleConnTimeout)
	assert.Equal(t, 16, tr.MaxIdleConns)
	assert.Equal(t, 8, tr.MaxIdleConnsPerHost)
	assert.True(t, tr.ForceAttemptHTTP2)
	assert.NotSame(t, tr, newTransport(), "every client gets its own pool")
}

func TestTransportStack(t *testing.T) {
	opts := []Option{WithEndpoint("https://cbr.example.com"), WithProjectID("p"), WithCredentials(Token("t"))}

	// Without WithHTTPClient: a dedicated transport, not http.DefaultTransport.
	c1, err := NewClient(opts...)
	require.NoError(t, err)
	c2, err := NewClient(opts...)
	require.NoError(t, err)
	base1 := c1.api.base.Transport
	assert.IsType(t, &http.Transport{}, base1)
	assert.NotSame(t, http.DefaultTransport, base1)
	assert.NotSame(t, base1, c2.api.base.Transport)
	assert.Same(t, base1, c1.ownHTTP, "Close closes it")
	assert.Nil(t, c1.api.logs, "no logging by default")
	assert.Nil(t, c1.api.rc.Logger, "go-retryablehttp never logs")
	assert.Equal(t, DefaultRetryPolicy(), c1.api.policy)

	// WithHTTPClient: its transport and timeout are read for every attempt; it is not modified.
	rt := http.RoundTripper(&http.Transport{})
	hc := &http.Client{Transport: rt, Timeout: 7 * time.Second}
	c3, err := NewClient(append(opts, WithHTTPClient(hc))...)
	require.NoError(t, err)
	assert.Same(t, hc, c3.api.base)
	assert.Nil(t, c3.ownHTTP, "Close leaves the caller's transport alone")
	assert.Same(t, rt, hc.Transport)
	assert.Nil(t, hc.CheckRedirect)
}

func TestDefaultRetryPolicy(t *testing.T) {
	assert.Equal(t, RetryPolicy{
		MaxAttempts: 4, MinWait: 500 * time.Millisecond, MaxWait: 20 * time.Second,
		ThrottleMinWait: time.Second, ThrottleMaxWait: time.Minute,
		MaxDuration: 15 * time.Minute, AttemptTimeout: 30 * time.Second,
	}, DefaultRetryPolicy())
}

func TestMayHaveSent(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name  string
		phase int32
		err   error
		want  bool
	}{
		{"getting a connection", phaseConnecting, reset, false},
		{"connected, request not written", phaseConnected, reset, false},
		{"request written", phaseWritten, reset, true},
		{"request written, then a timeout", phaseWritten, context.DeadlineExceeded, true},
		{"no phase: reset", phaseNone, reset, true},
		{"no phase: dial", phaseNone, dial, false},
		{"no phase: TLS handshake timeout", phaseNone, errors.New("net/http: TLS handshake timeout"), false},
		{"no phase: certificate", phaseNone, x509.UnknownAuthorityError{}, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, mayHaveSent(tt.phase, tt.err), tt.name)
	}
}
