package cbr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// RegisterAgent registers an agent, as an agent's installer does:
// POST /v3/{project_id}/agents. The caller chooses AgentID, so a registration
// that is retried, or repeated by a re-run installer, registers the same agent.
// The request is validated before anything is sent; a *ValidationError names
// the offending field.
//
// RegisterAgent never reports a registration that happened as a failure, and
// never sends one twice. When an attempt fails after it may have taken effect
// (the connection broke after the request was sent, the attempt timed out, or
// the answer was a 5xx), it is not retried: RegisterAgent asks the API with
// ShowAgent, and returns the agent without error when it is registered under
// AgentID with the same host facts and a status other than uninstall. When
// the check finds no such agent and the failure is worth another try, it
// registers again, until MaxAttempts attempts in all have failed; otherwise the
// error of the registration is returned, with the check's outcome appended to
// its text. A 409, or a 400 BackupService.7403, which may mean that the agent
// exists, is checked the same way.
//
// The check honours ctx like everything else: when ctx is done before it can
// run, the error says that whether the agent was registered is unknown. Call
// RegisterAgent again with the same AgentID to settle it; that is always safe.
func (c *Client) RegisterAgent(ctx context.Context, in AgentRegister) (*Agent, error) {
	const op = "register agent"
	if err := in.validate(op); err != nil {
		return nil, err
	}
	body := struct {
		Agent AgentRegister `json:"agent"`
	}{in}
	start := time.Now()
	failed := 0 // failed attempts of every round, against MaxAttempts
	for {
		// A failed attempt that may have taken effect ends the call (settle),
		// so that the agent is looked up before it is registered again: a
		// registration that happened is then never sent twice.
		var out agentBody
		res, err := c.doCall(ctx, call{op: op, method: "POST", out: &out, settle: true, failed: failed}, "agents", nil, body)
		if err == nil {
			var a *Agent
			if a, err = out.result(op, res); err == nil {
				return a, nil
			}
		}
		if !res.acted && !mayMeanExists(err) {
			return nil, err
		}
		failed += res.failures
		// The check and a new round go on with the first call's throttling
		// schedule and MaxDuration.
		ctx = withStart(ctx, start)
		a, err, absent := c.confirmRegistered(ctx, in, err)
		if !absent || !transient(err) || failed >= c.api.policy.MaxAttempts || !c.api.pause(ctx, failed, start) {
			return a, err
		}
	}
}

