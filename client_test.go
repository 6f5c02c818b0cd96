package cbr_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

const (
	testEndpoint = "https://cbr.ap-southeast-1.myhuaweicloud.com"
	testProject  = "f841e01fd2b14e7fa41b6ae7aa6b0594"
	testToken    = "MIIZtestTOKENvalue-do-not-print"
	testAgentID  = "489654f2-363b-4ebf-966a-bdf079d97114"
	agentsURL    = testEndpoint + "/v3/" + testProject + "/agents"
)

// fastRetry is the default policy's shape with waits short enough for tests.
var fastRetry = cbr.RetryPolicy{MaxAttempts: 4, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond,
	ThrottleMinWait: time.Millisecond, ThrottleMaxWait: 5 * time.Millisecond, MaxDuration: time.Second}

// noRetry retries no failure, and waits out throttling for a second at most.
var noRetry = cbr.RetryPolicy{MaxAttempts: 1,
	ThrottleMinWait: time.Millisecond, ThrottleMaxWait: 5 * time.Millisecond, MaxDuration: time.Second}

// documentedRegister is the request of the API's register example.
var documentedRegister = cbr.AgentRegister{
	AgentID:      testAgentID,
	HostName:     "ecs-00002",
	HostIP:       "10.10.0.2",
	HostOS:       "linux",
	AgentVersion: "1.0.0",
	AgentType:    cbr.AgentTypeNative,
}

// registerAs is documentedRegister with another agent ID.
func registerAs(id string) cbr.AgentRegister {
	in := documentedRegister
	in.AgentID = id
	return in
}

// stub answers requests in order from answers (the last one repeats) and
// records every request it is sent, with its body.
type stub struct {
	answers []answer

	mu     sync.Mutex
	reqs   []*http.Request
	bodies []string
}

// answer is one canned reply: an error, or a status with a body and headers.
type answer struct {
	status int
	body   string
	header http.Header
	err    error
}

func (s *stub) respond(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
	}
	s.mu.Lock()
	i := len(s.reqs)
	s.reqs = append(s.reqs, req)
	s.bodies = append(s.bodies, string(body))
	a := s.answers[min(i, len(s.answers)-1)]
	s.mu.Unlock()
	if a.err != nil {
		return nil, a.err
	}
	resp := httpmock.NewStringResponse(a.status, a.body)
	for k, v := range a.header {
		resp.Header[k] = v
	}
	resp.Request = req
	return resp, nil
}

// answering returns a stub that answers every request with status and body.
func answering(status int, body string) *stub {
	return &stub{answers: []answer{{status: status, body: body}}}
}

func (s *stub) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// answerNotRegistered makes mt answer the check that RegisterAgent makes
// after an attempt that may have taken effect: the agent is not registered.
func answerNotRegistered(mt *httpmock.MockTransport) {
	mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, httpmock.NewStringResponder(404,
		`{"error_code":"BackupService.7410","error_msg":"Agent `+testAgentID+` not found."}`))
}

// newMockClient returns a client whose attempts all go to a new httpmock
// transport; a request that no responder matches fails the test.
func newMockClient(t *testing.T, opts ...cbr.Option) (*cbr.Client, *httpmock.MockTransport) {
	t.Helper()
	mt := httpmock.NewMockTransport()
	mt.RegisterNoResponder(func(req *http.Request) (*http.Response, error) {
		t.Errorf("unexpected request %s %s", req.Method, req.URL)
		return nil, errors.New("test: no responder")
	})
	c, err := cbr.NewClient(append([]cbr.Option{
		cbr.WithEndpoint(testEndpoint),
		cbr.WithProjectID(testProject),
		cbr.WithCredentials(cbr.Token(testToken)),
		cbr.WithHTTPClient(&http.Client{Transport: mt}),
		cbr.WithRetry(fastRetry),
	}, opts...)...)
	require.NoError(t, err)
	return c, mt
}

// fakeClient returns a cbrtest server and a client for it, with the
// server's quick retries and opts after them.
func fakeClient(t *testing.T, opts ...cbr.Option) (*cbrtest.Server, *cbr.Client) {
	t.Helper()
	srv := cbrtest.NewServer()
	t.Cleanup(srv.Close)
	c, err := srv.Client(opts...)
	require.NoError(t, err)
	return srv, c
}

