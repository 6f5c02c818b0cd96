package cbr_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

func TestClientCloseLeavesNoGoroutine(t *testing.T) {
	// Not parallel: it counts goroutines. The server stays up, so only the
	// client can close its idle connection.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"agent":{"agent_id":"a1"}}`)
	}))
	defer srv.Close()
	baseline := goleak.IgnoreCurrent()
	c, err := cbr.NewClient(cbr.WithEndpoint(srv.URL), cbr.WithProjectID("p1"), cbr.WithCredentials(cbr.Token("t")))
	require.NoError(t, err)
	for range 3 {
		_, err = c.ShowAgent(context.Background(), "a1")
		require.NoError(t, err)
	}
	c.Close()
	goleak.VerifyNone(t, baseline)
}

func TestUnicodeControlCharactersAreRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	valid := cbr.AgentRegister{AgentID: "a1", HostName: "ecs-00002", HostIP: "10.10.0.2", HostOS: "linux"}
	for _, r := range []string{"\u0085", "\u2028", "\u2029", "\u0000", "\u007f", "\u009f"} {
		mt := httpmock.NewMockTransport()
		c := fuzzClient(t, mt)
		ctx := context.Background()
		for field, in := range map[string]cbr.AgentRegister{
			"agent_id":      {AgentID: "a" + r + "1", HostName: valid.HostName, HostIP: valid.HostIP, HostOS: valid.HostOS},
			"host_name":     {AgentID: valid.AgentID, HostName: "ecs" + r, HostIP: valid.HostIP, HostOS: valid.HostOS},
			"host_os":       {AgentID: valid.AgentID, HostName: valid.HostName, HostIP: valid.HostIP, HostOS: "linux" + r},
			"host_nickname": {AgentID: valid.AgentID, HostName: valid.HostName, HostIP: valid.HostIP, HostOS: valid.HostOS, HostNickname: r},
		} {
			_, err := c.RegisterAgent(ctx, in)
			var vErr *cbr.ValidationError
			if assert.ErrorAs(t, err, &vErr, "%q in %s", r, field) {
				assert.Equal(t, field, vErr.Field)
				assert.False(t, breaksLine(err.Error()), "%q", err)
			}
		}
		for name, call := range map[string]func() error{
			"ShowAgent": func() error { _, err := c.ShowAgent(ctx, "a"+r); return err },
			"UpdateAgent": func() error {
				_, err := c.UpdateAgent(ctx, "a"+r, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
				return err
			},
			"UnregisterAgent": func() error { return c.UnregisterAgent(ctx, "a"+r) },
			"ListAgents": func() error {
				_, err := c.ListAgents(ctx, cbr.ListAgentsOptions{AgentIDs: []string{"a" + r}})
				return err
			},
		} {
			err := call()
			assert.ErrorIs(t, err, cbr.ErrInvalidRequest, "%q in the agent ID of %s", r, name)
			if err != nil {
				assert.False(t, breaksLine(err.Error()), "%q", err)
			}
		}
		assert.Zero(t, mt.GetTotalCallCount(), "nothing sent with %q", r)
	}
}

func TestClientCloseClosesTheMetadataConnections(t *testing.T) {
	// Not parallel: it counts goroutines. The fake stays up, so only the
	// client can close its idle connections, the metadata service's included.
	srv := cbrtest.NewServer()
	defer srv.Close()
	baseline := goleak.IgnoreCurrent()
	c, err := srv.Client(cbr.WithCredentials(srv.ECSMetadata()))
	require.NoError(t, err)
	_, err = c.ListAgents(context.Background(), cbr.ListAgentsOptions{})
	require.NoError(t, err)
	assert.Equal(t, 1, srv.MetadataRequests(), "the keys came from the metadata service")
	c.Close()
	goleak.VerifyNone(t, baseline)
}

func TestTLSAlertIsNotRetried(t *testing.T) {
	t.Parallel()
	var handshakes atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("no request may arrive")
	}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		handshakes.Add(1)
		return nil, nil
	}}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c, err := cbr.NewClient(cbr.WithEndpoint(srv.URL), cbr.WithProjectID("p1"), cbr.WithCredentials(cbr.Token("t")),
		cbr.WithTLSConfig(&tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12}),
		cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: time.Millisecond}))
	require.NoError(t, err)
	defer c.Close()

	_, err = c.RegisterAgent(context.Background(), cbr.AgentRegister{AgentID: "a1", HostName: "h", HostIP: "10.0.0.1", HostOS: "linux"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "protocol version not supported")
	assert.NotContains(t, err.Error(), "is not registered", "nothing was sent: nothing to check")
	assert.Equal(t, int32(1), handshakes.Load(), "a handshake refused with an alert is not tried again")
}
