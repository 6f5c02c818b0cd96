package cbr

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// RegisterAgent registers an agent, as an agent's installer does:
// POST /v3/{project_id}/agents. The caller chooses AgentID, so a registration
// that is retried, or repeated by a re-run installer, registers the same agent.
// The request is validated before anything is sent; a *ValidationError names
// the offending field.
//
// RegisterAgent never reports a registration that happened as a failure. When
// the call fails after an attempt that may have taken effect (the connection
// broke after the request was sent, the attempt timed out, or the answer was a
// 5xx), it asks the API with ShowAgent, and returns the agent without error
// when it is registered under AgentID with the same host facts and a status
// other than uninstall. If the check finds nothing, or fails, the error of the
// registration is returned, with the check's outcome appended to its text.
//
// The check honours ctx like everything else: when ctx is done before it can
// run, the error says that whether the agent was registered is unknown. Call
// RegisterAgent again with the same AgentID to settle it; that is always safe.
func (c *Client) RegisterAgent(ctx context.Context, in AgentRegister) (*Agent, error) {
	const op = "register agent"
	if err := in.validate(op); err != nil {
		return nil, err
	}
	var out struct {
		Agent *agentWire `json:"agent"`
	}
	body := struct {
		Agent AgentRegister `json:"agent"`
	}{in}
	res, err := c.do(ctx, op, "POST", "agents", nil, body, &out)
	if err == nil {
		if out.Agent != nil {
			a := out.Agent.agent()
			return &a, nil
		}
		err = res.unusable(op, `response has no "agent"`)
	}
	if !res.acted && !mayMeanExists(err) {
		return nil, err
	}
	return c.confirmRegistered(ctx, in, err)
}

// mayMeanExists reports whether a refused registration may mean that the
// agent is registered already. The API documents no answer for that: a 409,
// or the 400 BackupService.7403 it gives to an agent it refuses, may be it.
func mayMeanExists(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) &&
		(apiErr.StatusCode == http.StatusConflict || apiErr.StatusCode == http.StatusBadRequest && apiErr.Code == codeInvalidAgent)
}

// UpdateAgent changes an agent's status: PUT /v3/{project_id}/agents/{agent_id}.
// The API accepts only AgentStatusUninstall, which an installer sets when it
// removes the agent.
//
// Marking uninstalled an agent that already is (by an earlier run, or by an
// earlier attempt of this call) is not an error: when the API refuses the
// update with 400 BackupService.7403, UpdateAgent asks with ShowAgent and
// returns the agent if its status is uninstall. If ShowAgent finds no such
// agent, the error matches ErrNotFound, as it does when the update itself is
// answered 404: there is nothing to uninstall.
func (c *Client) UpdateAgent(ctx context.Context, agentID string, in AgentUpdate) (*Agent, error) {
	const op = "update agent"
	if err := validateAgentID(op, agentID); err != nil {
		return nil, err
	}
	if in.Status != AgentStatusUninstall {
		return nil, &ValidationError{Op: op, Field: "status", Reason: "must be " + string(AgentStatusUninstall)}
	}
	var out struct {
		Agent *agentWire `json:"agent"`
	}
	body := struct {
		Agent AgentUpdate `json:"agent"`
	}{in}
	res, err := c.do(ctx, op, "PUT", agentPath(agentID), nil, body, &out)
	if err == nil {
		if out.Agent != nil {
			a := out.Agent.agent()
			return &a, nil
		}
		err = res.unusable(op, `response has no "agent"`)
	}
	return c.uninstalledAlready(ctx, agentID, res.acted, err)
}

// ShowAgent returns one agent: GET /v3/{project_id}/agents/{agent_id}. An
// unknown agent is an *APIError matching ErrNotFound.
func (c *Client) ShowAgent(ctx context.Context, agentID string) (*Agent, error) {
	const op = "show agent"
	if err := validateAgentID(op, agentID); err != nil {
		return nil, err
	}
	var out struct {
		Agent *agentWire `json:"agent"`
	}
	res, err := c.do(ctx, op, "GET", agentPath(agentID), nil, nil, &out)
	if err != nil {
		return nil, err
	}
	if out.Agent == nil {
		return nil, res.unusable(op, `response has no "agent"`)
	}
	a := out.Agent.agent()
	return &a, nil
}

