package cbr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

const (
	lcEndpoint = "https://cbr.ap-southeast-1.myhuaweicloud.com"
	lcProject  = "f841e01fd2b14e7fa41b6ae7aa6b0594"
	lcAgents   = lcEndpoint + "/v3/" + lcProject + "/agents"
	lcAgentID  = "489654f2-363b-4ebf-966a-bdf079d97114"
)

// wireCall is one request as the transport saw it.
type wireCall struct {
	Method, Path, RawQuery, Body string
	Header                       http.Header
}

// wireRecorder keeps every request a mock transport answers.
type wireRecorder struct {
	mu    sync.Mutex
	calls []wireCall
}

func (r *wireRecorder) add(req *http.Request) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, wireCall{req.Method, req.URL.Path, req.URL.RawQuery, string(body), req.Header.Clone()})
}

func (r *wireRecorder) all() []wireCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]wireCall(nil), r.calls...)
}

// respond returns a responder that records the request and answers status with body.
func (r *wireRecorder) respond(status int, body string) httpmock.Responder {
	return func(req *http.Request) (*http.Response, error) {
		r.add(req)
		resp := httpmock.NewStringResponse(status, body)
		resp.Header.Set("Content-Type", "application/json;charset=UTF-8")
		resp.Header.Set("X-Request-Id", "req-1")
		return resp, nil
	}
}

// lifecycleClient returns a client whose every attempt goes to a fresh mock
// transport, with 1-5 ms retry waits and up to 4 attempts.
func lifecycleClient(t *testing.T) (*cbr.Client, *httpmock.MockTransport, *wireRecorder) {
	t.Helper()
	mt := httpmock.NewMockTransport()
	rec := &wireRecorder{}
	mt.RegisterNoResponder(func(req *http.Request) (*http.Response, error) {
		rec.add(req)
		return nil, fmt.Errorf("no responder for %s %s", req.Method, req.URL)
	})
	c, err := cbr.NewClient(
		cbr.WithEndpoint(lcEndpoint),
		cbr.WithProjectID(lcProject),
		cbr.WithCredentials(cbr.Token("tok")),
		cbr.WithHTTPClient(&http.Client{Transport: mt}),
		cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 4, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}),
	)
	require.NoError(t, err)
	return c, mt, rec
}

// fakeClient returns a cbrtest server and a client for it.
func fakeClient(t *testing.T, opts ...cbr.Option) (*cbrtest.Server, *cbr.Client) {
	t.Helper()
	srv := cbrtest.NewServer()
	t.Cleanup(srv.Close)
	c, err := srv.Client(opts...)
	require.NoError(t, err)
	return srv, c
}

func testRegister(id string) cbr.AgentRegister {
	return cbr.AgentRegister{
		AgentID: id, HostName: "ecs-00002", HostIP: "10.10.0.2", HostOS: "linux",
		AgentVersion: "1.0.0", AgentType: cbr.AgentTypeNative,
	}
}

func TestShowAgent(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	mt.RegisterResponder("GET", lcAgents+"/"+lcAgentID, rec.respond(200, `{"agent":{
		"agent_id":"489654f2-363b-4ebf-966a-bdf079d97114","agent_type":"native","agent_version":"1.0.0",
		"created_at":"2022-01-30T09:28:09.334153","host_ip":"192.168.10.144","host_name":"ecs-0001","host_nickname":"",
		"host_os":"linux","last_active_time":"2022-01-30T09:28:08.959908","status":"normal","updated_at":null,
		"paths":[{"agent_id":"489654f2-363b-4ebf-966a-bdf079d97114","dir_path":"/opt/backup","id":"p1","status":"available","exclude_paths":"/opt/backup/tmp,*.log"}]}}`))

	a, err := c.ShowAgent(context.Background(), lcAgentID)
	require.NoError(t, err)

	calls := rec.all()
	require.Len(t, calls, 1)
	assert.Equal(t, "GET", calls[0].Method)
	assert.Equal(t, "/v3/"+lcProject+"/agents/"+lcAgentID, calls[0].Path)
	assert.Empty(t, calls[0].RawQuery)
	assert.Empty(t, calls[0].Body)
	assert.Empty(t, calls[0].Header.Get("Content-Type"), "a GET has no body, so no content type")
	assert.Equal(t, "tok", calls[0].Header.Get("X-Auth-Token"))

	assert.Equal(t, lcAgentID, a.AgentID)
	assert.Equal(t, cbr.AgentStatusNormal, a.Status)
	assert.Equal(t, time.Date(2022, 1, 30, 9, 28, 9, 334153000, time.UTC), a.CreatedAt)
	assert.True(t, a.UpdatedAt.IsZero())
	require.Len(t, a.Paths, 1)
	assert.Equal(t, cbr.Path{ID: "p1", Status: cbr.PathStatusAvailable, AgentID: lcAgentID, DirPath: "/opt/backup",
		ExcludePaths: []string{"/opt/backup/tmp", "*.log"}}, a.Paths[0])
}

