package cbr_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
)

func TestListAgentsWire(t *testing.T) {
	c, mt := newMockClient(t)
	// The API's example answer.
	st := answering(200, `{"agents":[
		{"agent_id":"489654f2-363b-4ebf-966a-bdf079d97114","created_at":"2022-01-30T09:28:09.334153","host_ip":"18.9.158.36",
		 "host_name":"eBackup","last_active_time":"2022-01-30T09:28:08.959908","paths":null,"status":"normal","updated_at":null},
		{"agent_id":"fb711278-e872-4224-b442-8dafc36a543d","created_at":"2022-01-14T06:47:17.524133","host_ip":"10.10.0.1",
		 "host_name":"ecs-00001","last_active_time":"2022-01-28T05:01:32.000000","paths":[
		  {"agent_id":"fb711278-e872-4224-b442-8dafc36a543d","dir_path":"/home/hcp","id":"6c3d1ed6-b7d7-4e27-94ee-321431e84c5c","status":"available"}],
		 "status":"normal","updated_at":"2022-01-28T05:01:32.738510"}],"count":2,"limit":1000,"offset":0}`)
	mt.RegisterResponder("GET", agentsURL, st.respond)

	list, err := c.ListAgents(context.Background(), cbr.ListAgentsOptions{
		Status: cbr.AgentStatusNormal, AgentIDs: []string{"a", "b"}, Limit: 2,
	})
	require.NoError(t, err)

	require.Equal(t, 1, st.count())
	assert.Equal(t, "GET", st.reqs[0].Method)
	assert.Equal(t, "/v3/"+testProject+"/agents", st.reqs[0].URL.Path)
	assert.Equal(t, "agent_id=a&agent_id=b&limit=2&offset=0&status=normal", st.reqs[0].URL.RawQuery)
	assert.Empty(t, st.bodies[0])
	assertAPIHeaders(t, st.reqs[0], "cbr-go/"+cbr.Version, false)

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
	c, mt := newMockClient(t)
	st := answering(200, `{"agents":[],"count":0,"limit":1000,"offset":7}`)
	mt.RegisterResponder("GET", agentsURL, st.respond)

	list, err := c.ListAgents(context.Background(), cbr.ListAgentsOptions{Offset: 7})
	require.NoError(t, err)
	require.Equal(t, 1, st.count())
	assert.Equal(t, "offset=7", st.reqs[0].URL.RawQuery, "a zero limit is not sent")
	assert.Empty(t, list.Agents)
	assert.Equal(t, 7, list.Offset)
}