// agentPath is the path of one agent, relative to /v3/{project_id}/. agentID
// must have passed validateAgentID.
func agentPath(agentID string) string {
	return "agents/" + url.PathEscape(agentID)
}

// validate checks an AgentRegister as the API would, before anything is sent.
func (in AgentRegister) validate(op string) error {
	if err := validateAgentID(op, in.AgentID); err != nil {
		return err
	}
	for _, f := range []struct{ name, value string }{
		{"host_name", in.HostName}, {"host_ip", in.HostIP}, {"host_os", in.HostOS},
	} {
		if strings.TrimSpace(f.value) == "" {
			return &ValidationError{Op: op, Field: f.name, Reason: "is required"}
		}
	}
	for _, f := range []struct{ name, value string }{
		{"host_name", in.HostName}, {"host_os", in.HostOS}, {"host_nickname", in.HostNickname},
	} {
		if strings.ContainsFunc(f.value, isControl) {
			return &ValidationError{Op: op, Field: f.name, Reason: "contains a control character"}
		}
	}
	if ip, err := netip.ParseAddr(in.HostIP); err != nil || ip.Zone() != "" {
		return &ValidationError{Op: op, Field: "host_ip", Reason: "is not an IPv4 or IPv6 address"}
	}
	if in.AgentVersion != "" && !isAgentVersion(in.AgentVersion) {
		return &ValidationError{Op: op, Field: "agent_version", Reason: "does not end in three dot-separated numbers of 1 to 3 digits, such as 1.0.0"}
	}
	switch in.AgentType {
	case "", AgentTypeCloud, AgentTypeNative:
	default:
		return &ValidationError{Op: op, Field: "agent_type", Reason: "must be cloud or native"}
	}
	return nil
}

// isAgentVersion reports whether v matches the API's pattern
// ((\d){1,3}\.){2}(\d){1,3}$, which like the server's check is anchored at the
// end only: "1.0.0", "v1.0.0" and "1234.0.0" match; "1.0", "1.0.1234" and
// "1.0.0-rc1" do not.
func isAgentVersion(v string) bool {
	for i := 0; i < 3; i++ {
		n := 0
		for n < len(v) && n < 4 && isDigit(v[len(v)-1-n]) {
			n++
		}
		if n == 0 || n > 3 && i < 2 { // digits may precede the first number
			return false
		}
		v = v[:len(v)-n]
		if i < 2 {
			if !strings.HasSuffix(v, ".") {
				return false
			}
			v = v[:len(v)-1]
		}
	}
	return true
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// validateAgentID checks an agent ID before it goes into a path.
func validateAgentID(op, id string) error {
	if err := checkID(id); err != nil {
		err.Op, err.Field = op, "agent_id"
		return err
	}
	return nil
}

// checkID checks an ID that goes into a URL path: non-empty, no "/", not "."
// or "..", no control character.
func checkID(id string) *ValidationError {
	switch {
	case id == "":
		return &ValidationError{Reason: "is required"}
	case id == "." || id == "..":
		return &ValidationError{Reason: `must not be "." or ".."`}
	case strings.Contains(id, "/"):
		return &ValidationError{Reason: `must not contain "/"`}
	case strings.ContainsFunc(id, isControl):
		return &ValidationError{Reason: "contains a control character"}
	}
	return nil
}

// confirmRegistered settles a failed registration that may have taken effect:
// it returns the agent when ShowAgent finds it registered as in asked, and err,
// with what the check found, when it does not.
func (c *Client) confirmRegistered(ctx context.Context, in AgentRegister, err error) (*Agent, error) {
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w; whether agent %s was registered is unknown: register it again to settle it", err, in.AgentID)
	}
	a, showErr := c.ShowAgent(ctx, in.AgentID)
	switch {
	case showErr == nil && in.registeredAs(a):
		return a, nil
	case showErr == nil:
		return nil, fmt.Errorf("%w; agent %s exists with other host facts or uninstalled", err, in.AgentID)
	case errors.Is(showErr, ErrNotFound):
		return nil, fmt.Errorf("%w; agent %s is not registered", err, in.AgentID)
	default:
		return nil, fmt.Errorf("%w; whether agent %s was registered is unknown: %s", err, in.AgentID, trimPrefix(showErr))
	}
}

