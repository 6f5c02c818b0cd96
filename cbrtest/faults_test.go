package cbrtest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

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

func TestFaultStatus(t *testing.T) {
	tests := []struct {
		fault      cbrtest.Fault
		code       string
		retryAfter string
	}{
		{cbrtest.Fault{Status: 503}, "APIGW.0613", ""},
		{cbrtest.Fault{Status: 502}, "APIGW.0610", ""},
		{cbrtest.Fault{Status: 504}, "APIGW.0201", ""},
		{cbrtest.Fault{Status: 500}, "APIGW.0601", ""},
		{cbrtest.Fault{Status: 400}, "APIGW.0201", ""},
		{cbrtest.Fault{Status: 401}, "APIGW.0301", ""},
		{cbrtest.Fault{Status: 403}, "APIGW.0302", ""},
		{cbrtest.Fault{Status: 404}, "APIGW.0101", ""},
		{cbrtest.Fault{Status: 429, RetryAfter: "2"}, "APIGW.0308", "2"},
		{cbrtest.Fault{Status: 401, Code: "APIGW.0307", Message: "The token must be updated"}, "APIGW.0307", ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.fault.Status, tt.code), func(t *testing.T) {
			srv := newRawServer(t)
			srv.InjectFaults(tt.fault)

			r := srv.send("POST", agentsPath(srv), srv.Token, documentedRegister)
			m := assertError(t, r, tt.fault.Status, tt.code, gatewayErrorKeys...)
			if tt.fault.Message != "" {
				assert.Equal(t, tt.fault.Message, m["error_msg"])
			}
			assert.Equal(t, tt.retryAfter, r.header.Get("Retry-After"))
			assert.Empty(t, srv.Agents(), "the faulted request had no effect")

			r = srv.send("POST", agentsPath(srv), srv.Token, documentedRegister)
			assert.Equal(t, http.StatusOK, r.status, "one fault, one request")
			assert.Equal(t, 2, srv.Requests())
		})
	}
}

func TestFaultsApplyInOrder(t *testing.T) {
	srv := newRawServer(t)
	srv.InjectFaults(cbrtest.Fault{Status: 503}, cbrtest.Fault{Status: 429})
	srv.InjectFaults(cbrtest.Fault{Status: 502})

	var got []int
	for range 4 {
		got = append(got, srv.send("GET", agentsPath(srv)+"/x", srv.Token, "").status)
	}
	assert.Equal(t, []int{503, 429, 502, 404}, got)
}

func TestFaultDrop(t *testing.T) {
	srv := newRawServer(t)
	srv.InjectFaults(cbrtest.Fault{Drop: true})

	req, err := http.NewRequest("POST", srv.URL+agentsPath(srv), strings.NewReader(documentedRegister))
	require.NoError(t, err)
	req.Header.Set("X-Auth-Token", srv.Token)
	resp, err := srv.hc.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "the connection closes without an answer")
	assert.Empty(t, srv.Agents())
}

// TestFaultDropOnGet checks that a dropped GET reaches the client as a
// failure: net/http resends an idempotent request whose reused keep-alive
// connection closes, which would consume the fault and hide it.
func TestFaultDropOnGet(t *testing.T) {
	srv := newRawServer(t)
	c, err := srv.Client(cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 1}))
	require.NoError(t, err)
	_, err = c.RegisterAgent(context.Background(), cbr.AgentRegister{AgentID: "a1", HostName: "h", HostIP: "10.0.0.1", HostOS: "linux"})
	require.NoError(t, err, "a first call, whose connection a keep-alive server would keep")
	before := srv.Requests()

	srv.InjectFaults(cbrtest.Fault{Drop: true})
	_, err = c.ShowAgent(context.Background(), "a1")
	require.Error(t, err, "the connection closes without an answer")
	assert.Equal(t, 1, srv.Requests()-before, "one request, not resent by net/http")
}

func TestFaultAfterHandling(t *testing.T) {
	srv := newRawServer(t)
	srv.InjectFaults(cbrtest.Fault{Status: 500, AfterHandling: true})

	r := srv.send("POST", agentsPath(srv), srv.Token, documentedRegister)
	assertError(t, r, http.StatusInternalServerError, "APIGW.0601", gatewayErrorKeys...)
	_, ok := srv.Agent("489654f2-363b-4ebf-966a-bdf079d97114")
	assert.True(t, ok, "the registration took effect before the failure")

	srv.InjectFaults(cbrtest.Fault{Drop: true, AfterHandling: true})
	req, err := http.NewRequest("PUT", srv.URL+agentsPath(srv)+"/489654f2-363b-4ebf-966a-bdf079d97114",
		strings.NewReader(`{"agent":{"status":"uninstall"}}`))
	require.NoError(t, err)
	req.Header.Set("X-Auth-Token", srv.Token)
	resp, err := srv.hc.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err)
	a, _ := srv.Agent("489654f2-363b-4ebf-966a-bdf079d97114")
	assert.Equal(t, cbr.AgentStatusUninstall, a.Status, "the update took effect before the drop")
}

func TestFaultDelay(t *testing.T) {
	srv := newRawServer(t)
	srv.InjectFaults(cbrtest.Fault{Delay: 100 * time.Millisecond})

	start := time.Now()
	r := srv.send("POST", agentsPath(srv), srv.Token, documentedRegister)
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "the answer was held back")
	assert.Equal(t, http.StatusOK, r.status, "then answered normally")

	// A client that gives up does not keep the server waiting.
	srv.InjectFaults(cbrtest.Fault{Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+agentsPath(srv)+"/x", nil)
	require.NoError(t, err)
	_, err = srv.hc.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	start = time.Now()
	srv.Close()
	assert.Less(t, time.Since(start), 2*time.Second, "Close does not wait out the delay")
}

// TestCloseEndsDelays checks that Close does not wait out the Delay of a
// request whose client waits without a deadline: the request fails.
func TestCloseEndsDelays(t *testing.T) {
	srv := cbrtest.NewServer() // closed by the test, which must not wait for it
	srv.InjectFaults(cbrtest.Fault{Delay: time.Hour})
	hc := &http.Client{Transport: &http.Transport{}}
	failed := make(chan error, 1)
	go func() {
		req, err := http.NewRequest("GET", srv.URL+"/v3/"+srv.ProjectID+"/agents/x", nil)
		if err == nil {
			req.Header.Set("X-Auth-Token", srv.Token)
			var resp *http.Response
			if resp, err = hc.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		failed <- err
	}()
	require.Eventually(t, func() bool { return srv.Requests() == 1 }, 5*time.Second, time.Millisecond)

	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the delay of a request whose client is still waiting")
	}
	assert.Error(t, <-failed, "the request gets no answer")
}
