package cbr_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
)

func TestAddAgentPathsWire(t *testing.T) {
	c, mt := newMockClient(t)
	st := answering(200, `{"added":["/opt/backup","/var/log"],"existed":["/tmp/backup"]}`)
	mt.RegisterResponder("POST", agentsURL+"/"+testAgentID+"/add-path", st.respond)

	got, err := c.AddAgentPaths(context.Background(), testAgentID, cbr.AddPathsRequest{
		Paths:   []string{"/opt/backup", "/var/log", "/tmp/backup"},
		Exclude: []cbr.ExcludePath{{PathName: "/var/log", ExcludePathNames: []string{"/var/log/old", "*.gz"}}},
	})
	require.NoError(t, err)
	assert.Equal(t, &cbr.PathsAdded{Added: []string{"/opt/backup", "/var/log"}, Existed: []string{"/tmp/backup"}}, got)

	_, err = c.AddAgentPaths(context.Background(), testAgentID, cbr.AddPathsRequest{Paths: []string{`D:\data`}})
	require.NoError(t, err)

	require.Equal(t, 2, st.count())
	assert.Equal(t, "POST", st.reqs[0].Method)
	assert.Equal(t, "/v3/"+testProject+"/agents/"+testAgentID+"/add-path", st.reqs[0].URL.Path)
	for _, req := range st.reqs {
		assertAPIHeaders(t, req, "cbr-go/"+cbr.Version, true)
	}
	assert.JSONEq(t, `{"add_path":["/opt/backup","/var/log","/tmp/backup"],
		"exclude_path":[{"path_name":"/var/log","exclude_path_name":["/var/log/old","*.gz"]}]}`, st.bodies[0])
	assert.JSONEq(t, `{"add_path":["D:\\data"]}`, st.bodies[1], "no exclude_path when there is none")
}

func TestRemoveAgentPathsWire(t *testing.T) {
	c, mt := newMockClient(t)
	st := answering(200, `{"not_existed":["/home"],"removed":["/tmp"]}`)
	mt.RegisterResponder("POST", agentsURL+"/"+testAgentID+"/remove-path", st.respond)

	got, err := c.RemoveAgentPaths(context.Background(), testAgentID, cbr.RemovePathsRequest{Paths: []string{"/tmp", "/home"}})
	require.NoError(t, err)
	assert.Equal(t, &cbr.PathsRemoved{Removed: []string{"/tmp"}, NotExisted: []string{"/home"}}, got)

	require.Equal(t, 1, st.count())
	assert.Equal(t, "POST", st.reqs[0].Method)
	assert.Equal(t, "/v3/"+testProject+"/agents/"+testAgentID+"/remove-path", st.reqs[0].URL.Path)
	assertAPIHeaders(t, st.reqs[0], "cbr-go/"+cbr.Version, true)
	assert.JSONEq(t, `{"remove_path":["/tmp","/home"]}`, st.bodies[0])
}

