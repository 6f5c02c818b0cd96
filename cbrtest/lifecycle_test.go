package cbrtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

// wireUUID is the form of the IDs of paths.
var wireUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// normalize checks the form of the values that change from run to run
// (timestamps in the API's form, path IDs as UUIDs) and replaces them with
// "T" and "ID", so that the rest can be compared exactly.
func normalize(t *testing.T, body string) string {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(body), &v), body)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				switch s, isString := x.(string); {
				case isString && (k == "created_at" || k == "updated_at" || k == "last_active_time"):
					assert.Regexp(t, wireTimestamp, s, k)
					v[k] = "T"
				case isString && k == "id":
					assert.Regexp(t, wireUUID, s, k)
					v[k] = "ID"
				default:
					walk(x)
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	out, err := json.Marshal(v)
	require.NoError(t, err)
	return string(out)
}

func TestListAgentsWireFormat(t *testing.T) {
	s := newRawServer(t)
	s.register("a1", "host-1")
	s.register("a2", "host-2")
	s.register("a3", "host-3")
	_, err := s.c.AddAgentPaths(context.Background(), "a2", cbr.AddPathsRequest{Paths: []string{"/opt/data"}})
	require.NoError(t, err)
	_, err = s.c.UpdateAgent(context.Background(), "a3", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)

	agentJSON := func(id, host, status, paths string) string {
		return `{"agent_id":"` + id + `","agent_version":"1.0.0","agent_type":"native","host_name":"` + host +
			`","host_nickname":"","host_ip":"10.0.0.1","host_os":"linux","status":"` + status +
			`","created_at":"T","updated_at":"T","last_active_time":"T"` + paths + `}`
	}
	a1 := agentJSON("a1", "host-1", "normal", "") // no paths: left out, as in the documented register response
	a2 := agentJSON("a2", "host-2", "normal", `,"paths":[{"id":"ID","status":"available","agent_id":"a2","dir_path":"/opt/data"}]`)
	a3 := agentJSON("a3", "host-3", "uninstall", "")

	status, body := s.call("GET", "agents?limit=2&offset=0", "")
	require.Equal(t, 200, status, body)
	assert.JSONEq(t, `{"agents":[`+a1+`,`+a2+`],"count":3,"limit":2,"offset":0}`, normalize(t, body))

	status, body = s.call("GET", "agents?limit=2&offset=2", "")
	require.Equal(t, 200, status, body)
	assert.JSONEq(t, `{"agents":[`+a3+`],"count":3,"limit":2,"offset":2}`, normalize(t, body))

	status, body = s.call("GET", "agents", "")
	require.Equal(t, 200, status, body)
	assert.JSONEq(t, `{"agents":[`+a1+`,`+a2+`,`+a3+`],"count":3,"limit":1000,"offset":0}`, normalize(t, body), "the defaults")

	status, body = s.call("GET", "agents?offset=10", "")
	require.Equal(t, 200, status, body)
	assert.JSONEq(t, `{"agents":[],"count":3,"limit":1000,"offset":10}`, body)

	status, body = s.call("GET", "agents?status=uninstall", "")
	require.Equal(t, 200, status, body)
	assert.JSONEq(t, `{"agents":[`+a3+`],"count":1,"limit":1000,"offset":0}`, normalize(t, body))

	status, body = s.call("GET", "agents?agent_id=a3&agent_id=a1&agent_id=zz", "")
	require.Equal(t, 200, status, body)
	assert.JSONEq(t, `{"agents":[`+a1+`,`+a3+`],"count":2,"limit":1000,"offset":0}`, normalize(t, body))

	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "offset=-1", "offset=x"} {
		status, body = s.call("GET", "agents?"+q, "")
		assert.Equal(t, 400, status, q)
		assert.Contains(t, body, `"error_code":"BackupService.7403"`, q)
	}
}

