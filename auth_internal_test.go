package cbr

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestAuthTransportRefusesOtherHosts(t *testing.T) {
	t.Parallel()
	var sent int
	tr := &attemptTransport{
		creds: Token("secret-token"),
		host:  "cbr.example.com",
		base: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent++
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
		})},
	}
	ctx, _ := withExchange(context.Background(), DefaultRetryPolicy())
	req := httptest.NewRequest(http.MethodGet, "https://evil.example.com/v3/p1/agents", nil).WithContext(ctx)
	resp, err := tr.RoundTrip(req)
	assert.Nil(t, resp)
	var redir *redirectError
	require.ErrorAs(t, err, &redir)
	assert.Equal(t, "cbr: refusing to send credentials to another host evil.example.com", err.Error())
	assert.Empty(t, req.Header.Get("X-Auth-Token"))
	assert.Zero(t, sent)

	resp, err = tr.RoundTrip(httptest.NewRequest(http.MethodGet, "https://cbr.example.com/v3/p1/agents", nil).WithContext(ctx))
	require.NoError(t, err)
	assert.Equal(t, "secret-token", resp.Request.Header.Get("X-Auth-Token"))
	assert.Equal(t, 1, sent)
}

// benchmarkAuthenticate measures one attempt's authentication of a
// RegisterAgent request.
func benchmarkAuthenticate(b *testing.B, creds Credentials) {
	body := []byte(`{"agent":{"agent_id":"489654f2-363b-4ebf-966a-bdf079d97114","host_name":"ecs-00002","host_ip":"10.10.0.2","host_os":"linux","agent_version":"1.0.0","agent_type":"native"}}`)
	req := httptest.NewRequest(http.MethodPost, "https://cbr.ap-southeast-1.myhuaweicloud.com/v3/f841e01fd2b14e7fa41b6ae7aa6b0594/agents", nil)
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	req.Header.Set("X-Project-Id", "f841e01fd2b14e7fa41b6ae7aa6b0594")
	b.ReportAllocs()
	for range b.N {
		r := req.Clone(req.Context())
		if err := creds.Authenticate(r, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticateToken(b *testing.B) { benchmarkAuthenticate(b, Token("MIItoken")) }

func BenchmarkAuthenticateAKSK(b *testing.B) {
	benchmarkAuthenticate(b, AKSK{AccessKey: "QTWAOYTTINDUT2QVKYUC", SecretKey: "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"})
}

func TestCallersShareAMetadataFetchThatTimesOut(t *testing.T) {
	t.Parallel()
	var requests atomic.Int32
	arrived, release := make(chan struct{}), make(chan struct{})
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			close(arrived)
		}
		select { // hangs until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(meta.Close)
	t.Cleanup(func() { close(release) })
	creds, err := ECSMetadata{Endpoint: meta.URL}.bind(binding{now: time.Now})
	require.NoError(t, err)
	m := creds.(*metadataKeys)
	m.timeout = 2 * time.Second // long enough for the others to join the fetch

	errs := make(chan error, 3)
	authenticate := func(ctx context.Context) {
		req := httptest.NewRequest(http.MethodGet, "https://cbr.example.com/", nil).WithContext(ctx)
		errs <- m.Authenticate(req, nil)
	}
	go authenticate(context.Background())
	waitClosed(t, arrived, "the first caller's fetch")
	// The first caller's fetch is under way: the others wait for it.
	for range 2 {
		waiter := &doneWatcher{Context: context.Background(), asked: make(chan struct{})}
		go authenticate(waiter)
		waitClosed(t, waiter.asked, "a caller waiting for the fetch")
	}
	for range 3 {
		select {
		case err := <-errs:
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		case <-time.After(10 * time.Second):
			t.Fatal("a caller did not return")
		}
	}
	assert.Equal(t, int32(1), requests.Load(), "a fetch that timed out on its own is not run again for those waiting")
}

// waitClosed waits for ch to be closed, failing the test after 10 seconds.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// doneWatcher is a context that reports when its Done channel is first asked
// for, as a caller waiting for another's fetch does.
type doneWatcher struct {
	context.Context
	asked chan struct{}
	once  sync.Once
}

func (c *doneWatcher) Done() <-chan struct{} {
	c.once.Do(func() { close(c.asked) })
	return c.Context.Done()
}

func TestCachedWaiterFetchesWhenTheFetchingCallerGivesUp(t *testing.T) {
	t.Parallel()
	c := &cached[string]{now: time.Now}
	var calls atomic.Int32
	fetching := make(chan struct{})
	fetch := func(ctx context.Context) (string, time.Time, time.Time, error) {
		if calls.Add(1) == 1 {
			close(fetching)
			<-ctx.Done()
			return "", time.Time{}, time.Time{}, ctx.Err()
		}
		return "v2", time.Time{}, time.Time{}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := c.get(ctx, fetch)
		leaderErr <- err
	}()
	<-fetching
	waiter := &doneWatcher{Context: context.Background(), asked: make(chan struct{})}
	got := make(chan string, 1)
	go func() {
		v, err := c.get(waiter, fetch)
		assert.NoError(t, err)
		got <- v
	}()
	<-waiter.asked // it waits for the first fetch
	cancel()

	assert.ErrorIs(t, <-leaderErr, context.Canceled)
	assert.Equal(t, "v2", <-got, "the waiter fetched for itself")
	assert.Equal(t, int32(2), calls.Load())
}

// renewingCreds send the token "T{n}", n counting the refusals.
type renewingCreds struct{ n atomic.Int32 }

func (c *renewingCreds) Authenticate(req *http.Request, _ []byte) error {
	req.Header.Set("X-Auth-Token", "T"+strconv.Itoa(int(c.n.Load())))
	return nil
}

func (c *renewingCreds) expire(*http.Request) bool {
	c.n.Add(1)
	return true
}

func TestAuthTransportResendAfter401CanReplayItsBody(t *testing.T) {
	t.Parallel()
	body := []byte(`{"agent":{"status":"uninstall"}}`)
	var sent []*http.Request
	var bodies []string
	tr := &attemptTransport{creds: &renewingCreds{}, host: "cbr.example.com", base: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		data, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		sent, bodies = append(sent, r), append(bodies, string(data))
		status := http.StatusOK
		if len(sent) == 1 {
			status = http.StatusUnauthorized
		}
		return &http.Response{StatusCode: status, Body: http.NoBody, Request: r}, nil
	})}}
	ctx, x := withExchange(context.Background(), DefaultRetryPolicy())
	x.call.body, x.timeout = body, time.Minute
	req := httptest.NewRequest(http.MethodPut, "https://cbr.example.com/v3/p1/agents/a1", nil).WithContext(ctx)

	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, sent, 2)
	assert.Equal(t, []string{string(body), string(body)}, bodies)
	assert.Equal(t, "T1", sent[1].Header.Get("X-Auth-Token"))
	assert.Equal(t, 2, x.attempts)
}
