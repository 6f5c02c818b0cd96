package cbrtest

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cbrsdk/cbr"
)

// DefaultPathQuota is how many backup paths a Server lets one agent have
// until SetPathQuota changes it. The API reference documents that a quota
// exists (BackupService.7407) but not its size; 100 is this fake's choice.
const DefaultPathQuota = 100

// defaultListLimit is the page size of a list request without limit, as in
// the API's example answer.
const defaultListLimit = 1000

// backupPath is the API's pattern for add_path items. Like a JSON Schema
// pattern it is not anchored: any string containing "/" and a character after it matches.
var backupPath = regexp.MustCompile(`(^[a-zA-Z]:(\\)+[(\\)+\S|*\S]?.*$|(^//.|^/|^[a-zA-Z])?:?/.+(/$)?)`)

// agentVersion is the API's pattern for agent_version. Like a JSON Schema
// pattern it is not anchored at the start: "v1.0.0" and "1234.0.0" match.
var agentVersion = regexp.MustCompile(`((\d){1,3}\.){2}(\d){1,3}$`)

// SetPathQuota sets how many backup paths one agent may have; an add-path
// request that would go over it is answered 400 BackupService.7407 and adds
// nothing. The default is DefaultPathQuota.
func (s *Server) SetPathQuota(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pathQuota = n
}

// SetAgentCheck sets what the server answers about resource c.ResourceID when
// asked with CheckAgents. A resource without one is reported as having no
// agent installed, the other fields null, as in the API's example. A nil
// pointer or an empty string in c is sent as null.
func (s *Server) SetAgentCheck(c cbr.AgentCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[c.ResourceID] = c
}

// Paths returns the backup paths of a stored agent, in the order they were
// added, or nil for an unknown agent.
func (s *Server) Paths(agentID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[agentID]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(a.Paths))
	for _, p := range a.Paths {
		out = append(out, p.DirPath)
	}
	return out
}

// agent is a stored agent, in wire form.
type agent struct {
	AgentID        string    `json:"agent_id"`
	AgentVersion   string    `json:"agent_version,omitempty"`
	AgentType      string    `json:"agent_type,omitempty"`
	HostName       string    `json:"host_name"`
	HostNickname   string    `json:"host_nickname"`
	HostIP         string    `json:"host_ip"`
	HostOS         string    `json:"host_os"`
	Status         string    `json:"status"`
	CreatedAt      wireTime  `json:"created_at"`
	UpdatedAt      wireTime  `json:"updated_at"`
	LastActiveTime wireTime  `json:"last_active_time"`
	Paths          []apiPath `json:"paths,omitempty"`
}

// apiPath is a stored backup path, in wire form.
type apiPath struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	AgentID      string `json:"agent_id"`
	DirPath      string `json:"dir_path"`
	ExcludePaths string `json:"exclude_paths,omitempty"`
}

// Agents returns a snapshot of the stored agents, sorted by agent ID. A
// snapshot is what a client decodes from the API's answer.
func (s *Server) Agents() []cbr.Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]cbr.Agent, 0, len(s.agents))
	for _, a := range s.agents {
		out = append(out, a.model())
	}
	slices.SortFunc(out, func(a, b cbr.Agent) int { return strings.Compare(a.AgentID, b.AgentID) })
	return out
}

// Agent returns a snapshot of one stored agent.
func (s *Server) Agent(agentID string) (cbr.Agent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[agentID]
	if !ok {
		return cbr.Agent{}, false
	}
	return a.model(), true
}