func TestListAgentsValidation(t *testing.T) {
	c, mt := newMockClient(t)
	for _, tc := range []struct {
		name  string
		opts  cbr.ListAgentsOptions
		field string
	}{
		{"negative limit", cbr.ListAgentsOptions{Limit: -1}, "limit"},
		{"limit over 1000", cbr.ListAgentsOptions{Limit: 1001}, "limit"},
		{"negative offset", cbr.ListAgentsOptions{Offset: -1}, "offset"},
		{"offset over int32", cbr.ListAgentsOptions{Offset: 1 << 31}, "offset"},
		{"status with a control character", cbr.ListAgentsOptions{Status: "normal\n"}, "status"},
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
	assert.Equal(t, 0, mt.GetTotalCallCount())
}

// TestListAgentsSendsUnknownStatus checks that a status the SDK does not
// name is sent as it is: the API may have more than it documents.
func TestListAgentsSendsUnknownStatus(t *testing.T) {
	c, mt := newMockClient(t)
	st := answering(200, `{"agents":[],"count":0,"limit":1000,"offset":0}`)
	mt.RegisterResponder("GET", agentsURL, st.respond)

	_, err := c.ListAgents(context.Background(), cbr.ListAgentsOptions{Status: "upgrading"})
	require.NoError(t, err)
	require.Equal(t, 1, st.count())
	assert.Equal(t, "offset=0&status=upgrading", st.reqs[0].URL.RawQuery)
}

// pager answers list requests from a fixed set of agents, paging by the query.
type pager struct {
	ids         []string
	countIsPage bool // count is the page's size, not the total
	maxPage     int  // the server's own cap on the page size; 0 for none
	ignoreOff   bool // a broken server that always starts at 0

	mu      sync.Mutex
	queries []string // the query of every request
}

func (p *pager) respond(req *http.Request) (*http.Response, error) {
	p.mu.Lock()
	p.queries = append(p.queries, req.URL.RawQuery)
	p.mu.Unlock()
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
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.queries)
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
			c, mt := newMockClient(t)
			mt.RegisterResponder("GET", agentsURL, tc.p.respond)
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

func TestAgentsRangesTwice(t *testing.T) {
	c, mt := newMockClient(t)
	p := &pager{ids: ids(5)}
	mt.RegisterResponder("GET", agentsURL, p.respond)
	seq := c.Agents(context.Background(), cbr.ListAgentsOptions{Limit: 2, Offset: 1})

	for range 2 {
		got, err := collect(t, seq)
		require.NoError(t, err)
		assert.Equal(t, ids(5)[1:], got, "every range starts from the options given")
	}
	pages := []string{"limit=2&offset=1", "limit=2&offset=3"}
	assert.Equal(t, append(pages, pages...), p.offsets())
}

func TestAgentsEarlyBreak(t *testing.T) {
	c, mt := newMockClient(t)
	p := &pager{ids: ids(5)}
	mt.RegisterResponder("GET", agentsURL, p.respond)

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
	mt.RegisterResponder("GET", agentsURL, p2.respond)
	n := 0
	for range c.Agents(context.Background(), cbr.ListAgentsOptions{Limit: 2}) {
		if n++; n == 2 {
			break
		}
	}
	assert.Equal(t, []string{"limit=2&offset=0"}, p2.offsets())
}

func TestAgentsCarriesFilters(t *testing.T) {
	c, mt := newMockClient(t)
	p := &pager{ids: ids(3)}
	mt.RegisterResponder("GET", agentsURL, p.respond)
	got, err := collect(t, c.Agents(context.Background(), cbr.ListAgentsOptions{
		Status: cbr.AgentStatusAbnormal, AgentIDs: []string{"x"}, Limit: 2, Offset: 1,
	}))
	require.NoError(t, err)
	assert.Equal(t, ids(3)[1:], got)
	assert.Equal(t, []string{"agent_id=x&limit=2&offset=1&status=abnormal"}, p.offsets())
}

func TestAgentsStopsAtFirstError(t *testing.T) {
	c, mt := newMockClient(t)
	p := &pager{ids: ids(5)}
	forbidden := answering(403, `{"error_code":"APIGW.0302","error_msg":"not authorized"}`)
	mt.RegisterResponder("GET", agentsURL, func(req *http.Request) (*http.Response, error) {
		if req.URL.Query().Get("offset") == "2" {
			return forbidden.respond(req)
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
	assert.Len(t, p.offsets(), 1)
	assert.Equal(t, 1, forbidden.count())
}

func TestAgentsInvalidOptions(t *testing.T) {
	c, mt := newMockClient(t)
	n := 0
	for a, err := range c.Agents(context.Background(), cbr.ListAgentsOptions{Limit: 5000}) {
		n++
		assert.Nil(t, a)
		assert.ErrorIs(t, err, cbr.ErrInvalidRequest)
	}
	assert.Equal(t, 1, n)
	assert.Equal(t, 0, mt.GetTotalCallCount())
}

func TestAgentsDetectsIgnoredOffset(t *testing.T) {
	c, mt := newMockClient(t)
	p := &pager{ids: ids(5), ignoreOff: true, countIsPage: true}
	mt.RegisterResponder("GET", agentsURL, p.respond)
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
		_, err := c.RegisterAgent(ctx, registerAs(id))
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