// newServerClient returns a client for an httptest server, with the
// dedicated transport (no WithHTTPClient).
func newServerClient(t *testing.T, url string, opts ...cbr.Option) *cbr.Client {
	t.Helper()
	c, err := cbr.NewClient(append([]cbr.Option{
		cbr.WithEndpoint(url),
		cbr.WithProjectID(testProject),
		cbr.WithCredentials(cbr.Token(testToken)),
		cbr.WithRetry(fastRetry),
	}, opts...)...)
	require.NoError(t, err)
	return c
}

func TestNewClientOptionErrors(t *testing.T) {
	valid := []cbr.Option{cbr.WithRegion("ap-southeast-1"), cbr.WithProjectID(testProject), cbr.WithCredentials(cbr.Token(testToken))}
	tests := []struct {
		name string
		opt  cbr.Option
		want string
	}{
		{"empty region", cbr.WithRegion(""), `cbr: invalid region ""`},
		{"region with bad characters", cbr.WithRegion("AP_SOUTHEAST 1"), `cbr: invalid region "AP_SOUTHEAST 1"`},
		{"empty endpoint", cbr.WithEndpoint(""), "cbr: endpoint is empty"},
		{"endpoint scheme", cbr.WithEndpoint("ftp://cbr.example.com"), `scheme "ftp" is not http or https`},
		{"endpoint without host", cbr.WithEndpoint("https://"), "cbr: invalid endpoint: no host"},
		{"endpoint with user info", cbr.WithEndpoint("https://u:p@cbr.example.com"), "must not have user info"},
		{"endpoint with query", cbr.WithEndpoint("https://cbr.example.com/?x=1"), "must not have user info, a query"},
		{"endpoint with fragment", cbr.WithEndpoint("https://cbr.example.com/#f"), "a query or a fragment"},
		{"unparsable endpoint", cbr.WithEndpoint("https://cbr example.com"), "cbr: invalid endpoint"},
		{"plain http off loopback", cbr.WithEndpoint("http://10.1.2.3:8080"), "plain http on a non-loopback host"},
		{"empty project", cbr.WithProjectID(""), "cbr: invalid project ID: is required"},
		{"project with slash", cbr.WithProjectID("a/b"), `cbr: invalid project ID: must not contain "/"`},
		{"project dot-dot", cbr.WithProjectID(".."), `cbr: invalid project ID: must not be "." or ".."`},
		{"project control char", cbr.WithProjectID("a\nb"), "cbr: invalid project ID: contains a control character"},
		{"nil credentials", cbr.WithCredentials(nil), "cbr: credentials are nil"},
		{"nil HTTP client", cbr.WithHTTPClient(nil), "cbr: HTTP client is nil"},
		{"zero attempts", cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 0}), "MaxAttempts 0 is not within 1 to 20"},
		{"too many attempts", cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 21}), "MaxAttempts 21 is not within 1 to 20"},
		{"retries without a wait", cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 3, MaxWait: time.Second}), "MinWait must be positive when MaxAttempts is more than 1"},
		{"negative wait", cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 2, MinWait: -1}), "0 <= MinWait"},
		{"max below min", cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 2, MinWait: time.Second, MaxWait: time.Millisecond}), "MinWait (1s) <= MaxWait (1ms)"},
		{"nil logger", cbr.WithLogger(nil), "cbr: logger is nil"},
		{"empty user agent", cbr.WithUserAgent(""), `cbr: invalid user agent ""`},
		{"user agent with newline", cbr.WithUserAgent("x\r\nX-Evil: 1"), "cbr: invalid user agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := cbr.NewClient(append(valid, tt.opt)...)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestNewClientNamesWhatIsMissing(t *testing.T) {
	region := cbr.WithRegion("ap-southeast-1")
	project := cbr.WithProjectID(testProject)
	creds := cbr.WithCredentials(cbr.Token(testToken))
	tests := []struct {
		name string
		opts []cbr.Option
		want string
	}{
		{"nothing", nil, "cbr: missing endpoint: use WithRegion or WithEndpoint"},
		{"endpoint", []cbr.Option{project, creds}, "cbr: missing endpoint: use WithRegion or WithEndpoint"},
		{"project ID", []cbr.Option{region, creds}, "cbr: missing project ID: use WithProjectID, or WithRegion with AKSK, IAMPassword or ECSMetadata credentials"},
		{"credentials", []cbr.Option{region, project}, "cbr: missing credentials: use WithCredentials"},
		{"unknown region", []cbr.Option{cbr.WithRegion("xx-nowhere-9"), project, creds}, `cbr: unknown region "xx-nowhere-9": give its endpoint with WithEndpoint`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cbr.NewClient(tt.opts...)
			require.Error(t, err)
			assert.EqualError(t, err, tt.want)
		})
	}
}

