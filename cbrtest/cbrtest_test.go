package cbrtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

const documentedRegister = `{"agent":{"agent_id":"489654f2-363b-4ebf-966a-bdf079d97114","host_name":"ecs-00002",` +
	`"host_ip":"10.10.0.2","host_os":"linux","agent_version":"1.0.0","agent_type":"native"}}`

// wireTimestamp is the form of the API's timestamps in its examples: microseconds, no zone.
var wireTimestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`)

// rawServer is a fake with a plain HTTP client of its own, which follows no
// redirect, to look at the wire itself, and an SDK client to set things up.
type rawServer struct {
	*cbrtest.Server
	t  *testing.T
	hc *http.Client
	c  *cbr.Client
}

// newRawServer starts a fake that is closed when the test ends.
func newRawServer(t *testing.T) *rawServer {
	t.Helper()
	srv := cbrtest.NewServer()
	t.Cleanup(srv.Close)
	c, err := srv.Client()
	require.NoError(t, err)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &rawServer{Server: srv, t: t, hc: hc, c: c}
}

// reply is one raw answer from the fake.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// object decodes the body as a JSON object.
func (r reply) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body %s", r.body)
	return m
}

// agent decodes the body's "agent" object.
func (r reply) agent(t *testing.T) map[string]any {
	t.Helper()
	a, ok := r.object(t)["agent"].(map[string]any)
	require.True(t, ok, "body %s has no agent", r.body)
	return a
}

// send makes one raw request to path; token "" sends no X-Auth-Token. Every
// answer has an X-Request-Id.
func (s *rawServer) send(method, path, token, body string) reply {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	require.NoError(s.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := s.hc.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	assert.Regexp(s.t, `^[0-9a-f]{32}$`, resp.Header.Get("X-Request-Id"))
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

// call sends one request with the server's token to path, relative to
// /v3/{project_id}/, and returns the status and body of the answer.
func (s *rawServer) call(method, path, body string) (int, string) {
	s.t.Helper()
	r := s.send(method, "/v3/"+s.ProjectID+"/"+path, s.Token, body)
	return r.status, string(r.body)
}

// register registers an agent with the SDK client.
func (s *rawServer) register(id, host string) {
	s.t.Helper()
	_, err := s.c.RegisterAgent(context.Background(), cbr.AgentRegister{
		AgentID: id, HostName: host, HostIP: "10.0.0.1", HostOS: "linux", AgentVersion: "1.0.0", AgentType: cbr.AgentTypeNative,
	})
	require.NoError(s.t, err)
}

func agentsPath(srv *rawServer) string { return "/v3/" + srv.ProjectID + "/agents" }

// assertError checks an error answer: its status, its exact body keys, its
// code, and an X-Request-Id header (equal to request_id when the body has one).
func assertError(t *testing.T, r reply, status int, code string, keys ...string) map[string]any {
	t.Helper()
	assert.Equal(t, status, r.status)
	assert.Equal(t, "application/json;charset=UTF-8", r.header.Get("Content-Type"))
	m := r.object(t)
	assert.ElementsMatch(t, keys, slices.Collect(maps.Keys(m)), "body %s", r.body)
	assert.Equal(t, code, m["error_code"])
	assert.NotEmpty(t, m["error_msg"])
	requestID := r.header.Get("X-Request-Id")
	assert.Regexp(t, `^[0-9a-f]{32}$`, requestID)
	if id, ok := m["request_id"]; ok {
		assert.Equal(t, requestID, id)
	}
	return m
}

var (
	cbrErrorKeys     = []string{"error_code", "error_msg"}
	gatewayErrorKeys = []string{"error_code", "error_msg", "request_id"}
	// The keys of the documented register response.
	agentKeys = []string{"created_at", "updated_at", "agent_id", "agent_version", "agent_type", "host_name",
		"host_nickname", "host_ip", "host_os", "status", "last_active_time"}
)

func TestRegisterShowUpdateDocumentedBodies(t *testing.T) {
	srv := newRawServer(t)
	before := time.Now().UTC().Truncate(time.Microsecond)

	r := srv.send("POST", agentsPath(srv), srv.Token, documentedRegister)
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	assert.Equal(t, "application/json;charset=UTF-8", r.header.Get("Content-Type"))
	assert.Regexp(t, `^[0-9a-f]{32}$`, r.header.Get("X-Request-Id"))
	assert.ElementsMatch(t, []string{"agent"}, slices.Collect(maps.Keys(r.object(t))))
	a := r.agent(t)
	assert.ElementsMatch(t, agentKeys, slices.Collect(maps.Keys(a)), "the documented register response's fields")
	assert.Equal(t, "489654f2-363b-4ebf-966a-bdf079d97114", a["agent_id"])
	assert.Equal(t, "ecs-00002", a["host_name"])
	assert.Equal(t, "", a["host_nickname"])
	assert.Equal(t, "10.10.0.2", a["host_ip"])
	assert.Equal(t, "linux", a["host_os"])
	assert.Equal(t, "1.0.0", a["agent_version"])
	assert.Equal(t, "native", a["agent_type"])
	assert.Equal(t, "normal", a["status"])
	for _, k := range []string{"created_at", "updated_at", "last_active_time"} {
		s, _ := a[k].(string)
		require.Regexp(t, wireTimestamp, s, k)
		at, err := time.Parse("2006-01-02T15:04:05.000000", s)
		require.NoError(t, err)
		assert.False(t, at.Before(before), "%s %v is before the call", k, at)
		assert.False(t, at.After(time.Now().UTC()), "%s %v is after the call", k, at)
	}
	created := a["created_at"]

	path := agentsPath(srv) + "/489654f2-363b-4ebf-966a-bdf079d97114"
	r = srv.send("GET", path, srv.Token, "")
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	assert.Equal(t, a, r.agent(t), "show returns what register stored")

	r = srv.send("PUT", path, srv.Token, `{"agent":{"status":"uninstall"}}`)
	require.Equal(t, http.StatusOK, r.status, "body %s", r.body)
	u := r.agent(t)
	assert.ElementsMatch(t, agentKeys, slices.Collect(maps.Keys(u)))
	assert.Equal(t, "uninstall", u["status"])
	assert.Equal(t, created, u["created_at"])
	assert.Equal(t, "ecs-00002", u["host_name"])

	stored, ok := srv.Agent("489654f2-363b-4ebf-966a-bdf079d97114")
	require.True(t, ok)
	assert.Equal(t, cbr.AgentStatusUninstall, stored.Status)
}

func TestReregisterUpdatesFactsAndKeepsCreation(t *testing.T) {
	srv := newRawServer(t)
	first := srv.send("POST", agentsPath(srv), srv.Token, documentedRegister).agent(t)
	srv.send("PUT", agentsPath(srv)+"/489654f2-363b-4ebf-966a-bdf079d97114", srv.Token, `{"agent":{"status":"uninstall"}}`)

	again := strings.Replace(documentedRegister, "10.10.0.2", "10.10.0.3", 1)
	r := srv.send("POST", agentsPath(srv), srv.Token, again)
	require.Equal(t, http.StatusOK, r.status)
	a := r.agent(t)
	assert.Equal(t, "10.10.0.3", a["host_ip"])
	assert.Equal(t, "normal", a["status"], "a reinstall is normal again")
	assert.Equal(t, first["created_at"], a["created_at"])
	assert.Len(t, srv.Agents(), 1)
}

func TestInvalidInputIs7403(t *testing.T) {
	tests := []struct {
		name, method, path, body string
	}{
		{"not JSON", "POST", "", `{"agent":`},
		{"no agent", "POST", "", `{"host":{}}`},
		{"null agent", "POST", "", `{"agent":null}`},
		{"missing agent_id", "POST", "", `{"agent":{"host_name":"h","host_ip":"10.0.0.1","host_os":"linux"}}`},
		{"missing host_name", "POST", "", `{"agent":{"agent_id":"a","host_ip":"10.0.0.1","host_os":"linux"}}`},
		{"missing host_ip", "POST", "", `{"agent":{"agent_id":"a","host_name":"h","host_os":"linux"}}`},
		{"missing host_os", "POST", "", `{"agent":{"agent_id":"a","host_name":"h","host_ip":"10.0.0.1"}}`},
		{"bad agent_type", "POST", "", `{"agent":{"agent_id":"a","host_name":"h","host_ip":"10.0.0.1","host_os":"linux","agent_type":"edge"}}`},
		{"bad agent_version", "POST", "", `{"agent":{"agent_id":"a","host_name":"h","host_ip":"10.0.0.1","host_os":"linux","agent_version":"1.0"}}`},
		{"update to normal", "PUT", "/a", `{"agent":{"status":"normal"}}`},
		{"update without status", "PUT", "/a", `{"agent":{}}`},
		{"update not JSON", "PUT", "/a", `status=uninstall`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRawServer(t)
			srv.send("POST", agentsPath(srv), srv.Token, `{"agent":{"agent_id":"a","host_name":"h","host_ip":"10.0.0.1","host_os":"linux"}}`)

			r := srv.send(tt.method, agentsPath(srv)+tt.path, srv.Token, tt.body)
			m := assertError(t, r, http.StatusBadRequest, "BackupService.7403", cbrErrorKeys...)
			assert.Contains(t, m["error_msg"], "Invalid agent")
			a, _ := srv.Agent("a")
			assert.Equal(t, cbr.AgentStatusNormal, a.Status, "nothing changed")
		})
	}
}

// TestAgentVersionPattern checks the fake against the API's pattern
// ((\d){1,3}\.){2}(\d){1,3}$, anchored at the end only.
func TestAgentVersionPattern(t *testing.T) {
	srv := newRawServer(t)
	for version, ok := range map[string]bool{
		"1.0.0": true, "999.999.999": true, "v1.0.0": true, "1234.0.0": true, "1.2.3.4": true, "release-2.10.3": true,
		"1.0": false, "1.0.1234": false, "1.1234.0": false, "1.0.0-rc1": false, "1.0.0.": false, "1..0": false,
		".1.0": false, "a.b.c": false, "1.0.0 ": false, "1.0.0\n": false, "１.０.０": false,
	} {
		body, err := json.Marshal(map[string]map[string]string{"agent": {
			"agent_id": "a", "host_name": "h", "host_ip": "10.0.0.1", "host_os": "linux", "agent_version": version}})
		require.NoError(t, err)
		r := srv.send("POST", agentsPath(srv), srv.Token, string(body))
		if ok {
			assert.Equal(t, http.StatusOK, r.status, "%q: %s", version, r.body)
		} else {
			assertError(t, r, http.StatusBadRequest, "BackupService.7403", cbrErrorKeys...)
		}
	}
}

func TestUnknownAgentIs7410(t *testing.T) {
	srv := newRawServer(t)
	for _, method := range []string{"GET", "PUT"} {
		r := srv.send(method, agentsPath(srv)+"/no-such-agent", srv.Token, `{"agent":{"status":"uninstall"}}`)
		m := assertError(t, r, http.StatusNotFound, "BackupService.7410", cbrErrorKeys...)
		assert.Equal(t, "Agent no-such-agent not found.", m["error_msg"])
	}
	assert.Empty(t, srv.Agents())
}

func TestMissingOrWrongTokenIsAPIGW0301(t *testing.T) {
	srv := newRawServer(t)
	for _, token := range []string{"", "wrong-token", srv.Token + "x"} {
		for _, call := range []struct{ method, path, body string }{
			{"POST", agentsPath(srv), documentedRegister},
			{"PUT", agentsPath(srv) + "/x", `{"agent":{"status":"uninstall"}}`},
			{"GET", agentsPath(srv) + "/x", ""},
		} {
			r := srv.send(call.method, call.path, token, call.body)
			m := assertError(t, r, http.StatusUnauthorized, "APIGW.0301", gatewayErrorKeys...)
			assert.Contains(t, m["error_msg"], "Incorrect IAM authentication information")
		}
	}
	assert.Empty(t, srv.Agents(), "nothing was registered")
}

func TestWrongProjectIsAPIGW0302(t *testing.T) {
	srv := newRawServer(t)
	r := srv.send("POST", "/v3/0123456789abcdef0123456789abcdef/agents", srv.Token, documentedRegister)
	assertError(t, r, http.StatusForbidden, "APIGW.0302", gatewayErrorKeys...)
	assert.Empty(t, srv.Agents())
}

func TestUnknownRouteIsAPIGW0101(t *testing.T) {
	srv := newRawServer(t)
	for _, call := range []struct{ method, path string }{
		{"GET", "/"},
		{"GET", "/v3/" + srv.ProjectID + "/vaults"},
		{"PATCH", agentsPath(srv) + "/x"},
		{"POST", "/v2/" + srv.ProjectID + "/agents"},
	} {
		r := srv.send(call.method, call.path, "", "")
		assertError(t, r, http.StatusNotFound, "APIGW.0101", gatewayErrorKeys...)
	}
}

func TestRequestIDsAndCount(t *testing.T) {
	srv := newRawServer(t)
	seen := map[string]bool{}
	for i := range 5 {
		token := srv.Token
		if i%2 == 1 {
			token = "" // rejected requests count too
		}
		r := srv.send("GET", agentsPath(srv)+"/x", token, "")
		id := r.header.Get("X-Request-Id")
		assert.False(t, seen[id], "request id %s repeated", id)
		seen[id] = true
	}
	assert.Equal(t, 5, srv.Requests())
}

func TestSnapshots(t *testing.T) {
	srv := newRawServer(t)
	for _, id := range []string{"c", "a", "b"} {
		r := srv.send("POST", agentsPath(srv), srv.Token,
			`{"agent":{"agent_id":"`+id+`","host_name":"h-`+id+`","host_ip":"10.0.0.1","host_os":"linux","host_nickname":"n"}}`)
		require.Equal(t, http.StatusOK, r.status)
	}

	agents := srv.Agents()
	require.Len(t, agents, 3)
	assert.Equal(t, []string{"a", "b", "c"}, []string{agents[0].AgentID, agents[1].AgentID, agents[2].AgentID})
	assert.Equal(t, "h-b", agents[1].HostName)
	assert.Equal(t, "n", agents[1].HostNickname)
	assert.Equal(t, cbr.AgentStatusNormal, agents[1].Status)
	assert.False(t, agents[1].CreatedAt.IsZero())

	// A snapshot shares no memory with the server: changing its paths, or
	// the slice Paths returns, changes nothing stored.
	status, body := srv.call("POST", "agents/a/add-path",
		`{"add_path":["/opt/data"],"exclude_path":[{"path_name":"/opt/data","exclude_path_name":["*.tmp"]}]}`)
	require.Equal(t, http.StatusOK, status, body)
	for _, snap := range []func() cbr.Agent{
		func() cbr.Agent { return srv.Agents()[0] },
		func() cbr.Agent { a, _ := srv.Agent("a"); return a },
	} {
		a := snap()
		require.Len(t, a.Paths, 1)
		require.Len(t, a.Paths[0].ExcludePaths, 1)
		a.Status = cbr.AgentStatusUninstall
		a.Paths[0].DirPath = "/changed"
		a.Paths[0].ExcludePaths[0] = "changed"
		a.Paths = append(a.Paths[:0], cbr.Path{DirPath: "/other"})
	}
	paths := srv.Paths("a")
	paths[0] = "/changed"
	a, ok := srv.Agent("a")
	require.True(t, ok)
	assert.Equal(t, cbr.AgentStatusNormal, a.Status)
	assert.Equal(t, []cbr.Path{{ID: a.Paths[0].ID, Status: cbr.PathStatusAvailable, AgentID: "a", DirPath: "/opt/data",
		ExcludePaths: []string{"*.tmp"}}}, a.Paths)
	assert.Equal(t, []string{"/opt/data"}, srv.Paths("a"))

	_, ok = srv.Agent("zz")
	assert.False(t, ok)
}

func TestParallelRegistrations(t *testing.T) {
	srv := newRawServer(t)
	const n = 40
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"agent":{"agent_id":"agent-%02d","host_name":"h","host_ip":"10.0.0.1","host_os":"linux"}}`, i)
			req, _ := http.NewRequest("POST", srv.URL+agentsPath(srv), strings.NewReader(body))
			req.Header.Set("X-Auth-Token", srv.Token)
			resp, err := srv.hc.Do(req)
			if err == nil {
				statuses[i] = resp.StatusCode
				resp.Body.Close()
			}
		}()
		go func() { // read while others write
			defer wg.Done()
			_ = srv.Agents()
		}()
	}
	wg.Wait()

	for i, s := range statuses {
		assert.Equal(t, http.StatusOK, s, "registration %d", i)
	}
	assert.Len(t, srv.Agents(), n)
	assert.Equal(t, n, srv.Requests())
}

