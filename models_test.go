package cbr_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
)

// golden reads a file from testdata.
func golden(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return data
}

// compact returns the golden file name with insignificant whitespace removed:
// the exact bytes a client should send.
func compact(t testing.TB, name string) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, json.Compact(&b, golden(t, name)))
	return b.String()
}

// decodeAgent decodes a golden {"agent": {...}} response.
func decodeAgent(t *testing.T, name string) cbr.Agent {
	t.Helper()
	var out struct {
		Agent cbr.Agent `json:"agent"`
	}
	require.NoError(t, json.Unmarshal(golden(t, name), &out))
	return out.Agent
}

// instant builds an expected instant in a fixed offset (hours east of UTC).
func instant(t *testing.T, value string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, value)
	require.NoError(t, err)
	return v
}

func TestRequestMarshalMatchesDocumentedJSON(t *testing.T) {
	register := struct {
		Agent cbr.AgentRegister `json:"agent"`
	}{cbr.AgentRegister{
		AgentID:      "489654f2-363b-4ebf-966a-bdf079d97114",
		HostName:     "ecs-00002",
		HostIP:       "10.10.0.2",
		HostOS:       "linux",
		AgentVersion: "1.0.0",
		AgentType:    cbr.AgentTypeNative,
	}}
	got, err := json.Marshal(register)
	require.NoError(t, err)
	assert.Equal(t, compact(t, "register_request.json"), string(got))

	update := struct {
		Agent cbr.AgentUpdate `json:"agent"`
	}{cbr.AgentUpdate{Status: cbr.AgentStatusUninstall}}
	got, err = json.Marshal(update)
	require.NoError(t, err)
	assert.Equal(t, compact(t, "update_request.json"), string(got))
}

func TestAgentRegisterOmitsUnsetOptionalFields(t *testing.T) {
	got, err := json.Marshal(cbr.AgentRegister{AgentID: "a", HostName: "h", HostIP: "10.0.0.1", HostOS: "linux"})
	require.NoError(t, err)
	assert.Equal(t, `{"agent_id":"a","host_name":"h","host_ip":"10.0.0.1","host_os":"linux"}`, string(got))
}

func TestDecodeRegisterResponse(t *testing.T) {
	a := decodeAgent(t, "register_response.json")

	assert.Equal(t, "489654f2-363b-4ebf-966a-bdf079d97114", a.AgentID)
	assert.Equal(t, "1.0.0", a.AgentVersion)
	assert.Equal(t, cbr.AgentTypeNative, a.AgentType)
	assert.Equal(t, "ecs-0001", a.HostName)
	assert.Equal(t, "", a.HostNickname)
	assert.Equal(t, "192.168.10.144", a.HostIP)
	assert.Equal(t, "linux", a.HostOS)
	assert.Equal(t, cbr.AgentStatusNormal, a.Status)
	assert.True(t, a.CreatedAt.Equal(time.Date(2022, 1, 30, 9, 28, 9, 334e6, time.UTC)), "created_at %v", a.CreatedAt)
	assert.True(t, a.UpdatedAt.Equal(time.Date(2022, 1, 30, 9, 28, 9, 334e6, time.UTC)), "updated_at %v", a.UpdatedAt)
	assert.True(t, a.LastActiveTime.Equal(time.Date(2022, 1, 30, 9, 28, 8, 960e6, time.UTC)), "last_active_time %v", a.LastActiveTime)
	assert.Nil(t, a.Paths)
}

