package cbr_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
)

func TestRetryTransientStatusesThenSuccess(t *testing.T) {
	st := &stub{answers: []answer{
		{status: 503, body: `{"error_code":"APIGW.0613","error_msg":"IAM unavailable"}`},
		{status: 503, body: `{"error_code":"APIGW.0613","error_msg":"IAM unavailable"}`},
		{status: 200, body: string(golden(t, "update_response.json"))},
	}}
	c, mt := newMockClient(t)
	mt.RegisterResponder("PUT", agentsURL+"/"+testAgentID, st.respond)

	agent, err := c.UpdateAgent(context.Background(), testAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)
	assert.Equal(t, testAgentID, agent.AgentID)
	require.Equal(t, 3, st.count())
	want := compact(t, "update_request.json")
	for i, body := range st.bodies {
		assert.Equal(t, want, body, "attempt %d sends the same body", i+1)
		assert.Equal(t, testToken, st.reqs[i].Header.Get("X-Auth-Token"), "attempt %d is authenticated", i+1)
	}
}

func TestRetryByStatus(t *testing.T) {
	tests := []struct {
		status   int
		attempts int
	}{
		{http.StatusBadRequest, 1},
		{http.StatusUnauthorized, 1},
		{http.StatusForbidden, 1},
		{http.StatusNotFound, 1},
		{http.StatusRequestTimeout, 1},
		{http.StatusConflict, 1},
		{http.StatusFound, 1},
		{http.StatusNotImplemented, 1},
		{http.StatusInternalServerError, 3},
		{http.StatusBadGateway, 3},
		{http.StatusServiceUnavailable, 3},
		{http.StatusGatewayTimeout, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			st := &stub{answers: []answer{{status: tt.status, body: `{"error_code":"E.1","error_msg":"m"}`}}}
			c, mt := newMockClient(t, cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond}))
			mt.RegisterResponder("PUT", agentsURL+"/"+testAgentID, st.respond)
			answerNotRegistered(mt)

			_, err := c.UpdateAgent(context.Background(), testAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
			var apiErr *cbr.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tt.status, apiErr.StatusCode)
			assert.Equal(t, tt.attempts, apiErr.Attempts)
			assert.Equal(t, tt.attempts, st.count())
		})
	}
}

func TestThrottlingIsWaitedOutUntilTheDeadline(t *testing.T) {
	st := &stub{answers: []answer{{status: 429, body: `{"error_code":"APIGW.0308","error_msg":"The throttling threshold has been reached"}`}}}
	c, mt := newMockClient(t, cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 2, MinWait: time.Millisecond, MaxWait: time.Millisecond,
		ThrottleMinWait: time.Millisecond, ThrottleMaxWait: 4 * time.Millisecond}))
	mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, st.respond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()

	start := time.Now()
	_, err := c.ShowAgent(ctx, testAgentID)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Greater(t, st.count(), 10, "throttling does not count against MaxAttempts")
	require.Error(t, err)
	assert.True(t, errors.Is(err, cbr.ErrRateLimited) || errors.Is(err, context.DeadlineExceeded), "%v", err)
	assert.NotContains(t, err.Error(), "\n")
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	st := &stub{answers: []answer{{status: 503, body: `{"error_code":"APIGW.0613","error_msg":"IAM unavailable"}`,
		header: http.Header{"X-Request-Id": {"rid-last"}}}}}
	c, mt := newMockClient(t)
	mt.RegisterResponder("PUT", agentsURL+"/"+testAgentID, st.respond)
	answerNotRegistered(mt)

	_, err := c.UpdateAgent(context.Background(), testAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 503, apiErr.StatusCode)
	assert.Equal(t, "APIGW.0613", apiErr.Code)
	assert.Equal(t, "IAM unavailable", apiErr.Message)
	assert.Equal(t, "rid-last", apiErr.RequestID)
	assert.Equal(t, fastRetry.MaxAttempts, apiErr.Attempts)
	assert.Equal(t, fastRetry.MaxAttempts, st.count())
	assert.Equal(t, fmt.Sprintf("cbr: update agent: 503 Service Unavailable APIGW.0613: IAM unavailable (request id rid-last) (after %d attempts)", fastRetry.MaxAttempts),
		apiErr.Error())
	assert.Equal(t, 1, mt.GetCallCountInfo()["GET "+agentsURL+"/"+testAgentID], "then one check whether the uninstall took effect")
}