// model converts a stored agent to the SDK's type. The caller holds s.mu.
func (a *agent) model() cbr.Agent {
	m := cbr.Agent{
		AgentID: a.AgentID, AgentVersion: a.AgentVersion, AgentType: cbr.AgentType(a.AgentType),
		HostName: a.HostName, HostNickname: a.HostNickname, HostIP: a.HostIP, HostOS: a.HostOS,
		Status:    cbr.AgentStatus(a.Status),
		CreatedAt: time.Time(a.CreatedAt), UpdatedAt: time.Time(a.UpdatedAt), LastActiveTime: time.Time(a.LastActiveTime),
	}
	for _, p := range a.Paths {
		mp := cbr.Path{ID: p.ID, Status: cbr.PathStatus(p.Status), AgentID: p.AgentID, DirPath: p.DirPath}
		for _, e := range strings.Split(p.ExcludePaths, ",") { // as a client splits them
			if e = strings.TrimSpace(e); e != "" {
				mp.ExcludePaths = append(mp.ExcludePaths, e)
			}
		}
		m.Paths = append(m.Paths, mp)
	}
	return m
}

// registerAgent handles POST /v3/{project_id}/agents. Registering an agent ID
// that exists updates its host facts and marks it normal again, as a
// reinstall would.
func (s *Server) registerAgent(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Agent *struct {
			AgentID      *string `json:"agent_id"`
			HostName     *string `json:"host_name"`
			HostIP       *string `json:"host_ip"`
			HostOS       *string `json:"host_os"`
			HostNickname *string `json:"host_nickname"`
			AgentVersion *string `json:"agent_version"`
			AgentType    *string `json:"agent_type"`
		} `json:"agent"`
	}
	if !decode(w, r, &body) || body.Agent == nil {
		writeInvalid(w, "Invalid agent ")
		return
	}
	in := body.Agent
	id := deref(in.AgentID)
	if id == "" || deref(in.HostName) == "" || deref(in.HostIP) == "" || deref(in.HostOS) == "" ||
		(in.AgentType != nil && *in.AgentType != "cloud" && *in.AgentType != "native") ||
		(in.AgentVersion != nil && !agentVersion.MatchString(*in.AgentVersion)) || strings.ContainsAny(id, "/") {
		writeInvalid(w, "Invalid agent "+id)
		return
	}
	now := toWire(s.Now())
	s.mu.Lock()
	a, ok := s.agents[id]
	if !ok {
		a = &agent{AgentID: id, CreatedAt: now}
		s.agents[id] = a
	}
	a.HostName, a.HostIP, a.HostOS = *in.HostName, *in.HostIP, *in.HostOS
	a.HostNickname, a.AgentVersion, a.AgentType = deref(in.HostNickname), deref(in.AgentVersion), deref(in.AgentType)
	a.Status, a.UpdatedAt, a.LastActiveTime = "normal", now, now
	resp := a.snapshot()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"agent": resp})
}

// showAgent handles GET /v3/{project_id}/agents/{agent_id}.
func (s *Server) showAgent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("agent_id")
	s.mu.Lock()
	a, ok := s.agents[id]
	var resp agent
	if ok {
		resp = a.snapshot()
	}
	s.mu.Unlock()
	if !ok {
		writeAgentNotFound(w, id)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"agent": resp})
}

// updateAgent handles PUT /v3/{project_id}/agents/{agent_id}; the only status
// it accepts is "uninstall". An agent that is already uninstalled is refused
// with 400 BackupService.7403, the API's only documented error for an update:
// what the real API answers then is undocumented, and this is the answer that
// clients must cope with.
func (s *Server) updateAgent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("agent_id")
	var body struct {
		Agent *struct {
			Status string `json:"status"`
		} `json:"agent"`
	}
	if !decode(w, r, &body) || body.Agent == nil || body.Agent.Status != "uninstall" {
		writeInvalid(w, "Invalid agent "+id)
		return
	}
	now := toWire(s.Now())
	s.mu.Lock()
	a, ok := s.agents[id]
	var resp agent
	wasUninstalled := ok && a.Status == "uninstall"
	if ok && !wasUninstalled {
		a.Status, a.UpdatedAt = "uninstall", now
		resp = a.snapshot()
	}
	s.mu.Unlock()
	if !ok {
		writeAgentNotFound(w, id)
		return
	}
	if wasUninstalled {
		writeInvalid(w, "Invalid agent "+id)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"agent": resp})
}

