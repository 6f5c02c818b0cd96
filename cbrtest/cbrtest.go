// Package cbrtest is an in-process fake of the CBR agent API, for testing
// programs that use package cbr without a cloud account.
//
// A Server speaks the documented wire format: the same paths, bodies, error
// bodies and codes (BackupService.7403 for invalid input, BackupService.7410
// for an unknown agent, APIGW.0301 for missing or wrong credentials,
// APIGW.0101 for an unknown route), with an X-Request-Id on every answer. It
// keeps agents in memory, is safe for concurrent use, and can inject faults.
//
//	srv := cbrtest.NewServer()
//	defer srv.Close()
//	c, err := srv.Client()
//	...
//	agent, err := c.RegisterAgent(ctx, cbr.AgentRegister{...})
//
// What a test needs besides the API:
//
//   - [Server.SetAgents] stores agents in any state, with any stored field: status,
//     timestamps, host facts, paths. [Server.SetClock], [Server.Advance] and [Server.Now] control the
//     clock the server writes timestamps with, so that "silent for 30 days"
//     needs no sleep.
//   - [Server.InjectFaults] fails chosen requests: by method and path ("the second
//     PUT of agents/a1"), with a status, a dropped connection or a delay,
//     before or after the request takes effect.
//   - [Server.RequestLog] lists the requests received (method, path, query, status),
//     with credentials redacted, for assertions at the wire.
//
// Where the API gateway in front of CBR does something of its own, the
// server does it too: a path with a "." or ".." segment is answered with a
// redirect to the normalised path, a body over 12 MiB with 413, and a query
// with a raw ";" with 400 (see [Server]).
package cbrtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cbrsdk/cbr"
)

// DefaultProjectID is the project ID of a Server, the one the API's examples use.
const DefaultProjectID = "f841e01fd2b14e7fa41b6ae7aa6b0594"

// wireTimeLayout is how the API writes timestamps: microseconds, no zone, UTC.
const wireTimeLayout = "2006-01-02T15:04:05.000000"

// Server is a running fake of the CBR agent API on a loopback address. Its
// exported fields are set by NewServer and are read-only afterwards; change
// the server through its methods.
//
// Before a request reaches the API, the server does what the API gateway
// does, in this order: a path with a "." or ".." segment (also escaped, as
// %2E) is answered 301 with a Location of the normalised path, whatever
// the method, and without looking at credentials; a query with a raw ";"
// is answered 400 APIGW.0201; a body over 12 MiB (the gateway's limit,
// which its documentation writes "12 MB") is answered 413 APIGW.0201; then
// unknown routes (404 APIGW.0101), credentials (401 APIGW.0301) and the
// project (403 APIGW.0302) are checked. The gateway's documentation gives
// 413 APIGW.0201 for the body; the redirect's status and the answer to ";"
// are this fake's choice.
type Server struct {
	// URL is the endpoint, such as "http://127.0.0.1:41234".
	URL string
	// ProjectID is the only project the server serves.
	ProjectID string
	// Token is an IAM token it accepts in X-Auth-Token, besides the tokens
	// its fake IAM issues.
	Token string
	// AccessKey and SecretKey are a permanent key pair whose SDK-HMAC-SHA256
	// signatures it accepts, besides those of the temporary keys its fake
	// metadata service issues. Both are random.
	AccessKey, SecretKey string
	// Region is the name of the project in its fake IAM: "ap-southeast-1".
	Region string
	// Domain, User and Password are the IAM user its fake IAM knows; the
	// password is random.
	Domain, User, Password string
	// IAMURL is the endpoint of its fake IAM, which issues tokens for the
	// user (POST /v3/auth/tokens) and lists the project (GET /v3/projects).
	IAMURL string
	// MetadataURL is the endpoint of its fake ECS metadata service, which
	// issues temporary keys.
	MetadataURL string

	srv       *httptest.Server
	closing   chan struct{} // closed when Close starts, to end Delay faults
	closeOnce sync.Once
	requests  atomic.Int64

	mu        sync.Mutex
	agents    map[string]*agent
	faults    []Fault
	log       []Request                 // see RequestLog
	clock     func() time.Time          // see SetClock
	offset    time.Duration             // see Advance
	pathQuota int                       // see SetPathQuota
	checks    map[string]cbr.AgentCheck // see SetAgentCheck

	auth authState
}

