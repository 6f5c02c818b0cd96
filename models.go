package cbr

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// AgentType says where an agent is installed.
type AgentType string

// Agent types. Values the server sends that are not listed here are kept as they are.
const (
	// AgentTypeCloud is an agent installed on a cloud server.
	AgentTypeCloud AgentType = "cloud"
	// AgentTypeNative is an agent installed on a local (on-premises) server.
	AgentTypeNative AgentType = "native"
)

// AgentStatus is the state of an agent.
type AgentStatus string

// Agent statuses. Values the server sends that are not listed here are kept as they are.
const (
	// AgentStatusNormal means the agent can be used normally.
	AgentStatusNormal AgentStatus = "normal"
	// AgentStatusAbnormal means the agent needs repair; some functions are unavailable.
	AgentStatusAbnormal AgentStatus = "abnormal"
	// AgentStatusUninstall means the agent has been uninstalled or is being upgraded.
	// It is the only status a client may set, with UpdateAgent.
	AgentStatusUninstall AgentStatus = "uninstall"
)

// PathStatus is the state of a backup path.
type PathStatus string

// Path statuses. Values the server sends that are not listed here are kept as they are.
const (
	// PathStatusAvailable means the path can be backed up.
	PathStatusAvailable PathStatus = "available"
	// PathStatusRemove means the path was removed and cannot be used.
	PathStatusRemove PathStatus = "remove"
)

// AgentRegister is the body of RegisterAgent. AgentID, HostName, HostIP and
// HostOS are required.
type AgentRegister struct {
	// AgentID is the agent's ID, chosen by the caller (a UUID in the API's examples).
	// Registering the same ID again is safe, which is what makes retries safe.
	AgentID string `json:"agent_id"`
	// HostName is the name of the host the agent is installed on.
	HostName string `json:"host_name"`
	// HostIP is the host's IP address, IPv4 or IPv6.
	HostIP string `json:"host_ip"`
	// HostOS is the host's operating system, such as "linux" or "windows".
	HostOS string `json:"host_os"`
	// HostNickname is an optional alias for the host.
	HostNickname string `json:"host_nickname,omitempty"`
	// AgentVersion is the optional agent version, three dot-separated numbers such as "1.0.0".
	AgentVersion string `json:"agent_version,omitempty"`
	// AgentType is AgentTypeCloud or AgentTypeNative; empty leaves it to the server.
	AgentType AgentType `json:"agent_type,omitempty"`
}

// AgentUpdate is the body of UpdateAgent.
type AgentUpdate struct {
	// Status is the new status; the API accepts only AgentStatusUninstall.
	Status AgentStatus `json:"status"`
}

// Agent is an agent as the API reports it. Timestamps the server leaves out,
// sends as null or as "" are the zero time.
type Agent struct {
	// AgentID is the agent's ID, the one it was registered with.
	AgentID string `json:"agent_id"`
	// AgentVersion is the version the agent reported, such as "1.0.0".
	AgentVersion string `json:"agent_version,omitempty"`
	// AgentType is where the agent is installed: cloud or native.
	AgentType AgentType `json:"agent_type,omitempty"`
	// HostName, HostNickname, HostIP and HostOS describe the agent's host.
	HostName     string `json:"host_name,omitempty"`
	HostNickname string `json:"host_nickname,omitempty"`
	HostIP       string `json:"host_ip,omitempty"`
	HostOS       string `json:"host_os,omitempty"`
	// Status is normal, abnormal or uninstall, or a status this SDK does not know.
	Status AgentStatus `json:"status,omitempty"`
	// CreatedAt is when the agent was registered (installed).
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when the agent was last changed.
	UpdatedAt time.Time `json:"updated_at"`
	// LastActiveTime is when the agent was last active.
	LastActiveTime time.Time `json:"last_active_time"`
	// Paths are the agent's backup paths; the API leaves them out of some answers.
	Paths []Path `json:"paths,omitempty"`
}

