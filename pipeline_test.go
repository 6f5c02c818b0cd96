package cbr_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cbrsdk/cbr"
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