func TestUnregisterAgentWireFormat(t *testing.T) {
	s := newRawServer(t)
	s.register("a1", "host-1")

	status, body := s.call("DELETE", "agents/a1", "")
	assert.Equal(t, 200, status)
	assert.Empty(t, body, "DELETE answers 200 with an empty body")
	assert.Empty(t, s.Agents())

	status, body = s.call("DELETE", "agents/a1", "")
	assert.Equal(t, 404, status)
	assert.JSONEq(t, `{"error_code":"BackupService.7410","error_msg":"Agent a1 not found."}`, body)
}

func TestAgentPathsWireFormat(t *testing.T) {
	s := newRawServer(t)
	s.register("a1", "host-1")

	status, body := s.call("POST", "agents/a1/add-path", `{"add_path":["/opt/backup","/var/log","/opt/backup"],
		"exclude_path":[{"path_name":"/var/log","exclude_path_name":["/var/log/old","*.gz"]}]}`)
	require.Equal(t, 200, status, body)
	assert.JSONEq(t, `{"added":["/opt/backup","/var/log"],"existed":[]}`, body)

	status, body = s.call("POST", "agents/a1/add-path", `{"add_path":["/tmp/backup","/var/log"]}`)
	require.Equal(t, 200, status, body)
	assert.JSONEq(t, `{"added":["/tmp/backup"],"existed":["/var/log"]}`, body)

	status, body = s.call("GET", "agents/a1", "")
	require.Equal(t, 200, status, body)
	var shown struct {
		Agent struct {
			Paths json.RawMessage `json:"paths"`
		} `json:"agent"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &shown))
	assert.JSONEq(t, `[
		{"id":"ID","status":"available","agent_id":"a1","dir_path":"/opt/backup"},
		{"id":"ID","status":"available","agent_id":"a1","dir_path":"/var/log","exclude_paths":"/var/log/old,*.gz"},
		{"id":"ID","status":"available","agent_id":"a1","dir_path":"/tmp/backup"}]`, normalize(t, string(shown.Agent.Paths)))

	status, body = s.call("POST", "agents/a1/remove-path", `{"remove_path":["/tmp/backup","/home","/home"]}`)
	require.Equal(t, 200, status, body)
	assert.JSONEq(t, `{"removed":["/tmp/backup"],"not_existed":["/home"]}`, body)
	assert.Equal(t, []string{"/opt/backup", "/var/log"}, s.Paths("a1"))

	// The documented pattern is not anchored: it takes any string with a "/"
	// and something after it, and the fake follows it (the client is stricter).
	status, body = s.call("POST", "agents/a1/add-path", `{"add_path":["rel/ative"]}`)
	assert.Equal(t, 200, status, body)
	for _, bad := range []string{`{"add_path":["relative"]}`, `{"add_path":["/"]}`, `{"add_path":[]}`, `{}`, `not json`,
		`{"add_path":["/a"],"exclude_path":[{"path_name":"/b","exclude_path_name":["x"]}]}`} {
		status, body = s.call("POST", "agents/a1/add-path", bad)
		assert.Equal(t, 400, status, bad)
		assert.Contains(t, body, `"error_code":"BackupService.7403"`, bad)
	}
	for _, bad := range []string{`{"remove_path":[]}`, `{}`} {
		status, body = s.call("POST", "agents/a1/remove-path", bad)
		assert.Equal(t, 400, status, bad)
		assert.Contains(t, body, `"error_code":"BackupService.7403"`, bad)
	}
	assert.Equal(t, []string{"/opt/backup", "/var/log", "rel/ative"}, s.Paths("a1"))
	assert.Nil(t, s.Paths("nobody"))
}

func TestPathQuota(t *testing.T) {
	s := newRawServer(t)
	s.register("a1", "host-1")
	paths := make([]string, cbrtest.DefaultPathQuota)
	for i := range paths {
		paths[i] = "/data/" + strings.Repeat("x", i+1)
	}
	add := func(paths ...string) (int, string) {
		b, err := json.Marshal(map[string][]string{"add_path": paths})
		require.NoError(t, err)
		return s.call("POST", "agents/a1/add-path", string(b))
	}
	status, body := add(paths...)
	require.Equal(t, 200, status, body)
	status, body = add("/one/more")
	assert.Equal(t, 400, status)
	assert.JSONEq(t, `{"error_code":"BackupService.7407","error_msg":"Agent a1 path count is exceeded."}`, body)
	status, _ = add(paths[0])
	assert.Equal(t, 200, status, "a path the agent has does not count again")

	s.SetPathQuota(cbrtest.DefaultPathQuota + 2)
	status, body = add("/new/1", "/new/2", "/new/3")
	assert.Equal(t, 400, status, body)
	assert.Len(t, s.Paths("a1"), cbrtest.DefaultPathQuota, "a refused request adds nothing")
	status, body = add("/new/1", "/new/2", paths[1])
	assert.Equal(t, 200, status, body)
	assert.Len(t, s.Paths("a1"), cbrtest.DefaultPathQuota+2)
}

func TestCheckAgentsWireFormat(t *testing.T) {
	s := newRawServer(t)
	yes, code := true, 1001
	s.SetAgentCheck(cbr.AgentCheck{ResourceID: "r2", Installed: &yes, Version: "2.4.1", Code: &code, Message: "unreachable"})

	status, body := s.call("POST", "agent/check", `{"agent_status":[
		{"resource_id":"6c0e29fc-5eaa-4f76-af9e-cc79895f70d7","resource_name":"ecs-8f7b","resource_type":"OS::Nova::Server"},
		{"resource_id":"r2","resource_type":"OS::Ironic::BareMetalServer"}]}`)
	require.Equal(t, 200, status, body)
	assert.JSONEq(t, `{"agent_status":[
		{"code":null,"installed":false,"is_old":null,"message":null,"resource_id":"6c0e29fc-5eaa-4f76-af9e-cc79895f70d7","version":null},
		{"code":1001,"installed":true,"is_old":null,"message":"unreachable","resource_id":"r2","version":"2.4.1"}]}`, body)

	for _, bad := range []string{`{"agent_status":[]}`, `{}`, `{"agent_status":[{"resource_id":"r1","resource_type":"OS::Cinder::Volume"}]}`,
		`{"agent_status":[{"resource_type":"OS::Nova::Server"}]}`} {
		status, body = s.call("POST", "agent/check", bad)
		assert.Equal(t, 400, status, bad)
		assert.Contains(t, body, `"error_code":"BackupService.7403"`, bad)
	}
	status, _ = s.call("GET", "agent/check", "")
	assert.Equal(t, 404, status, "only POST is routed")
}

func TestUpdateUninstalledAgentWireFormat(t *testing.T) {
	s := newRawServer(t)
	s.register("a1", "host-1")
	status, body := s.call("PUT", "agents/a1", `{"agent":{"status":"uninstall"}}`)
	require.Equal(t, 200, status, body)
	assert.Contains(t, body, `"status":"uninstall"`)

	status, body = s.call("PUT", "agents/a1", `{"agent":{"status":"uninstall"}}`)
	assert.Equal(t, 400, status)
	assert.JSONEq(t, `{"error_code":"BackupService.7403","error_msg":"Invalid agent a1"}`, body)

	// Registering it again makes it normal, and it can be uninstalled again.
	s.register("a1", "host-1")
	status, _ = s.call("PUT", "agents/a1", `{"agent":{"status":"uninstall"}}`)
	assert.Equal(t, 200, status)
}

func TestUnknownAgent(t *testing.T) {
	s := newRawServer(t)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "agents/nobody", ""},
		{"PUT", "agents/nobody", `{"agent":{"status":"uninstall"}}`},
		{"DELETE", "agents/nobody", ""},
		{"POST", "agents/nobody/add-path", `{"add_path":["/a"]}`},
		{"POST", "agents/nobody/remove-path", `{"remove_path":["/a"]}`},
	} {
		status, body := s.call(r.method, r.path, r.body)
		assert.Equal(t, 404, status, r.method+" "+r.path)
		assert.JSONEq(t, `{"error_code":"BackupService.7410","error_msg":"Agent nobody not found."}`, body, r.method+" "+r.path)
	}
}

func TestFaultDelayAfterHandling(t *testing.T) {
	s := newRawServer(t)
	s.register("a1", "host-1")
	c, err := s.Client(cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 1}))
	require.NoError(t, err)
	s.InjectFaults(cbrtest.Fault{AfterHandling: true, Delay: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.UnregisterAgent(ctx, "a1") }()

	// The agent goes while the client still waits for the answer.
	require.Eventually(t, func() bool { return len(s.Agents()) == 0 }, 10*time.Second, time.Millisecond)
	select {
	case err := <-done:
		require.Failf(t, "the answer was not held back", "%v", err)
	default:
	}
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, 2, s.Requests(), "the registration and the unregistration")
}

func TestFaultDelayEndsWithTheClient(t *testing.T) {
	srv := cbrtest.NewServer()
	c, err := srv.Client(cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 1}))
	require.NoError(t, err)
	srv.InjectFaults(cbrtest.Fault{Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.AddAgentPaths(ctx, "a1", cbr.AddPathsRequest{Paths: []string{"/a"}}) // a POST with a body
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the delay of a request whose client had gone")
	}
}

// TestReadsWhilePathsChange reads agents while their paths are added to and
// removed from; run with -race.
func TestReadsWhilePathsChange(t *testing.T) {
	s := newRawServer(t)
	s.register("a1", "host-1")
	ctx := context.Background()
	paths := []string{"/p/1", "/p/2", "/p/3", "/p/4"}
	var wg sync.WaitGroup
	errs := make(chan error, 4*25*6)
	for range 4 {
		wg.Add(2)
		go func() { // changes the paths
			defer wg.Done()
			for range 25 {
				_, err := s.c.AddAgentPaths(ctx, "a1", cbr.AddPathsRequest{Paths: paths,
					Exclude: []cbr.ExcludePath{{PathName: "/p/2", ExcludePathNames: []string{"*.tmp"}}}})
				errs <- err
				_, err = s.c.RemoveAgentPaths(ctx, "a1", cbr.RemovePathsRequest{Paths: paths[:2]})
				errs <- err
			}
		}()
		go func() { // reads them, with every call that answers an agent
			defer wg.Done()
			for range 25 {
				_, err := s.c.ShowAgent(ctx, "a1")
				errs <- err
				_, err = s.c.ListAgents(ctx, cbr.ListAgentsOptions{})
				errs <- err
				_, err = s.c.RegisterAgent(ctx, cbr.AgentRegister{AgentID: "a1", HostName: "host-1", HostIP: "10.0.0.1", HostOS: "linux"})
				errs <- err
				_, err = s.c.UpdateAgent(ctx, "a1", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
				var apiErr *cbr.APIError
				if errors.As(err, &apiErr) && apiErr.Code == "BackupService.7403" {
					err = nil // uninstalled already, and registered again before the check
				}
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// TestSnapshotsAreWhatTheAPIAnswers checks that Agent and Agents return what
// a client decodes from the wire: times in microseconds and UTC, exclusions
// as the client splits them.
func TestSnapshotsAreWhatTheAPIAnswers(t *testing.T) {
	s := newRawServer(t)
	ctx := context.Background()
	s.register("a1", "host-1")
	s.register("a2", "host-2")
	_, err := s.c.AddAgentPaths(ctx, "a1", cbr.AddPathsRequest{Paths: []string{"/opt/data", "/var/log"},
		Exclude: []cbr.ExcludePath{{PathName: "/var/log", ExcludePathNames: []string{" *.gz", "old "}}}})
	require.NoError(t, err)
	_, err = s.c.UpdateAgent(ctx, "a2", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)

	shown, err := s.c.ShowAgent(ctx, "a1")
	require.NoError(t, err)
	snap, ok := s.Agent("a1")
	require.True(t, ok)
	assert.Equal(t, *shown, snap)
	assert.Equal(t, []string{"*.gz", "old"}, snap.Paths[1].ExcludePaths)

	list, err := s.c.ListAgents(ctx, cbr.ListAgentsOptions{})
	require.NoError(t, err)
	assert.Equal(t, list.Agents, s.Agents())
}
