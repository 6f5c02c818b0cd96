package cbr_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
	// Each page after the first starts at the last agent of the page before.
	queries := func(limit int, offsets ...int) []string {
		out := make([]string, len(offsets))
		for i, off := range offsets {
			out[i] = fmt.Sprintf("limit=%d&offset=%d", limit, off)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		p       *pager
		limit   int
		queries []string
	}{
		{"count is the total", &pager{ids: ids(5)}, 2, queries(2, 0, 1, 2, 3)},
		{"count is the page size, short last page", &pager{ids: ids(5), countIsPage: true}, 2, queries(2, 0, 1, 2, 3, 4)},
		{"count is the page size, page of the overlap only", &pager{ids: ids(4), countIsPage: true}, 2, queries(2, 0, 1, 2, 3)},
		{"count is the total and a multiple of the limit", &pager{ids: ids(4)}, 2, queries(2, 0, 1, 2)},
		{"larger pages", &pager{ids: ids(10)}, 4, queries(4, 0, 3, 6)},
		{"server caps the page below the limit", &pager{ids: ids(5), maxPage: 2, countIsPage: true}, 3, queries(3, 0, 1, 2, 3, 4)},
		{"a limit of 1 asks for pages of 2", &pager{ids: ids(3)}, 1, queries(2, 0, 1)},
		{"no agents", &pager{}, 2, queries(2, 0)},
		{"zero limit asks for pages of 1000", &pager{ids: ids(3)}, 0, queries(1000, 0)},
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
	pages := []string{"limit=2&offset=1", "limit=2&offset=2", "limit=2&offset=3"}
	assert.Equal(t, append(pages, pages...), p.offsets())
}

func TestAgentsEarlyBreak(t *testing.T) {
	c, mt := newMockClient(t)
	p := &pager{ids: ids(5)}
	mt.RegisterResponder("GET", agentsURL, p.respond)

	var got []string
	sentBeforeFirst := -1
	for a, err := range c.Agents(context.Background(), cbr.ListAgentsOptions{Limit: 2}) {
		require.NoError(t, err)
		if sentBeforeFirst < 0 {
			sentBeforeFirst = mt.GetTotalCallCount()
		}
		got = append(got, a.AgentID)
		if len(got) == 2 {
			break
		}
	}
	assert.Equal(t, ids(5)[:2], got)
	assert.Equal(t, 4, sentBeforeFirst, "the whole listing comes before the first agent")
	assert.Equal(t, sentBeforeFirst, mt.GetTotalCallCount(), "no request after the first agent, nor after the break")
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

// TestAgentsYieldsAnErrorAlone checks that a page that fails ends the
// sequence with its error and no agent: a partial listing is never yielded.
func TestAgentsYieldsAnErrorAlone(t *testing.T) {
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
	assert.Empty(t, got)
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], cbr.ErrForbidden)
	assert.Equal(t, []string{"limit=2&offset=0", "limit=2&offset=1"}, p.offsets())
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

// TestAgentsDetectsIgnoredOffset checks that a server that ignores offset
// ends in an error, not an endless loop, after 3 listings.
func TestAgentsDetectsIgnoredOffset(t *testing.T) {
	c, mt := newMockClient(t)
	p := &pager{ids: ids(5), ignoreOff: true, countIsPage: true}
	mt.RegisterResponder("GET", agentsURL, p.respond)
	got, err := collect(t, c.Agents(context.Background(), cbr.ListAgentsOptions{Limit: 2}))
	assert.EqualError(t, err, "cbr: list agents: the agents changed while they were listed, 3 times in a row (or the server ignores offset)")
	assert.Empty(t, got)
	assert.Len(t, p.offsets(), 6, "2 pages in each of 3 listings")
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
	assert.Equal(t, 4, srv.Requests()-before, "pages at offsets 0, 1, 2 and 3")

	got, err = collect(t, c.Agents(ctx, cbr.ListAgentsOptions{Status: cbr.AgentStatusUninstall}))
	require.NoError(t, err)
	assert.Equal(t, []string{"agent-03"}, got)
}

// fleet is a fake of the agent API for iterate-and-change tests: it lists
// agents sorted by ID (as cbrtest does), filtered by status, paged by offset
// and limit with the total as count, and applies uninstalls and removals.
// onList, when set, runs before each list request is answered (with its
// 1-based number), as another writer would.
type fleet struct {
	mu     sync.Mutex
	status map[string]string
	lists  int
	onList func(f *fleet, n int, offset int)
}

func newFleet(n int, status cbr.AgentStatus) *fleet {
	f := &fleet{status: make(map[string]string, n)}
	for i := range n {
		f.status[fmt.Sprintf("agent-%05d", i)] = string(status)
	}
	return f
}

// set sets an agent's status, adding it if needed; "" removes it. The
// caller holds f.mu.
func (f *fleet) set(id, status string) {
	if status == "" {
		delete(f.status, id)
		return
	}
	f.status[id] = status
}

// sorted returns the IDs of the agents in status (any status when ""),
// sorted. The caller holds f.mu.
func (f *fleet) sorted(status string) []string {
	var out []string
	for id, st := range f.status {
		if status == "" || st == status {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (f *fleet) respond(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, one := strings.CutPrefix(req.URL.Path, "/v3/"+testProject+"/agents/")
	switch {
	case req.Method == "GET" && !one:
		q := req.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		offset, _ := strconv.Atoi(q.Get("offset"))
		f.lists++
		if f.onList != nil {
			f.onList(f, f.lists, offset)
		}
		matched := f.sorted(q.Get("status"))
		start := min(offset, len(matched))
		page := matched[start:min(start+limit, len(matched))]
		agents := make([]map[string]string, len(page))
		for i, id := range page {
			agents[i] = map[string]string{"agent_id": id, "status": f.status[id]}
		}
		return httpmock.NewJsonResponse(200, map[string]any{"agents": agents, "count": len(matched), "limit": limit, "offset": offset})
	case req.Method == "PUT" && one && f.status[id] != "":
		f.status[id] = string(cbr.AgentStatusUninstall)
		return httpmock.NewJsonResponse(200, map[string]any{"agent": map[string]string{"agent_id": id, "status": f.status[id]}})
	case req.Method == "DELETE" && one && f.status[id] != "":
		delete(f.status, id)
		return httpmock.NewStringResponse(200, ""), nil
	}
	return httpmock.NewStringResponse(404, `{"error_code":"BackupService.7410","error_msg":"Agent `+id+` not found."}`), nil
}

// yieldedOnce returns the IDs a range yielded, failing the test on an
// error or an ID yielded twice.
func yieldedOnce(t *testing.T, seq func(func(*cbr.Agent, error) bool), body func(*cbr.Agent)) map[string]bool {
	t.Helper()
	seen := make(map[string]bool)
	for a, err := range seq {
		require.NoError(t, err)
		require.False(t, seen[a.AgentID], "%s yielded twice", a.AgentID)
		seen[a.AgentID] = true
		body(a)
	}
	return seen
}

// TestAgentsUninstallingWhileIterating is the operator's loop: uninstall
// every normal agent while ranging over the normal agents. Every one of
// 2,500 is yielded exactly once and uninstalled, with pages of the default
// size and with small ones.
func TestAgentsUninstallingWhileIterating(t *testing.T) {
	for _, limit := range []int{0, 100} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			f := newFleet(2500, cbr.AgentStatusNormal)
			c, mt := newMockClient(t)
			mt.RegisterNoResponder(f.respond)
			ctx := context.Background()

			seen := yieldedOnce(t, c.Agents(ctx, cbr.ListAgentsOptions{Status: cbr.AgentStatusNormal, Limit: limit}), func(a *cbr.Agent) {
				_, err := c.UpdateAgent(ctx, a.AgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
				require.NoError(t, err)
			})
			assert.Len(t, seen, 2500)
			f.mu.Lock()
			defer f.mu.Unlock()
			assert.Empty(t, f.sorted(string(cbr.AgentStatusNormal)), "every agent was uninstalled")
			if limit == 0 {
				assert.Equal(t, 3, f.lists, "pages at offsets 0, 999 and 1998")
			} else {
				assert.Equal(t, 26, f.lists, "pages of 100 that overlap by one")
			}
		})
	}
}

// TestAgentsUnregisteringWhileIterating removes every agent while ranging
// over all of them: none is skipped.
func TestAgentsUnregisteringWhileIterating(t *testing.T) {
	f := newFleet(250, cbr.AgentStatusNormal)
	c, mt := newMockClient(t)
	mt.RegisterNoResponder(f.respond)
	ctx := context.Background()
	seen := yieldedOnce(t, c.Agents(ctx, cbr.ListAgentsOptions{Limit: 50}), func(a *cbr.Agent) {
		require.NoError(t, c.UnregisterAgent(ctx, a.AgentID))
	})
	assert.Len(t, seen, 250)
	assert.Empty(t, f.status)
}

// TestAgentsAddedWhileIterating documents what happens to agents added while
// a range runs: during the listing, those whose place comes after the page
// being read are yielded and the others are not; after the listing, in the
// loop body, none is. Every agent present throughout is yielded once.
func TestAgentsAddedWhileIterating(t *testing.T) {
	f := newFleet(30, cbr.AgentStatusNormal)
	f.onList = func(f *fleet, n, _ int) {
		if n == 2 { // after the first page (agents 0 to 9) was read
			f.set("agent-00001a", "normal") // before the page being read
			f.set("agent-00004a", "normal")
			f.set("agent-00025a", "normal") // after it
		}
	}
	c, mt := newMockClient(t)
	mt.RegisterNoResponder(f.respond)
	ctx := context.Background()

	added := 0
	seen := yieldedOnce(t, c.Agents(ctx, cbr.ListAgentsOptions{Limit: 10}), func(a *cbr.Agent) {
		f.mu.Lock()
		f.set(a.AgentID+"b", "normal") // sorts right after a
		f.mu.Unlock()
		added++
	})
	for i := range 30 {
		assert.True(t, seen[fmt.Sprintf("agent-%05d", i)], "agent %d", i)
	}
	assert.True(t, seen["agent-00025a"], "added during the listing, after the page being read")
	assert.False(t, seen["agent-00001a"], "added during the listing, before the page being read")
	assert.False(t, seen["agent-00004a"])
	assert.Len(t, seen, 31, "no agent added by the loop body")
	assert.Equal(t, 31, added)
	assert.Equal(t, 4, f.lists, "one listing: the additions before the cursor shifted pages forward, which repeats agents, never skips one")
}

// TestAgentsRemovedByOthersWhileListing checks that agents removed by
// another writer during the listing, which shift the pages back, make the
// listing start again rather than skip the agents after them.
func TestAgentsRemovedByOthersWhileListing(t *testing.T) {
	f := newFleet(50, cbr.AgentStatusNormal)
	f.onList = func(f *fleet, n, _ int) {
		if n == 3 { // two pages read: agents 0 to 18
			for _, i := range []int{2, 5, 7, 11, 13} {
				f.set(fmt.Sprintf("agent-%05d", i), "")
			}
		}
	}
	c, mt := newMockClient(t)
	mt.RegisterNoResponder(f.respond)

	seen := yieldedOnce(t, c.Agents(context.Background(), cbr.ListAgentsOptions{Limit: 10}), func(*cbr.Agent) {})
	f.mu.Lock()
	defer f.mu.Unlock()
	want := f.sorted("")
	require.Len(t, want, 45)
	for _, id := range want {
		assert.True(t, seen[id], id)
	}
	assert.Len(t, seen, 45, "the removed agents are not yielded: the listing started again")
	assert.Equal(t, 3+5, f.lists, "3 pages of the shifted listing, 5 of the second")
}

// TestAgentsListingThatNeverSettles checks that when every listing is
// disturbed, the range ends with an error and yields no agent, rather than
// an incomplete set.
func TestAgentsListingThatNeverSettles(t *testing.T) {
	f := newFleet(100, cbr.AgentStatusNormal)
	removed := 0
	f.onList = func(f *fleet, _, offset int) {
		if offset > 0 { // each page but the first: take out an agent already listed
			f.set(f.sorted("")[0], "")
			removed++
		}
	}
	c, mt := newMockClient(t)
	mt.RegisterNoResponder(f.respond)

	var errs []error
	for a, err := range c.Agents(context.Background(), cbr.ListAgentsOptions{Limit: 10}) {
		require.Nil(t, a, "no agent is yielded")
		errs = append(errs, err)
	}
	require.Len(t, errs, 1)
	assert.EqualError(t, errs[0], "cbr: list agents: the agents changed while they were listed, 3 times in a row (or the server ignores offset)")
	assert.Equal(t, 6, f.lists, "2 pages in each of 3 listings")
	assert.Equal(t, 3, removed)
}

// TestAgentsUninstallingAgainstFake runs the operator's loop against cbrtest.
func TestAgentsUninstallingAgainstFake(t *testing.T) {
	srv, c := fakeClient(t)
	ctx := context.Background()
	for _, id := range ids(30) {
		_, err := c.RegisterAgent(ctx, registerAs(id))
		require.NoError(t, err)
	}
	seen := yieldedOnce(t, c.Agents(ctx, cbr.ListAgentsOptions{Status: cbr.AgentStatusNormal, Limit: 10}), func(a *cbr.Agent) {
		_, err := c.UpdateAgent(ctx, a.AgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
		require.NoError(t, err)
	})
	assert.Len(t, seen, 30)
	for _, a := range srv.Agents() {
		assert.Equal(t, cbr.AgentStatusUninstall, a.Status, a.AgentID)
	}
}
