// The fault matrix: every operation against servers that misbehave the way
// real networks and gateways do, at the wire. Each row asserts the outcome,
// the attempts the server saw, a time bound and the error's type.

package cbr_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/cbrsdk/cbr"
)

// faultPolicy retries quickly: three attempts of at most 200ms each, waits of
// at most 5ms.
var faultPolicy = cbr.RetryPolicy{
	MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond,
	ThrottleMinWait: time.Millisecond, ThrottleMaxWait: 5 * time.Millisecond,
	AttemptTimeout: 200 * time.Millisecond,
}

// The agent of the matrix, as the server reports it.
const (
	faultAgent     = `{"agent_id":"a1","host_name":"ecs-00002","host_ip":"10.10.0.2","host_os":"linux","agent_version":"1.0.0","status":"normal"}`
	faultUninstall = `{"agent_id":"a1","host_name":"ecs-00002","host_ip":"10.10.0.2","host_os":"linux","agent_version":"1.0.0","status":"uninstall"}`
	faultNotFound  = `{"error_code":"BackupService.7410","error_msg":"Agent a1 not found."}`
)

// faultOp is an operation of the matrix: the request the faults hit, and the
// answer a healthy server gives it.
type faultOp struct {
	method, path string
	ok           string // a healthy 2xx body
	call         func(context.Context, *cbr.Client) error
}

