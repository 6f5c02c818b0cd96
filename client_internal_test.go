package cbr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
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

func TestBackoffFullJitterBounds(t *testing.T) {
	const minWait, maxWait = 100 * time.Millisecond, 2 * time.Second
	for attempt, ceiling := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, 1600 * time.Millisecond, 2 * time.Second, 2 * time.Second} {
		t.Run(fmt.Sprint(attempt), func(t *testing.T) {
			lowest, highest := time.Duration(math.MaxInt64), time.Duration(0)
			for range 2000 {
				w := backoff(minWait, maxWait, attempt, nil)
				require.GreaterOrEqual(t, w, time.Duration(0))
				require.LessOrEqual(t, w, ceiling)
				lowest, highest = min(lowest, w), max(highest, w)
			}
			// Full jitter spreads waits over the whole range, not near its top.
			assert.Less(t, lowest, ceiling/10)
			assert.Greater(t, highest, ceiling*9/10)
		})
	}
}

func TestBackoffCap(t *testing.T) {
	tests := []struct {
		name             string
		minWait, maxWait time.Duration
		attempt          int
	}{
		{"late attempt", 500 * time.Millisecond, 20 * time.Second, 30},
		{"attempt past the shift width", 500 * time.Millisecond, 20 * time.Second, 100},
		{"min equals max", time.Second, time.Second, 3},
		// min<<14 overflows int64 to a tiny positive value.
		{"overflowing shift", 1<<50 + 1, 1 << 62, 14},
		{"largest MaxWait", time.Nanosecond, math.MaxInt64, 70},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			highest := time.Duration(0)
			for range 200 {
				w := backoff(tt.minWait, tt.maxWait, tt.attempt, nil)
				require.GreaterOrEqual(t, w, time.Duration(0))
				require.LessOrEqual(t, w, tt.maxWait)
				highest = max(highest, w)
			}
			assert.Greater(t, highest, tt.maxWait/2, "the ceiling is MaxWait")
		})
	}
	assert.Equal(t, time.Duration(0), backoff(0, 0, 3, nil))
}

func TestBackoffRetryAfter(t *testing.T) {
	const minWait, maxWait = time.Millisecond, time.Minute
	assert.Equal(t, 3*time.Second, backoff(minWait, maxWait, 0, response(429, "Retry-After", "3")))
	assert.Equal(t, 2*time.Second, backoff(minWait, maxWait, 5, response(503, "Retry-After", " 2 ")))
	assert.Equal(t, time.Duration(0), backoff(minWait, maxWait, 0, response(429, "Retry-After", "0")))

	date := time.Now().Add(5 * time.Second).UTC().Format(http.TimeFormat)
	w := backoff(minWait, maxWait, 0, response(429, "Retry-After", date))
	assert.Greater(t, w, 3*time.Second)
	assert.LessOrEqual(t, w, 5*time.Second)

	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	assert.Equal(t, time.Duration(0), backoff(minWait, maxWait, 0, response(503, "Retry-After", past)))

	// Ignored: other statuses, garbage, negative values. Jitter applies.
	for _, resp := range []*http.Response{
		response(500, "Retry-After", "30"),
		response(429, "Retry-After", "soon"),
		response(429, "Retry-After", "-5"),
		response(429),
	} {
		assert.LessOrEqual(t, backoff(minWait, maxWait, 0, resp), minWait, "status %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
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

func TestRetryPolicy(t *testing.T) {
	const maxWait = 10 * time.Second
	live := context.Background()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

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
		{"429 Retry-After within MaxWait", live, response(429, "Retry-After", "10"), nil, true, nil},
		{"429 Retry-After beyond MaxWait", live, response(429, "Retry-After", "11"), nil, false, nil},
		{"503 Retry-After beyond MaxWait", live, response(503, "Retry-After", "3600"), nil, false, nil},
		{"canceled context", canceled, response(503), nil, false, context.Canceled},
		{"expired context", expired, nil, urlErr(context.DeadlineExceeded), false, context.DeadlineExceeded},
		{"EOF", live, nil, urlErr(io.EOF), true, nil},
		{"unexpected EOF", live, nil, urlErr(io.ErrUnexpectedEOF), true, nil},
		{"connection refused", live, nil, urlErr(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true, nil},
		{"connection reset", live, nil, urlErr(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), true, nil},
		{"DNS failure", live, nil, urlErr(refused), true, nil},
		{"per-attempt timeout", live, nil, urlErr(timeoutErr{}), true, nil},
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
	check := retryPolicy(maxWait)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			retry, err := check(tt.ctx, tt.resp, tt.err)
			assert.Equal(t, tt.retry, retry)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
			}
		})
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
	base1 := c1.http.HTTPClient.Transport.(*authTransport).base
	base2 := c2.http.HTTPClient.Transport.(*authTransport).base
	assert.IsType(t, &http.Transport{}, base1)
	assert.NotSame(t, http.DefaultTransport, base1)
	assert.NotSame(t, base1, base2)
	assert.Nil(t, c1.http.Logger, "no logging by default")
	assert.Equal(t, DefaultRetryPolicy().MaxAttempts-1, c1.http.RetryMax)
	assert.Equal(t, DefaultRetryPolicy().MinWait, c1.http.RetryWaitMin)
	assert.Equal(t, DefaultRetryPolicy().MaxWait, c1.http.RetryWaitMax)

	// WithHTTPClient: its transport and timeout are used; it is not modified.
	rt := http.RoundTripper(&http.Transport{})
	hc := &http.Client{Transport: rt, Timeout: 7 * time.Second}
	c3, err := NewClient(append(opts, WithHTTPClient(hc))...)
	require.NoError(t, err)
	assert.Same(t, rt, c3.http.HTTPClient.Transport.(*authTransport).base)
	assert.Equal(t, 7*time.Second, c3.http.HTTPClient.Timeout)
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