// UnmarshalJSON decodes an agent, accepting every timestamp form the API uses.
// It replaces the whole of a: a field that data leaves out is zero.
func (a *Agent) UnmarshalJSON(data []byte) error {
	var w agentWire
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*a = w.agent()
	return nil
}

// MarshalJSON encodes an agent with RFC 3339 timestamps; a zero time is null.
func (a Agent) MarshalJSON() ([]byte, error) {
	return json.Marshal(a.wire())
}

// Path is a backup path of an agent.
type Path struct {
	// ID is the path's ID.
	ID string `json:"id"`
	// Status is available or remove, or a status this SDK does not know.
	Status PathStatus `json:"status,omitempty"`
	// AgentID is the ID of the agent the path belongs to.
	AgentID string `json:"agent_id,omitempty"`
	// DirPath is the directory backed up, such as "/opt/backup".
	DirPath string `json:"dir_path"`
	// ExcludePaths lists the excluded directories and patterns. The wire form is
	// one comma-separated string; the feature is in public beta.
	ExcludePaths []string `json:"exclude_paths,omitempty"`
}

// UnmarshalJSON decodes a path, splitting the comma-separated exclude_paths.
// It replaces the whole of p: a field that data leaves out is zero.
func (p *Path) UnmarshalJSON(data []byte) error {
	var w pathWire
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*p = w.path()
	return nil
}

// MarshalJSON encodes a path with exclude_paths as one comma-separated string.
func (p Path) MarshalJSON() ([]byte, error) {
	return json.Marshal(p.wire())
}

// agentWire is an Agent in the form the API sends. The operations decode
// responses into it, not into Agent, so that encoding/json goes through the
// body once: a type with its own UnmarshalJSON, such as Agent, is scanned to
// find its end and then decoded again from its bytes.
type agentWire struct {
	AgentID        string      `json:"agent_id"`
	AgentVersion   string      `json:"agent_version,omitempty"`
	AgentType      AgentType   `json:"agent_type,omitempty"`
	HostName       string      `json:"host_name,omitempty"`
	HostNickname   string      `json:"host_nickname,omitempty"`
	HostIP         string      `json:"host_ip,omitempty"`
	HostOS         string      `json:"host_os,omitempty"`
	Status         AgentStatus `json:"status,omitempty"`
	CreatedAt      wireTime    `json:"created_at"`
	UpdatedAt      wireTime    `json:"updated_at"`
	LastActiveTime wireTime    `json:"last_active_time"`
	Paths          []pathWire  `json:"paths,omitempty"`
}

// agent converts w to an Agent.
func (w *agentWire) agent() Agent {
	a := Agent{
		AgentID:        w.AgentID,
		AgentVersion:   w.AgentVersion,
		AgentType:      w.AgentType,
		HostName:       w.HostName,
		HostNickname:   w.HostNickname,
		HostIP:         w.HostIP,
		HostOS:         w.HostOS,
		Status:         w.Status,
		CreatedAt:      time.Time(w.CreatedAt),
		UpdatedAt:      time.Time(w.UpdatedAt),
		LastActiveTime: time.Time(w.LastActiveTime),
	}
	if w.Paths != nil {
		a.Paths = make([]Path, len(w.Paths))
		for i := range w.Paths {
			a.Paths[i] = w.Paths[i].path()
		}
	}
	return a
}

// wire converts a to its wire form.
func (a *Agent) wire() agentWire {
	w := agentWire{
		AgentID:        a.AgentID,
		AgentVersion:   a.AgentVersion,
		AgentType:      a.AgentType,
		HostName:       a.HostName,
		HostNickname:   a.HostNickname,
		HostIP:         a.HostIP,
		HostOS:         a.HostOS,
		Status:         a.Status,
		CreatedAt:      wireTime(a.CreatedAt),
		UpdatedAt:      wireTime(a.UpdatedAt),
		LastActiveTime: wireTime(a.LastActiveTime),
	}
	if a.Paths != nil {
		w.Paths = make([]pathWire, len(a.Paths))
		for i := range a.Paths {
			w.Paths[i] = a.Paths[i].wire()
		}
	}
	return w
}

