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
package cbrtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cbrsdk/cbr"
)

// DefaultProjectID is the project ID of a Server, the one the API's examples use.
const DefaultProjectID = "f841e01fd2b14e7fa41b6ae7aa6b0594"

// wireTimeLayout is how the API writes timestamps: microseconds, no zone, UTC.
const wireTimeLayout = "2006-01-02T15:04:05.000000"

// maxBody is the largest request body the fake accepts.
const maxBody = 1 << 20

// Server is a running fake of the CBR agent API on a loopback address. Its
// exported fields are set by NewServer and are read-only afterwards; change
// the server through its methods.
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
	now       func() time.Time
	closing   chan struct{} // closed when Close starts, to end Delay faults
	closeOnce sync.Once
	requests  atomic.Int64

	mu        sync.Mutex
	agents    map[string]*agent
	faults    []Fault
	pathQuota int                       // see SetPathQuota
	checks    map[string]cbr.AgentCheck // see SetAgentCheck

	auth authState
}

// Fault is a failure the server injects into one request, in the order given
// to InjectFaults, one fault a request.
type Fault struct {
	// Status, when not zero, is answered instead of the real answer, with an
	// API gateway error body carrying Code and Message.
	Status  int
	Code    string
	Message string
	// RetryAfter, when not empty, is sent as the Retry-After header.
	RetryAfter string
	// Delay holds the answer back this long, or until the client gives up;
	// with AfterHandling, the request takes effect first.
	Delay time.Duration
	// Drop closes the connection without an answer.
	Drop bool
	// AfterHandling applies Status, Drop or Delay after the request took
	// effect, so that the client cannot know whether it did.
	AfterHandling bool
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

// stamp returns the time now as the API has it: UTC, in microseconds. The
// stored agents hold it, so that a snapshot has the times a client decodes.
func (s *Server) stamp() wireTime {
	return wireTime(s.now().UTC().Truncate(time.Microsecond))
}

// NewServer starts a fake on a loopback address. Close it when done.
func NewServer() *Server {
	s := &Server{
		ProjectID: DefaultProjectID,
		Token:     "cbrtest-token-" + randomHex(8),
		now:       time.Now,
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

// Requests returns how many requests the server has received, faulted ones included.
func (s *Server) Requests() int { return int(s.requests.Load()) }

// InjectFaults queues faults; each of the next requests takes the first one left.
func (s *Server) InjectFaults(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

// gateway does what the API gateway does before CBR sees a request: it
// stamps a request ID, applies injected faults, answers unknown routes with
// APIGW.0101, and checks credentials and the project.
func (s *Server) gateway(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		requestID := randomHex(16)
		w.Header().Set("X-Request-Id", requestID)
		if f, ok := s.nextFault(); ok {
			s.applyFault(w, r, f, mux, requestID)
			return
		}
		s.serve(w, r, mux, requestID)
	})
}

// serve routes one request that no fault took over.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, mux *http.ServeMux, requestID string) {
	if _, pattern := mux.Handler(r); pattern == "" {
		code, msg := gatewayCode(http.StatusNotFound)
		writeGatewayError(w, http.StatusNotFound, code, msg, requestID)
		return
	}
	if code, msg, ok := s.checkCredentials(r); !ok {
		writeGatewayError(w, http.StatusUnauthorized, code, msg, requestID)
		return
	}
	if p := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/v3/"), "/", 2)[0]; p != s.ProjectID {
		code, msg := gatewayCode(http.StatusForbidden)
		writeGatewayError(w, http.StatusForbidden, code, msg, requestID)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	mux.ServeHTTP(w, r)
}

// nextFault takes the first queued fault.
func (s *Server) nextFault() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return Fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

// applyFault answers one request with fault f.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f Fault, mux *http.ServeMux, requestID string) {
	var handled *httptest.ResponseRecorder
	if f.AfterHandling {
		handled = httptest.NewRecorder()
		s.serve(handled, r, mux, requestID)
	}
	if f.Delay > 0 {
		if !f.AfterHandling {
			// The server notices a client that gives up only once the body is read.
			body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.closing:
			dropConnection(w) // the server went away
			return
		}
	}
	switch {
	case f.Drop:
		dropConnection(w)
	case f.Status != 0:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		code, msg := f.Code, f.Message
		if code == "" {
			code, msg = gatewayCode(f.Status)
		}
		writeGatewayError(w, f.Status, code, msg, requestID)
	case handled != nil:
		for k, v := range handled.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(handled.Code)
		w.Write(handled.Body.Bytes())
	default:
		s.serve(w, r, mux, requestID)
	}
}

// gatewayCode returns the gateway's code and message for a status.
func gatewayCode(status int) (string, string) {
	switch status {
	case http.StatusBadRequest:
		return "APIGW.0201", "Bad request"
	case http.StatusUnauthorized:
		return "APIGW.0301", "Incorrect IAM authentication information"
	case http.StatusForbidden:
		return "APIGW.0302", "The IAM user is not authorized to access the API"
	case http.StatusNotFound:
		return "APIGW.0101", "The API does not exist or has not been published in the environment"
	case http.StatusTooManyRequests:
		return "APIGW.0308", "The throttling threshold has been reached: policy user over ratelimit,limit:100,time:1 minute"
	case http.StatusBadGateway:
		return "APIGW.0610", "No backend available"
	case http.StatusServiceUnavailable:
		return "APIGW.0613", "IAM unavailable"
	case http.StatusGatewayTimeout:
		return "APIGW.0201", "Backend timeout"
	}
	return "APIGW.0601", http.StatusText(status)
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): aborting the handler makes the server
		// reset the stream, which is the same failure to the client.
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// decode reads a JSON request body into v; it reports false for a body that
// is not JSON or is too large.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return false
	}
	return err == nil && json.Unmarshal(data, v) == nil
}

// writeError writes CBR's error body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error_code": code, "error_msg": msg})
}

// writeGatewayError writes the API gateway's error body, which carries the request ID.
func writeGatewayError(w http.ResponseWriter, status int, code, msg, requestID string) {
	writeJSON(w, status, map[string]string{"error_code": code, "error_msg": msg, "request_id": requestID})
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
