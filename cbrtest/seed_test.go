package cbrtest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

// t0 is a fixed time for the clock tests, with more precision than the API keeps.
var t0 = time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.UTC)

func TestSetAgentsStoresEveryField(t *testing.T) {
	srv := newRawServer(t)
	created, active := t0.Add(-90*24*time.Hour), t0.Add(-31*24*time.Hour)
	require.NoError(t, srv.SetAgents(
		cbr.Agent{
			AgentID: "old", AgentVersion: "2.1.0", AgentType: cbr.AgentTypeCloud,
			HostName: "ecs-1", HostNickname: "db", HostIP: "10.0.0.7", HostOS: "windows",
			Status:    cbr.AgentStatusAbnormal,
			CreatedAt: created.In(time.FixedZone("UTC+8", 8*3600)), UpdatedAt: t0, LastActiveTime: active,
			Paths: []cbr.Path{
				{ID: "p-1", Status: cbr.PathStatusRemove, AgentID: "someone else", DirPath: "/data", ExcludePaths: []string{"/data/tmp", "/data/cache"}},
				{DirPath: `D:\backup`},
			},
		},
		cbr.Agent{AgentID: "never-active", HostName: "h", HostIP: "10.0.0.8", HostOS: "linux"},
	))

	status, body := srv.call("GET", "agents/old", "")
	require.Equal(t, http.StatusOK, status, body)
	paths := srv.Paths("old")
	assert.Equal(t, []string{"/data", `D:\backup`}, paths)
	a, _ := srv.Agent("old")
	assert.JSONEq(t, `{"agent":{"agent_id":"old","agent_version":"2.1.0","agent_type":"cloud",
		"host_name":"ecs-1","host_nickname":"db","host_ip":"10.0.0.7","host_os":"windows","status":"abnormal",
		"created_at":"2023-12-02T12:00:00.123456","updated_at":"2024-03-01T12:00:00.123456","last_active_time":"2024-01-30T12:00:00.123456",
		"paths":[{"id":"p-1","status":"remove","agent_id":"old","dir_path":"/data","exclude_paths":"/data/tmp,/data/cache"},
		         {"id":"`+a.Paths[1].ID+`","status":"available","agent_id":"old","dir_path":"D:\\backup"}]}}`, body)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, a.Paths[1].ID, "a new path ID")

	status, body = srv.call("GET", "agents/never-active", "")
	require.Equal(t, http.StatusOK, status, body)
	assert.JSONEq(t, `{"agent":{"agent_id":"never-active","host_name":"h","host_nickname":"","host_ip":"10.0.0.8",
		"host_os":"linux","status":"normal","created_at":null,"updated_at":null,"last_active_time":null}}`, body,
		"zero times are null; an empty status is normal")

	// The SDK decodes what was stored, to the microsecond.
	got, err := srv.c.ShowAgent(context.Background(), "old")
	require.NoError(t, err)
	assert.Equal(t, created.Truncate(time.Microsecond), got.CreatedAt)
	assert.Equal(t, active.Truncate(time.Microsecond), got.LastActiveTime)
	assert.Equal(t, a, *got, "the snapshot is what the client decodes")
	never, err := srv.c.ShowAgent(context.Background(), "never-active")
	require.NoError(t, err)
	assert.True(t, never.LastActiveTime.IsZero())
}

func TestSetAgentsReplaces(t *testing.T) {
	srv := newRawServer(t)
	srv.register("a1", "before")
	require.NoError(t, srv.SetAgents(cbr.Agent{AgentID: "a1", HostName: "after", Status: cbr.AgentStatusUninstall}))
	a, ok := srv.Agent("a1")
	require.True(t, ok)
	assert.Equal(t, "after", a.HostName)
	assert.Equal(t, cbr.AgentStatusUninstall, a.Status)
	assert.True(t, a.CreatedAt.IsZero(), "replaced whole, not merged")
	assert.Len(t, srv.Agents(), 1)
}