// pathWire is a Path in the form the API sends, with ExcludePaths as one
// comma-separated string.
type pathWire struct {
	ID           string      `json:"id"`
	Status       PathStatus  `json:"status,omitempty"`
	AgentID      string      `json:"agent_id,omitempty"`
	DirPath      string      `json:"dir_path"`
	ExcludePaths excludeList `json:"exclude_paths,omitempty"`
}

// path converts w to a Path.
func (w *pathWire) path() Path {
	return Path{ID: w.ID, Status: w.Status, AgentID: w.AgentID, DirPath: w.DirPath, ExcludePaths: w.ExcludePaths}
}

// wire converts p to its wire form.
func (p *Path) wire() pathWire {
	return pathWire{ID: p.ID, Status: p.Status, AgentID: p.AgentID, DirPath: p.DirPath, ExcludePaths: p.ExcludePaths}
}

// excludeList is exclude_paths, one comma-separated string on the wire.
type excludeList []string

// UnmarshalJSON splits the string on commas, trims each item and drops empty
// ones; null, "" and a string of only commas and spaces give nil. The items
// are substrings of the one string decoded, in one slice.
func (l *excludeList) UnmarshalJSON(data []byte) error {
	s, err := unquote(data)
	if err != nil {
		return err
	}
	*l = nil
	if s == "" {
		return nil
	}
	items := make([]string, 0, strings.Count(s, ",")+1)
	for {
		item, rest, more := strings.Cut(s, ",")
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
		if !more {
			break
		}
		s = rest
	}
	if len(items) > 0 {
		*l = items
	}
	return nil
}

// MarshalJSON writes the items joined by commas.
func (l excludeList) MarshalJSON() ([]byte, error) {
	return json.Marshal(strings.Join(l, ","))
}

// wireTime is a timestamp in any of the forms the API sends:
// "2022-01-30T09:28:09.334+00:00", "2022-01-30T09:28:09.334153" (no zone: UTC),
// "2022-01-30T09:28:09Z", "2022-01-30 09:28:09", null and "".
type wireTime time.Time

// UnmarshalJSON parses every form listed on wireTime. An explicit offset is kept.
func (t *wireTime) UnmarshalJSON(data []byte) error {
	if n := len(data); n >= 2 && data[0] == '"' && data[n-1] == '"' {
		if v, ok := parseTimeBytes(data[1 : n-1]); ok {
			*t = wireTime(v)
			return nil
		}
	}
	if string(data) == "null" {
		*t = wireTime{}
		return nil
	}
	s, err := unquote(data)
	if err != nil {
		return err
	}
	v, err := parseTime(s)
	if err != nil {
		return err
	}
	*t = wireTime(v)
	return nil
}

// unquote returns the JSON string literal data as a Go string. A literal
// without escapes, as every timestamp is, is sliced rather than decoded again.
func unquote(data []byte) (string, error) {
	if n := len(data); n >= 2 && data[0] == '"' && data[n-1] == '"' && bytes.IndexByte(data, '\\') < 0 {
		return string(data[1 : n-1]), nil
	}
	var s string
	err := json.Unmarshal(data, &s)
	return s, err
}

// MarshalJSON writes RFC 3339 with fractional seconds, or null for the zero time.
func (t wireTime) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(time.Time(t).Format(time.RFC3339Nano))
}