func TestShowAgentNotFound(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	mt.RegisterResponder("GET", lcAgents+"/missing", rec.respond(404,
		`{"error_code":"BackupService.7410","error_msg":"Agent missing not found."}`))

	a, err := c.ShowAgent(context.Background(), "missing")
	assert.Nil(t, a)
	require.ErrorIs(t, err, cbr.ErrNotFound)
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "BackupService.7410", apiErr.Code)
	assert.Equal(t, "req-1", apiErr.RequestID)
	assert.Equal(t, 1, apiErr.Attempts, "a 404 is not retried")
	assert.Len(t, rec.all(), 1)
}

func TestShowAgentValidatesID(t *testing.T) {
	c, _, rec := lifecycleClient(t)
	for _, id := range []string{"", ".", "..", "a/b", "a\nb"} {
		_, err := c.ShowAgent(context.Background(), id)
		var ve *cbr.ValidationError
		require.ErrorAs(t, err, &ve, "id %q", id)
		assert.Equal(t, "agent_id", ve.Field)
		assert.ErrorIs(t, err, cbr.ErrInvalidRequest)
	}
	assert.Empty(t, rec.all(), "nothing is sent for an invalid ID")
}

func TestShowAgentEscapesID(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	mt.RegisterNoResponder(rec.respond(200, `{"agent":{"agent_id":"a b?c"}}`))
	a, err := c.ShowAgent(context.Background(), "a b?c")
	require.NoError(t, err)
	assert.Equal(t, "a b?c", a.AgentID)
	calls := rec.all()
	require.Len(t, calls, 1)
	assert.Equal(t, "/v3/"+lcProject+"/agents/a b?c", calls[0].Path, "decoded path")
	assert.Empty(t, calls[0].RawQuery, "the ? is escaped, not a query")
}

func TestListAgentsWire(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	// The API's example answer.
	mt.RegisterResponder("GET", lcAgents, rec.respond(200, `{"agents":[
		{"agent_id":"489654f2-363b-4ebf-966a-bdf079d97114","created_at":"2022-01-30T09:28:09.334153","host_ip":"18.9.158.36",
		 "host_name":"eBackup","last_active_time":"2022-01-30T09:28:08.959908","paths":null,"status":"normal","updated_at":null},
		{"agent_id":"fb711278-e872-4224-b442-8dafc36a543d","created_at":"2022-01-14T06:47:17.524133","host_ip":"10.10.0.1",
		 "host_name":"ecs-00001","last_active_time":"2022-01-28T05:01:32.000000","paths":[
		  {"agent_id":"fb711278-e872-4224-b442-8dafc36a543d","dir_path":"/home/hcp","id":"6c3d1ed6-b7d7-4e27-94ee-321431e84c5c","status":"available"}],
		 "status":"normal","updated_at":"2022-01-28T05:01:32.738510"}],"count":2,"limit":1000,"offset":0}`))

	list, err := c.ListAgents(context.Background(), cbr.ListAgentsOptions{
		Status: cbr.AgentStatusNormal, AgentIDs: []string{"a", "b"}, Limit: 2,
	})
	require.NoError(t, err)

	calls := rec.all()
	require.Len(t, calls, 1)
	assert.Equal(t, "GET", calls[0].Method)
	assert.Equal(t, "/v3/"+lcProject+"/agents", calls[0].Path)
	assert.Equal(t, "agent_id=a&agent_id=b&limit=2&offset=0&status=normal", calls[0].RawQuery)
	assert.Empty(t, calls[0].Body)

	assert.Equal(t, 2, list.Count)
	assert.Equal(t, 1000, list.Limit)
	assert.Equal(t, 0, list.Offset)
	require.Len(t, list.Agents, 2)
	assert.Equal(t, "eBackup", list.Agents[0].HostName)
	assert.Nil(t, list.Agents[0].Paths)
	assert.Equal(t, "/home/hcp", list.Agents[1].Paths[0].DirPath)
	assert.Equal(t, time.Date(2022, 1, 28, 5, 1, 32, 738510000, time.UTC), list.Agents[1].UpdatedAt)
}

func TestListAgentsDefaults(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	mt.RegisterResponder("GET", lcAgents, rec.respond(200, `{"agents":[],"count":0,"limit":1000,"offset":7}`))

	list, err := c.ListAgents(context.Background(), cbr.ListAgentsOptions{Offset: 7})
	require.NoError(t, err)
	calls := rec.all()
	require.Len(t, calls, 1)
	assert.Equal(t, "offset=7", calls[0].RawQuery, "a zero limit is not sent")
	assert.Empty(t, list.Agents)
	assert.Equal(t, 7, list.Offset)
}