// TestClient checks the client the server hands out, with the SDK end to end.
func TestClient(t *testing.T) {
	srv := newRawServer(t)
	srv.InjectFaults(cbrtest.Fault{Status: 503}, cbrtest.Fault{Drop: true})
	c, err := srv.Client(cbr.WithUserAgent("cbrtest-test/1"))
	require.NoError(t, err)

	agent, err := c.RegisterAgent(context.Background(), cbr.AgentRegister{
		AgentID: "a1", HostName: "h", HostIP: "10.0.0.1", HostOS: "linux", AgentType: cbr.AgentTypeCloud,
	})
	require.NoError(t, err)
	assert.Equal(t, cbr.AgentTypeCloud, agent.AgentType)
	assert.Equal(t, 4, srv.Requests(), "POST 503; the check GET dropped, then 404; POST again")

	_, err = c.UpdateAgent(context.Background(), "missing", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	assert.ErrorIs(t, err, cbr.ErrNotFound)
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "BackupService.7410", apiErr.Code)
	assert.Regexp(t, `^[0-9a-f]{32}$`, apiErr.RequestID)

	wrong, err := cbr.NewClient(cbr.WithEndpoint(srv.URL), cbr.WithProjectID(srv.ProjectID), cbr.WithCredentials(cbr.Token("nope")))
	require.NoError(t, err)
	_, err = wrong.UpdateAgent(context.Background(), "a1", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	assert.ErrorIs(t, err, cbr.ErrUnauthorized)
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "APIGW.0301", apiErr.Code)
}
