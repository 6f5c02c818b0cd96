package cbrtest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

const uninstallBody = `{"agent":{"status":"uninstall"}}`

func TestFaultAimedAtMethodAndPath(t *testing.T) {
	srv := newRawServer(t)
	srv.register("a1", "h")
	srv.register("a2", "h")
	// The second PUT of agents/a2 fails, whatever comes in between.
	srv.InjectFaults(cbrtest.Fault{Method: "PUT", Path: "agents/a2", Skip: 1, Status: 503})

	var got []int
	for _, req := range []struct{ method, path, body string }{
		{"GET", "agents/a2", ""},
		{"PUT", "agents/a1", uninstallBody},
		{"POST", "agents/a2/add-path", `{"add_path":["/data"]}`},
		{"PUT", "agents/a2", uninstallBody}, // skipped: takes effect
		{"GET", "agents", ""},
		{"PUT", "agents/a2", uninstallBody}, // the fault
		{"PUT", "agents/a2", uninstallBody}, // the fault is used up: already uninstalled
	} {
		status, _ := srv.call(req.method, req.path, req.body)
		got = append(got, status)
	}
	assert.Equal(t, []int{200, 200, 200, 200, 200, 503, 400}, got)
}

func TestFaultPathPattern(t *testing.T) {
	srv := newRawServer(t)
	srv.register("a1", "h")
	srv.InjectFaults(cbrtest.Fault{Path: "agents/*", Status: 502}, cbrtest.Fault{Path: "agents/*/add-path", Status: 504})

	status, _ := srv.call("GET", "agents", "")
	assert.Equal(t, http.StatusOK, status, "the list is not agents/*")
	status, _ = srv.call("POST", "agents/a1/add-path", `{"add_path":["/data"]}`)
	assert.Equal(t, http.StatusGatewayTimeout, status, "agents/* is one segment")
	status, _ = srv.call("DELETE", "agents/a1", "")
	assert.Equal(t, http.StatusBadGateway, status)
	status, _ = srv.call("DELETE", "agents/a1", "")
	assert.Equal(t, http.StatusOK, status, "both faults used up")
}

// TestFaultMethodIsCaseInsensitive checks that "put" aims at PUT.
func TestFaultMethodIsCaseInsensitive(t *testing.T) {
	srv := newRawServer(t)
	srv.register("a1", "h")
	srv.InjectFaults(cbrtest.Fault{Method: "put", Status: 500})
	status, _ := srv.call("PUT", "agents/a1", uninstallBody)
	assert.Equal(t, http.StatusInternalServerError, status)
}

func TestZeroFaultPassesThrough(t *testing.T) {
	srv := newRawServer(t)
	srv.register("a1", "h")
	srv.InjectFaults(cbrtest.Fault{}, cbrtest.Fault{Status: 503})

	status, body := srv.call("GET", "agents/a1", "")
	assert.Equal(t, http.StatusOK, status, "a zero fault answers as without it")
	assert.Contains(t, body, `"agent_id":"a1"`)
	status, _ = srv.call("GET", "agents/a1", "")
	assert.Equal(t, http.StatusServiceUnavailable, status, "the second request fails")
	status, _ = srv.call("GET", "agents/a1", "")
	assert.Equal(t, http.StatusOK, status)

	// Aimed, but with nothing to do, it lets one matching request through too.
	srv.InjectFaults(cbrtest.Fault{Method: "PUT"}, cbrtest.Fault{Method: "PUT", Status: 500})
	status, _ = srv.call("PUT", "agents/a1", uninstallBody)
	assert.Equal(t, http.StatusOK, status)
	a, _ := srv.Agent("a1")
	assert.Equal(t, cbr.AgentStatusUninstall, a.Status, "and it took effect")
}

func TestRequestLog(t *testing.T) {
	srv := newRawServer(t)
	ctx := context.Background()
	srv.InjectFaults(cbrtest.Fault{Method: "PUT", Drop: true}, cbrtest.Fault{Method: "GET", Status: 502})

	_, err := srv.c.RegisterAgent(ctx, cbr.AgentRegister{AgentID: "a 1", HostName: "h", HostIP: "10.0.0.1", HostOS: "linux"})
	require.NoError(t, err)
	_, err = srv.c.UpdateAgent(ctx, "a 1", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err, "retried after the drop")
	_, err = srv.c.ListAgents(ctx, cbr.ListAgentsOptions{Status: cbr.AgentStatusUninstall, Limit: 10})
	require.NoError(t, err, "retried after the 502")
	err = srv.c.UnregisterAgent(ctx, "missing")
	require.ErrorIs(t, err, cbr.ErrNotFound)
	srv.send("GET", "/v3/other-project/agents", srv.Token, "")

	log := srv.RequestLog()
	var got []string
	for _, r := range log {
		got = append(got, fmt.Sprintf("%s %s %s %d", r.Method, r.Path, r.Query, r.Status))
		assert.Regexp(t, `^[0-9a-f]{32}$`, r.RequestID)
	}
	assert.Equal(t, []string{
		"POST agents  200",
		"PUT agents/a%201  0",
		"PUT agents/a%201  200",
		"GET agents limit=10&offset=0&status=uninstall 502",
		"GET agents limit=10&offset=0&status=uninstall 200",
		"DELETE agents/missing  404",
		"GET /v3/other-project/agents  403",
	}, got)
	assert.Equal(t, srv.Requests(), len(log))

	log[0].Method = "changed"
	assert.Equal(t, "POST", srv.RequestLog()[0].Method, "a copy")
}

func TestRequestLogHoldsNoCredential(t *testing.T) {
	srv := newRawServer(t)
	for _, creds := range []cbr.Credentials{srv.AKSK(), srv.IAMPassword(), srv.ECSMetadata(), cbr.Token(srv.Token)} {
		c, err := srv.Client(cbr.WithCredentials(creds))
		require.NoError(t, err)
		_, err = c.ListAgents(context.Background(), cbr.ListAgentsOptions{})
		require.NoError(t, err)
	}
	q := url.Values{
		"X-Auth-Token": {"tok-xyz-1"}, "signature": {"sig-xyz-2"}, "access_key": {"key-xyz-3"}, "limit": {"5"},
		"innocent": {srv.SecretKey}, "also": {srv.Password},
	}
	r := srv.send("GET", "/v3/"+srv.ProjectID+"/agents?"+q.Encode()+"&"+url.QueryEscape(srv.Token)+";x="+srv.AccessKey, srv.Token, "")
	assert.Equal(t, http.StatusBadRequest, r.status, "a raw ; is refused")
	srv.send("GET", "/v3/"+srv.ProjectID+"/agents/"+srv.Token, srv.Token, "")

	log := srv.RequestLog()
	require.Len(t, log, 6)
	assert.Equal(t, "X-Auth-Token=REDACTED&access_key=REDACTED&also=REDACTED&innocent=REDACTED&limit=5&signature=REDACTED&REDACTED;x=REDACTED",
		log[4].Query)
	assert.Equal(t, "agents/REDACTED", log[5].Path)
	all := fmt.Sprintf("%+v", log)
	for _, secret := range []string{srv.Token, srv.AccessKey, srv.SecretKey, srv.Password, "xyz"} {
		assert.NotContains(t, all, secret)
	}
	assert.NotContains(t, strings.ToLower(all), "sdk-hmac-sha256")
}
