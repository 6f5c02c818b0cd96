package cbr

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// trickle answers 2xx with headers at once, then a body of one byte every
// 20ms that never ends until the client hangs up. It counts the requests.
type trickle struct {
	status   int
	header   map[string]string
	requests atomic.Int32
}

func (tr *trickle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tr.requests.Add(1)
	if r.Method == http.MethodPut { // the metadata session token: none
		w.WriteHeader(http.StatusNotFound)
		return
	}
	for k, v := range tr.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(tr.status)
	io.WriteString(w, "{")
	w.(http.Flusher).Flush()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := io.WriteString(w, " "); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
}

// assertFetchTimeout checks err is the *timeoutError of op after d, which the
// client retries as a net.Error that timed out.
func assertFetchTimeout(t *testing.T, err error, op string, d time.Duration) {
	t.Helper()
	var timedOut *timeoutError
	require.ErrorAs(t, err, &timedOut)
	assert.Equal(t, "cbr: "+op+": no complete answer within "+d.String(), timedOut.Error())
	var netErr net.Error
	require.ErrorAs(t, err, &netErr)
	assert.True(t, netErr.Timeout())
}

func TestCredentialFetchesBoundASlowBody(t *testing.T) {
	t.Parallel()
	const bound = 200 * time.Millisecond
	ctx := context.Background() // no deadline: only the fetch's own bound ends it

	t.Run("IAM token", func(t *testing.T) {
		t.Parallel()
		iam := &trickle{status: http.StatusCreated, header: map[string]string{"X-Subject-Token": "MIItoken"}}
		srv := httptest.NewServer(iam)
		t.Cleanup(srv.Close)
		creds, err := IAMPassword{Domain: "d", User: "u", Password: "pw"}.bind(
			binding{iam: srv.URL + "/", projectID: "p1", http: noRedirects(srv.Client()), now: time.Now})
		require.NoError(t, err)
		tok := creds.(*iamToken)
		assert.Equal(t, iamTimeout, tok.timeout)
		tok.timeout = bound

		start := time.Now()
		_, err = tok.token.get(ctx, tok.fetch)
		assert.Less(t, time.Since(start), 2*time.Second)
		assertFetchTimeout(t, err, "get IAM token", bound)
		assert.Equal(t, int32(1), iam.requests.Load())
	})

	t.Run("ECS metadata", func(t *testing.T) {
		t.Parallel()
		meta := &trickle{status: http.StatusOK}
		srv := httptest.NewServer(meta)
		t.Cleanup(srv.Close)
		creds, err := ECSMetadata{Endpoint: srv.URL}.bind(binding{now: time.Now})
		require.NoError(t, err)
		m := creds.(*metadataKeys)
		m.timeout = bound

		start := time.Now()
		_, err = m.keys.get(ctx, m.fetch)
		assert.Less(t, time.Since(start), 2*time.Second)
		assertFetchTimeout(t, err, "get ECS metadata credentials", bound)
		assert.Equal(t, int32(2), meta.requests.Load(), "the session token, then the keys")
	})

	t.Run("project lookup", func(t *testing.T) {
		t.Parallel()
		iam := &trickle{status: http.StatusOK}
		srv := httptest.NewServer(iam)
		t.Cleanup(srv.Close)
		c, err := NewClient(WithEndpoint("https://cbr.example.com"), WithRegion("ap-southeast-1"), WithIAMEndpoint(srv.URL),
			WithCredentials(AKSK{AccessKey: "AK", SecretKey: "SK"}), WithRetry(RetryPolicy{MaxAttempts: 1, AttemptTimeout: bound}))
		require.NoError(t, err)
		require.NotNil(t, c.projects)

		start := time.Now()
		_, err = c.projects.get(ctx)
		assert.Less(t, time.Since(start), 2*time.Second)
		assert.ErrorIs(t, err, ErrAttemptTimeout)
		assert.NotErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "cbr: find project ID: ")
		assert.Equal(t, int32(1), iam.requests.Load())
	})
}

func TestCredentialFetchTimeoutIsNotTheCallersContext(t *testing.T) {
	t.Parallel()
	meta := &trickle{status: http.StatusOK}
	srv := httptest.NewServer(meta)
	t.Cleanup(srv.Close)
	creds, err := ECSMetadata{Endpoint: srv.URL}.bind(binding{now: time.Now})
	require.NoError(t, err)
	m := creds.(*metadataKeys)
	m.timeout = time.Minute

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = m.keys.get(ctx, m.fetch)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	var timedOut *timeoutError
	assert.False(t, errors.As(err, &timedOut), "the caller's deadline, not the fetch's bound: %v", err)
}

func TestCappedBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body  string
		limit int64
		ok    bool
	}{
		{"", 0, true},
		{"a", 0, false},
		{"abc", 3, true},
		{"abcd", 3, false},
		{strings.Repeat("x", 100_000), 65_536, false},
		{strings.Repeat("x", 65_536), 65_536, true},
	} {
		data, err := io.ReadAll(&cappedBody{ReadCloser: io.NopCloser(strings.NewReader(tc.body)), limit: tc.limit})
		if tc.ok {
			assert.NoError(t, err, "%d bytes, cap %d", len(tc.body), tc.limit)
			assert.Equal(t, tc.body, string(data))
			continue
		}
		assert.EqualError(t, err, "body is over "+strconv.FormatInt(tc.limit, 10)+" bytes", "%d bytes, cap %d", len(tc.body), tc.limit)
		assert.LessOrEqual(t, int64(len(data)), tc.limit)
	}
}