// transient reports whether a call that failed with err is worth another,
// by the rules checkRetry retries failures by.
func transient(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return retryableStatus(apiErr.StatusCode)
	}
	return retryableError(err)
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
// answered 404: there is nothing to uninstall. An uninstall that failed after
// an attempt that may have taken effect (its connection broke, it timed out,
// or it was answered 5xx or with an unusable 2xx) is settled the same way: if
// ShowAgent finds the agent uninstalled, that agent is the result.
func (c *Client) UpdateAgent(ctx context.Context, agentID string, in AgentUpdate) (*Agent, error) {
	const op = "update agent"
	if err := validateAgentID(op, agentID); err != nil {
		return nil, err
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	body := struct {
		Agent AgentUpdate `json:"agent"`
	}{in}
	var out agentBody
	start := time.Now()
	res, err := c.do(ctx, op, "PUT", agentPath(agentID), nil, body, &out)
	if err == nil {
		var a *Agent
		if a, err = out.result(op, res); err == nil {
			return a, nil
		}
	}
	return c.uninstalledAlready(withStart(ctx, start), agentID, res.acted, err)
}

// ShowAgent returns one agent: GET /v3/{project_id}/agents/{agent_id}. An
// unknown agent is an *APIError matching ErrNotFound.
func (c *Client) ShowAgent(ctx context.Context, agentID string) (*Agent, error) {
	const op = "show agent"
	if err := validateAgentID(op, agentID); err != nil {
		return nil, err
	}
	var out agentBody
	res, err := c.do(ctx, op, "GET", agentPath(agentID), nil, nil, &out)
	if err != nil {
		return nil, err
	}
	return out.result(op, res)
}

// agentBody is the body of an answer that holds one agent.
type agentBody struct {
	Agent agentWire `json:"agent"`
}

// result returns the agent of a 2xx answer, or the error of an answer
// without one ({}, null, {"agent":null}, or an agent without an ID).
func (b *agentBody) result(op string, res outcome) (*Agent, error) {
	if b.Agent.AgentID == "" {
		return nil, res.unusable(op, `response has no "agent"`)
	}
	a := b.Agent.agent()
	return &a, nil
}

// agentPath is the path of one agent, relative to /v3/{project_id}/. agentID
// must have passed validateAgentID.
func agentPath(agentID string) string {
	return "agents/" + url.PathEscape(agentID)
}

// Validate checks in as [Client.RegisterAgent] does before it sends anything, so that
// an installer can check its input before anything remote happens: the
// required fields, the host IP, the agent version's pattern and type, and
// that no field holds a control character (Unicode category Cc, U+2028 or
// U+2029) or invalid UTF-8. A failure is a [*ValidationError] with Op
// "register agent", the error RegisterAgent would return.
func (in AgentRegister) Validate() error { return in.validate("register agent") }

// validate is Validate with the operation named in the error.
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
		{"agent_version", in.AgentVersion},
	} {
		if reason := checkText(f.value); reason != "" {
			return &ValidationError{Op: op, Field: f.name, Reason: reason}
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

// Validate checks in as [Client.UpdateAgent] does before it sends anything: the API
// accepts only the status [AgentStatusUninstall]. A failure is a
// [*ValidationError] with Op "update agent".
func (in AgentUpdate) Validate() error {
	if in.Status != AgentStatusUninstall {
		return &ValidationError{Op: "update agent", Field: "status", Reason: "must be " + string(AgentStatusUninstall)}
	}
	return nil
}

// checkText says why s cannot be sent, or returns "" when it can. The client
// sends no control character (see isControl), and no invalid UTF-8, which
// encoding/json would silently replace with U+FFFD. The reason never quotes
// s, so that an error stays one line.
func checkText(s string) string {
	switch {
	case strings.ContainsFunc(s, isControl):
		return "contains a control character"
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	return ""
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
// or "..", no control character, valid UTF-8.
func checkID(id string) *ValidationError {
	switch {
	case id == "":
		return &ValidationError{Reason: "is required"}
	case id == "." || id == "..":
		return &ValidationError{Reason: `must not be "." or ".."`}
	case strings.Contains(id, "/"):
		return &ValidationError{Reason: `must not contain "/"`}
	}
	if reason := checkText(id); reason != "" {
		return &ValidationError{Reason: reason}
	}
	return nil
}

// confirmRegistered settles a failed registration that may have taken effect:
// it returns the agent when ShowAgent finds it registered as in asked, and err,
// with what the check found, when it does not; absent is true when the check
// found no such agent.
func (c *Client) confirmRegistered(ctx context.Context, in AgentRegister, err error) (a *Agent, _ error, absent bool) {
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w; whether agent %s was registered is unknown: register it again to settle it", err, in.AgentID), false
	}
	a, showErr := c.ShowAgent(ctx, in.AgentID)
	switch {
	case showErr == nil && in.registeredAs(a):
		return a, nil, false
	case showErr == nil:
		return nil, fmt.Errorf("%w; agent %s exists with other host facts or uninstalled", err, in.AgentID), false
	case errors.Is(showErr, ErrNotFound):
		return nil, fmt.Errorf("%w; agent %s is not registered", err, in.AgentID), true
	default:
		return nil, fmt.Errorf("%w; whether agent %s was registered is unknown: %s", err, in.AgentID, trimPrefix(showErr)), false
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

// codeInvalidAgent is the API's error code for an agent it refuses to act on.
const codeInvalidAgent = "BackupService.7403"

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