func TestListAgentsValidation(t *testing.T) {
	c, _, rec := lifecycleClient(t)
	for _, tc := range []struct {
		name  string
		opts  cbr.ListAgentsOptions
		field string
	}{
		{"negative limit", cbr.ListAgentsOptions{Limit: -1}, "limit"},
		{"limit over 1000", cbr.ListAgentsOptions{Limit: 1001}, "limit"},
		{"negative offset", cbr.ListAgentsOptions{Offset: -1}, "offset"},
		{"offset over int32", cbr.ListAgentsOptions{Offset: 1 << 31}, "offset"},
		{"unknown status", cbr.ListAgentsOptions{Status: "deleted"}, "status"},
		{"empty agent ID", cbr.ListAgentsOptions{AgentIDs: []string{"a", ""}}, "agent_id"},
		{"agent ID with a control character", cbr.ListAgentsOptions{AgentIDs: []string{"a\x00"}}, "agent_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ListAgents(context.Background(), tc.opts)
			var ve *cbr.ValidationError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tc.field, ve.Field)
			assert.Equal(t, "list agents", ve.Op)
			assert.ErrorIs(t, err, cbr.ErrInvalidRequest)
		})
	}
	assert.Empty(t, rec.all())
}

// pager answers list requests from a fixed set of agents, paging by the query.
type pager struct {
	ids         []string
	countIsPage bool // count is the page's size, not the total
	maxPage     int  // the server's own cap on the page size; 0 for none
	ignoreOff   bool // a broken server that always starts at 0
	rec         wireRecorder
}

func (p *pager) respond(req *http.Request) (*http.Response, error) {
	p.rec.add(req)
	q := req.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	offset, _ := strconv.Atoi(q.Get("offset"))
	if p.maxPage > 0 && limit > p.maxPage {
		limit = p.maxPage
	}
	if p.ignoreOff {
		offset = 0
	}
	start := min(offset, len(p.ids))
	end := min(start+limit, len(p.ids))
	agents := make([]map[string]string, 0, end-start)
	for _, id := range p.ids[start:end] {
		agents = append(agents, map[string]string{"agent_id": id})
	}
	count := len(p.ids)
	if p.countIsPage {
		count = len(agents)
	}
	return httpmock.NewJsonResponse(200, map[string]any{"agents": agents, "count": count, "limit": limit, "offset": offset})
}

func (p *pager) offsets() []string {
	var out []string
	for _, c := range p.rec.all() {
		out = append(out, c.RawQuery)
	}
	return out
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("agent-%02d", i)
	}
	return out
}

func collect(t *testing.T, seq func(func(*cbr.Agent, error) bool)) ([]string, error) {
	t.Helper()
	var got []string
	for a, err := range seq {
		if err != nil {
			return got, err
		}
		got = append(got, a.AgentID)
	}
	return got, nil
}

func TestAgentsPages(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       *pager
		limit   int
		queries []string
	}{
		{"count is the total, 3 pages", &pager{ids: ids(5)}, 2,
			[]string{"limit=2&offset=0", "limit=2&offset=2", "limit=2&offset=4"}},
		{"count is the page size, short last page", &pager{ids: ids(5), countIsPage: true}, 2,
			[]string{"limit=2&offset=0", "limit=2&offset=2", "limit=2&offset=4"}},
		{"count is the page size, empty last page", &pager{ids: ids(4), countIsPage: true}, 2,
			[]string{"limit=2&offset=0", "limit=2&offset=2", "limit=2&offset=4"}},
		{"count is the total and a multiple of the limit", &pager{ids: ids(4)}, 2,
			[]string{"limit=2&offset=0", "limit=2&offset=2"}},
		{"server caps the page below the limit", &pager{ids: ids(5), maxPage: 2, countIsPage: true}, 3,
			[]string{"limit=3&offset=0", "limit=3&offset=2", "limit=3&offset=4"}},
		{"no agents", &pager{}, 2, []string{"limit=2&offset=0"}},
		{"zero limit asks for pages of 1000", &pager{ids: ids(3)}, 0, []string{"limit=1000&offset=0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, mt, _ := lifecycleClient(t)
			mt.RegisterResponder("GET", lcAgents, tc.p.respond)
			got, err := collect(t, c.Agents(context.Background(), cbr.ListAgentsOptions{Limit: tc.limit}))
			require.NoError(t, err)
			if len(tc.p.ids) == 0 {
				assert.Empty(t, got)
			} else {
				assert.Equal(t, tc.p.ids, got)
			}
			assert.Equal(t, tc.queries, tc.p.offsets())
		})
	}
}