func TestNewClientAcceptsGoodConfigurations(t *testing.T) {
	project := cbr.WithProjectID(testProject)
	creds := cbr.WithCredentials(cbr.Token(testToken))
	tests := []struct {
		name string
		opts []cbr.Option
	}{
		{"known region", []cbr.Option{cbr.WithRegion("cn-north-4")}},
		{"unknown region with endpoint", []cbr.Option{cbr.WithRegion("xx-nowhere-9"), cbr.WithEndpoint("https://cbr.example.com")}},
		{"endpoint without scheme", []cbr.Option{cbr.WithEndpoint("cbr.example.com")}},
		{"http on 127.0.0.1", []cbr.Option{cbr.WithEndpoint("http://127.0.0.1:8080")}},
		{"http on localhost", []cbr.Option{cbr.WithEndpoint("http://localhost:8080")}},
		{"http on ::1", []cbr.Option{cbr.WithEndpoint("http://[::1]:8080")}},
		{"http elsewhere, opted in", []cbr.Option{cbr.WithEndpoint("http://10.1.2.3:8080"), cbr.WithInsecureHTTP()}},
		{"nil option skipped", []cbr.Option{nil, cbr.WithRegion("ap-southeast-1")}},
		{"every option", []cbr.Option{
			cbr.WithRegion("ap-southeast-1"), cbr.WithHTTPClient(&http.Client{}), cbr.WithRetry(noRetry),
			cbr.WithLogger(slogTo(io.Discard)), cbr.WithUserAgent("installer/2.1"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := cbr.NewClient(append(tt.opts, project, creds)...)
			require.NoError(t, err)
			assert.NotNil(t, c)
		})
	}
	assert.Len(t, cbr.Regions(), 34)
	assert.Contains(t, cbr.Regions(), "ap-southeast-1")
}

// TestEndpointFromRegion checks the endpoint a region gives, at the wire.
func TestEndpointFromRegion(t *testing.T) {
	st := &stub{answers: []answer{{status: 200, body: string(golden(t, "register_response.json"))}}}
	mt := httpmock.NewMockTransport()
	mt.RegisterNoResponder(st.respond)
	c, err := cbr.NewClient(cbr.WithRegion("cn-north-4"), cbr.WithProjectID(testProject),
		cbr.WithCredentials(cbr.Token(testToken)), cbr.WithHTTPClient(&http.Client{Transport: mt}))
	require.NoError(t, err)

	_, err = c.RegisterAgent(context.Background(), documentedRegister)
	require.NoError(t, err)
	require.Equal(t, 1, st.count())
	assert.Equal(t, "https://cbr.cn-north-4.myhuaweicloud.com/v3/"+testProject+"/agents", st.reqs[0].URL.String())
}

// TestEndpointPathPrefix checks that paths are joined to the endpoint's path,
// never resolved from the host's root.
func TestEndpointPathPrefix(t *testing.T) {
	st := &stub{answers: []answer{{status: 200, body: string(golden(t, "register_response.json"))}}}
	c, mt := newMockClient(t, cbr.WithEndpoint("https://gateway.example.com/cbr"))
	mt.RegisterNoResponder(st.respond)

	_, err := c.RegisterAgent(context.Background(), documentedRegister)
	require.NoError(t, err)
	require.Equal(t, 1, st.count())
	assert.Equal(t, "https://gateway.example.com/cbr/v3/"+testProject+"/agents", st.reqs[0].URL.String())
}

func TestClientFormatPrintsEndpointNotToken(t *testing.T) {
	c, _ := newMockClient(t)
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%q"} {
		out := fmt.Sprintf(format, c)
		assert.NotContains(t, out, testToken, format)
		assert.NotContains(t, out, fmt.Sprintf("%x", testToken), format)
		out = fmt.Sprintf(format, struct{ C *cbr.Client }{c})
		assert.NotContains(t, out, testToken, format)
	}
	assert.Contains(t, fmt.Sprint(c), testEndpoint, "the client still says where it points")
}

