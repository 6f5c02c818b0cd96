package cbr

import (
	"context"
	"fmt"
	"slices"
)

// AddAgentPaths adds backup paths to an agent:
// POST /v3/{project_id}/agents/{agent_id}/add-path. The API does not check that
// the paths exist on the host. A path the agent already has is reported in
// [PathsAdded.Existed], so adding paths again is safe; a retried call can
// report there a path that its own first attempt added. Going over the
// agent's path quota is a 400 [*APIError] with code BackupService.7407.
//
// in is checked by [AddPathsRequest.Validate] and agentID like every agent
// ID; a failure is a [*ValidationError], and nothing is sent.
func (c *Client) AddAgentPaths(ctx context.Context, agentID string, in AddPathsRequest) (*PathsAdded, error) {
	const op = "add agent paths"
	if err := validateAgentID(op, agentID); err != nil {
		return nil, err
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var out PathsAdded
	if _, err := c.do(ctx, op, "POST", agentPath(agentID)+"/add-path", nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Validate checks in as [Client.AddAgentPaths] does before it sends anything:
// at least one path; every path an absolute POSIX path with something after
// the leading "/", such as "/opt/data", or a Windows drive path such as
// `D:\data` or "D:/data", as the API's pattern says; every exclusion for one
// of the paths, with at least one name; and no control character or invalid
// UTF-8 anywhere. A failure is a [*ValidationError] with Op "add agent paths".
func (in AddPathsRequest) Validate() error {
	const op = "add agent paths"
	if len(in.Paths) == 0 {
		return &ValidationError{Op: op, Field: "add_path", Reason: "must list at least one path"}
	}
	for _, p := range in.Paths {
		if reason := checkText(p); reason != "" {
			return &ValidationError{Op: op, Field: "add_path", Reason: fmt.Sprintf("%q %s", p, reason)}
		}
		if !isBackupPath(p) {
			return &ValidationError{Op: op, Field: "add_path", Reason: fmt.Sprintf("%q is not an absolute POSIX path or a Windows drive path", p)}
		}
	}
	for _, e := range in.Exclude {
		if !slices.Contains(in.Paths, e.PathName) {
			return &ValidationError{Op: op, Field: "exclude_path.path_name", Reason: fmt.Sprintf("%q is not one of add_path", e.PathName)}
		}
		if err := checkPathNames(op, "exclude_path.exclude_path_name", e.ExcludePathNames); err != nil {
			return err
		}
	}
	return nil
}

// RemovePathsRequest is the body of [Client.RemoveAgentPaths].
type RemovePathsRequest struct {
	// Paths are the backup paths to remove. At least one is required.
	Paths []string `json:"remove_path"`
}

// RemoveAgentPaths removes backup paths from an agent:
// POST /v3/{project_id}/agents/{agent_id}/remove-path. A path the agent does
// not have is reported in [PathsRemoved.NotExisted].
//
// in is checked by [RemovePathsRequest.Validate] and agentID like every
// agent ID; a failure is a [*ValidationError], and nothing is sent.
func (c *Client) RemoveAgentPaths(ctx context.Context, agentID string, in RemovePathsRequest) (*PathsRemoved, error) {
	const op = "remove agent paths"
	if err := validateAgentID(op, agentID); err != nil {
		return nil, err
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var out PathsRemoved
	if _, err := c.do(ctx, op, "POST", agentPath(agentID)+"/remove-path", nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Validate checks in as [Client.RemoveAgentPaths] does before it sends
// anything. The API documents no pattern for these paths, so any path that is
// not empty, has no control character and is valid UTF-8 passes, including
// one that [AddPathsRequest.Validate] would refuse: an agent can have such
// paths. A failure is a [*ValidationError] with Op "remove agent paths".
func (in RemovePathsRequest) Validate() error {
	return checkPathNames("remove agent paths", "remove_path", in.Paths)
}

// checkPathNames checks a non-empty list of paths or patterns that the API
// takes as they are: each not empty, with no control character, valid UTF-8.
func checkPathNames(op, field string, names []string) error {
	if len(names) == 0 {
		return &ValidationError{Op: op, Field: field, Reason: "must list at least one path"}
	}
	for _, name := range names {
		reason := checkText(name)
		if name == "" {
			reason = "is empty"
		}
		if reason != "" {
			return &ValidationError{Op: op, Field: field, Reason: fmt.Sprintf("%q %s", name, reason)}
		}
	}
	return nil
}

// CheckAgentsRequest is the body of [Client.CheckAgents].
type CheckAgentsRequest struct {
	// Resources are the servers to check. At least one is required.
	Resources []AgentCheckRequest `json:"agent_status"`
}

// CheckAgents reports whether an agent is installed on each resource of in,
// and in what state: POST /v3/{project_id}/agent/check. Each [AgentCheck]
// says what the API knows; see AgentCheck for the fields it may leave unknown.
//
// in is checked by [CheckAgentsRequest.Validate]; a failure is a
// [*ValidationError], and nothing is sent.
func (c *Client) CheckAgents(ctx context.Context, in CheckAgentsRequest) ([]AgentCheck, error) {
	const op = "check agents"
	if err := in.Validate(); err != nil {
		return nil, err
	}
	var out struct {
		AgentStatus *[]AgentCheck `json:"agent_status"`
	}
	res, err := c.do(ctx, op, "POST", "agent/check", nil, in, &out)
	if err != nil {
		return nil, err
	}
	if out.AgentStatus == nil {
		return nil, res.unusable(op, `response has no "agent_status"`)
	}
	return *out.AgentStatus, nil
}

// Validate checks in as [Client.CheckAgents] does before it sends anything:
// at least one resource, each with a resource ID, a resource type of
// [ResourceTypeServer] or [ResourceTypeBareMetalServer] (the API documents no
// other), and no control character or invalid UTF-8 in the ID or name. A
// failure is a [*ValidationError] with Op "check agents".
func (in CheckAgentsRequest) Validate() error {
	const op = "check agents"
	if len(in.Resources) == 0 {
		return &ValidationError{Op: op, Field: "agent_status", Reason: "must name at least one resource"}
	}
	for _, r := range in.Resources {
		if r.ResourceID == "" {
			return &ValidationError{Op: op, Field: "resource_id", Reason: "is required"}
		}
		for _, f := range []struct{ name, value string }{{"resource_id", r.ResourceID}, {"resource_name", r.ResourceName}} {
			if reason := checkText(f.value); reason != "" {
				return &ValidationError{Op: op, Field: f.name, Reason: reason}
			}
		}
		if r.ResourceType != ResourceTypeServer && r.ResourceType != ResourceTypeBareMetalServer {
			return &ValidationError{Op: op, Field: "resource_type", Reason: "must be " + string(ResourceTypeServer) + " or " + string(ResourceTypeBareMetalServer)}
		}
	}
	return nil
}

// isBackupPath reports whether p is a path the API accepts, by the intent of
// its pattern (^[a-zA-Z]:(\\)+...|(^//.|^/|^[a-zA-Z])?:?/.+(/$)?): "/" followed
// by at least one character ("/opt/data", "//server/share"), a drive letter
// with a backslash (`C:\`, `D:\data`), or a drive letter with "/" and more
// ("D:/data"). The pattern, which is not anchored, would also take relative
// paths that merely contain a "/"; those are refused.
func isBackupPath(p string) bool {
	drive := len(p) >= 3 && ('a' <= p[0]|0x20 && p[0]|0x20 <= 'z') && p[1] == ':'
	switch {
	case len(p) >= 2 && p[0] == '/':
		return true
	case drive && p[2] == '\\':
		return true
	case drive && p[2] == '/':
		return len(p) >= 4
	}
	return false
}