func TestRetryAfter(t *testing.T) {
	throttled := `{"error_code":"APIGW.0308","error_msg":"The throttling threshold has been reached"}`
	t.Run("within MaxWait is retried", func(t *testing.T) {
		st := &stub{answers: []answer{
			{status: 429, body: throttled, header: http.Header{"Retry-After": {"0"}}},
			{status: 200, body: string(golden(t, "register_response.json"))},
		}}
		c, mt := newMockClient(t)
		mt.RegisterResponder("POST", agentsURL, st.respond)

		_, err := c.RegisterAgent(context.Background(), documentedRegister)
		require.NoError(t, err)
		assert.Equal(t, 2, st.count())
	})
	for _, retryAfter := range []string{"1", "3600", "99999999999999999", "99999999999999999999", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)} {
		t.Run("beyond MaxWait stops: "+retryAfter, func(t *testing.T) {
			st := &stub{answers: []answer{{status: 429, body: throttled, header: http.Header{"Retry-After": {retryAfter}}}}}
			c, mt := newMockClient(t)
			mt.RegisterResponder("POST", agentsURL, st.respond)

			start := time.Now()
			_, err := c.RegisterAgent(context.Background(), documentedRegister)
			assert.Less(t, time.Since(start), 2*time.Second)
			var apiErr *cbr.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.ErrorIs(t, err, cbr.ErrRateLimited)
			assert.Equal(t, 429, apiErr.StatusCode)
			assert.Equal(t, "APIGW.0308", apiErr.Code)
			assert.Equal(t, 1, apiErr.Attempts)
			assert.Equal(t, 1, st.count())
		})
	}
}

func TestRetryDroppedConnection(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.Write(golden(t, "update_response.json"))
	}))
	defer srv.Close()
	c := newServerClient(t, srv.URL)

	agent, err := c.UpdateAgent(context.Background(), testAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)
	assert.Equal(t, testAgentID, agent.AgentID)
	assert.Equal(t, int32(2), hits.Load())
}

// countingTransport counts the attempts that reach the base transport.
type countingTransport struct {
	n    atomic.Int32
	base http.RoundTripper
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.base.RoundTrip(req)
}

func TestRetryConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now

	ct := &countingTransport{base: &http.Transport{}}
	c := newServerClient(t, url, cbr.WithHTTPClient(&http.Client{Transport: ct}))

	_, err := c.RegisterAgent(context.Background(), documentedRegister)
	require.Error(t, err)
	var opErr *net.OpError
	assert.ErrorAs(t, err, &opErr)
	var apiErr *cbr.APIError
	assert.False(t, errors.As(err, &apiErr))
	assert.Equal(t, int32(fastRetry.MaxAttempts), ct.n.Load())
	assert.True(t, strings.HasPrefix(err.Error(), "cbr: register agent: "), err.Error())
	assert.True(t, strings.HasSuffix(err.Error(), fmt.Sprintf("connection refused (after %d attempts)", fastRetry.MaxAttempts)), err.Error())
}

func TestNoRetryOnUntrustedCertificate(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the handler must not be reached")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	c := newServerClient(t, srv.URL) // the dedicated transport trusts only the system roots

	_, err := c.RegisterAgent(context.Background(), documentedRegister)
	var certErr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &certErr)
	assert.Equal(t, int32(1), conns.Load(), "exactly one attempt")
}

// hangingServer accepts requests and answers none until the test ends.
func hangingServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv, &hits
}

func TestContextDeadlineDuringHangingResponse(t *testing.T) {
	srv, hits := hangingServer(t)
	c := newServerClient(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()

	start := time.Now()
	_, err := c.RegisterAgent(ctx, documentedRegister)
	assert.Less(t, time.Since(start), 2*time.Second)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, strings.HasPrefix(err.Error(), "cbr: register agent: "), err.Error())
	assert.Equal(t, int32(1), hits.Load())
}

func TestContextCanceledDuringHangingResponse(t *testing.T) {
	srv, hits := hangingServer(t)
	c := newServerClient(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)

	start := time.Now()
	_, err := c.UpdateAgent(ctx, testAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	assert.Less(t, time.Since(start), 2*time.Second)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, int32(1), hits.Load())
}

func TestRetryAfterBeyondTheDeadlineEndsTheCallAtOnce(t *testing.T) {
	st := &stub{answers: []answer{{status: 429, body: `{"error_code":"APIGW.0308","error_msg":"The throttling threshold has been reached"}`,
		header: http.Header{"Retry-After": {"10"}}}}}
	c, mt := newMockClient(t)
	mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, st.respond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	start := time.Now()
	_, err := c.ShowAgent(ctx, testAgentID)
	assert.Less(t, time.Since(start), time.Second, "not slept into the deadline")
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.ErrorIs(t, err, cbr.ErrRateLimited)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 1, apiErr.Attempts)
	assert.Equal(t, 1, st.count())
}