func TestConcurrentCallsShareOneClient(t *testing.T) {
	srv := cbrtest.NewServer()
	defer srv.Close()
	srv.InjectFaults( // on uninstalls: a register that may have taken effect is checked before it is sent again
		cbrtest.Fault{Method: "PUT", Status: 503}, cbrtest.Fault{Method: "PUT", Status: 502},
		cbrtest.Fault{Method: "PUT", Drop: true}, cbrtest.Fault{Status: 429, RetryAfter: "0"},
	)
	// One goroutine may meet every fault: it still has an attempt left.
	c, err := srv.Client(cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 6, MinWait: time.Millisecond, MaxWait: 10 * time.Millisecond}))
	require.NoError(t, err)

	const n = 32
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("agent-%02d", i)
			_, err := c.RegisterAgent(context.Background(), cbr.AgentRegister{
				AgentID: id, HostName: "host-" + id, HostIP: fmt.Sprintf("10.0.0.%d", i+1), HostOS: "linux",
			})
			if err == nil {
				_, err = c.UpdateAgent(context.Background(), id, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
			}
			errs[i] = err
		}()
	}
	wg.Wait()

	for i, err := range errs {
		assert.NoError(t, err, "goroutine %d", i)
	}
	agents := srv.Agents()
	require.Len(t, agents, n)
	for i, a := range agents {
		assert.Equal(t, fmt.Sprintf("agent-%02d", i), a.AgentID)
		assert.Equal(t, cbr.AgentStatusUninstall, a.Status)
		assert.Equal(t, fmt.Sprintf("10.0.0.%d", i+1), a.HostIP)
	}
	assert.Equal(t, 2*n+4, srv.Requests(), "every call once, plus one retry per fault")
}

func TestNoTokenInErrors(t *testing.T) {
	var errs []error

	// API errors of every kind, retried and not.
	for _, status := range []int{400, 401, 403, 404, 429, 500, 503} {
		st := &stub{answers: []answer{{status: status, body: `{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information: decrypt token fail","request_id":"r"}`}}}
		c, mt := newMockClient(t)
		mt.RegisterResponder("PUT", agentsURL+"/"+testAgentID, st.respond)
		answerNotRegistered(mt) // the check after an uninstall that may have taken effect
		_, err := c.UpdateAgent(context.Background(), testAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
		errs = append(errs, err)
	}
	// Transport errors, validation, a done context.
	c, mt := newMockClient(t)
	mt.RegisterResponder("POST", agentsURL, httpmock.NewErrorResponder(errors.New("connection reset by peer")))
	answerNotRegistered(mt)
	_, err := c.RegisterAgent(context.Background(), documentedRegister)
	errs = append(errs, err)
	_, err = c.RegisterAgent(context.Background(), cbr.AgentRegister{AgentID: "a/b"})
	errs = append(errs, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.RegisterAgent(ctx, documentedRegister)
	errs = append(errs, err)
	srv, _ := hangingServer(t)
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = newServerClient(t, srv.URL).RegisterAgent(ctx, documentedRegister)
	errs = append(errs, err)

	for i, err := range errs {
		require.Error(t, err, "case %d", i)
		for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			assert.NotContains(t, fmt.Sprintf(format, err), testToken, "case %d, %s", i, format)
		}
		assert.NotContains(t, err.Error(), "\n", "case %d: one line", i)
		assert.True(t, strings.HasPrefix(err.Error(), "cbr: "), "case %d: %s", i, err)
	}
}

func TestLoggerGetsNoSecret(t *testing.T) {
	var buf syncBuffer
	logger := slogTo(&buf)
	st := &stub{answers: []answer{
		{status: 503, body: `{"error_code":"APIGW.0613","error_msg":"IAM unavailable"}`},
		{err: errors.New("connection reset by peer")},
		{status: 200, body: string(golden(t, "register_response.json"))},
	}}
	c, mt := newMockClient(t, cbr.WithLogger(logger))
	mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, st.respond)

	_, err := c.ShowAgent(context.Background(), testAgentID)
	require.NoError(t, err)
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, "one record per retry, one per call: %s", out)
	assert.Contains(t, lines[0], `level=WARN msg="cbr: retrying" op="show agent" attempt=1 reason="503 Service Unavailable" wait=`)
	assert.Contains(t, lines[1], `level=WARN msg="cbr: retrying" op="show agent" attempt=2 reason="connection reset by peer" wait=`)
	assert.Contains(t, lines[2], `level=INFO msg="cbr: call" op="show agent" method=GET path=/v3/`+testProject+`/agents/`+testAgentID+` status=200 attempts=3 duration=`)
	assert.NotContains(t, out, testToken)
	assert.NotContains(t, out, "ecs-00002", "no body is logged")
	assert.NotContains(t, out, "X-Auth-Token", "no header is logged")
}

