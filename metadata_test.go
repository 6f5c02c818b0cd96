package cbr_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
)

func TestECSMetadataKeysAreFetchedOnceAndRenewed(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	srv.SetTokenLifetime(20 * time.Minute)
	clock := newAuthClock()
	c := authClient(t, srv, cbr.WithCredentials(srv.ECSMetadata()), cbr.WithClock(clock.Now))
	ctx := context.Background()

	for i := range 3 {
		_, err := c.RegisterAgent(ctx, authAgent(fmt.Sprintf("a%d", i)))
		require.NoError(t, err, "signed with temporary keys and their security token")
	}
	assert.Equal(t, 1, srv.MetadataRequests())

	clock.Advance(9 * time.Minute) // 11 minutes left: half the lifetime has not passed
	_, err := c.ShowAgent(ctx, "a0")
	require.NoError(t, err)
	assert.Equal(t, 1, srv.MetadataRequests())

	// Signing with a clock 11 minutes ahead is still within the gateway's 15.
	clock.Advance(2 * time.Minute) // 9 minutes left
	_, err = c.ShowAgent(ctx, "a0")
	require.NoError(t, err)
	assert.Equal(t, 2, srv.MetadataRequests(), "renewed before expiry")
	assert.Equal(t, 5, srv.Requests())
}

func TestECSMetadataRevokedKeysAreRenewedAfter401(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	clock := newAuthClock()
	c := authClient(t, srv, cbr.WithCredentials(srv.ECSMetadata()), cbr.WithClock(clock.Now))
	ctx := context.Background()

	_, err := c.RegisterAgent(ctx, authAgent("a1"))
	require.NoError(t, err)
	clock.Advance(2 * time.Minute) // old enough to be renewed when refused
	srv.RevokeTokens()
	_, err = c.ShowAgent(ctx, "a1")
	require.NoError(t, err)
	assert.Equal(t, 2, srv.MetadataRequests())
	assert.Equal(t, 3, srv.Requests(), "register; show refused with 401; show with new keys")
}

// metadataService is a fake metadata service that records what it receives.
type metadataService struct {
	tokenStatus int    // answer to the session-token request
	keysStatus  int    // answer to the keys request, 0 for 200 with keys
	keysBody    string // body of a failed keys request
	mu          sync.Mutex
	log         []string
}

func (m *metadataService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	m.log = append(m.log, fmt.Sprintf("%s %s ttl=%q token=%q", r.Method, r.URL.Path,
		r.Header.Get("X-Metadata-Token-Ttl-Seconds"), r.Header.Get("X-Metadata-Token")))
	m.mu.Unlock()
	switch r.URL.Path {
	case "/meta-data/latest/api/token":
		if m.tokenStatus != http.StatusOK {
			w.WriteHeader(m.tokenStatus)
			return
		}
		io.WriteString(w, "session-1\n")
	case "/openstack/latest/securitykey":
		if m.keysStatus != 0 {
			w.WriteHeader(m.keysStatus)
			io.WriteString(w, m.keysBody)
			return
		}
		fmt.Fprintf(w, `{"credential":{"access":"TMPAK","secret":"tmpsecret","securitytoken":"tmp-sts","expires_at":%q}}`,
			time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z"))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestECSMetadataAtTheWire(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		tokenStatus int
		want        []string
	}{
		"with a session token": {http.StatusOK, []string{
			`PUT /meta-data/latest/api/token ttl="21600" token=""`,
			`GET /openstack/latest/securitykey ttl="" token="session-1"`,
		}},
		"older service without session tokens": {http.StatusNotFound, []string{
			`PUT /meta-data/latest/api/token ttl="21600" token=""`,
			`GET /openstack/latest/securitykey ttl="" token=""`,
		}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			meta := &metadataService{tokenStatus: tc.tokenStatus}
			metaSrv := httptest.NewServer(meta)
			t.Cleanup(metaSrv.Close)
			rec := &signatureRecorder{ak: "TMPAK", sk: "tmpsecret"}
			cbrSrv := httptest.NewServer(rec)
			t.Cleanup(cbrSrv.Close)
			c, err := cbr.NewClient(cbr.WithEndpoint(cbrSrv.URL), cbr.WithProjectID("p1"),
				cbr.WithCredentials(cbr.ECSMetadata{Endpoint: metaSrv.URL}), cbr.WithRetry(noRetry))
			require.NoError(t, err)

			require.NoError(t, c.Call(context.Background(), http.MethodPost, "agent/check", nil, map[string]any{"agent_status": []any{}}, nil))
			assert.Equal(t, tc.want, meta.log)
			require.Len(t, rec.seen, 1)
			assert.NoError(t, rec.errs[0])
			assert.Equal(t, "tmp-sts", rec.seen[0].Header.Get("X-Security-Token"))
			assert.Equal(t, "content-type;host;x-project-id;x-sdk-date;x-security-token", signedHeadersOf(rec.seen[0].Header.Get("Authorization")))
		})
	}
}

func TestECSMetadataWithoutAgency(t *testing.T) {
	t.Parallel()
	meta := &metadataService{tokenStatus: http.StatusOK, keysStatus: http.StatusUnauthorized,
		keysBody: "Please configure Cloud Service Agency first"}
	metaSrv := httptest.NewServer(meta)
	t.Cleanup(metaSrv.Close)
	var cbrRequests int
	cbrSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { cbrRequests++ }))
	t.Cleanup(cbrSrv.Close)
	c, err := cbr.NewClient(cbr.WithEndpoint(cbrSrv.URL), cbr.WithProjectID("p1"),
		cbr.WithCredentials(cbr.ECSMetadata{Endpoint: metaSrv.URL}),
		cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: time.Millisecond}))
	require.NoError(t, err)

	_, err = c.ShowAgent(context.Background(), "a1")
	apiErr, ok := errorsAsAPI(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, "get ECS metadata credentials", apiErr.Op)
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	assert.Equal(t, "Please configure Cloud Service Agency first", apiErr.Message)
	assert.Len(t, meta.log, 2, "not retried")

	_, err = c.ShowAgent(context.Background(), "a1")
	assert.ErrorContains(t, err, "Please configure Cloud Service Agency first")
	assert.Len(t, meta.log, 2, "the refusal is remembered")
	assert.Zero(t, cbrRequests)
}