// wireTime writes a time the way the API does.
type wireTime time.Time

// MarshalJSON writes microseconds without a zone, or null for the zero time.
func (t wireTime) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + time.Time(t).UTC().Format(wireTimeLayout) + `"`), nil
}

// toWire returns t as the API has it: UTC, in microseconds. The stored
// agents hold such times, so that a snapshot has the times a client decodes.
func toWire(t time.Time) wireTime {
	if t.IsZero() {
		return wireTime{}
	}
	return wireTime(t.UTC().Truncate(time.Microsecond))
}

// NewServer starts a fake on a loopback address. Close it when done.
func NewServer() *Server {
	s := &Server{
		ProjectID: DefaultProjectID,
		Token:     "cbrtest-token-" + randomHex(8),
		clock:     time.Now,
		closing:   make(chan struct{}),
		agents:    make(map[string]*agent),
		pathQuota: DefaultPathQuota,
		checks:    make(map[string]cbr.AgentCheck),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/{project_id}/agents", s.registerAgent)
	mux.HandleFunc("GET /v3/{project_id}/agents/{agent_id}", s.showAgent)
	mux.HandleFunc("PUT /v3/{project_id}/agents/{agent_id}", s.updateAgent)
	mux.HandleFunc("GET /v3/{project_id}/agents", s.listAgents)
	mux.HandleFunc("DELETE /v3/{project_id}/agents/{agent_id}", s.unregisterAgent)
	mux.HandleFunc("POST /v3/{project_id}/agents/{agent_id}/add-path", s.addAgentPaths)
	mux.HandleFunc("POST /v3/{project_id}/agents/{agent_id}/remove-path", s.removeAgentPaths)
	mux.HandleFunc("POST /v3/{project_id}/agent/check", s.checkAgents)
	// One request a connection: net/http resends an idempotent request whose
	// reused connection closes, which would hide a dropped GET.
	s.srv = httptest.NewUnstartedServer(s.gateway(mux))
	s.srv.Config.SetKeepAlivesEnabled(false)
	s.srv.Start()
	s.URL = s.srv.URL
	s.startAuth()
	return s
}

// Close shuts the server down and waits for its requests to end. A request
// held back by a Delay fault ends at once, without an answer.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.srv.Close()
	s.closeAuth()
}

// Client returns a client for this server, authenticated with Token, with
// quick retries (waits of 1 to 10 ms) and the fake IAM as its IAM endpoint.
// opts are applied after those and can override them: for example
// cbr.WithCredentials(s.AKSK()), s.IAMPassword() or s.ECSMetadata().
func (s *Server) Client(opts ...cbr.Option) (*cbr.Client, error) {
	return cbr.NewClient(append([]cbr.Option{
		cbr.WithEndpoint(s.URL),
		cbr.WithIAMEndpoint(s.IAMURL),
		cbr.WithProjectID(s.ProjectID),
		cbr.WithCredentials(cbr.Token(s.Token)),
		cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 4, MinWait: time.Millisecond, MaxWait: 10 * time.Millisecond,
			ThrottleMinWait: time.Millisecond, ThrottleMaxWait: 10 * time.Millisecond, MaxDuration: 2 * time.Second}),
	}, opts...)...)
}

// decode reads a JSON request body of at most maxBody bytes into v; it
// reports false for a body that is not JSON.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	return err == nil && json.Unmarshal(data, v) == nil
}

// writeError writes CBR's error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error_code": code, "error_msg": msg})
}

// writeJSON writes v as the JSON body of an answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("cbrtest: encode: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	w.Write(data)
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
