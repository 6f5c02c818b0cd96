package cbr

import (
	"context"
	"net/netip"
	"net/url"
	"strings"
)

// RegisterAgent registers an agent, as an agent's installer does:
// POST /v3/{project_id}/agents. The caller chooses AgentID, so a registration
// that is retried, or repeated by a re-run installer, registers the same agent.
// The request is validated before anything is sent; a *ValidationError names
// the offending field.
func (c *Client) RegisterAgent(ctx context.Context, in AgentRegister) (*Agent, error) {
	const op = "register agent"
	if err := in.validate(op); err != nil {
		return nil, err
	}
	var out struct {
		Agent *Agent `json:"agent"`
	}
	body := struct {
		Agent AgentRegister `json:"agent"`
	}{in}
	if err := c.do(ctx, op, "POST", "agents", nil, body, &out); err != nil {
		return nil, err
	}
	return agentOrError(op, out.Agent)
}

// UpdateAgent changes an agent's status: PUT /v3/{project_id}/agents/{agent_id}.
// The API accepts only AgentStatusUninstall, which an installer sets when it
// removes the agent.
func (c *Client) UpdateAgent(ctx context.Context, agentID string, in AgentUpdate) (*Agent, error) {
	const op = "update agent"
	if err := validateAgentID(op, agentID); err != nil {
		return nil, err
	}
	if in.Status != AgentStatusUninstall {
		return nil, &ValidationError{Op: op, Field: "status", Reason: "must be " + string(AgentStatusUninstall)}
	}
	var out struct {
		Agent *Agent `json:"agent"`
	}
	body := struct {
		Agent AgentUpdate `json:"agent"`
	}{in}
	if err := c.do(ctx, op, "PUT", agentPath(agentID), nil, body, &out); err != nil {
		return nil, err
	}
	return agentOrError(op, out.Agent)
}

// ShowAgent returns one agent: GET /v3/{project_id}/agents/{agent_id}. An
// unknown agent is an *APIError matching ErrNotFound.
func (c *Client) ShowAgent(ctx context.Context, agentID string) (*Agent, error) {
	const op = "show agent"
	if err := validateAgentID(op, agentID); err != nil {
		return nil, err
	}
	var out struct {
		Agent *Agent `json:"agent"`
	}
	if err := c.do(ctx, op, "GET", agentPath(agentID), nil, nil, &out); err != nil {
		return nil, err
	}
	return agentOrError(op, out.Agent)
}

// agentPath is the path of one agent, relative to /v3/{project_id}/. agentID
// must have passed validateAgentID.
func agentPath(agentID string) string {
	return "agents/" + url.PathEscape(agentID)
}

// agentOrError turns a 2xx answer without an agent into an error.
func agentOrError(op string, a *Agent) (*Agent, error) {
	if a == nil {
		return nil, &decodeError{op: op, reason: `response has no "agent"`}
	}
	return a, nil
}

// decodeError is a 2xx answer the client cannot use.
type decodeError struct{ op, reason string }

func (e *decodeError) Error() string { return "cbr: " + e.op + ": unexpected response: " + e.reason }

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