func TestAgentsEarlyBreak(t *testing.T) {
	c, mt, _ := lifecycleClient(t)
	p := &pager{ids: ids(5)}
	mt.RegisterResponder("GET", lcAgents, p.respond)

	var got []string
	for a, err := range c.Agents(context.Background(), cbr.ListAgentsOptions{Limit: 2}) {
		require.NoError(t, err)
		got = append(got, a.AgentID)
		if len(got) == 3 {
			break
		}
	}
	assert.Equal(t, ids(5)[:3], got)
	assert.Equal(t, []string{"limit=2&offset=0", "limit=2&offset=2"}, p.offsets(), "no request after the break")

	// A break on the last agent of a page fetches nothing more either.
	p2 := &pager{ids: ids(5)}
	mt.RegisterResponder("GET", lcAgents, p2.respond)
	n := 0
	for range c.Agents(context.Background(), cbr.ListAgentsOptions{Limit: 2}) {
		if n++; n == 2 {
			break
		}
	}
	assert.Equal(t, []string{"limit=2&offset=0"}, p2.offsets())
}

func TestAgentsCarriesFilters(t *testing.T) {
	c, mt, _ := lifecycleClient(t)
	p := &pager{ids: ids(3)}
	mt.RegisterResponder("GET", lcAgents, p.respond)
	got, err := collect(t, c.Agents(context.Background(), cbr.ListAgentsOptions{
		Status: cbr.AgentStatusAbnormal, AgentIDs: []string{"x"}, Limit: 2, Offset: 1,
	}))
	require.NoError(t, err)
	assert.Equal(t, ids(3)[1:], got)
	assert.Equal(t, []string{"agent_id=x&limit=2&offset=1&status=abnormal"}, p.offsets())
}

func TestAgentsStopsAtFirstError(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	p := &pager{ids: ids(5)}
	mt.RegisterResponder("GET", lcAgents, func(req *http.Request) (*http.Response, error) {
		if req.URL.Query().Get("offset") == "2" {
			return rec.respond(403, `{"error_code":"APIGW.0302","error_msg":"not authorized"}`)(req)
		}
		return p.respond(req)
	})
	var got []string
	var errs []error
	for a, err := range c.Agents(context.Background(), cbr.ListAgentsOptions{Limit: 2}) {
		if err != nil {
			assert.Nil(t, a)
			errs = append(errs, err)
			continue // the sequence must end by itself
		}
		got = append(got, a.AgentID)
	}
	assert.Equal(t, ids(2), got)
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], cbr.ErrForbidden)
	assert.Len(t, p.rec.all(), 1)
	assert.Len(t, rec.all(), 1)
}

func TestAgentsInvalidOptions(t *testing.T) {
	c, _, rec := lifecycleClient(t)
	n := 0
	for a, err := range c.Agents(context.Background(), cbr.ListAgentsOptions{Limit: 5000}) {
		n++
		assert.Nil(t, a)
		assert.ErrorIs(t, err, cbr.ErrInvalidRequest)
	}
	assert.Equal(t, 1, n)
	assert.Empty(t, rec.all())
}