// syncBuffer is a bytes.Buffer that is safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// slogTo returns a logger that writes every level as text to w.
func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestWithTLSConfigTrustsAPrivateCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(golden(t, "register_response.json"))
	}))
	defer srv.Close()
	opts := []cbr.Option{cbr.WithEndpoint(srv.URL), cbr.WithProjectID(testProject), cbr.WithCredentials(cbr.Token(testToken)), cbr.WithRetry(noRetry)}

	plain, err := cbr.NewClient(opts...)
	require.NoError(t, err)
	_, err = plain.ShowAgent(context.Background(), testAgentID)
	var certErr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &certErr, "the test server's CA is not trusted by default")

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c, err := cbr.NewClient(append(opts, cbr.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10}))...)
	require.NoError(t, err)
	defer c.Close()
	a, err := c.ShowAgent(context.Background(), testAgentID)
	require.NoError(t, err)
	assert.Equal(t, testAgentID, a.AgentID)
}

func TestWithProxySendsThroughTheProxy(t *testing.T) {
	var seen atomic.Value
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Method + " " + r.URL.String() + " " + r.Header.Get("X-Auth-Token"))
		w.Write(golden(t, "register_response.json"))
	}))
	defer proxy.Close()
	proxyURL, err := url.Parse(proxy.URL)
	require.NoError(t, err)
	// The endpoint is never dialled: the proxy answers for it.
	c, err := cbr.NewClient(cbr.WithEndpoint("http://127.0.0.1:1"), cbr.WithProjectID(testProject),
		cbr.WithCredentials(cbr.Token(testToken)), cbr.WithRetry(noRetry), cbr.WithProxy(http.ProxyURL(proxyURL)))
	require.NoError(t, err)
	_, err = c.ShowAgent(context.Background(), testAgentID)
	require.NoError(t, err)
	assert.Equal(t, "GET http://127.0.0.1:1/v3/"+testProject+"/agents/"+testAgentID+" "+testToken, seen.Load())
}

func TestTransportOptionsNeedTheClientsOwnTransport(t *testing.T) {
	base := []cbr.Option{cbr.WithEndpoint(testEndpoint), cbr.WithProjectID(testProject), cbr.WithCredentials(cbr.Token(testToken)),
		cbr.WithHTTPClient(&http.Client{})}
	for _, opt := range []cbr.Option{cbr.WithTLSConfig(&tls.Config{}), cbr.WithProxy(nil)} {
		_, err := cbr.NewClient(append(base, opt)...)
		assert.EqualError(t, err, "cbr: WithTLSConfig and WithProxy set the client's own transport: configure the transport of WithHTTPClient instead")
	}
	_, err := cbr.NewClient(cbr.WithTLSConfig(nil))
	assert.EqualError(t, err, "cbr: TLS config is nil")
}

func TestWithHTTPClientTransportIsReadForEveryCall(t *testing.T) {
	hc := &http.Client{}
	c, err := cbr.NewClient(cbr.WithEndpoint(testEndpoint), cbr.WithProjectID(testProject),
		cbr.WithCredentials(cbr.Token(testToken)), cbr.WithRetry(noRetry), cbr.WithHTTPClient(hc))
	require.NoError(t, err)
	// Set after NewClient, as httpmock.ActivateNonDefault(hc) does: still used.
	mt := httpmock.NewMockTransport()
	mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, httpmock.NewBytesResponder(200, golden(t, "register_response.json")))
	hc.Transport = mt
	_, err = c.ShowAgent(context.Background(), testAgentID)
	require.NoError(t, err)
	assert.Equal(t, 1, mt.GetTotalCallCount())
}