func TestPathValidation(t *testing.T) {
	c, mt := newMockClient(t)
	st := answering(200, `{"added":[],"existed":[],"removed":[],"not_existed":[]}`)
	mt.RegisterNoResponder(st.respond)
	ctx := context.Background()

	valid := []string{"/opt/data", "/a", "/opt/workspace/", "//server/share", `C:\`, `D:\data\db`, `d:\\x`, "D:/data", "/with space/ü"}
	for _, p := range valid {
		_, err := c.AddAgentPaths(ctx, "a1", cbr.AddPathsRequest{Paths: []string{p}})
		assert.NoError(t, err, "add %q", p)
		_, err = c.RemoveAgentPaths(ctx, "a1", cbr.RemovePathsRequest{Paths: []string{p}})
		assert.NoError(t, err, "remove %q", p)
	}
	require.Equal(t, 2*len(valid), st.count())

	invalid := []string{"", "/", "relative/path", "data", "./data", "C:", "C:/", "C:data", "1:/data", `\\server\share`, "/opt/\ndata", "/opt/\x00"}
	for _, p := range invalid {
		_, err := c.AddAgentPaths(ctx, "a1", cbr.AddPathsRequest{Paths: []string{"/ok", p}})
		var ve *cbr.ValidationError
		if assert.ErrorAs(t, err, &ve, "add %q", p) {
			assert.Equal(t, "add_path", ve.Field)
			assert.Equal(t, "add agent paths", ve.Op)
		}
	}
	for _, tc := range []struct {
		name  string
		in    cbr.AddPathsRequest
		field string
	}{
		{"no paths", cbr.AddPathsRequest{}, "add_path"},
		{"exclusion of a path not added", cbr.AddPathsRequest{Paths: []string{"/a"},
			Exclude: []cbr.ExcludePath{{PathName: "/b", ExcludePathNames: []string{"x"}}}}, "exclude_path.path_name"},
		{"exclusion without names", cbr.AddPathsRequest{Paths: []string{"/a"},
			Exclude: []cbr.ExcludePath{{PathName: "/a"}}}, "exclude_path.exclude_path_name"},
		{"empty exclusion name", cbr.AddPathsRequest{Paths: []string{"/a"},
			Exclude: []cbr.ExcludePath{{PathName: "/a", ExcludePathNames: []string{""}}}}, "exclude_path.exclude_path_name"},
	} {
		_, err := c.AddAgentPaths(ctx, "a1", tc.in)
		var ve *cbr.ValidationError
		if assert.ErrorAs(t, err, &ve, tc.name) {
			assert.Equal(t, tc.field, ve.Field, tc.name)
		}
	}
	_, err := c.AddAgentPaths(ctx, "", cbr.AddPathsRequest{Paths: []string{"/a"}})
	assert.ErrorIs(t, err, cbr.ErrInvalidRequest)

	assert.Equal(t, 2*len(valid), st.count(), "nothing is sent for an invalid request")
}

// TestRemoveAgentPathsValidation checks that RemoveAgentPaths sends any path
// that is not empty and has no control character: the API documents no
// pattern for remove_path, and an agent can have paths that AddAgentPaths
// refuses (the API's add-path pattern, which is not anchored, takes
// "relative/path").
func TestRemoveAgentPathsValidation(t *testing.T) {
	c, mt := newMockClient(t)
	st := answering(200, `{"removed":[],"not_existed":[]}`)
	mt.RegisterResponder("POST", agentsURL+"/a1/remove-path", st.respond)
	ctx := context.Background()

	sent := []string{"/", "relative/path", "data", "./data", "C:", "C:/", "C:data", "1:/data", `\\server\share`, "/with space/ü"}
	for _, p := range sent {
		_, err := c.RemoveAgentPaths(ctx, "a1", cbr.RemovePathsRequest{Paths: []string{p}})
		assert.NoError(t, err, "remove %q", p)
	}
	require.Equal(t, len(sent), st.count())
	for i, p := range sent {
		want, err := json.Marshal(map[string][]string{"remove_path": {p}})
		require.NoError(t, err)
		assert.JSONEq(t, string(want), st.bodies[i])
	}

	for _, paths := range [][]string{nil, {}, {"/ok", ""}, {"/opt/\ndata"}, {"/opt/\x00"}, {"a\x7f"}} {
		_, err := c.RemoveAgentPaths(ctx, "a1", cbr.RemovePathsRequest{Paths: paths})
		var ve *cbr.ValidationError
		if assert.ErrorAs(t, err, &ve, "remove %q", paths) {
			assert.Equal(t, "remove_path", ve.Field)
			assert.Equal(t, "remove agent paths", ve.Op)
		}
	}
	assert.Equal(t, len(sent), st.count(), "nothing is sent for an invalid request")
}

func TestAgentPathsFake(t *testing.T) {
	srv, c := fakeClient(t)
	ctx := context.Background()
	_, err := c.RegisterAgent(ctx, registerAs("a1"))
	require.NoError(t, err)
	srv.SetPathQuota(3)

	added, err := c.AddAgentPaths(ctx, "a1", cbr.AddPathsRequest{
		Paths:   []string{"/opt/data", "/var/log"},
		Exclude: []cbr.ExcludePath{{PathName: "/var/log", ExcludePathNames: []string{"*.gz", "old"}}},
	})
	require.NoError(t, err)
	assert.Equal(t, &cbr.PathsAdded{Added: []string{"/opt/data", "/var/log"}, Existed: []string{}}, added)

	added, err = c.AddAgentPaths(ctx, "a1", cbr.AddPathsRequest{Paths: []string{"/var/log", "/srv"}})
	require.NoError(t, err)
	assert.Equal(t, &cbr.PathsAdded{Added: []string{"/srv"}, Existed: []string{"/var/log"}}, added)

	_, err = c.AddAgentPaths(ctx, "a1", cbr.AddPathsRequest{Paths: []string{"/home"}})
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 400, apiErr.StatusCode)
	assert.Equal(t, "BackupService.7407", apiErr.Code)
	assert.Equal(t, "Agent a1 path count is exceeded.", apiErr.Message)
	assert.Equal(t, []string{"/opt/data", "/var/log", "/srv"}, srv.Paths("a1"))

	a, err := c.ShowAgent(ctx, "a1")
	require.NoError(t, err)
	require.Len(t, a.Paths, 3)
	assert.Equal(t, []string{"*.gz", "old"}, a.Paths[1].ExcludePaths)
	assert.Equal(t, cbr.PathStatusAvailable, a.Paths[0].Status)
	assert.Equal(t, "a1", a.Paths[0].AgentID)
	assert.NotEmpty(t, a.Paths[0].ID)

	removed, err := c.RemoveAgentPaths(ctx, "a1", cbr.RemovePathsRequest{Paths: []string{"/srv", "/nope"}})
	require.NoError(t, err)
	assert.Equal(t, &cbr.PathsRemoved{Removed: []string{"/srv"}, NotExisted: []string{"/nope"}}, removed)
	assert.Equal(t, []string{"/opt/data", "/var/log"}, srv.Paths("a1"))

	_, err = c.AddAgentPaths(ctx, "nobody", cbr.AddPathsRequest{Paths: []string{"/a"}})
	assert.ErrorIs(t, err, cbr.ErrNotFound)
	_, err = c.RemoveAgentPaths(ctx, "nobody", cbr.RemovePathsRequest{Paths: []string{"/a"}})
	assert.ErrorIs(t, err, cbr.ErrNotFound)
}

func TestCheckAgentsWire(t *testing.T) {
	c, mt := newMockClient(t)
	st := answering(200, `{"agent_status":[
		{"code":null,"installed":false,"is_old":null,"message":null,"resource_id":"6c0e29fc-5eaa-4f76-af9e-cc79895f70d7","version":null},
		{"code":1001,"installed":true,"is_old":true,"message":"agent unreachable","resource_id":"r2","version":"2.4.1"},
		{"resource_id":"r3","installed":null}]}`)
	mt.RegisterResponder("POST", testEndpoint+"/v3/"+testProject+"/agent/check", st.respond)

	got, err := c.CheckAgents(context.Background(), cbr.CheckAgentsRequest{Resources: []cbr.AgentCheckRequest{
		{ResourceID: "6c0e29fc-5eaa-4f76-af9e-cc79895f70d7", ResourceType: cbr.ResourceTypeServer, ResourceName: "ecs-8f7b"},
		{ResourceID: "r2", ResourceType: cbr.ResourceTypeBareMetalServer},
		{ResourceID: "r3", ResourceType: cbr.ResourceTypeServer},
	}})
	require.NoError(t, err)

	require.Equal(t, 1, st.count())
	assert.Equal(t, "POST", st.reqs[0].Method)
	assert.Equal(t, "/v3/"+testProject+"/agent/check", st.reqs[0].URL.Path)
	assertAPIHeaders(t, st.reqs[0], "cbr-go/"+cbr.Version, true)
	assert.JSONEq(t, `{"agent_status":[
		{"resource_id":"6c0e29fc-5eaa-4f76-af9e-cc79895f70d7","resource_type":"OS::Nova::Server","resource_name":"ecs-8f7b"},
		{"resource_id":"r2","resource_type":"OS::Ironic::BareMetalServer"},
		{"resource_id":"r3","resource_type":"OS::Nova::Server"}]}`, st.bodies[0])

	require.Len(t, got, 3)
	no, yes, code := false, true, 1001
	assert.Equal(t, cbr.AgentCheck{ResourceID: "6c0e29fc-5eaa-4f76-af9e-cc79895f70d7", Installed: &no}, got[0])
	assert.Equal(t, cbr.AgentCheck{ResourceID: "r2", Installed: &yes, IsOld: &yes, Version: "2.4.1", Code: &code, Message: "agent unreachable"}, got[1])
	assert.Nil(t, got[2].Installed, "null is not false")
	assert.Nil(t, got[2].IsOld)
	assert.Nil(t, got[2].Code)
}

func TestCheckAgentsValidation(t *testing.T) {
	c, mt := newMockClient(t)
	ok := cbr.AgentCheckRequest{ResourceID: "r1", ResourceType: cbr.ResourceTypeServer}
	for _, tc := range []struct {
		name  string
		in    []cbr.AgentCheckRequest
		field string
	}{
		{"none", nil, "agent_status"},
		{"no resource ID", []cbr.AgentCheckRequest{ok, {ResourceType: cbr.ResourceTypeServer}}, "resource_id"},
		{"no resource type", []cbr.AgentCheckRequest{{ResourceID: "r1"}}, "resource_type"},
		{"unknown resource type", []cbr.AgentCheckRequest{{ResourceID: "r1", ResourceType: "OS::Cinder::Volume"}}, "resource_type"},
		{"control character in name", []cbr.AgentCheckRequest{{ResourceID: "r1", ResourceType: cbr.ResourceTypeServer, ResourceName: "a\tb"}}, "resource_name"},
	} {
		_, err := c.CheckAgents(context.Background(), cbr.CheckAgentsRequest{Resources: tc.in})
		var ve *cbr.ValidationError
		if assert.ErrorAs(t, err, &ve, tc.name) {
			assert.Equal(t, tc.field, ve.Field, tc.name)
		}
	}
	assert.Equal(t, 0, mt.GetTotalCallCount())

	// An answer without agent_status is an error, not an empty result.
	mt.RegisterNoResponder(answering(200, `{}`).respond)
	_, err := c.CheckAgents(context.Background(), cbr.CheckAgentsRequest{Resources: []cbr.AgentCheckRequest{ok}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "agent_status")
}

func TestCheckAgentsFake(t *testing.T) {
	srv, c := fakeClient(t)
	yes, no := true, false
	srv.SetAgentCheck(cbr.AgentCheck{ResourceID: "r1", Installed: &yes, IsOld: &no, Version: "1.0.0"})
	got, err := c.CheckAgents(context.Background(), cbr.CheckAgentsRequest{Resources: []cbr.AgentCheckRequest{
		{ResourceID: "r1", ResourceType: cbr.ResourceTypeServer},
		{ResourceID: "r2", ResourceType: cbr.ResourceTypeBareMetalServer},
	}})
	require.NoError(t, err)
	assert.Equal(t, []cbr.AgentCheck{
		{ResourceID: "r1", Installed: &yes, IsOld: &no, Version: "1.0.0"},
		{ResourceID: "r2", Installed: &no},
	}, got)
}