func TestDecodeUpdateResponseWithPaths(t *testing.T) {
	a := decodeAgent(t, "update_response.json")

	assert.Equal(t, "489654f2-363b-4ebf-966a-bdf079d97114", a.AgentID)
	assert.Equal(t, cbr.AgentStatusUninstall, a.Status)
	assert.Equal(t, cbr.AgentTypeNative, a.AgentType)
	assert.True(t, a.CreatedAt.Equal(time.Date(2022, 1, 30, 9, 28, 9, 334e6, time.UTC)), "created_at %v", a.CreatedAt)
	assert.True(t, a.LastActiveTime.Equal(time.Date(2022, 1, 30, 9, 28, 8, 960e6, time.UTC)), "last_active_time %v", a.LastActiveTime)
	require.Len(t, a.Paths, 2)
	assert.Equal(t, cbr.Path{
		ID:           "5684b0fb-44c8-4c70-bb59-b03ec2738360",
		Status:       cbr.PathStatusAvailable,
		AgentID:      "0cba3ff9-f836-4178-9ce8-91dc8026321c",
		DirPath:      "/opt/huaweicloud/cbragent/lib",
		ExcludePaths: []string{"*.txt", "/opt/huaweicloud/cbragent/lib/test"},
	}, a.Paths[0])
	assert.Equal(t, cbr.Path{
		ID:           "1ad949d5-c955-4995-8c28-60fc8b110a21",
		Status:       cbr.PathStatusAvailable,
		AgentID:      "0cba3ff9-f836-4178-9ce8-91dc8026321c",
		DirPath:      "/opt/backup",
		ExcludePaths: []string{"*.txt", "/opt/huaweicloud/cbragent/lib/test"},
	}, a.Paths[1])
}

func TestDecodeShowResponseWithoutZone(t *testing.T) {
	a := decodeAgent(t, "show_response_nozone.json")

	// No zone suffix means UTC.
	assert.True(t, a.CreatedAt.Equal(time.Date(2022, 1, 30, 9, 28, 9, 334153000, time.UTC)), "created_at %v", a.CreatedAt)
	assert.True(t, a.LastActiveTime.Equal(time.Date(2022, 1, 30, 9, 28, 8, 959908000, time.UTC)), "last_active_time %v", a.LastActiveTime)
	assert.True(t, a.UpdatedAt.IsZero(), "null updated_at gives the zero time, got %v", a.UpdatedAt)
	assert.Equal(t, cbr.AgentStatusNormal, a.Status)
	assert.Equal(t, []cbr.Path{{
		ID:      "1ad949d5-c955-4995-8c28-60fc8b110a21",
		Status:  cbr.PathStatusAvailable,
		AgentID: "489654f2-363b-4ebf-966a-bdf079d97114",
		DirPath: "/opt/backup",
	}}, a.Paths)
}

// show_response_offset.json puts the other documented timestamp forms, an
// unknown status, an unknown path status and an unknown field in one body.
func TestDecodeOffsetsUnknownValuesAndFields(t *testing.T) {
	a := decodeAgent(t, "show_response_offset.json")

	// +08:00 is 8 hours ahead of UTC: 09:28:09+08:00 is 01:28:09 UTC. The
	// official SDK reads it as 09:28:09 UTC.
	assert.True(t, a.CreatedAt.Equal(time.Date(2022, 1, 30, 1, 28, 9, 0, time.UTC)), "created_at %v", a.CreatedAt)
	assert.False(t, a.CreatedAt.Equal(time.Date(2022, 1, 30, 9, 28, 9, 0, time.UTC)))
	_, offset := a.CreatedAt.Zone()
	assert.Equal(t, 8*3600, offset, "the offset is kept")
	assert.True(t, a.UpdatedAt.Equal(time.Date(2022, 1, 30, 9, 28, 9, 0, time.UTC)), "space-separated, no zone: UTC; got %v", a.UpdatedAt)
	assert.True(t, a.LastActiveTime.IsZero(), `"" gives the zero time, got %v`, a.LastActiveTime)

	assert.Equal(t, cbr.AgentType("cloud"), a.AgentType)
	assert.Equal(t, cbr.AgentStatus("upgrading"), a.Status, "unknown status kept")
	assert.Equal(t, "fd00::2", a.HostIP)
	require.Len(t, a.Paths, 1)
	assert.Equal(t, cbr.PathStatus("frozen"), a.Paths[0].Status, "unknown path status kept")
	assert.Equal(t, `C:\data`, a.Paths[0].DirPath)
	assert.Equal(t, []string{"*.tmp", `C:\data\cache`}, a.Paths[0].ExcludePaths, "split on commas, trimmed, empty items dropped")
}