// parseTime parses one timestamp. It picks the layout from the text instead of
// trying layouts in turn: the date and time may be separated by 'T' or ' ',
// fractional seconds are optional, and no zone means UTC. Offsets without a
// colon (+0800) or without minutes (+08), and a lowercase z, are accepted too.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if strings.HasSuffix(s, "z") {
		s = s[:len(s)-1] + "Z"
	}
	space := len(s) > 10 && s[10] == ' '
	var layout string
	switch {
	case space && hasZone(s):
		layout = "2006-01-02 15:04:05Z07:00"
	case space:
		layout = "2006-01-02 15:04:05"
	case hasZone(s):
		layout = "2006-01-02T15:04:05Z07:00"
	default:
		layout = "2006-01-02T15:04:05"
	}
	t, err := time.ParseInLocation(layout, s, time.UTC)
	if err != nil && hasZone(s) {
		date := layout[:len(layout)-len("Z07:00")]
		for _, zone := range []string{"Z0700", "Z07"} {
			if t2, err2 := time.Parse(date+zone, s); err2 == nil {
				return t2, nil
			}
		}
	}
	return t, err
}

// parseTimeBytes parses the forms the API sends most, without copying b to a
// string: "2006-01-02T15:04:05" or "2006-01-02 15:04:05", then an optional
// fraction of 1 to 9 digits, then nothing (UTC), "Z" or an offset "+08:00".
// It gives the same time as parseTime, and false for anything else (which
// parseTime then parses or rejects).
func parseTimeBytes(b []byte) (time.Time, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || b[10] != 'T' && b[10] != ' ' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := atoiDigits(b[0:4])
	month, ok2 := atoiDigits(b[5:7])
	day, ok3 := atoiDigits(b[8:10])
	hour, ok4 := atoiDigits(b[11:13])
	minute, ok5 := atoiDigits(b[14:16])
	sec, ok6 := atoiDigits(b[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || month < 1 || month > 12 || day < 1 ||
		day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest := b[19:]
	nsec := 0
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n == 1 || n > 10 {
			return time.Time{}, false
		}
		frac, _ := atoiDigits(rest[1:n])
		for i := n; i < 10; i++ {
			frac *= 10
		}
		nsec, rest = frac, rest[n:]
	}
	offset := 0
	switch {
	case len(rest) == 0 || len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		hh, ok1 := atoiDigits(rest[1:3])
		mm, ok2 := atoiDigits(rest[4:6])
		if !ok1 || !ok2 || hh > 24 || mm > 59 {
			return time.Time{}, false
		}
		offset = hh*3600 + mm*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if offset != 0 {
		// As time.ParseInLocation in UTC: an offset other than UTC's is kept in a fixed zone.
		t = t.Add(-time.Duration(offset) * time.Second).In(time.FixedZone("", offset))
	}
	return t, true
}

// atoiDigits returns the number written by b, which must be decimal digits only.
func atoiDigits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysIn returns the number of days of month in year.
func daysIn(month time.Month, year int) int {
	if month == time.February && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		return 29
	}
	return int(daysPerMonth[month-1])
}

var daysPerMonth = [12]uint8{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// hasZone reports whether s ends with "Z" or a numeric offset such as "+08:00".
func hasZone(s string) bool {
	if strings.HasSuffix(s, "Z") {
		return true
	}
	return len(s) > 19 && strings.ContainsAny(s[19:], "+-")
}

// ListAgentsOptions selects the agents of ListAgents and Agents. The zero value
// lists every agent.
type ListAgentsOptions struct {
	// Status, when set, keeps only the agents in that status.
	Status AgentStatus
	// AgentIDs, when set, keeps only these agents. They are sent as a repeated
	// agent_id parameter.
	AgentIDs []string
	// Limit is the page size, 1 to 1000; zero leaves it to the server (ListAgents)
	// or asks for the largest pages (Agents).
	Limit int
	// Offset is the number of agents to skip, 0 or more.
	Offset int
}

// AgentList is one page of agents, as ListAgents returns it.
type AgentList struct {
	// Agents are the agents of this page.
	Agents []Agent `json:"agents"`
	// Count is the API's "client quantity". The API reference does not say
	// whether it counts every matching agent or only this page's.
	Count int `json:"count"`
	// Limit and Offset are the page's size and position, as the server reports them.
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

// agentListWire is an AgentList in the form the API sends.
type agentListWire struct {
	Agents []agentWire `json:"agents"`
	Count  int         `json:"count"`
	Limit  int         `json:"limit"`
	Offset int         `json:"offset"`
}

// list converts w to an AgentList.
func (w *agentListWire) list() *AgentList {
	list := &AgentList{Count: w.Count, Limit: w.Limit, Offset: w.Offset}
	if w.Agents != nil {
		list.Agents = make([]Agent, len(w.Agents))
		for i := range w.Agents {
			list.Agents[i] = w.Agents[i].agent()
		}
	}
	return list
}

// AddPathsRequest is the body of AddAgentPaths.
type AddPathsRequest struct {
	// Paths are the directories or files to back up: absolute POSIX paths such as
	// "/opt/data", or Windows drive paths such as `D:\data`. At least one is required.
	Paths []string `json:"add_path"`
	// Exclude lists, for some of Paths, what to leave out of their backups. The
	// feature is in public beta: some regions may not support it.
	Exclude []ExcludePath `json:"exclude_path,omitempty"`
}

// ExcludePath leaves directories or patterns out of the backups of one path.
type ExcludePath struct {
	// PathName is the backup path, one of AddPathsRequest.Paths.
	PathName string `json:"path_name"`
	// ExcludePathNames are the directories or patterns to leave out.
	ExcludePathNames []string `json:"exclude_path_name"`
}

// PathsAdded is the result of AddAgentPaths.
type PathsAdded struct {
	// Added lists the paths that were added.
	Added []string `json:"added"`
	// Existed lists the paths the agent already had.
	Existed []string `json:"existed"`
}

// PathsRemoved is the result of RemoveAgentPaths.
type PathsRemoved struct {
	// Removed lists the paths that were removed.
	Removed []string `json:"removed"`
	// NotExisted lists the paths the agent did not have.
	NotExisted []string `json:"not_existed"`
}

// ResourceType is the type of a resource CheckAgents looks at.
type ResourceType string

// Resource types that CheckAgents accepts.
const (
	// ResourceTypeServer is an elastic cloud server.
	ResourceTypeServer ResourceType = "OS::Nova::Server"
	// ResourceTypeBareMetalServer is a bare metal server.
	ResourceTypeBareMetalServer ResourceType = "OS::Ironic::BareMetalServer"
)

// AgentCheckRequest names one resource for CheckAgents.
type AgentCheckRequest struct {
	// ResourceID is the server's ID. Required.
	ResourceID string `json:"resource_id"`
	// ResourceType is ResourceTypeServer or ResourceTypeBareMetalServer. Required.
	ResourceType ResourceType `json:"resource_type"`
	// ResourceName is the server's name. Optional.
	ResourceName string `json:"resource_name,omitempty"`
}

// AgentCheck is the state of the agent on one resource, as CheckAgents reports
// it. The API may send any field as null. Installed, IsOld and Code are
// pointers because there null means "not known", which is not the same answer
// as false or 0: a nil Installed is not a report that no agent is installed.
// For the strings, null and "" say the same thing, so they are plain strings.
type AgentCheck struct {
	// ResourceID is the ID of the server checked.
	ResourceID string `json:"resource_id"`
	// Installed reports whether an agent is installed; nil when the server does not say.
	Installed *bool `json:"installed"`
	// IsOld reports whether the agent is an old version; nil when the server does not say.
	IsOld *bool `json:"is_old"`
	// Version is the agent's version.
	Version string `json:"version"`
	// Code is the error code of why the agent cannot be reached; nil when
	// there is no such error.
	Code *int `json:"code"`
	// Message describes why the agent cannot be reached.
	Message string `json:"message"`
}
