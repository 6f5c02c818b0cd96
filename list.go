package cbr

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"net/url"
	"strconv"
)

// maxListLimit is the largest page ListAgents accepts.
const maxListLimit = 1000

// ListAgents returns one page of agents: GET /v3/{project_id}/agents. Use
// [Client.Agents] to go through every page. opts is checked by
// [ListAgentsOptions.Validate]; a failure is a [*ValidationError], and
// nothing is sent.
func (c *Client) ListAgents(ctx context.Context, opts ListAgentsOptions) (*AgentList, error) {
	const op = "list agents"
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	var out agentListWire
	res, err := c.do(ctx, op, "GET", "agents", opts.query(), nil, &out)
	if err != nil {
		return nil, err
	}
	if out.Agents == nil { // {}, null or "agents": null; a page without agents is []
		return nil, res.unusable(op, `response has no "agents"`)
	}
	return out.list(), nil
}

// Validate checks o as [Client.ListAgents] and [Client.Agents] do before they send anything:
// the limit and offset within the API's bounds, the agent IDs, and a status
// without a control character. A status the SDK does not name is sent as it
// is: the API documents no list of values for this filter. A failure is a
// [*ValidationError] with Op "list agents".
func (o ListAgentsOptions) Validate() error {
	const op = "list agents"
	if reason := checkText(string(o.Status)); reason != "" {
		return &ValidationError{Op: op, Field: "status", Reason: reason}
	}
	if o.Limit < 0 || o.Limit > maxListLimit {
		return &ValidationError{Op: op, Field: "limit", Reason: "must be within 1 to 1000, or 0 for the server's default"}
	}
	if o.Offset < 0 || o.Offset > math.MaxInt32 {
		return &ValidationError{Op: op, Field: "offset", Reason: "must be within 0 to 2147483647"}
	}
	for _, id := range o.AgentIDs {
		if err := validateAgentID(op, id); err != nil {
			return err
		}
	}
	return nil
}

// query returns o, which must be valid, as ListAgents' query parameters.
// offset is always sent; limit only when set.
func (o ListAgentsOptions) query() url.Values {
	q := url.Values{}
	for _, id := range o.AgentIDs {
		q.Add("agent_id", id)
	}
	if o.Status != "" {
		q.Set("status", string(o.Status))
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	q.Set("offset", strconv.Itoa(o.Offset))
	return q
}

// Agents returns every agent opts selects, for a range loop:
//
//	for a, err := range c.Agents(ctx, cbr.ListAgentsOptions{Status: cbr.AgentStatusNormal}) {
//		if err != nil {
//			return err
//		}
//		// Changing a here (uninstalling it, say) is safe.
//	}
//
// Agents lists every page ([Client.ListAgents] calls of opts.Limit agents, 1000 when
// zero, at least 2) before it yields the first agent, because the API pages
// by offset: an agent that the loop body takes out of the selection would
// shift every agent after it one place down, and a listing that went on
// page by page would skip as many agents as the body took out. What a range
// over Agents guarantees, whatever changes while it runs:
//   - The loop body's own changes do not change what is yielded: the
//     listing is over before the body first runs. Agents are yielded as they
//     were listed; ask [Client.ShowAgent] for an agent's state now.
//   - An agent listed on one page is not yielded again from another.
//   - An agent that matches opts from the start of the listing to its end is
//     yielded, even when others add or remove agents meanwhile: each page
//     overlaps the one before by one agent, and when that agent is not one
//     already listed (so agents before it were removed and the pages
//     shifted), or a page brings no agent not listed yet, the listing starts
//     again, up to 3 times in all; then an error is yielded rather than an
//     incomplete set. The API documents no order: this relies on it
//     keeping one order from page to page.
//   - An agent added during the listing is yielded if its place comes after
//     the page being read, and not otherwise; one added (or changed to
//     match) after the listing, by the loop body or anyone, is not yielded.
//     One removed during the listing may be yielded; one removed after it
//     is yielded as listed.
//   - An error (invalid opts, a failed page) is yielded alone, with a nil
//     agent, before any agent, and ends the sequence.
//   - Nothing is sent once the first agent is yielded, so breaking out of
//     the loop sends nothing more. Each range lists afresh, from opts.Offset.
//
// The cost is memory for every selected agent, and the time of the whole
// listing (one request per 999 agents, per 1000 on the first page) before
// the first agent.
//
// The API does not say whether a page's count is the number of matching
// agents or the page's size, so Agents relies on it only when it is larger than
// the page, where it can only be a total: the listing ends when offset reaches
// that count, at an empty page, or at a page shorter than its limit.
func (c *Client) Agents(ctx context.Context, opts ListAgentsOptions) iter.Seq2[*Agent, error] {
	return func(yield func(*Agent, error) bool) {
		var agents []Agent
		err := errListingShifted
		for i := 0; i < maxListings && err == errListingShifted; i++ {
			agents, err = c.listAll(ctx, opts)
		}
		if err == errListingShifted {
			err = fmt.Errorf("cbr: list agents: the agents changed while they were listed, %d times in a row (or the server ignores offset)", maxListings)
		}
		if err != nil {
			yield(nil, err)
			return
		}
		for i := range agents {
			if !yield(&agents[i], nil) {
				return
			}
		}
	}
}

// maxListings bounds how many times Agents lists when the agents change
// while it lists them.
const maxListings = 3

// errListingShifted reports a listing that others changed while it was read.
var errListingShifted = errors.New("cbr: list agents: the listing shifted")

// listAll lists every agent opts selects, from opts.Offset, each page
// overlapping the one before by one agent. It returns errListingShifted when
// that agent is not one already listed, or when a full page brings nothing
// new.
func (c *Client) listAll(ctx context.Context, opts ListAgentsOptions) ([]Agent, error) {
	if opts.Limit == 0 {
		opts.Limit = maxListLimit
	}
	opts.Limit = max(opts.Limit, 2) // a page of one could only repeat the overlap
	var all []Agent
	listed := make(map[string]bool)
	for first := true; ; first = false {
		page, err := c.ListAgents(ctx, opts)
		if err != nil {
			return nil, err
		}
		n := len(page.Agents)
		if !first && (n == 0 || !listed[page.Agents[0].AgentID]) {
			return nil, errListingShifted
		}
		fresh := 0
		for _, a := range page.Agents { // what earlier pages listed is dropped
			if !listed[a.AgentID] {
				all = append(all, a)
				fresh++
			}
		}
		for _, a := range page.Agents {
			listed[a.AgentID] = true
		}
		size := opts.Limit
		if page.Limit > 0 && page.Limit < size {
			size = page.Limit // the server's cap
		}
		switch {
		case n == 0:
			return all, nil
		case page.Count > n: // a total
			if opts.Offset+n >= page.Count {
				return all, nil
			}
		case n < size:
			return all, nil
		}
		if fresh == 0 {
			return nil, errListingShifted
		}
		opts.Offset += n - 1
	}
}