func TestTimestampForms(t *testing.T) {
	tests := []struct {
		wire string
		want time.Time
	}{
		{`"2022-01-30T09:28:09.334+00:00"`, time.Date(2022, 1, 30, 9, 28, 9, 334e6, time.UTC)},
		{`"2022-01-30T09:28:09.334153"`, time.Date(2022, 1, 30, 9, 28, 9, 334153e3, time.UTC)},
		{`"2022-01-30T09:28:09"`, time.Date(2022, 1, 30, 9, 28, 9, 0, time.UTC)},
		{`"2022-01-30T09:28:09Z"`, time.Date(2022, 1, 30, 9, 28, 9, 0, time.UTC)},
		{`"2022-01-30T09:28:09.5Z"`, time.Date(2022, 1, 30, 9, 28, 9, 5e8, time.UTC)},
		{`"2022-01-30 09:28:09"`, time.Date(2022, 1, 30, 9, 28, 9, 0, time.UTC)},
		{`"2022-01-30 09:28:09.123"`, time.Date(2022, 1, 30, 9, 28, 9, 123e6, time.UTC)},
		{`"2022-01-30T09:28:09+08:00"`, time.Date(2022, 1, 30, 1, 28, 9, 0, time.UTC)},
		{`"2022-01-30T09:28:09.334153+08:00"`, time.Date(2022, 1, 30, 1, 28, 9, 334153e3, time.UTC)},
		{`"2022-01-30T01:28:09-05:30"`, time.Date(2022, 1, 30, 6, 58, 9, 0, time.UTC)},
		{`"2022-01-30T09:28:09\u002B08:00"`, time.Date(2022, 1, 30, 1, 28, 9, 0, time.UTC)}, // escapes are decoded
		{`"2022-01-30\u002009:28:09"`, time.Date(2022, 1, 30, 9, 28, 9, 0, time.UTC)},
		{`"2022-01-30T09:28:09+0800"`, time.Date(2022, 1, 30, 1, 28, 9, 0, time.UTC)},
		{`"2022-01-30T09:28:09.5+08"`, time.Date(2022, 1, 30, 1, 28, 9, 5e8, time.UTC)},
		{`"2022-01-30 09:28:09-0530"`, time.Date(2022, 1, 30, 14, 58, 9, 0, time.UTC)},
		{`"2022-01-30T09:28:09z"`, time.Date(2022, 1, 30, 9, 28, 9, 0, time.UTC)},
		{`null`, time.Time{}},
		{`""`, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.wire, func(t *testing.T) {
			var a cbr.Agent
			require.NoError(t, json.Unmarshal([]byte(`{"agent_id":"x","created_at":`+tt.wire+`}`), &a))
			assert.True(t, a.CreatedAt.Equal(tt.want), "got %v, want %v", a.CreatedAt, tt.want)
			assert.Equal(t, tt.want.IsZero(), a.CreatedAt.IsZero())
		})
	}
}

func TestTimestampRejectsGarbage(t *testing.T) {
	for _, wire := range []string{`"yesterday"`, `"2022-13-30T09:28:09"`, `"2022-01-30T09:28:09+0800x"`, `12345`, `true`} {
		t.Run(wire, func(t *testing.T) {
			var a cbr.Agent
			assert.Error(t, json.Unmarshal([]byte(`{"created_at":`+wire+`}`), &a))
		})
	}
}

func TestAgentRoundTrip(t *testing.T) {
	for _, name := range []string{"register_response.json", "update_response.json", "show_response_nozone.json", "show_response_offset.json"} {
		t.Run(name, func(t *testing.T) {
			first := decodeAgent(t, name)
			data, err := json.Marshal(first)
			require.NoError(t, err)
			var second cbr.Agent
			require.NoError(t, json.Unmarshal(data, &second))

			assert.True(t, first.CreatedAt.Equal(second.CreatedAt), "created_at %v != %v", first.CreatedAt, second.CreatedAt)
			assert.True(t, first.UpdatedAt.Equal(second.UpdatedAt), "updated_at %v != %v", first.UpdatedAt, second.UpdatedAt)
			assert.True(t, first.LastActiveTime.Equal(second.LastActiveTime))
			// With the instants checked, compare the rest field by field.
			first.CreatedAt, first.UpdatedAt, first.LastActiveTime = time.Time{}, time.Time{}, time.Time{}
			second.CreatedAt, second.UpdatedAt, second.LastActiveTime = time.Time{}, time.Time{}, time.Time{}
			assert.Equal(t, first, second)
		})
	}
}

