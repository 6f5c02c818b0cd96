package cbr

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// AddAgentPaths adds backup paths to an agent:
// POST /v3/{project_id}/agents/{agent_id}/add-path. The API does not check that
// the paths exist on the host. A path the agent already has is reported in
// Existed, so adding paths again is safe; a retried call can report there a
// path that its own first attempt added. Going over the agent's path quota is
// a 400 *APIError with code BackupService.7407.
//
// Every path must be an absolute POSIX path with something after the leading
// "/", such as "/opt/data", or a Windows drive path such as `D:\data` or
// "D:/data", as the API's pattern says; anything else is a *ValidationError,
// and nothing is sent.
func (c *Client) AddAgentPaths(ctx context.Context, agentID string, in AddPathsRequest) (*PathsAdded, error) {
	const op = "add agent paths"
	if err := validateAgentID(op, agentID); err != nil {
		return nil, err
	}
	if err := in.validate(op); err != nil {
		return nil, err
	}
	var out PathsAdded
	if _, err := c.do(ctx, op, "POST", agentPath(agentID)+"/add-path", nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveAgentPaths removes backup paths from an agent:
// POST /v3/{project_id}/agents/{agent_id}/remove-path. A path the agent does
// not have is reported in NotExisted. The API documents no pattern for these
// paths, so any path that is not empty and has no control character is sent,
// including one that AddAgentPaths would refuse.
func (c *Client) RemoveAgentPaths(ctx context.Context, agentID string, paths []string) (*PathsRemoved, error) {
	const op = "remove agent paths"
	if err := validateAgentID(op, agentID); err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, &ValidationError{Op: op, Field: "remove_path", Reason: "must list at least one path"}
	}
	for _, p := range paths {
		if p == "" || strings.ContainsFunc(p, isControl) {
			return nil, &ValidationError{Op: op, Field: "remove_path", Reason: fmt.Sprintf("%q is empty or contains a control character", p)}
		}
	}
	body := struct {
		RemovePath []string `json:"remove_path"`
	}{paths}
	var out PathsRemoved
	if _, err := c.do(ctx, op, "POST", agentPath(agentID)+"/remove-path", nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CheckAgents reports whether an agent is installed on each of resources, and
// in what state: POST /v3/{project_id}/agent/check. Each AgentCheck says what
// the API knows; see AgentCheck for the fields it may leave unknown.
func (c *Client) CheckAgents(ctx context.Context, resources []AgentCheckRequest) ([]AgentCheck, error) {
	const op = "check agents"
	if len(resources) == 0 {
		return nil, &ValidationError{Op: op, Field: "agent_status", Reason: "must name at least one resource"}
	}
	for _, r := range resources {
		if err := r.validate(op); err != nil {
			return nil, err
		}
	}
	body := struct {
		AgentStatus []AgentCheckRequest `json:"agent_status"`
	}{resources}
	var out struct {
		AgentStatus *[]AgentCheck `json:"agent_status"`
	}
	res, err := c.do(ctx, op, "POST", "agent/check", nil, body, &out)
	if err != nil {
		return nil, err
	}
	if out.AgentStatus == nil {
		return nil, res.unusable(op, `response has no "agent_status"`)
	}
	return *out.AgentStatus, nil
}

// validate checks one resource of CheckAgents.
func (r AgentCheckRequest) validate(op string) error {
	switch {
	case r.ResourceID == "":
		return &ValidationError{Op: op, Field: "resource_id", Reason: "is required"}
	case strings.ContainsFunc(r.ResourceID, isControl):
		return &ValidationError{Op: op, Field: "resource_id", Reason: "contains a control character"}
	case strings.ContainsFunc(r.ResourceName, isControl):
		return &ValidationError{Op: op, Field: "resource_name", Reason: "contains a control character"}
	case r.ResourceType != ResourceTypeServer && r.ResourceType != ResourceTypeBareMetalServer:
		return &ValidationError{Op: op, Field: "resource_type", Reason: "must be " + string(ResourceTypeServer) + " or " + string(ResourceTypeBareMetalServer)}
	}
	return nil
}

// validate checks an AddPathsRequest before anything is sent.
func (in AddPathsRequest) validate(op string) error {
	if err := validatePaths(op, "add_path", in.Paths); err != nil {
		return err
	}
	for _, e := range in.Exclude {
		if !slices.Contains(in.Paths, e.PathName) {
			return &ValidationError{Op: op, Field: "exclude_path.path_name", Reason: fmt.Sprintf("%q is not one of add_path", e.PathName)}
		}
		if len(e.ExcludePathNames) == 0 {
			return &ValidationError{Op: op, Field: "exclude_path.exclude_path_name", Reason: "is required"}
		}
		for _, name := range e.ExcludePathNames {
			if name == "" || strings.ContainsFunc(name, isControl) {
				return &ValidationError{Op: op, Field: "exclude_path.exclude_path_name", Reason: fmt.Sprintf("%q is empty or contains a control character", name)}
			}
		}
	}
	return nil
}

// validatePaths checks a non-empty list of backup paths.
func validatePaths(op, field string, paths []string) error {
	if len(paths) == 0 {
		return &ValidationError{Op: op, Field: field, Reason: "must list at least one path"}
	}
	for _, p := range paths {
		if !isBackupPath(p) {
			return &ValidationError{Op: op, Field: field, Reason: fmt.Sprintf("%q is not an absolute POSIX path or a Windows drive path", p)}
		}
	}
	return nil
}

// isBackupPath reports whether p is a path the API accepts, by the intent of
// its pattern (^[a-zA-Z]:(\\)+...|(^//.|^/|^[a-zA-Z])?:?/.+(/$)?): "/" followed
// by at least one character ("/opt/data", "//server/share"), a drive letter
// with a backslash (`C:\`, `D:\data`), or a drive letter with "/" and more
// ("D:/data"). The pattern, which is not anchored, would also take relative
// paths that merely contain a "/"; those are refused. So are control characters.
func isBackupPath(p string) bool {
	if strings.ContainsFunc(p, isControl) {
		return false
	}
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