// listAgents handles GET /v3/{project_id}/agents: agents sorted by agent ID,
// filtered by status and by the repeated agent_id parameter, then paged by
// offset and limit. count is the number of matching agents, all pages
// together (the API reference does not say which count the real API sends).
func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset := defaultListLimit, 0
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > 1000 {
			writeInvalid(w, "Invalid agent query: limit "+q.Get("limit"))
			return
		}
		limit = n
	}
	if q.Has("offset") {
		n, err := strconv.Atoi(q.Get("offset"))
		if err != nil || n < 0 {
			writeInvalid(w, "Invalid agent query: offset "+q.Get("offset"))
			return
		}
		offset = n
	}
	status, ids := q.Get("status"), q["agent_id"]
	s.mu.Lock()
	matched := make([]agent, 0, len(s.agents))
	for _, a := range s.agents {
		if (status == "" || a.Status == status) && (len(ids) == 0 || slices.Contains(ids, a.AgentID)) {
			matched = append(matched, a.snapshot())
		}
	}
	s.mu.Unlock()
	slices.SortFunc(matched, func(a, b agent) int { return strings.Compare(a.AgentID, b.AgentID) })
	start := min(offset, len(matched))
	page := matched[start : start+min(limit, len(matched)-start)]
	writeJSON(w, http.StatusOK, map[string]any{"agents": page, "count": len(matched), "limit": limit, "offset": offset})
}

