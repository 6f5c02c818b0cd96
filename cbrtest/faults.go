package cbrtest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"time"
)

// Fault is a failure the server injects into one request. [Server.InjectFaults]
// queues faults; each request takes the first queued fault that matches it
// (see Method and Path), which is then used up. A fault that still has
// requests to Skip lets the request through instead, untouched by any
// other fault, and counts it.
//
// A zero Fault matches every request and changes nothing: the request that
// takes it is answered as without it. Use it to let one request through, as
// in InjectFaults(Fault{}, Fault{Status: 503}), which fails the second
// request.
type Fault struct {
	// Method, when not empty, limits the fault to requests with this
	// method, such as "PUT".
	Method string
	// Path, when not empty, limits the fault to requests whose path matches
	// it, a pattern in the syntax of [path.Match] over the form of
	// [Request.Path]: escaped, after /v3/{project_id}/. "agents/a1" is one
	// agent; "agents/*" is any agent, but not "agents/a1/add-path". A
	// malformed pattern matches nothing.
	Path string
	// Skip is how many requests that match the fault pass untouched before
	// it applies: with Skip 1, the second matching request fails.
	Skip int

	// Status, when not zero, is answered instead of the real answer, with an
	// API gateway error body carrying Code and Message. Without Code, the
	// gateway's code for the status is used.
	Status  int
	Code    string
	Message string
	// RetryAfter, when not empty, is sent as the Retry-After header of a
	// Status answer.
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

// matches reports whether fault f applies to r, whose Request.Path is p.
func (f *Fault) matches(r *http.Request, p string) bool {
	if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
		return false
	}
	if f.Path == "" {
		return true
	}
	ok, err := path.Match(f.Path, p)
	return ok && err == nil
}

// InjectFaults queues faults, after those already queued.
func (s *Server) InjectFaults(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

// nextFault takes the first queued fault that matches r, if it has no
// requests left to skip.
func (s *Server) nextFault(r *http.Request) (Fault, bool) {
	p := s.logPath(r.URL)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults {
		f := &s.faults[i]
		if !f.matches(r, p) {
			continue
		}
		if f.Skip > 0 {
			f.Skip--
			return Fault{}, false
		}
		taken := *f
		s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		return taken, true
	}
	return Fault{}, false
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

// Request is one request the server received, as [Server.RequestLog] reports it. It
// holds no credential: headers are left out, and a query parameter or path
// segment that carries one is replaced by "REDACTED".
type Request struct {
	// Method is the HTTP method, such as "PUT".
	Method string
	// Path is the escaped path after /v3/{project_id}/, such as
	// "agents/a1"; a path outside it is whole, starting with "/".
	Path string
	// Query is the raw query, such as "offset=0&status=normal".
	Query string
	// Status is the status answered; 0 while the request is in progress,
	// and for a request that got no answer (a Drop fault, or a client that
	// gave up during a Delay).
	Status int
	// RequestID is the X-Request-Id of the answer.
	RequestID string
}

// RequestLog returns the requests the server has received, faulted ones
// included, in the order they arrived. The server keeps them all while it
// runs, a few hundred bytes each.
func (s *Server) RequestLog() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// Requests returns how many requests the server has received, faulted ones included.
func (s *Server) Requests() int { return int(s.requests.Load()) }

// logRequest adds r to the request log and returns its index.
func (s *Server) logRequest(r *http.Request, requestID string) int {
	entry := Request{
		Method:    r.Method,
		Path:      s.redactPath(s.logPath(r.URL)),
		Query:     s.redactQuery(r.URL.RawQuery),
		RequestID: requestID,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, entry)
	return len(s.log) - 1
}

// logStatus records the status answered to the request logged at index i.
func (s *Server) logStatus(i, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log[i].Status = status
}

// logPath returns the path of u in the form of Request.Path.
func (s *Server) logPath(u *url.URL) string {
	p := u.EscapedPath()
	if rest, ok := strings.CutPrefix(p, "/v3/"+url.PathEscape(s.ProjectID)+"/"); ok {
		return rest
	}
	return p
}

// redactPath replaces the segments of p that are credentials.
func (s *Server) redactPath(p string) string {
	segments := strings.Split(p, "/")
	for i, seg := range segments {
		if dec, err := url.PathUnescape(seg); err == nil && s.isCredential(dec) {
			segments[i] = "REDACTED"
		}
	}
	return strings.Join(segments, "/")
}

// credentialWords are parts of the names of query parameters that carry
// credentials, such as access_key, X-Auth-Token or Signature.
var credentialWords = []string{"token", "signature", "secret", "password", "key", "auth", "credential", "access"}

// redactQuery replaces the values of query parameters that are credentials
// or whose names say they are. The rest of the query stays as it was sent,
// separators included.
func (s *Server) redactQuery(raw string) string {
	var b strings.Builder
	for raw != "" {
		pair, rest := raw, ""
		if i := strings.IndexAny(raw, "&;"); i >= 0 {
			pair, rest = raw[:i], raw[i:]
		}
		name, value, hasValue := strings.Cut(pair, "=")
		decName, _ := url.QueryUnescape(name)
		decValue, _ := url.QueryUnescape(value)
		if hasValue && (s.isCredential(decValue) || isCredentialName(decName)) {
			pair = name + "=REDACTED"
		} else if !hasValue && s.isCredential(decName) {
			pair = "REDACTED"
		}
		b.WriteString(pair)
		if rest != "" {
			b.WriteByte(rest[0])
			rest = rest[1:]
		}
		raw = rest
	}
	return b.String()
}

// isCredentialName reports whether a query parameter's name says it carries a credential.
func isCredentialName(name string) bool {
	name = strings.ToLower(name)
	for _, w := range credentialWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// isCredential reports whether v is a credential the server knows: its
// token, keys or password, or a token or temporary key it issued.
func (s *Server) isCredential(v string) bool {
	if v == "" {
		return false
	}
	if v == s.Token || v == s.AccessKey || v == s.SecretKey || v == s.Password {
		return true
	}
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	if _, ok := s.auth.tokens[v]; ok {
		return true
	}
	if _, ok := s.auth.temp[v]; ok {
		return true
	}
	for _, k := range s.auth.temp {
		if v == k.secret || v == k.token {
			return true
		}
	}
	return false
}

// statusRecorder remembers the status written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader records status and writes it.
func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

// Write records the implicit 200 of a body written without WriteHeader.
func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap returns the ResponseWriter underneath, for http.ResponseController.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
