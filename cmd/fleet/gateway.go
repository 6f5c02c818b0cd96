package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// gateway is the loopback CBR API of a run: a throttle over every request,
// in front of a store of registrations that counts what each agent ID sent.
type gateway struct {
	variant string
	rate    float64 // requests admitted per second
	burst   float64 // requests admitted at once after a quiet spell

	mu sync.Mutex
	// The token bucket of the plain, ra1 and faults variants.
	tokens float64
	last   time.Time
	// The virtual queue of the aware variant: the time the next request
	// without a turn would be admitted, and the turn of each throttled caller.
	next  time.Time
	turns map[string]time.Time

	agents map[string]*agentRecord
	stats  gatewayStats
}

// agentRecord is what the gateway knows of one agent ID.
type agentRecord struct {
	facts    json.RawMessage // the "agent" object of the first stored registration
	stored   int             // registrations stored: more than 1 is a duplicate
	posts    int             // POSTs received, throttled ones included
	gets     int             // GETs received, throttled ones included
	lastSeen time.Time       // when its last request arrived
}

// gatewayStats counts the gateway's answers.
type gatewayStats struct {
	requests, admitted, throttled, faults503, dropped, notFound int
}

func newGateway(variant string, rate float64) *gateway {
	burst := max(rate/10, 1)
	return &gateway{
		variant: variant,
		rate:    rate,
		burst:   burst,
		tokens:  burst,
		last:    time.Now(),
		turns:   map[string]time.Time{},
		agents:  map[string]*agentRecord{},
	}
}

// admit decides whether a request from caller may pass at now. When it may
// not, retryAfter is what the variant's Retry-After says, or negative for
// none.
func (g *gateway) admit(caller string, now time.Time) (ok bool, retryAfter time.Duration) {
	if g.variant == "aware" {
		return g.admitInTurn(caller, now)
	}
	g.tokens = min(g.burst, g.tokens+now.Sub(g.last).Seconds()*g.rate)
	g.last = now
	if g.tokens >= 1 {
		g.tokens--
		return true, 0
	}
	if g.variant == "ra1" {
		return false, time.Second
	}
	return false, -1
}

// admitInTurn is the throttle of the aware variant, a token bucket kept as a
// virtual queue (GCRA): slots 1/rate apart, of which a burst's worth may be
// in the past. A request without a turn takes the next slot if it is due
// and is admitted; otherwise the slot becomes the caller's turn, and the
// Retry-After says when it comes. A caller that comes back before its turn is
// told again how long it has left; one that comes back at or after it is
// admitted: its slot was kept for it.
func (g *gateway) admitInTurn(caller string, now time.Time) (bool, time.Duration) {
	if turn, ok := g.turns[caller]; ok {
		if now.Before(turn) {
			return false, turn.Sub(now)
		}
		delete(g.turns, caller)
		return true, 0
	}
	interval := time.Duration(float64(time.Second) / g.rate)
	if earliest := now.Add(-time.Duration(g.burst * float64(interval))); g.next.Before(earliest) {
		g.next = earliest
	}
	slot := g.next
	g.next = g.next.Add(interval)
	if !slot.After(now) {
		return true, 0
	}
	g.turns[caller] = slot
	return false, slot.Sub(now)
}

// ServeHTTP answers POST /v3/{project}/agents and GET
// /v3/{project}/agents/{agent_id}, after the throttle.
func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "v3" || parts[2] != "agents" || len(parts) > 4 {
		writeError(w, http.StatusNotFound, "APIGW.0101", "The API does not exist or has not been published in the environment")
		return
	}
	var id string
	var facts json.RawMessage
	switch {
	case r.Method == http.MethodPost && len(parts) == 3:
		var body struct {
			Agent json.RawMessage `json:"agent"`
		}
		var agent struct {
			AgentID string `json:"agent_id"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil || json.Unmarshal(body.Agent, &agent) != nil || agent.AgentID == "" {
			writeError(w, http.StatusBadRequest, "BackupService.7403", "Invalid agent")
			return
		}
		id, facts = agent.AgentID, body.Agent
	case r.Method == http.MethodGet && len(parts) == 4:
		id = parts[3]
	default:
		writeError(w, http.StatusMethodNotAllowed, "APIGW.0101", "The API does not exist or has not been published in the environment")
		return
	}

	g.mu.Lock()
	g.stats.requests++
	rec := g.agents[id]
	if rec == nil {
		rec = &agentRecord{}
		g.agents[id] = rec
	}
	rec.lastSeen = now
	if facts != nil {
		rec.posts++
	} else {
		rec.gets++
	}
	ok, retryAfter := g.admit(r.Header.Get("X-Auth-Token"), now)
	if !ok {
		g.stats.throttled++
		g.mu.Unlock()
		if retryAfter >= 0 {
			// Whole seconds, rounded up: never earlier than the turn.
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
		}
		writeError(w, http.StatusTooManyRequests, "APIGW.0308",
			fmt.Sprintf("The throttling threshold has been reached: policy user over ratelimit,limit:%g,time:1 second", g.rate))
		return
	}
	g.stats.admitted++
	if facts != nil {
		if rec.stored == 0 {
			rec.facts = facts
		}
		rec.stored++
	}
	stored := rec.facts
	// Faults strike after the request took effect: the registration is
	// stored, the answer is lost.
	fault := 0.0
	if g.variant == "faults" {
		fault = rand.Float64()
	}
	switch {
	case fault >= 0.97 && fault < 0.98:
		g.stats.dropped++
	case fault >= 0.98:
		g.stats.faults503++
	case stored == nil:
		g.stats.notFound++
	}
	g.mu.Unlock()

	switch {
	case fault >= 0.97 && fault < 0.98:
		dropConnection(w)
	case fault >= 0.98:
		writeError(w, http.StatusServiceUnavailable, "APIGW.0613", "IAM unavailable")
	case stored == nil:
		writeError(w, http.StatusNotFound, "BackupService.7410", "Agent "+id+" not found.")
	default:
		writeAgent(w, stored)
	}
}

// writeAgent answers 200 with an agent: the stored facts, and what the API adds.
func writeAgent(w http.ResponseWriter, facts json.RawMessage) {
	var a map[string]any
	_ = json.Unmarshal(facts, &a)
	a["status"] = "normal"
	a["created_at"] = "2022-01-30T09:28:09.334153"
	a["updated_at"] = "2022-01-30T09:28:09.334153"
	a["last_active_time"] = "2022-01-30T09:28:08.959908"
	b, _ := json.Marshal(map[string]any{"agent": a})
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_, _ = w.Write(b)
}

// writeError answers with the API gateway's error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"error_code": code, "error_msg": msg, "request_id": fmt.Sprintf("%016x", rand.Uint64())})
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// dropConnection closes the connection without an answer.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("fleet: the gateway's connections cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		conn.Close()
	}
}