// registeredAs reports whether a is the agent in registers: the same agent ID
// and host facts, and not uninstalled. An optional field counts only when both
// sides have it.
func (in AgentRegister) registeredAs(a *Agent) bool {
	same := func(want, got string) bool { return want == "" || got == "" || strings.EqualFold(want, got) }
	wantIP, err1 := netip.ParseAddr(in.HostIP)
	gotIP, err2 := netip.ParseAddr(a.HostIP)
	return a.AgentID == in.AgentID && a.Status != AgentStatusUninstall &&
		strings.EqualFold(a.HostName, in.HostName) && strings.EqualFold(a.HostOS, in.HostOS) &&
		err1 == nil && err2 == nil && wantIP.Unmap() == gotIP.Unmap() &&
		same(in.HostNickname, a.HostNickname) && same(in.AgentVersion, a.AgentVersion) &&
		same(string(in.AgentType), string(a.AgentType))
}

// uninstalledAlready settles an uninstall that failed with err: when the API
// refused it with 400 BackupService.7403, or an attempt may have taken effect
// (acted), and ShowAgent finds the agent uninstalled, that agent is the
// result; when the API refused it and ShowAgent finds no agent, the error
// matches ErrNotFound as well as err.
func (c *Client) uninstalledAlready(ctx context.Context, agentID string, acted bool, err error) (*Agent, error) {
	var apiErr *APIError
	refused := errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusBadRequest && apiErr.Code == codeInvalidAgent
	if !refused && !acted || ctx.Err() != nil {
		return nil, err
	}
	a, showErr := c.ShowAgent(ctx, agentID)
	switch {
	case showErr == nil && a.Status == AgentStatusUninstall:
		return a, nil
	case refused && errors.Is(showErr, ErrNotFound):
		return nil, &bothError{msg: err.Error() + "; " + trimPrefix(showErr), errs: []error{err, showErr}}
	}
	return nil, err
}

// bothError is an error that matches two errors, with a message that says
// "cbr: " once.
type bothError struct {
	msg  string
	errs []error
}

func (e *bothError) Error() string   { return e.msg }
func (e *bothError) Unwrap() []error { return e.errs }

// codeInvalidAgent is the API's error code for an agent it refuses to act on.
const codeInvalidAgent = "BackupService.7403"

// maxListLimit is the largest page ListAgents accepts.
const maxListLimit = 1000

// ListAgents returns one page of agents: GET /v3/{project_id}/agents. Use
// Agents to go through every page.
func (c *Client) ListAgents(ctx context.Context, opts ListAgentsOptions) (*AgentList, error) {
	const op = "list agents"
	query, err := opts.query(op)
	if err != nil {
		return nil, err
	}
	var out struct { // AgentList in wire form
		Agents []agentWire `json:"agents"`
		Count  int         `json:"count"`
		Limit  int         `json:"limit"`
		Offset int         `json:"offset"`
	}
	if _, err := c.do(ctx, op, "GET", "agents", query, nil, &out); err != nil {
		return nil, err
	}
	list := &AgentList{Count: out.Count, Limit: out.Limit, Offset: out.Offset}
	if out.Agents != nil {
		list.Agents = make([]Agent, len(out.Agents))
		for i := range out.Agents {
			list.Agents[i] = out.Agents[i].agent()
		}
	}
	return list, nil
}