func TestAgentsDetectsIgnoredOffset(t *testing.T) {
	c, mt, _ := lifecycleClient(t)
	p := &pager{ids: ids(5), ignoreOff: true, countIsPage: true}
	mt.RegisterResponder("GET", lcAgents, p.respond)
	got, err := collect(t, c.Agents(context.Background(), cbr.ListAgentsOptions{Limit: 2}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "repeats the page before it")
	assert.Equal(t, ids(2), got, "the repeated page is not yielded")
	assert.Len(t, p.offsets(), 2)
}

func TestAgentsAgainstFake(t *testing.T) {
	srv, c := fakeClient(t)
	ctx := context.Background()
	for _, id := range ids(5) {
		_, err := c.RegisterAgent(ctx, testRegister(id))
		require.NoError(t, err)
	}
	_, err := c.UpdateAgent(ctx, "agent-03", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)
	before := srv.Requests()

	got, err := collect(t, c.Agents(ctx, cbr.ListAgentsOptions{Limit: 2}))
	require.NoError(t, err)
	assert.Equal(t, ids(5), got)
	assert.Equal(t, 3, srv.Requests()-before, "3 pages of 2, 2 and 1")

	got, err = collect(t, c.Agents(ctx, cbr.ListAgentsOptions{Status: cbr.AgentStatusUninstall}))
	require.NoError(t, err)
	assert.Equal(t, []string{"agent-03"}, got)
}

func TestUnregisterAgentWire(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	mt.RegisterResponder("DELETE", lcAgents+"/"+lcAgentID, rec.respond(200, ""))
	require.NoError(t, c.UnregisterAgent(context.Background(), lcAgentID))
	calls := rec.all()
	require.Len(t, calls, 1)
	assert.Equal(t, "DELETE", calls[0].Method)
	assert.Equal(t, "/v3/"+lcProject+"/agents/"+lcAgentID, calls[0].Path)
	assert.Empty(t, calls[0].Body)

	err := c.UnregisterAgent(context.Background(), "a/b")
	assert.ErrorIs(t, err, cbr.ErrInvalidRequest)
	assert.Len(t, rec.all(), 1)
}

func TestUnregisterAgentFake(t *testing.T) {
	srv, c := fakeClient(t)
	ctx := context.Background()
	_, err := c.RegisterAgent(ctx, testRegister("a1"))
	require.NoError(t, err)

	require.NoError(t, c.UnregisterAgent(ctx, "a1"))
	_, ok := srv.Agent("a1")
	assert.False(t, ok)

	err = c.UnregisterAgent(ctx, "a1")
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.ErrorIs(t, err, cbr.ErrNotFound)
	assert.Equal(t, "BackupService.7410", apiErr.Code)

	// The first attempt removes the agent but its answer is lost; the retry
	// finds nothing. The agent is gone, as asked: no error.
	_, err = c.RegisterAgent(ctx, testRegister("a2"))
	require.NoError(t, err)
	before := srv.Requests()
	srv.InjectFaults(cbrtest.Fault{Drop: true, AfterHandling: true})
	require.NoError(t, c.UnregisterAgent(ctx, "a2"))
	assert.Equal(t, 2, srv.Requests()-before)
	_, ok = srv.Agent("a2")
	assert.False(t, ok)
}

func TestAddAgentPathsWire(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	mt.RegisterResponder("POST", lcAgents+"/"+lcAgentID+"/add-path",
		rec.respond(200, `{"added":["/opt/backup","/var/log"],"existed":["/tmp/backup"]}`))

	got, err := c.AddAgentPaths(context.Background(), lcAgentID, cbr.AddPathsRequest{
		Paths:   []string{"/opt/backup", "/var/log", "/tmp/backup"},
		Exclude: []cbr.ExcludePath{{PathName: "/var/log", ExcludePathNames: []string{"/var/log/old", "*.gz"}}},
	})
	require.NoError(t, err)
	assert.Equal(t, &cbr.PathsAdded{Added: []string{"/opt/backup", "/var/log"}, Existed: []string{"/tmp/backup"}}, got)

	_, err = c.AddAgentPaths(context.Background(), lcAgentID, cbr.AddPathsRequest{Paths: []string{`D:\data`}})
	require.NoError(t, err)

	calls := rec.all()
	require.Len(t, calls, 2)
	assert.Equal(t, "POST", calls[0].Method)
	assert.Equal(t, "/v3/"+lcProject+"/agents/"+lcAgentID+"/add-path", calls[0].Path)
	assert.Equal(t, "application/json;charset=UTF-8", calls[0].Header.Get("Content-Type"))
	assert.JSONEq(t, `{"add_path":["/opt/backup","/var/log","/tmp/backup"],
		"exclude_path":[{"path_name":"/var/log","exclude_path_name":["/var/log/old","*.gz"]}]}`, calls[0].Body)
	assert.JSONEq(t, `{"add_path":["D:\\data"]}`, calls[1].Body, "no exclude_path when there is none")
}

func TestRemoveAgentPathsWire(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	mt.RegisterResponder("POST", lcAgents+"/"+lcAgentID+"/remove-path",
		rec.respond(200, `{"not_existed":["/home"],"removed":["/tmp"]}`))

	got, err := c.RemoveAgentPaths(context.Background(), lcAgentID, []string{"/tmp", "/home"})
	require.NoError(t, err)
	assert.Equal(t, &cbr.PathsRemoved{Removed: []string{"/tmp"}, NotExisted: []string{"/home"}}, got)

	calls := rec.all()
	require.Len(t, calls, 1)
	assert.Equal(t, "POST", calls[0].Method)
	assert.Equal(t, "/v3/"+lcProject+"/agents/"+lcAgentID+"/remove-path", calls[0].Path)
	assert.JSONEq(t, `{"remove_path":["/tmp","/home"]}`, calls[0].Body)
}

func TestPathValidation(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	mt.RegisterNoResponder(rec.respond(200, `{"added":[],"existed":[],"removed":[],"not_existed":[]}`))
	ctx := context.Background()

	valid := []string{"/opt/data", "/a", "/opt/workspace/", "//server/share", `C:\`, `D:\data\db`, `d:\\x`, "D:/data", "/with space/ü"}
	for _, p := range valid {
		_, err := c.AddAgentPaths(ctx, "a1", cbr.AddPathsRequest{Paths: []string{p}})
		assert.NoError(t, err, "add %q", p)
		_, err = c.RemoveAgentPaths(ctx, "a1", []string{p})
		assert.NoError(t, err, "remove %q", p)
	}
	require.Len(t, rec.all(), 2*len(valid))

	invalid := []string{"", "/", "relative/path", "data", "./data", "C:", "C:/", "C:data", "1:/data", `\\server\share`, "/opt/\ndata", "/opt/\x00"}
	for _, p := range invalid {
		_, err := c.AddAgentPaths(ctx, "a1", cbr.AddPathsRequest{Paths: []string{"/ok", p}})
		var ve *cbr.ValidationError
		if assert.ErrorAs(t, err, &ve, "add %q", p) {
			assert.Equal(t, "add_path", ve.Field)
			assert.Equal(t, "add agent paths", ve.Op)
		}
		_, err = c.RemoveAgentPaths(ctx, "a1", []string{p})
		if assert.ErrorAs(t, err, &ve, "remove %q", p) {
			assert.Equal(t, "remove_path", ve.Field)
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
	_, err := c.RemoveAgentPaths(ctx, "a1", nil)
	assert.ErrorIs(t, err, cbr.ErrInvalidRequest)
	_, err = c.AddAgentPaths(ctx, "", cbr.AddPathsRequest{Paths: []string{"/a"}})
	assert.ErrorIs(t, err, cbr.ErrInvalidRequest)

	assert.Len(t, rec.all(), 2*len(valid), "nothing is sent for an invalid request")
}

func TestAgentPathsFake(t *testing.T) {
	srv, c := fakeClient(t)
	ctx := context.Background()
	_, err := c.RegisterAgent(ctx, testRegister("a1"))
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

	removed, err := c.RemoveAgentPaths(ctx, "a1", []string{"/srv", "/nope"})
	require.NoError(t, err)
	assert.Equal(t, &cbr.PathsRemoved{Removed: []string{"/srv"}, NotExisted: []string{"/nope"}}, removed)
	assert.Equal(t, []string{"/opt/data", "/var/log"}, srv.Paths("a1"))

	_, err = c.AddAgentPaths(ctx, "nobody", cbr.AddPathsRequest{Paths: []string{"/a"}})
	assert.ErrorIs(t, err, cbr.ErrNotFound)
	_, err = c.RemoveAgentPaths(ctx, "nobody", []string{"/a"})
	assert.ErrorIs(t, err, cbr.ErrNotFound)
}

func TestCheckAgentsWire(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	mt.RegisterResponder("POST", lcEndpoint+"/v3/"+lcProject+"/agent/check", rec.respond(200, `{"agent_status":[
		{"code":null,"installed":false,"is_old":null,"message":null,"resource_id":"6c0e29fc-5eaa-4f76-af9e-cc79895f70d7","version":null},
		{"code":1001,"installed":true,"is_old":true,"message":"agent unreachable","resource_id":"r2","version":"2.4.1"},
		{"resource_id":"r3","installed":null}]}`))

	got, err := c.CheckAgents(context.Background(), []cbr.AgentCheckRequest{
		{ResourceID: "6c0e29fc-5eaa-4f76-af9e-cc79895f70d7", ResourceType: cbr.ResourceTypeServer, ResourceName: "ecs-8f7b"},
		{ResourceID: "r2", ResourceType: cbr.ResourceTypeBareMetalServer},
		{ResourceID: "r3", ResourceType: cbr.ResourceTypeServer},
	})
	require.NoError(t, err)

	calls := rec.all()
	require.Len(t, calls, 1)
	assert.Equal(t, "POST", calls[0].Method)
	assert.Equal(t, "/v3/"+lcProject+"/agent/check", calls[0].Path)
	assert.JSONEq(t, `{"agent_status":[
		{"resource_id":"6c0e29fc-5eaa-4f76-af9e-cc79895f70d7","resource_type":"OS::Nova::Server","resource_name":"ecs-8f7b"},
		{"resource_id":"r2","resource_type":"OS::Ironic::BareMetalServer"},
		{"resource_id":"r3","resource_type":"OS::Nova::Server"}]}`, calls[0].Body)

	require.Len(t, got, 3)
	no, yes, code := false, true, 1001
	assert.Equal(t, cbr.AgentCheck{ResourceID: "6c0e29fc-5eaa-4f76-af9e-cc79895f70d7", Installed: &no}, got[0])
	assert.Equal(t, cbr.AgentCheck{ResourceID: "r2", Installed: &yes, IsOld: &yes, Version: "2.4.1", Code: &code, Message: "agent unreachable"}, got[1])
	assert.Nil(t, got[2].Installed, "null is not false")
	assert.Nil(t, got[2].IsOld)
	assert.Nil(t, got[2].Code)
}

func TestCheckAgentsValidation(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
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
		_, err := c.CheckAgents(context.Background(), tc.in)
		var ve *cbr.ValidationError
		if assert.ErrorAs(t, err, &ve, tc.name) {
			assert.Equal(t, tc.field, ve.Field, tc.name)
		}
	}
	assert.Empty(t, rec.all())

	// An answer without agent_status is an error, not an empty result.
	mt.RegisterNoResponder(rec.respond(200, `{}`))
	_, err := c.CheckAgents(context.Background(), []cbr.AgentCheckRequest{ok})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "agent_status")
}

func TestCheckAgentsFake(t *testing.T) {
	srv, c := fakeClient(t)
	yes, no := true, false
	srv.SetAgentCheck(cbr.AgentCheck{ResourceID: "r1", Installed: &yes, IsOld: &no, Version: "1.0.0"})
	got, err := c.CheckAgents(context.Background(), []cbr.AgentCheckRequest{
		{ResourceID: "r1", ResourceType: cbr.ResourceTypeServer},
		{ResourceID: "r2", ResourceType: cbr.ResourceTypeBareMetalServer},
	})
	require.NoError(t, err)
	assert.Equal(t, []cbr.AgentCheck{
		{ResourceID: "r1", Installed: &yes, IsOld: &no, Version: "1.0.0"},
		{ResourceID: "r2", Installed: &no},
	}, got)
}

// --- RegisterAgent reconciliation ---

func TestRegisterAgentStoredThenDropped(t *testing.T) {
	srv, c := fakeClient(t)
	// The first attempt registers the agent, and its connection drops; every
	// later attempt fails. The client must not call that a failure.
	srv.InjectFaults(
		cbrtest.Fault{Drop: true, AfterHandling: true},
		cbrtest.Fault{Status: 503}, cbrtest.Fault{Status: 503}, cbrtest.Fault{Status: 503},
	)
	in := testRegister(lcAgentID)
	a, err := c.RegisterAgent(context.Background(), in)
	require.NoError(t, err)
	require.NotNil(t, a)
	assert.Equal(t, lcAgentID, a.AgentID)
	assert.Equal(t, "ecs-00002", a.HostName)
	assert.Equal(t, cbr.AgentStatusNormal, a.Status)
	assert.Equal(t, 5, srv.Requests(), "4 attempts, then one show")
	stored, ok := srv.Agent(lcAgentID)
	require.True(t, ok)
	assert.Equal(t, "10.10.0.2", stored.HostIP)
}

func TestRegisterAgentDroppedNothingStored(t *testing.T) {
	srv, c := fakeClient(t)
	srv.InjectFaults(
		cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true},
	)
	a, err := c.RegisterAgent(context.Background(), testRegister(lcAgentID))
	assert.Nil(t, a)
	require.Error(t, err)
	assert.NotErrorIs(t, err, cbr.ErrNotFound, "the error is the registration's, not the check's")
	assert.Contains(t, err.Error(), "cbr: register agent: ")
	assert.Contains(t, err.Error(), "agent "+lcAgentID+" is not registered")
	assert.Equal(t, 5, srv.Requests(), "4 attempts, then one show")
	assert.Empty(t, srv.Agents())
}

func TestRegisterAgentSingleAttemptDropped(t *testing.T) {
	srv, c := fakeClient(t, cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 1}))
	srv.InjectFaults(cbrtest.Fault{Drop: true, AfterHandling: true})
	a, err := c.RegisterAgent(context.Background(), testRegister(lcAgentID))
	require.NoError(t, err)
	assert.Equal(t, lcAgentID, a.AgentID)
	assert.Equal(t, 2, srv.Requests())
}

func TestRegisterAgentDefiniteFailureIsNotChecked(t *testing.T) {
	srv, c := fakeClient(t)
	srv.InjectFaults(cbrtest.Fault{Status: 400, Code: "BackupService.7403", Message: "Invalid agent"})
	_, err := c.RegisterAgent(context.Background(), testRegister(lcAgentID))
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "BackupService.7403", apiErr.Code)
	assert.Equal(t, 1, srv.Requests(), "a 400 says the registration did not happen: no check")

	// Throttled throughout: the gateway refused every attempt.
	srv2, c2 := fakeClient(t)
	srv2.InjectFaults(cbrtest.Fault{Status: 429}, cbrtest.Fault{Status: 429}, cbrtest.Fault{Status: 429}, cbrtest.Fault{Status: 429})
	_, err = c2.RegisterAgent(context.Background(), testRegister(lcAgentID))
	assert.ErrorIs(t, err, cbr.ErrRateLimited)
	assert.Equal(t, 4, srv2.Requests())
}

func TestRegisterAgentDialErrorIsNotChecked(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	mt.RegisterNoResponder(func(req *http.Request) (*http.Response, error) {
		rec.add(req)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	})
	_, err := c.RegisterAgent(context.Background(), testRegister(lcAgentID))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connection refused")
	calls := rec.all()
	assert.Len(t, calls, 4)
	for _, call := range calls {
		assert.Equal(t, "POST", call.Method, "no request reached the server, so there is nothing to check")
	}
}

func TestRegisterAgentOtherHostFacts(t *testing.T) {
	srv, c := fakeClient(t)
	ctx := context.Background()
	other := testRegister(lcAgentID)
	other.HostName, other.HostIP = "someone-else", "10.0.0.9"
	_, err := c.RegisterAgent(ctx, other)
	require.NoError(t, err)

	srv.InjectFaults(cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true})
	_, err = c.RegisterAgent(ctx, testRegister(lcAgentID))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exists with other host facts or uninstalled")
}

func TestRegisterAgentUninstalledIsNotConfirmed(t *testing.T) {
	srv, c := fakeClient(t)
	ctx := context.Background()
	_, err := c.RegisterAgent(ctx, testRegister(lcAgentID))
	require.NoError(t, err)
	_, err = c.UpdateAgent(ctx, lcAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)

	// A re-install whose attempts never reach the server: the agent found is
	// the old, uninstalled one, which is not this registration.
	srv.InjectFaults(cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true})
	_, err = c.RegisterAgent(ctx, testRegister(lcAgentID))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exists with other host facts or uninstalled")

	// The same re-install, through: normal again.
	a, err := c.RegisterAgent(ctx, testRegister(lcAgentID))
	require.NoError(t, err)
	assert.Equal(t, cbr.AgentStatusNormal, a.Status)
}

func TestRegisterAgentDeadlineDuringEffectiveAttempt(t *testing.T) {
	srv, c := fakeClient(t)
	// The request takes effect, then the answer is held until the client gives up.
	srv.InjectFaults(cbrtest.Fault{AfterHandling: true, Delay: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()

	start := time.Now()
	_, err := c.RegisterAgent(ctx, testRegister(lcAgentID))
	assert.Less(t, time.Since(start), 2*time.Second, "the deadline is honoured, check included")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "whether agent "+lcAgentID+" was registered is unknown")
	assert.Equal(t, 1, srv.Requests(), "no check after the deadline")
	_, stored := srv.Agent(lcAgentID)
	require.True(t, stored, "the registration took effect")

	// Registering again with the same ID settles it, with no second agent.
	a, err := c.RegisterAgent(context.Background(), testRegister(lcAgentID))
	require.NoError(t, err)
	assert.Equal(t, lcAgentID, a.AgentID)
	assert.Len(t, srv.Agents(), 1)
}

func TestRegisterAgentDeadlineBeforeEffect(t *testing.T) {
	srv, c := fakeClient(t)
	srv.InjectFaults(cbrtest.Fault{Delay: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()

	_, err := c.RegisterAgent(ctx, testRegister(lcAgentID))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "was registered is unknown")
	assert.Equal(t, 1, srv.Requests(), "the attempt only")
	assert.Empty(t, srv.Agents())
}

func TestRegisterAgentSuccessWithoutBodyIsChecked(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	mt.RegisterResponder("POST", lcAgents, rec.respond(200, `{}`))
	mt.RegisterResponder("GET", lcAgents+"/"+lcAgentID, rec.respond(200, `{"agent":{"agent_id":"`+lcAgentID+
		`","host_name":"ecs-00002","host_ip":"10.10.0.2","host_os":"linux","status":"normal"}}`))
	a, err := c.RegisterAgent(context.Background(), testRegister(lcAgentID))
	require.NoError(t, err)
	assert.Equal(t, "ecs-00002", a.HostName)
	assert.Len(t, rec.all(), 2)
}

func TestRegisterAgentCheckFails(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	mt.RegisterResponder("POST", lcAgents, rec.respond(502, `{"error_code":"APIGW.0610","error_msg":"No backend available"}`))
	mt.RegisterResponder("GET", lcAgents+"/"+lcAgentID, rec.respond(503, `{"error_code":"APIGW.0613","error_msg":"IAM unavailable"}`))
	_, err := c.RegisterAgent(context.Background(), testRegister(lcAgentID))
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 502, apiErr.StatusCode, "the registration's error")
	assert.Contains(t, err.Error(), "whether agent "+lcAgentID+" was registered is unknown")
	assert.Contains(t, err.Error(), "503")
	assert.Len(t, rec.all(), 8, "4 POST attempts, 4 GET attempts")
}

// --- UpdateAgent on an uninstalled agent ---

func TestUpdateAgentUninstallTwiceFake(t *testing.T) {
	srv, c := fakeClient(t)
	ctx := context.Background()
	_, err := c.RegisterAgent(ctx, testRegister(lcAgentID))
	require.NoError(t, err)
	_, err = c.UpdateAgent(ctx, lcAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)

	before := srv.Requests()
	a, err := c.UpdateAgent(ctx, lcAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)
	assert.Equal(t, cbr.AgentStatusUninstall, a.Status)
	assert.Equal(t, 2, srv.Requests()-before, "the refused update, then a show")
}

func TestUpdateAgentInvalidAgentStays(t *testing.T) {
	c, mt, rec := lifecycleClient(t)
	mt.RegisterResponder("PUT", lcAgents+"/"+lcAgentID, rec.respond(400,
		`{"error_code":"BackupService.7403","error_msg":"Invalid agent `+lcAgentID+`"}`))
	mt.RegisterResponder("GET", lcAgents+"/"+lcAgentID, rec.respond(200, `{"agent":{"agent_id":"`+lcAgentID+`","status":"normal"}}`))
	_, err := c.UpdateAgent(context.Background(), lcAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr, "the agent is not uninstalled, so the refusal stands")
	assert.Equal(t, "BackupService.7403", apiErr.Code)
	calls := rec.all()
	require.Len(t, calls, 2)
	assert.JSONEq(t, `{"agent":{"status":"uninstall"}}`, calls[0].Body)
	assert.Equal(t, "GET", calls[1].Method)
}