var faultOps = map[string]faultOp{
	"RegisterAgent": {http.MethodPost, "/v3/p1/agents", `{"agent":` + faultAgent + `}`,
		func(ctx context.Context, c *cbr.Client) error {
			a, err := c.RegisterAgent(ctx, cbr.AgentRegister{AgentID: "a1", HostName: "ecs-00002", HostIP: "10.10.0.2", HostOS: "linux", AgentVersion: "1.0.0"})
			if err == nil && (a.AgentID != "a1" || a.Status != cbr.AgentStatusNormal) {
				return fmt.Errorf("test: wrong agent %+v", a)
			}
			return err
		}},
	"UpdateAgent": {http.MethodPut, "/v3/p1/agents/a1", `{"agent":` + faultUninstall + `}`,
		func(ctx context.Context, c *cbr.Client) error {
			a, err := c.UpdateAgent(ctx, "a1", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
			if err == nil && (a.AgentID != "a1" || a.Status != cbr.AgentStatusUninstall) {
				return fmt.Errorf("test: wrong agent %+v", a)
			}
			return err
		}},
	"ShowAgent": {http.MethodGet, "/v3/p1/agents/a1", `{"agent":` + faultAgent + `}`,
		func(ctx context.Context, c *cbr.Client) error {
			a, err := c.ShowAgent(ctx, "a1")
			if err == nil && a.AgentID != "a1" {
				return fmt.Errorf("test: wrong agent %+v", a)
			}
			return err
		}},
	"ListAgents": {http.MethodGet, "/v3/p1/agents", `{"agents":[` + faultAgent + `],"count":1}`,
		func(ctx context.Context, c *cbr.Client) error {
			l, err := c.ListAgents(ctx, cbr.ListAgentsOptions{})
			if err == nil && (len(l.Agents) != 1 || l.Agents[0].AgentID != "a1") {
				return fmt.Errorf("test: wrong list %+v", l)
			}
			return err
		}},
}

// faultServer is a fake CBR whose answers to one operation's request (the
// target) are a fault's; it answers the ShowAgent that reconciles a write
// from what the target did. It counts the requests of each kind.
type faultServer struct {
	op      faultOp
	fault   func(s *faultServer, w http.ResponseWriter, r *http.Request, attempt int)
	applied atomic.Bool // the target took effect
	mu      sync.Mutex
	hits    map[string]int // "POST /v3/p1/agents": count
	written []int64        // body bytes written by each attempt of a streaming fault
	conns   []net.Conn     // hijacked connections, closed with the server
	// other is the URL of another host, which counts what it receives in
	// otherHits; hellos counts TLS handshakes begun with a TLS server.
	other     string
	otherHits atomic.Int32
	hellos    atomic.Int32
}

func (s *faultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Method + " " + r.URL.Path
	s.mu.Lock()
	s.hits[key]++
	n := s.hits[key]
	s.mu.Unlock()
	if r.Method == s.op.method && r.URL.Path == s.op.path {
		_, _ = io.Copy(io.Discard, r.Body)
		s.fault(s, w, r, n)
		return
	}
	// The ShowAgent that settles a write.
	w.Header().Set("Content-Type", "application/json")
	switch {
	case key != "GET /v3/p1/agents/a1":
		w.WriteHeader(http.StatusNotImplemented)
	case s.op.method == http.MethodPut && s.applied.Load():
		io.WriteString(w, `{"agent":`+faultUninstall+`}`)
	case s.op.method == http.MethodPut || s.applied.Load():
		io.WriteString(w, `{"agent":`+faultAgent+`}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, faultNotFound)
	}
}

// count returns how many requests of method to path the server received.
func (s *faultServer) count(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[method+" "+path]
}

// hijack takes the connection of w over, to misbehave below HTTP.
func (s *faultServer) hijack(w http.ResponseWriter) net.Conn {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	s.conns = append(s.conns, conn)
	s.mu.Unlock()
	return conn
}

func (s *faultServer) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// reset closes conn with a TCP RST.
func reset(conn net.Conn) {
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
}

// Faults, each a function of faultServer.fault.
var (
	healthy = func(s *faultServer, w http.ResponseWriter, _ *http.Request, _ int) {
		s.applied.Store(true)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, s.op.ok)
	}
	// resetBeforeAnswer reads the request, does nothing, and resets the connection.
	resetBeforeAnswer = func(s *faultServer, w http.ResponseWriter, _ *http.Request, _ int) {
		reset(s.hijack(w))
	}
	// midBody applies the request, sends half of the 2xx body, and closes the
	// connection: with a RST when rst is set, else cleanly. From attempt
	// healthyFrom on (0 for never), it answers as a healthy server.
	midBody = func(rst bool, healthyFrom int) func(*faultServer, http.ResponseWriter, *http.Request, int) {
		return func(s *faultServer, w http.ResponseWriter, r *http.Request, attempt int) {
			if healthyFrom > 0 && attempt >= healthyFrom {
				healthy(s, w, r, attempt)
				return
			}
			s.applied.Store(true)
			conn := s.hijack(w)
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				len(s.op.ok), s.op.ok[:len(s.op.ok)/2])
			if rst {
				reset(conn)
			} else {
				conn.Close()
			}
		}
	}
	// answerWith applies the request and answers status with body.
	answerWith = func(status int, contentType, body string) func(*faultServer, http.ResponseWriter, *http.Request, int) {
		return func(s *faultServer, w http.ResponseWriter, _ *http.Request, _ int) {
			if status < 300 {
				s.applied.Store(true)
			}
			w.Header().Set("Content-Type", contentType)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	// huge answers status with a body of 100 MB, recording how much of it it
	// could write before the client hung up.
	huge = func(status int) func(*faultServer, http.ResponseWriter, *http.Request, int) {
		return func(s *faultServer, w http.ResponseWriter, r *http.Request, _ int) {
			const size = 100 << 20
			if status < 300 {
				s.applied.Store(true)
			}
			head, tail := `{"agent":{"agent_id":"a1","host_name":"`, `"}}`
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(size))
			w.WriteHeader(status)
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(10 * time.Second))
			written, _ := io.WriteString(w, head)
			chunk := strings.Repeat("x", 32<<10)
			for written < size-len(tail)-len(chunk) && r.Context().Err() == nil {
				n, err := io.WriteString(w, chunk)
				written += n
				if err != nil {
					break
				}
			}
			s.mu.Lock()
			s.written = append(s.written, int64(written))
			s.mu.Unlock()
		}
	}
	// slowHeaders answers nothing for 2 seconds.
	slowHeaders = func(_ *faultServer, _ http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}
	// trickle applies the request, sends the 2xx headers at once, then its
	// body one byte every 50ms.
	trickle = func(s *faultServer, w http.ResponseWriter, r *http.Request, _ int) {
		s.applied.Store(true)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(s.op.ok)))
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		for i := range len(s.op.ok) {
			if _, err := io.WriteString(w, s.op.ok[i:i+1]); err != nil || rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// throttle answers the first attempts status with Retry-After, then
	// as a healthy server from attempt healthyFrom (0 for never).
	throttle = func(status int, retryAfter string, healthyFrom int) func(*faultServer, http.ResponseWriter, *http.Request, int) {
		return func(s *faultServer, w http.ResponseWriter, r *http.Request, attempt int) {
			if healthyFrom > 0 && attempt >= healthyFrom {
				healthy(s, w, r, attempt)
				return
			}
			w.Header().Set("Retry-After", retryAfter)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, `{"error_code":"APIGW.0308","error_msg":"The request is throttled."}`)
		}
	}
)

// span is an inclusive range of counts.
type span struct{ min, max int }

func exactly(n int) span { return span{n, n} }

// faultWant is the outcome of one operation in one row.
type faultWant struct {
	ok     bool
	target span                    // attempts at the operation's request
	show   span                    // reconciling ShowAgent requests of a write
	check  func(*testing.T, error) // the error's type and sentinels
	within time.Duration           // time bound; 0 for 2s
	after  time.Duration           // lower time bound
}

// Outcomes common to many rows.
func success(target span, show span) faultWant {
	return faultWant{ok: true, target: target, show: show}
}

func failure(target span, show span, check func(*testing.T, error)) faultWant {
	return faultWant{target: target, show: show, check: check}
}

// Error checks.
func isErr(targets ...error) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		for _, target := range targets {
			assert.ErrorIs(t, err, target)
		}
	}
}

func apiErr(status int) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var e *cbr.APIError
		if assert.ErrorAs(t, err, &e) {
			assert.Equal(t, status, e.StatusCode)
		}
		assert.NotErrorIs(t, err, cbr.ErrUnexpectedResponse)
	}
}

func responseErr(t *testing.T, err error) {
	t.Helper()
	var e *cbr.ResponseError
	if assert.ErrorAs(t, err, &e) {
		assert.Equal(t, http.StatusOK, e.StatusCode)
		assert.NotEmpty(t, e.Op)
		assert.NotEmpty(t, e.Reason)
	}
	assert.ErrorIs(t, err, cbr.ErrUnexpectedResponse)
	var a *cbr.APIError
	assert.False(t, errors.As(err, &a), "a 2xx is not an *APIError")
}

func attemptTimeout(t *testing.T, err error) {
	t.Helper()
	assert.ErrorIs(t, err, cbr.ErrAttemptTimeout)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the caller's context is alive")
	assert.NotErrorIs(t, err, context.Canceled)
}

func both(checks ...func(*testing.T, error)) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		for _, c := range checks {
			c(t, err)
		}
	}
}

// faultRow is a row of the matrix: a server's behaviour and the outcome of
// each operation.
type faultRow struct {
	name   string
	fault  func(*faultServer, http.ResponseWriter, *http.Request, int)
	policy *cbr.RetryPolicy                                // nil for faultPolicy
	ctx    func(context.Context) (context.Context, func()) // nil for a 10s deadline
	server func(t *testing.T, s *faultServer) (url string) // nil for httptest.NewServer
	want   map[string]faultWant                            // by operation; every operation of faultOps
	verify func(t *testing.T, s *faultServer)              // more checks, or nil
}

func faultRows() []faultRow {
	reads := func(w faultWant) map[string]faultWant { return map[string]faultWant{"ShowAgent": w, "ListAgents": w} }
	merge := func(ms ...map[string]faultWant) map[string]faultWant {
		out := map[string]faultWant{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	none := exactly(0)
	lenient := span{1, 3} // the SDK may or may not retry the request before reconciling
	connReset := isErr(syscall.ECONNRESET)
	eof := isErr(io.ErrUnexpectedEOF)
	slowPolicy := faultPolicy
	slowPolicy.MaxWait, slowPolicy.ThrottleMaxWait = 2*time.Second, 2*time.Second

	var refused string
	{
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		refused = "http://" + ln.Addr().String()
		ln.Close()
	}
	// A 2xx the client cannot use: the reads fail with a *ResponseError; a
	// write took effect, and ShowAgent settles it.
	unusable2xx := merge(reads(failure(lenient, none, responseErr)), map[string]faultWant{
		"RegisterAgent": success(lenient, exactly(1)),
		"UpdateAgent":   success(lenient, exactly(1)),
	})
	bounded := func(t *testing.T, s *faultServer) {
		attempts := s.count(s.op.method, s.op.path)
		require.Eventually(t, func() bool { // the handlers notice the client hung up
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.written) == attempts
		}, 5*time.Second, 10*time.Millisecond)
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, n := range s.written {
			assert.Less(t, n, int64(40<<20), "the client read at most its bound, and hung up")
		}
	}

	return []faultRow{
		{
			name:   "connection refused",
			server: func(*testing.T, *faultServer) string { return refused },
			want: merge(reads(failure(none, none, isErr(syscall.ECONNREFUSED))), map[string]faultWant{
				"RegisterAgent": failure(none, none, isErr(syscall.ECONNREFUSED)),
				"UpdateAgent":   failure(none, none, isErr(syscall.ECONNREFUSED)),
			}),
		},
		{
			name:  "reset before the answer",
			fault: resetBeforeAnswer,
			want: merge(reads(failure(exactly(3), none, connReset)), map[string]faultWant{
				"RegisterAgent": failure(exactly(3), exactly(3), connReset), // each attempt checked before the next: not registered
				"UpdateAgent":   failure(exactly(3), span{0, 1}, connReset),
			}),
		},
		{
			name:  "reset in the middle of a 2xx body, every attempt",
			fault: midBody(true, 0),
			want: merge(reads(failure(exactly(3), none, both(connReset, notUnexpected))), map[string]faultWant{
				"RegisterAgent": success(lenient, exactly(1)),
				"UpdateAgent":   success(lenient, exactly(1)), // the uninstall was applied: not a failure
			}),
		},
		{
			name:  "clean close in the middle of a 2xx body, every attempt",
			fault: midBody(false, 0),
			want: merge(reads(failure(exactly(3), none, both(eof, notUnexpected))), map[string]faultWant{
				"RegisterAgent": success(lenient, exactly(1)),
				"UpdateAgent":   success(lenient, exactly(1)),
			}),
		},
		{
			name:  "reset in the middle of a 2xx body, once",
			fault: midBody(true, 2),
			want: merge(reads(success(exactly(2), none)), map[string]faultWant{
				"RegisterAgent": success(span{1, 2}, span{0, 1}),
				"UpdateAgent":   success(span{1, 2}, span{0, 1}),
			}),
		},
		{
			name:  "clean close in the middle of a 2xx body, once",
			fault: midBody(false, 2),
			want: merge(reads(success(exactly(2), none)), map[string]faultWant{
				"RegisterAgent": success(span{1, 2}, span{0, 1}),
				"UpdateAgent":   success(span{1, 2}, span{0, 1}),
			}),
		},
		{
			name:  "truncated JSON on 200",
			fault: answerWith(http.StatusOK, "application/json", `{"agent":{"agent_id":"a1","host_na`),
			want:  unusable2xx,
		},
		{
			name:  "HTML on 200",
			fault: answerWith(http.StatusOK, "text/html", "<html><body>Service maintenance</body></html>"),
			want:  unusable2xx,
		},
		{
			name:  "empty object on 200",
			fault: answerWith(http.StatusOK, "application/json", `{}`),
			want:  unusable2xx,
		},
		{
			name:  "null on 200",
			fault: answerWith(http.StatusOK, "application/json", `null`),
			want:  unusable2xx,
		},
		{
			name:  "null agent on 200",
			fault: answerWith(http.StatusOK, "application/json", `{"agent":null,"agents":null}`),
			want:  unusable2xx,
		},
		{
			name:   "100 MB body on 200",
			fault:  huge(http.StatusOK),
			want:   unusable2xx,
			verify: bounded,
		},
		{
			name:  "100 MB body on 500",
			fault: huge(http.StatusInternalServerError),
			want: merge(reads(failure(exactly(3), none, apiErr(500))), map[string]faultWant{
				"RegisterAgent": failure(exactly(3), exactly(3), apiErr(500)),
				"UpdateAgent":   failure(exactly(3), span{0, 1}, apiErr(500)),
			}),
			verify: bounded,
		},
		{
			name:  "headers slower than the attempt bound",
			fault: slowHeaders,
			want: merge(reads(failure(exactly(3), none, attemptTimeout)), map[string]faultWant{
				"RegisterAgent": failure(exactly(3), exactly(3), attemptTimeout),
				"UpdateAgent":   failure(exactly(3), span{0, 1}, attemptTimeout),
			}),
		},
		{
			name:  "body slower than the attempt bound",
			fault: trickle,
			want: merge(reads(failure(exactly(3), none, attemptTimeout)), map[string]faultWant{
				"RegisterAgent": success(lenient, exactly(1)), // the 2xx took effect
				"UpdateAgent":   success(lenient, exactly(1)),
			}),
		},
		{
			name:   "429 with a Retry-After within MaxWait",
			fault:  throttle(http.StatusTooManyRequests, "1", 2),
			policy: &slowPolicy,
			want: map[string]faultWant{
				"RegisterAgent": {ok: true, target: exactly(2), show: none, after: time.Second, within: 3 * time.Second},
				"UpdateAgent":   {ok: true, target: exactly(2), show: none, after: time.Second, within: 3 * time.Second},
				"ShowAgent":     {ok: true, target: exactly(2), show: none, after: time.Second, within: 3 * time.Second},
				"ListAgents":    {ok: true, target: exactly(2), show: none, after: time.Second, within: 3 * time.Second},
			},
		},
		{
			name:   "429 with a Retry-After beyond the deadline",
			fault:  throttle(http.StatusTooManyRequests, "1", 0),
			policy: &slowPolicy,
			ctx: func(ctx context.Context) (context.Context, func()) {
				return context.WithTimeout(ctx, 500*time.Millisecond)
			},
			want: allOps(faultWant{target: exactly(1), show: none, within: 300 * time.Millisecond,
				check: both(apiErr(429), isErr(cbr.ErrRateLimited), notCtx)}),
		},
		{
			name:  "429 with a Retry-After beyond the deadline",
			fault: throttle(http.StatusTooManyRequests, "3600", 0),
			want: allOps(faultWant{target: exactly(1), show: none, within: 300 * time.Millisecond,
				check: both(apiErr(429), isErr(cbr.ErrRateLimited), notCtx)}),
		},
		{
			name:   "cancellation during a wait",
			fault:  throttle(http.StatusServiceUnavailable, "1", 0),
			policy: &slowPolicy,
			ctx: func(ctx context.Context) (context.Context, func()) {
				ctx, cancel := context.WithCancel(ctx)
				timer := time.AfterFunc(100*time.Millisecond, cancel)
				return ctx, func() { timer.Stop(); cancel() }
			},
			want: allOps(faultWant{target: exactly(1), show: none, within: 700 * time.Millisecond,
				check: both(isErr(context.Canceled), func(t *testing.T, err error) {
					t.Helper()
					assert.NotErrorIs(t, err, context.DeadlineExceeded)
					assert.NotErrorIs(t, err, cbr.ErrAttemptTimeout)
				})}),
		},
		{
			name: "redirect to another host",
			fault: func(s *faultServer, w http.ResponseWriter, r *http.Request, _ int) {
				http.Redirect(w, r, s.other+r.URL.Path, http.StatusTemporaryRedirect)
			},
			want: allOps(failure(exactly(1), none, apiErr(http.StatusTemporaryRedirect))),
			verify: func(t *testing.T, s *faultServer) {
				assert.Zero(t, s.otherHits.Load(), "nothing was sent to the other host")
			},
		},
		{
			name: "self-signed certificate",
			server: func(t *testing.T, s *faultServer) string {
				srv := httptest.NewUnstartedServer(s)
				srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
					s.hellos.Add(1)
					return nil, nil
				}}
				srv.StartTLS()
				t.Cleanup(srv.Close)
				return srv.URL
			},
			want: allOps(failure(none, none, func(t *testing.T, err error) {
				t.Helper()
				var certErr *tls.CertificateVerificationError
				assert.ErrorAs(t, err, &certErr)
			})),
			verify: func(t *testing.T, s *faultServer) {
				assert.Equal(t, int32(1), s.hellos.Load(), "one handshake: a TLS failure is not retried")
			},
		},
	}
}

// allOps is the same outcome for every operation.
func allOps(w faultWant) map[string]faultWant {
	return map[string]faultWant{"RegisterAgent": w, "UpdateAgent": w, "ShowAgent": w, "ListAgents": w}
}

// notUnexpected checks that a transport failure is not an unusable answer.
func notUnexpected(t *testing.T, err error) {
	t.Helper()
	assert.NotErrorIs(t, err, cbr.ErrUnexpectedResponse)
}

// notCtx checks that an error is not the caller's context's.
func notCtx(t *testing.T, err error) {
	t.Helper()
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, context.Canceled)
}