// query validates opts and returns them as ListAgents' query parameters.
// offset is always sent; limit only when set.
func (o ListAgentsOptions) query(op string) (url.Values, error) {
	if strings.ContainsFunc(string(o.Status), isControl) { // a status the SDK does not name is sent as it is
		return nil, &ValidationError{Op: op, Field: "status", Reason: "contains a control character"}
	}
	if o.Limit < 0 || o.Limit > maxListLimit {
		return nil, &ValidationError{Op: op, Field: "limit", Reason: "must be within 1 to 1000, or 0 for the server's default"}
	}
	if o.Offset < 0 || o.Offset > math.MaxInt32 {
		return nil, &ValidationError{Op: op, Field: "offset", Reason: "must be within 0 to 2147483647"}
	}
	q := url.Values{}
	for _, id := range o.AgentIDs {
		if err := validateAgentID(op, id); err != nil {
			return nil, err
		}
		q.Add("agent_id", id)
	}
	if o.Status != "" {
		q.Set("status", string(o.Status))
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	q.Set("offset", strconv.Itoa(o.Offset))
	return q, nil
}

// Agents returns every agent opts selects, page after page from opts.Offset,
// each page a ListAgents call of opts.Limit agents (1000 when zero). A page is
// fetched only when the loop needs its first agent, so breaking out of the
// loop sends nothing more. The first error is yielded with a nil agent and
// ends the sequence.
//
// The API does not say whether a page's count is the number of matching
// agents or the page's size, so Agents relies on it only when it is larger than
// the page, where it can only be a total: the sequence ends when offset reaches
// that count, at an empty page, or at a page shorter than its limit. A page
// that repeats the one before it, as from a server that ignores offset, is an
// error rather than an endless loop.
func (c *Client) Agents(ctx context.Context, opts ListAgentsOptions) iter.Seq2[*Agent, error] {
	return func(yield func(*Agent, error) bool) {
		opts := opts // each range starts from the options given
		if opts.Limit == 0 {
			opts.Limit = maxListLimit
		}
		var prev []Agent
		for {
			page, err := c.ListAgents(ctx, opts)
			if err != nil {
				yield(nil, err)
				return
			}
			if prev != nil && samePage(prev, page.Agents) {
				yield(nil, fmt.Errorf("cbr: list agents: the page at offset %d repeats the page before it; is offset ignored?", opts.Offset))
				return
			}
			for i := range page.Agents {
				if !yield(&page.Agents[i], nil) {
					return
				}
			}
			n, size := len(page.Agents), opts.Limit
			if page.Limit > 0 && page.Limit < size {
				size = page.Limit // the server's cap
			}
			switch {
			case n == 0:
				return
			case page.Count > n: // a total
				if opts.Offset+n >= page.Count {
					return
				}
			case n < size:
				return
			}
			opts.Offset += n
			prev = page.Agents
		}
	}
}

// samePage reports whether two pages hold the same agents in the same order.
func samePage(a, b []Agent) bool {
	return slices.EqualFunc(a, b, func(x, y Agent) bool { return x.AgentID == y.AgentID })
}

// UnregisterAgent removes an agent: DELETE /v3/{project_id}/agents/{agent_id}.
//
// The API also deletes all of the agent's backups. This cannot be undone; to
// record that an agent was uninstalled while keeping its backups, use
// UpdateAgent with AgentStatusUninstall instead.
//
// An unknown agent is an *APIError matching ErrNotFound, except when an
// earlier attempt of this call may have removed it (its connection broke, or it
// was answered 5xx): then the agent is gone as asked, and the result is nil.
func (c *Client) UnregisterAgent(ctx context.Context, agentID string) error {
	const op = "unregister agent"
	if err := validateAgentID(op, agentID); err != nil {
		return err
	}
	res, err := c.do(ctx, op, "DELETE", agentPath(agentID), nil, nil, nil)
	if errors.Is(err, ErrNotFound) && res.acted {
		return nil
	}
	return err
}