func TestSetAgentsRefusesAndStoresNothing(t *testing.T) {
	tests := []struct {
		name  string
		agent cbr.Agent
		err   string
	}{
		{"no ID", cbr.Agent{HostName: "h"}, `cbrtest: set agents: invalid agent ID ""`},
		{"slash", cbr.Agent{AgentID: "a/b"}, `cbrtest: set agents: invalid agent ID "a/b"`},
		{"path twice", cbr.Agent{AgentID: "b", Paths: []cbr.Path{{DirPath: "/x"}, {DirPath: "/x"}}},
			`cbrtest: set agents: agent b has the path "/x" twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := cbrtest.NewServer()
			defer srv.Close()
			err := srv.SetAgents(cbr.Agent{AgentID: "fine"}, tt.agent)
			assert.EqualError(t, err, tt.err)
			assert.Empty(t, srv.Agents(), "none is stored")
		})
	}
}

func TestClockStampsWhatTheServerWrites(t *testing.T) {
	srv := newRawServer(t)
	srv.SetClock(func() time.Time { return t0 })
	assert.Equal(t, t0.Truncate(time.Microsecond), srv.Now())

	srv.register("a1", "h")
	a, _ := srv.Agent("a1")
	want := t0.Truncate(time.Microsecond)
	assert.Equal(t, []time.Time{want, want, want}, []time.Time{a.CreatedAt, a.UpdatedAt, a.LastActiveTime})
	_, body := srv.call("GET", "agents/a1", "")
	assert.Contains(t, body, `"created_at":"2024-03-01T12:00:00.123456"`)

	srv.Advance(30 * 24 * time.Hour)
	later := want.Add(30 * 24 * time.Hour)
	assert.Equal(t, later, srv.Now())
	status, _ := srv.call("POST", "agents/a1/add-path", `{"add_path":["/data"]}`)
	require.Equal(t, http.StatusOK, status)
	a, _ = srv.Agent("a1")
	assert.Equal(t, []time.Time{want, later, want}, []time.Time{a.CreatedAt, a.UpdatedAt, a.LastActiveTime},
		"a change of paths updates updated_at only")

	srv.Advance(time.Hour)
	_, err := srv.c.UpdateAgent(context.Background(), "a1", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)
	a, _ = srv.Agent("a1")
	assert.Equal(t, later.Add(time.Hour), a.UpdatedAt)

	srv.register("a1", "reinstalled")
	a, _ = srv.Agent("a1")
	assert.Equal(t, []time.Time{want, later.Add(time.Hour), later.Add(time.Hour)}, []time.Time{a.CreatedAt, a.UpdatedAt, a.LastActiveTime},
		"a registration again keeps created_at")

	srv.SetClock(nil)
	assert.WithinDuration(t, time.Now(), srv.Now(), time.Minute, "the real time again, without the advance")
	srv.Advance(-48 * time.Hour)
	assert.WithinDuration(t, time.Now().Add(-48*time.Hour), srv.Now(), time.Minute, "Advance moves the real time too")
}

// TestClockMayCallTheServer checks that the server calls the clock without
// holding its lock.
func TestClockMayCallTheServer(t *testing.T) {
	srv := newRawServer(t)
	srv.SetClock(func() time.Time { return t0.Add(time.Duration(len(srv.Agents())) * time.Hour) })
	srv.register("a1", "h")
	srv.register("a2", "h")
	a1, _ := srv.Agent("a1")
	a2, _ := srv.Agent("a2")
	assert.Equal(t, time.Hour, a2.CreatedAt.Sub(a1.CreatedAt))
}

// TestClockLeavesCredentialsAlone checks that a clock far from the real time
// does not make signatures, IAM tokens or temporary keys fail.
func TestClockLeavesCredentialsAlone(t *testing.T) {
	srv := newRawServer(t)
	srv.SetClock(func() time.Time { return time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC) })
	srv.Advance(100 * 365 * 24 * time.Hour)
	for name, creds := range map[string]cbr.Credentials{
		"aksk": srv.AKSK(), "iam": srv.IAMPassword(), "metadata": srv.ECSMetadata(),
	} {
		t.Run(name, func(t *testing.T) {
			c, err := srv.Client(cbr.WithCredentials(creds))
			require.NoError(t, err)
			a, err := c.RegisterAgent(context.Background(), cbr.AgentRegister{AgentID: name, HostName: "h", HostIP: "10.0.0.1", HostOS: "linux"})
			require.NoError(t, err)
			assert.Equal(t, 2100, a.CreatedAt.Year())
		})
	}
}
