package cbrtest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
)

// TestDotAgentIDs checks the gateway's answer to "." and ".." segments: the
// agents are stored at registration (the ID is in the body), and any
// request to them afterwards is redirected to the normalised path, before
// credentials are looked at.
func TestDotAgentIDs(t *testing.T) {
	srv := newRawServer(t)
	for _, id := range []string{".", ".."} {
		status, body := srv.call("POST", "agents", `{"agent":{"agent_id":"`+id+`","host_name":"h","host_ip":"10.0.0.1","host_os":"linux"}}`)
		require.Equal(t, http.StatusOK, status, body)
		_, ok := srv.Agent(id)
		assert.True(t, ok, "%q is stored", id)
	}
	base := "/v3/" + srv.ProjectID
	tests := []struct {
		method, path, token, location string
	}{
		{"GET", "/agents/.", srv.Token, base + "/agents"},
		{"PUT", "/agents/.", srv.Token, base + "/agents"},
		{"DELETE", "/agents/..", srv.Token, base},
		{"DELETE", "/agents/..", "", base},
		{"POST", "/agents/./add-path", "wrong", base + "/agents/add-path"},
		{"GET", "/agents/%2E?limit=1", srv.Token, base + "/agents?limit=1"},
		{"GET", "/agents/%2e%2E", srv.Token, base},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			r := srv.send(tt.method, base+tt.path, tt.token, uninstallBody)
			assert.Equal(t, http.StatusMovedPermanently, r.status, "%s", r.body)
			assert.Equal(t, tt.location, r.header.Get("Location"))
		})
	}
	for _, id := range []string{".", ".."} {
		a, ok := srv.Agent(id)
		assert.True(t, ok, "%q was not deleted", id)
		assert.Equal(t, cbr.AgentStatusNormal, a.Status, "%q was not updated", id)
	}
	status, body := srv.call("GET", "agents", "")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, `"agent_id":"."`, "they are listed")
	assert.Contains(t, body, `"agent_id":".."`)
}

func TestBodyLimitIs12MiB(t *testing.T) {
	srv := newRawServer(t)
	register := `{"agent":{"agent_id":"big","host_name":"h","host_ip":"10.0.0.1","host_os":"linux"}}`
	atLimit := register + strings.Repeat(" ", 12<<20-len(register))

	r := srv.send("POST", agentsPath(srv), srv.Token, atLimit)
	assert.Equal(t, http.StatusOK, r.status, "12 MiB is taken")

	r = srv.send("POST", agentsPath(srv), srv.Token, atLimit+" ")
	assertError(t, r, http.StatusRequestEntityTooLarge, "APIGW.0201", gatewayErrorKeys...)

	// Signed, through the SDK: 2 MiB is fine, over 12 MiB is the gateway's 413.
	c, err := srv.Client(cbr.WithCredentials(srv.AKSK()))
	require.NoError(t, err)
	in := cbr.AgentRegister{AgentID: "signed", HostName: "h", HostIP: "10.0.0.1", HostOS: "linux", HostNickname: strings.Repeat("n", 2<<20)}
	a, err := c.RegisterAgent(context.Background(), in)
	require.NoError(t, err)
	assert.Len(t, a.HostNickname, 2<<20)

	in.AgentID, in.HostNickname = "too-big", strings.Repeat("n", 12<<20)
	_, err = c.RegisterAgent(context.Background(), in)
	var apiErr *cbr.APIError
	require.True(t, errors.As(err, &apiErr), "%v", err)
	assert.Equal(t, http.StatusRequestEntityTooLarge, apiErr.StatusCode)
	assert.Equal(t, "APIGW.0201", apiErr.Code)
	_, ok := srv.Agent("too-big")
	assert.False(t, ok)
}

func TestRawSemicolonInQueryIsRefused(t *testing.T) {
	srv := newRawServer(t)
	srv.register("a1", "h")

	r := srv.send("GET", agentsPath(srv)+"?limit=1;offset=0", srv.Token, "")
	m := assertError(t, r, http.StatusBadRequest, "APIGW.0201", gatewayErrorKeys...)
	assert.Contains(t, m["error_msg"], ";")
	r = srv.send("GET", agentsPath(srv)+"?status=a%3Bb", srv.Token, "")
	assert.Equal(t, http.StatusOK, r.status, "an escaped ; is a character of a value")

	log := srv.RequestLog()
	assert.Equal(t, "limit=1;offset=0", log[len(log)-2].Query, "logged as sent")
	assert.Equal(t, http.StatusBadRequest, log[len(log)-2].Status)
}
