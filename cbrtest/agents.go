package cbrtest

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

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
			writeError(w, r, http.StatusBadRequest, "BackupService.7403", "Invalid agent query: limit "+q.Get("limit"))
			return
		}
		limit = n
	}
	if q.Has("offset") {
		n, err := strconv.Atoi(q.Get("offset"))
		if err != nil || n < 0 {
			writeError(w, r, http.StatusBadRequest, "BackupService.7403", "Invalid agent query: offset "+q.Get("offset"))
			return
		}
		offset = n
	}
	status, ids := q.Get("status"), q["agent_id"]
	s.mu.Lock()
	matched := make([]agent, 0, len(s.agents))
	for _, a := range s.agents {
		if (status == "" || a.Status == status) && (len(ids) == 0 || slices.Contains(ids, a.AgentID)) {
			matched = append(matched, *a)
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
		writeError(w, r, http.StatusNotFound, "BackupService.7410", "Agent "+id+" not found.")
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
		writeError(w, r, http.StatusBadRequest, "BackupService.7403", "Invalid agent "+id)
		return
	}
	for _, p := range body.AddPath {
		if !backupPath.MatchString(p) {
			writeError(w, r, http.StatusBadRequest, "BackupService.7403", "Invalid agent "+id+": invalid path "+p)
			return
		}
	}
	for _, e := range body.ExcludePath {
		if !slices.Contains(body.AddPath, e.PathName) {
			writeError(w, r, http.StatusBadRequest, "BackupService.7403", "Invalid agent "+id+": exclude_path of a path not in add_path: "+e.PathName)
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[id]
	if !ok {
		writeError(w, r, http.StatusNotFound, "BackupService.7410", "Agent "+id+" not found.")
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
		writeError(w, r, http.StatusBadRequest, "BackupService.7407", "Agent "+id+" path count is exceeded.")
		return
	}
	for _, p := range added {
		a.Paths = append(a.Paths, apiPath{ID: newUUID(), Status: "available", AgentID: id, DirPath: p})
	}
	for _, e := range body.ExcludePath {
		a.Paths[a.pathIndex(e.PathName)].ExcludePaths = strings.Join(e.ExcludePathName, ",")
	}
	a.UpdatedAt = wireTime(s.now())
	writeJSON(w, http.StatusOK, map[string][]string{"added": added, "existed": existed})
}

// removeAgentPaths handles POST /v3/{project_id}/agents/{agent_id}/remove-path.
func (s *Server) removeAgentPaths(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("agent_id")
	var body struct {
		RemovePath []string `json:"remove_path"`
	}
	if !decode(w, r, &body) || len(body.RemovePath) == 0 {
		writeError(w, r, http.StatusBadRequest, "BackupService.7403", "Invalid agent "+id)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[id]
	if !ok {
		writeError(w, r, http.StatusNotFound, "BackupService.7410", "Agent "+id+" not found.")
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
	a.UpdatedAt = wireTime(s.now())
	writeJSON(w, http.StatusOK, map[string][]string{"removed": removed, "not_existed": notExisted})
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
		writeError(w, r, http.StatusBadRequest, "BackupService.7403", "Invalid agent check request")
		return
	}
	out := make([]agentCheck, 0, len(body.AgentStatus))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, res := range body.AgentStatus {
		if res.ResourceID == "" || res.ResourceType != string(cbr.ResourceTypeServer) && res.ResourceType != string(cbr.ResourceTypeBareMetalServer) {
			writeError(w, r, http.StatusBadRequest, "BackupService.7403", "Invalid agent check request: resource "+res.ResourceID)
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
