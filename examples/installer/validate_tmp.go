package main

// TEMPORARY, to delete at merge: this file stands in for the exported
// validation that branch h-edges adds to package cbr. At merge, replace
// validateAgentRegister(in) with in.Validate() and validateAddPaths(req) with
// req.Validate() in main.go, and delete this file. Its checks are those of
// the SDK's unexported AgentRegister.validate and AddPathsRequest.validate,
// and its errors the same *cbr.ValidationError values, without Op.

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/cbrsdk/cbr"
)

// validateAgentRegister checks in as RegisterAgent does before sending it.
func validateAgentRegister(in cbr.AgentRegister) error {
	id := in.AgentID
	switch {
	case id == "":
		return &cbr.ValidationError{Field: "agent_id", Reason: "is required"}
	case id == "." || id == "..":
		return &cbr.ValidationError{Field: "agent_id", Reason: `must not be "." or ".."`}
	case strings.Contains(id, "/"):
		return &cbr.ValidationError{Field: "agent_id", Reason: `must not contain "/"`}
	case strings.ContainsFunc(id, isControl):
		return &cbr.ValidationError{Field: "agent_id", Reason: "contains a control character"}
	}
	for _, f := range []struct{ name, value string }{
		{"host_name", in.HostName}, {"host_ip", in.HostIP}, {"host_os", in.HostOS},
	} {
		if strings.TrimSpace(f.value) == "" {
			return &cbr.ValidationError{Field: f.name, Reason: "is required"}
		}
	}
	for _, f := range []struct{ name, value string }{
		{"host_name", in.HostName}, {"host_os", in.HostOS}, {"host_nickname", in.HostNickname},
	} {
		if strings.ContainsFunc(f.value, isControl) {
			return &cbr.ValidationError{Field: f.name, Reason: "contains a control character"}
		}
	}
	if ip, err := netip.ParseAddr(in.HostIP); err != nil || ip.Zone() != "" {
		return &cbr.ValidationError{Field: "host_ip", Reason: "is not an IPv4 or IPv6 address"}
	}
	if in.AgentVersion != "" && !agentVersion.MatchString(in.AgentVersion) {
		return &cbr.ValidationError{Field: "agent_version", Reason: "does not end in three dot-separated numbers of 1 to 3 digits, such as 1.0.0"}
	}
	switch in.AgentType {
	case "", cbr.AgentTypeCloud, cbr.AgentTypeNative:
	default:
		return &cbr.ValidationError{Field: "agent_type", Reason: "must be cloud or native"}
	}
	return nil
}

// agentVersion is the API's pattern of agent_version, anchored at the end only.
var agentVersion = regexp.MustCompile(`(\d{1,3}\.){2}\d{1,3}$`)

// validateAddPaths checks req's paths as AddAgentPaths does before sending
// them: "/" and at least one more character, or a Windows drive path.
func validateAddPaths(req cbr.AddPathsRequest) error {
	if len(req.Paths) == 0 {
		return &cbr.ValidationError{Field: "add_path", Reason: "must list at least one path"}
	}
	for _, p := range req.Paths {
		drive := len(p) >= 3 && ('a' <= p[0]|0x20 && p[0]|0x20 <= 'z') && p[1] == ':'
		ok := len(p) >= 2 && p[0] == '/' || drive && p[2] == '\\' || drive && p[2] == '/' && len(p) >= 4
		if !ok || strings.ContainsFunc(p, isControl) {
			return &cbr.ValidationError{Field: "add_path", Reason: fmt.Sprintf("%q is not an absolute POSIX path or a Windows drive path", p)}
		}
	}
	return nil
}

// isControl reports whether r is an ASCII control character.
func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
