package cbrtest

import (
	"fmt"
	"strings"
	"time"

	"github.com/cbrsdk/cbr"
)

// This file is the state a test sets up directly: stored agents and the clock.

// SetAgents stores agents as they are given, each replacing a stored agent
// with the same ID, so that a test can start from a fleet in any state
// without registering it. Every field is stored: status, host facts, agent
// type and version, the three timestamps and the paths. A zero timestamp
// stays unknown (null on the wire), as the API sends for an agent that was
// never active; an empty Status is stored as normal; a path without an ID
// gets a new one, without a status gets "available", and belongs to its
// agent whatever its AgentID says. Times are stored as the API has them: in
// UTC, to the microsecond.
//
// An agent without an ID, with a "/" in its ID, or with two paths with the
// same DirPath is refused with an error, and then none is stored.
func (s *Server) SetAgents(agents ...cbr.Agent) error {
	stored := make([]*agent, 0, len(agents))
	for _, m := range agents {
		a, err := fromModel(m)
		if err != nil {
			return err
		}
		stored = append(stored, a)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range stored {
		s.agents[a.AgentID] = a
	}
	return nil
}

// fromModel converts an agent of the SDK's type to a stored agent.
func fromModel(m cbr.Agent) (*agent, error) {
	if m.AgentID == "" || strings.Contains(m.AgentID, "/") {
		return nil, fmt.Errorf("cbrtest: set agents: invalid agent ID %q", m.AgentID)
	}
	a := &agent{
		AgentID: m.AgentID, AgentVersion: m.AgentVersion, AgentType: string(m.AgentType),
		HostName: m.HostName, HostNickname: m.HostNickname, HostIP: m.HostIP, HostOS: m.HostOS,
		Status:    string(m.Status),
		CreatedAt: toWire(m.CreatedAt), UpdatedAt: toWire(m.UpdatedAt), LastActiveTime: toWire(m.LastActiveTime),
	}
	if a.Status == "" {
		a.Status = string(cbr.AgentStatusNormal)
	}
	for _, p := range m.Paths {
		if a.pathIndex(p.DirPath) >= 0 {
			return nil, fmt.Errorf("cbrtest: set agents: agent %s has the path %q twice", m.AgentID, p.DirPath)
		}
		stored := apiPath{ID: p.ID, Status: string(p.Status), AgentID: m.AgentID, DirPath: p.DirPath,
			ExcludePaths: strings.Join(p.ExcludePaths, ",")}
		if stored.ID == "" {
			stored.ID = newUUID()
		}
		if stored.Status == "" {
			stored.Status = string(cbr.PathStatusAvailable)
		}
		a.Paths = append(a.Paths, stored)
	}
	return a, nil
}

// SetClock sets the clock the server writes timestamps with: created_at,
// updated_at and last_active_time at a registration, updated_at at an
// update or a change of paths. nil restores the real time. It also undoes
// Advance. now may be called from several goroutines at once; the server
// does not call it while holding a lock, so now may call the server.
//
// The clock is the one of the stored data only. Credentials are judged by
// the real time, as a client judges them: the age of X-Sdk-Date and the
// expiry of the tokens and temporary keys the fake IAM and metadata service
// issue. Moving the clock thus never makes a client's credentials fail.
func (s *Server) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock, s.offset = now, 0
}

// Advance moves the server's clock forward by d, or back for a negative d,
// from whatever it reads (the real time, or the clock of SetClock).
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// Now returns the time on the server's clock, as the server would write it
// in a timestamp: in UTC, to the microsecond.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	clock, offset := s.clock, s.offset
	s.mu.Unlock()
	return time.Time(toWire(clock().Add(offset)))
}