func TestWaitBeyondTheDeadlineIsNotBegun(t *testing.T) {
	st := &stub{answers: []answer{{status: 502, body: `{"error_code":"APIGW.0613","error_msg":"IAM unavailable"}`}}}
	// The wait is random below 1,000 hours: one that fits in 2s comes once in 1.8 million.
	c, mt := newMockClient(t, cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 4, MinWait: 1000 * time.Hour, MaxWait: 1000 * time.Hour}))
	mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, st.respond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()

	start := time.Now()
	_, err := c.ShowAgent(ctx, testAgentID)
	assert.Less(t, time.Since(start), time.Second, "the call returns the failure instead of waiting into the deadline")
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 502, apiErr.StatusCode)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
}

func TestContextCanceledDuringBackoff(t *testing.T) {
	st := &stub{answers: []answer{{status: 502, body: `{"error_code":"APIGW.0613","error_msg":"IAM unavailable"}`}}}
	c, mt := newMockClient(t, cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 4, MinWait: 10 * time.Second, MaxWait: 10 * time.Second}))
	mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, st.respond)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)

	start := time.Now()
	_, err := c.ShowAgent(ctx, testAgentID)
	assert.Less(t, time.Since(start), 5*time.Second, "the wait is cut short")
	require.ErrorIs(t, err, context.Canceled)
	if st.count() == 1 { // the random wait was longer than 20ms, as it is 499 times in 500
		assert.Equal(t, "cbr: show agent: context canceled (while waiting to retry after 502 Bad Gateway)", err.Error())
	}
}

func TestContextAlreadyDoneSendsNothing(t *testing.T) {
	c, mt := newMockClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, err := c.RegisterAgent(ctx, documentedRegister)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 0, mt.GetTotalCallCount())
}

// trackedBody records whether it was closed.
type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// TestContextDoneAfterAnswer checks that an answer that arrives as the
// context ends still ends the call with the context's error, and that its
// body is closed.
func TestContextDoneAfterAnswer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	body := &trackedBody{Reader: bytes.NewReader(golden(t, "register_response.json"))}
	rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		cancel()
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: body, Request: req}, nil
	})
	c := newServerClient(t, testEndpoint, cbr.WithHTTPClient(&http.Client{Transport: rt}))

	// The whole answer arrived: it is the result, although the context ended since.
	a, err := c.RegisterAgent(ctx, documentedRegister)
	require.NoError(t, err)
	assert.Equal(t, testAgentID, a.AgentID)
	assert.True(t, body.closed.Load(), "the response body is closed")
}

func TestRetryPerAttemptTimeout(t *testing.T) {
	t.Parallel() // it waits out a timeout
	var hits atomic.Int32
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			select { // the first attempt hangs
			case <-r.Context().Done():
			case <-done:
			}
			return
		}
		w.Write(golden(t, "update_response.json"))
	}))
	defer srv.Close()
	defer close(done)
	// The first attempt hangs until this timeout ends it; the second has it
	// all to answer, however loaded the machine.
	policy := fastRetry
	policy.MaxDuration = time.Minute
	c := newServerClient(t, srv.URL, cbr.WithHTTPClient(&http.Client{Timeout: time.Second}), cbr.WithRetry(policy))

	_, err := c.UpdateAgent(context.Background(), testAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)
	assert.Equal(t, int32(2), hits.Load())
}

// failingCredentials counts its calls and always fails.
type failingCredentials struct{ calls atomic.Int32 }

func (f *failingCredentials) Authenticate(*http.Request, []byte) error {
	f.calls.Add(1)
	return errors.New("no credentials available")
}

func TestFailedCredentialsAreNotRetriedOrSent(t *testing.T) {
	creds := &failingCredentials{}
	c, mt := newMockClient(t, cbr.WithCredentials(creds))

	_, err := c.RegisterAgent(context.Background(), documentedRegister)
	require.Error(t, err)
	assert.EqualError(t, err, "cbr: register agent: authenticate: no credentials available")
	assert.Equal(t, int32(1), creds.calls.Load())
	assert.Equal(t, 0, mt.GetTotalCallCount())

	// A token that cannot be sent fails NewClient, not the first call.
	_, err = cbr.NewClient(cbr.WithEndpoint(testEndpoint), cbr.WithProjectID(testProject), cbr.WithCredentials(cbr.Token("")))
	assert.EqualError(t, err, "cbr: token is empty")
}

func TestAnswerWithoutABodyFromACustomTransport(t *testing.T) {
	rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 204, Header: http.Header{}, Request: req}, nil // Body left nil
	})
	c := newServerClient(t, testEndpoint, cbr.WithHTTPClient(&http.Client{Transport: rt}))
	require.NoError(t, c.UnregisterAgent(context.Background(), testAgentID))
	_, err := c.ShowAgent(context.Background(), testAgentID)
	require.ErrorIs(t, err, cbr.ErrUnexpectedResponse, "a 2xx without the agent")
}