func TestFaultMatrix(t *testing.T) {
	// Not parallel: the leak check counts the goroutines left after the matrix.
	baseline := goleak.IgnoreCurrent()
	t.Run("matrix", func(t *testing.T) {
		for _, row := range faultRows() {
			require.Len(t, row.want, len(faultOps), row.name)
			for name, want := range row.want {
				t.Run(row.name+"/"+name, func(t *testing.T) {
					t.Parallel()
					runFault(t, row, name, want)
				})
			}
		}
	})
	goleak.VerifyNone(t, baseline)
}

// runFault runs operation name against the server of row and checks want.
func runFault(t *testing.T, row faultRow, name string, want faultWant) {
	op, ok := faultOps[name]
	require.True(t, ok, name)
	s := &faultServer{op: op, fault: row.fault, hits: map[string]int{}}
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { s.otherHits.Add(1) }))
	t.Cleanup(other.Close)
	s.other = other.URL
	var url string
	if row.server != nil {
		url = row.server(t, s)
	} else {
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		url = srv.URL
	}
	t.Cleanup(s.closeConns)
	policy := faultPolicy
	if row.policy != nil {
		policy = *row.policy
	}
	c, err := cbr.NewClient(cbr.WithEndpoint(url), cbr.WithProjectID("p1"), cbr.WithCredentials(cbr.Token("t")), cbr.WithRetry(policy))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if row.ctx != nil {
		ctx, cancel = row.ctx(context.Background())
	}
	defer cancel()

	start := time.Now()
	err = op.call(ctx, c)
	elapsed := time.Since(start)

	if want.ok {
		assert.NoError(t, err)
	} else if assert.Error(t, err) {
		assert.NotContains(t, err.Error(), "\n")
		assert.True(t, strings.HasPrefix(err.Error(), "cbr: "), err.Error())
		want.check(t, err)
	}
	if row.ctx == nil {
		assert.NoError(t, ctx.Err(), "the caller's context is still alive")
	}
	within := want.within
	if within == 0 {
		within = 2 * time.Second
	}
	assert.Less(t, elapsed, within)
	assert.GreaterOrEqual(t, elapsed, want.after)
	target := s.count(op.method, op.path)
	assert.True(t, want.target.min <= target && target <= want.target.max,
		"attempts at %s %s: %d, want %d to %d", op.method, op.path, target, want.target.min, want.target.max)
	if op.method != http.MethodGet {
		show := s.count(http.MethodGet, "/v3/p1/agents/a1")
		assert.True(t, want.show.min <= show && show <= want.show.max,
			"reconciling ShowAgent: %d, want %d to %d", show, want.show.min, want.show.max)
	}
	if row.verify != nil {
		row.verify(t, s)
	}
}