func TestAgentMarshalWireForm(t *testing.T) {
	a := cbr.Agent{
		AgentID:   "a1",
		Status:    cbr.AgentStatusNormal,
		CreatedAt: instant(t, "2022-01-30T09:28:09.334153+08:00"),
		Paths:     []cbr.Path{{ID: "p1", DirPath: "/opt", ExcludePaths: []string{"*.txt", "/opt/tmp"}}},
	}
	got, err := json.Marshal(a)
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"agent_id": "a1",
		"status": "normal",
		"created_at": "2022-01-30T09:28:09.334153+08:00",
		"updated_at": null,
		"last_active_time": null,
		"paths": [{"id": "p1", "dir_path": "/opt", "exclude_paths": "*.txt,/opt/tmp"}]
	}`, string(got))
}

func TestPathWithoutExcludePathsOmitsIt(t *testing.T) {
	got, err := json.Marshal(cbr.Path{ID: "p", DirPath: "/d", Status: cbr.PathStatusRemove})
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":"p","dir_path":"/d","status":"remove"}`, string(got))
}

func TestDecodeIntoUsedAgentResetsTimesAndPaths(t *testing.T) {
	a := decodeAgent(t, "update_response.json")
	require.NoError(t, json.Unmarshal([]byte(`{"agent_id":"b","paths":[{"id":"p","dir_path":"/x"}]}`), &a))
	assert.Equal(t, "b", a.AgentID)
	assert.True(t, a.CreatedAt.IsZero(), "a missing timestamp decodes as zero, got %v", a.CreatedAt)
	require.Len(t, a.Paths, 1)
	assert.Nil(t, a.Paths[0].ExcludePaths)
}

// The operations decode agents through their own wire form, not through
// Agent.UnmarshalJSON; both must give the same Agent for every golden answer.
func TestOperationsDecodeAgentsAsUnmarshalJSONDoes(t *testing.T) {
	names := []string{"register_response.json", "update_response.json", "show_response_nozone.json", "show_response_offset.json"}
	var want []cbr.Agent
	var raw []json.RawMessage
	for _, name := range names {
		want = append(want, decodeAgent(t, name))
		var out struct {
			Agent json.RawMessage `json:"agent"`
		}
		require.NoError(t, json.Unmarshal(golden(t, name), &out))
		raw = append(raw, out.Agent)
	}
	ctx := context.Background()

	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			c, mt := newMockClient(t)
			mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, httpmock.NewBytesResponder(200, golden(t, name)))
			mt.RegisterResponder("PUT", agentsURL+"/"+testAgentID, httpmock.NewBytesResponder(200, golden(t, name)))
			mt.RegisterResponder("POST", agentsURL, httpmock.NewBytesResponder(200, golden(t, name)))

			got, err := c.ShowAgent(ctx, testAgentID)
			require.NoError(t, err)
			assert.Equal(t, want[i], *got, "ShowAgent")
			got, err = c.UpdateAgent(ctx, testAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
			require.NoError(t, err)
			assert.Equal(t, want[i], *got, "UpdateAgent")
			got, err = c.RegisterAgent(ctx, documentedRegister)
			require.NoError(t, err)
			assert.Equal(t, want[i], *got, "RegisterAgent")
		})
	}

	body, err := json.Marshal(map[string]any{"agents": raw, "count": len(raw), "limit": 1000, "offset": 0})
	require.NoError(t, err)
	c, mt := newMockClient(t)
	mt.RegisterResponder("GET", agentsURL, httpmock.NewBytesResponder(200, body))
	list, err := c.ListAgents(ctx, cbr.ListAgentsOptions{})
	require.NoError(t, err)
	assert.Equal(t, &cbr.AgentList{Agents: want, Count: len(want), Limit: 1000, Offset: 0}, list)
	var all []cbr.Agent
	for a, err := range c.Agents(ctx, cbr.ListAgentsOptions{}) {
		require.NoError(t, err)
		all = append(all, *a)
	}
	assert.Equal(t, want, all, "Agents")
}