// unregisterAgent handles DELETE /v3/{project_id}/agents/{agent_id}: it
// forgets the agent and its paths, and answers 200 with an empty body.
func (s *Server) unregisterAgent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("agent_id")
	s.mu.Lock()
	_, ok := s.agents[id]
	delete(s.agents, id)
	s.mu.Unlock()
	if !ok {
		writeAgentNotFound(w, id)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// addAgentPaths handles POST /v3/{project_id}/agents/{agent_id}/add-path. It
// checks every path against the API's pattern and the agent's quota before
// adding any. An exclude_path entry sets the exclusions of one of add_path.
func (s *Server) addAgentPaths(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("agent_id")
	var body struct {
		AddPath     []string `json:"add_path"`
		ExcludePath []struct {
			PathName        string   `json:"path_name"`
			ExcludePathName []string `json:"exclude_path_name"`
		} `json:"exclude_path"`
	}
	if !decode(w, r, &body) || len(body.AddPath) == 0 {
		writeInvalid(w, "Invalid agent "+id)
		return
	}
	for _, p := range body.AddPath {
		if !backupPath.MatchString(p) {
			writeInvalid(w, "Invalid agent "+id+": invalid path "+p)
			return
		}
	}
	for _, e := range body.ExcludePath {
		if !slices.Contains(body.AddPath, e.PathName) {
			writeInvalid(w, "Invalid agent "+id+": exclude_path of a path not in add_path: "+e.PathName)
			return
		}
	}
	now := toWire(s.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[id]
	if !ok {
		writeAgentNotFound(w, id)
		return
	}
	added, existed := []string{}, []string{}
	for _, p := range body.AddPath {
		switch {
		case slices.Contains(added, p):
		case a.pathIndex(p) >= 0:
			if !slices.Contains(existed, p) {
				existed = append(existed, p)
			}
		default:
			added = append(added, p)
		}
	}
	if len(a.Paths)+len(added) > s.pathQuota {
		writeError(w, http.StatusBadRequest, "BackupService.7407", "Agent "+id+" path count is exceeded.")
		return
	}
	for _, p := range added {
		a.Paths = append(a.Paths, apiPath{ID: newUUID(), Status: "available", AgentID: id, DirPath: p})
	}
	for _, e := range body.ExcludePath {
		a.Paths[a.pathIndex(e.PathName)].ExcludePaths = strings.Join(e.ExcludePathName, ",")
	}
	a.UpdatedAt = now
	writeJSON(w, http.StatusOK, map[string][]string{"added": added, "existed": existed})
}

// removeAgentPaths handles POST /v3/{project_id}/agents/{agent_id}/remove-path.
func (s *Server) removeAgentPaths(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("agent_id")
	var body struct {
		RemovePath []string `json:"remove_path"`
	}
	if !decode(w, r, &body) || len(body.RemovePath) == 0 {
		writeInvalid(w, "Invalid agent "+id)
		return
	}
	now := toWire(s.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[id]
	if !ok {
		writeAgentNotFound(w, id)
		return
	}
	removed, notExisted := []string{}, []string{}
	for _, p := range body.RemovePath {
		if i := a.pathIndex(p); i >= 0 {
			a.Paths = slices.Delete(a.Paths, i, i+1)
			removed = append(removed, p)
		} else if !slices.Contains(removed, p) && !slices.Contains(notExisted, p) {
			notExisted = append(notExisted, p)
		}
	}
	a.UpdatedAt = now
	writeJSON(w, http.StatusOK, map[string][]string{"removed": removed, "not_existed": notExisted})
}

// snapshot returns a copy of a that shares no memory with it, to encode
// after s.mu is released. The caller holds s.mu.
func (a *agent) snapshot() agent {
	c := *a
	c.Paths = slices.Clone(a.Paths)
	return c
}

// pathIndex returns the index of the path dir in a.Paths, or -1. The caller holds s.mu.
func (a *agent) pathIndex(dir string) int {
	return slices.IndexFunc(a.Paths, func(p apiPath) bool { return p.DirPath == dir })
}

// agentCheck is one item of a check answer, in wire form: unknown fields are null.
type agentCheck struct {
	ResourceID string  `json:"resource_id"`
	Installed  *bool   `json:"installed"`
	IsOld      *bool   `json:"is_old"`
	Version    *string `json:"version"`
	Code       *int    `json:"code"`
	Message    *string `json:"message"`
}

// checkAgents handles POST /v3/{project_id}/agent/check with the answers set
// by SetAgentCheck.
func (s *Server) checkAgents(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AgentStatus []struct {
			ResourceID   string `json:"resource_id"`
			ResourceType string `json:"resource_type"`
		} `json:"agent_status"`
	}
	if !decode(w, r, &body) || len(body.AgentStatus) == 0 {
		writeInvalid(w, "Invalid agent check request")
		return
	}
	out := make([]agentCheck, 0, len(body.AgentStatus))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, res := range body.AgentStatus {
		if res.ResourceID == "" || res.ResourceType != string(cbr.ResourceTypeServer) && res.ResourceType != string(cbr.ResourceTypeBareMetalServer) {
			writeInvalid(w, "Invalid agent check request: resource "+res.ResourceID)
			return
		}
		c, ok := s.checks[res.ResourceID]
		if !ok {
			out = append(out, agentCheck{ResourceID: res.ResourceID, Installed: new(bool)})
			continue
		}
		out = append(out, agentCheck{
			ResourceID: res.ResourceID, Installed: c.Installed, IsOld: c.IsOld, Code: c.Code,
			Version: nonEmpty(c.Version), Message: nonEmpty(c.Message),
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"agent_status": out})
}

// nonEmpty returns &s, or nil for "".
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// newUUID returns a random UUID (version 4), the form of the API's IDs.
func newUUID() string {
	h := []byte(randomHex(16))
	h[12] = '4'
	h[16] = "89ab"[h[16]%4]
	return string(h[0:8]) + "-" + string(h[8:12]) + "-" + string(h[12:16]) + "-" + string(h[16:20]) + "-" + string(h[20:32])
}

// deref returns *s, or "" for nil.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// writeInvalid answers 400 BackupService.7403, CBR's error for invalid input,
// with msg, which starts like the API's "Invalid agent %(agent_id)s".
func writeInvalid(w http.ResponseWriter, msg string) {
	writeError(w, http.StatusBadRequest, "BackupService.7403", msg)
}

// writeAgentNotFound answers 404 BackupService.7410, CBR's error for an unknown agent.
func writeAgentNotFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, "BackupService.7410", "Agent "+id+" not found.")
}
