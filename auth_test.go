package cbr_test

import (
	"bytes"
	"context"
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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

// authServer starts a fake CBR with its fake IAM and metadata service.
func authServer(t *testing.T) *cbrtest.Server {
	t.Helper()
	srv := cbrtest.NewServer()
	t.Cleanup(srv.Close)
	return srv
}

// authClient returns a client of srv with opts after the server's defaults.
func authClient(t *testing.T, srv *cbrtest.Server, opts ...cbr.Option) *cbr.Client {
	t.Helper()
	c, err := srv.Client(opts...)
	require.NoError(t, err)
	return c
}

// authAgent is a valid registration.
func authAgent(id string) cbr.AgentRegister {
	return cbr.AgentRegister{AgentID: id, HostName: "ecs-00002", HostIP: "10.10.0.2", HostOS: "linux", AgentVersion: "1.0.0"}
}

// authClock is a settable clock for the client's credentials.
type authClock struct {
	mu sync.Mutex
	t  time.Time
}

func newAuthClock() *authClock { return &authClock{t: time.Now()} }

func (c *authClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *authClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// signedHeadersOf returns the SignedHeaders of an Authorization header.
func signedHeadersOf(auth string) string {
	for _, part := range strings.Split(auth, ", ") {
		if v, ok := strings.CutPrefix(part, "SignedHeaders="); ok {
			return v
		}
	}
	return ""
}

// signatureRecorder is a CBR stand-in that verifies every request with
// cbrtest.VerifySignature and records what it saw.
type signatureRecorder struct {
	ak, sk string
	mu     sync.Mutex
	seen   []*http.Request
	bodies []string
	errs   []error
}

func (s *signatureRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	err := cbrtest.VerifySignature(r, s.ak, s.sk, time.Now())
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	seen := r.Clone(context.Background())
	seen.Body = nil
	s.seen = append(s.seen, seen)
	s.bodies = append(s.bodies, string(body))
	s.errs = append(s.errs, err)
	s.mu.Unlock()
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error_code":"APIGW.0301","error_msg":%q}`, err.Error())
		return
	}
	io.WriteString(w, `{"agents":[],"count":0}`)
}

func TestAKSKSignsEveryOperationForTheGateway(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	c := authClient(t, srv, cbr.WithCredentials(srv.AKSK()))
	ctx := context.Background()

	a, err := c.RegisterAgent(ctx, authAgent("489654f2-363b-4ebf-966a-bdf079d97114"))
	require.NoError(t, err, "POST with a body")
	_, err = c.ShowAgent(ctx, a.AgentID)
	require.NoError(t, err, "GET")
	_, err = c.UpdateAgent(ctx, a.AgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err, "PUT with a body")
	assert.Equal(t, 3, srv.Requests(), "no call needed a second attempt")
}

func TestAKSKSignatureAtTheWire(t *testing.T) {
	t.Parallel()
	rec := &signatureRecorder{ak: "QTWAOYTTINDUT2QVKYUC", sk: "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"}
	ts := httptest.NewServer(rec)
	t.Cleanup(ts.Close)
	c, err := cbr.NewClient(cbr.WithEndpoint(ts.URL), cbr.WithProjectID("f841e01fd2b14e7fa41b6ae7aa6b0594"),
		cbr.WithCredentials(cbr.AKSK{AccessKey: rec.ak, SecretKey: rec.sk}),
		cbr.WithRetry(noRetry))
	require.NoError(t, err)
	ctx := context.Background()

	// POST with a body: the body hash covers the exact bytes sent.
	require.NoError(t, c.Call(ctx, http.MethodPost, "agents", nil, map[string]any{"agent": map[string]string{"agent_id": "a b/ü"}}, nil))
	// GET with repeated, unsorted and escaped query parameters.
	q := url.Values{"agent_id": {"b", "a", "a b+c"}, "limit": {"10"}, "status": {""}}
	require.NoError(t, c.Call(ctx, http.MethodGet, "agents", q, nil, nil))
	// A path segment that needs escaping.
	require.NoError(t, c.Call(ctx, http.MethodGet, "agents/"+url.PathEscape("id with space"), nil, nil, nil))

	require.Len(t, rec.seen, 3)
	for i, err := range rec.errs {
		assert.NoError(t, err, "request %d", i)
	}
	post, get := rec.seen[0], rec.seen[1]
	assert.JSONEq(t, `{"agent":{"agent_id":"a b/ü"}}`, rec.bodies[0])
	assert.Regexp(t, `^SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=[0-9a-f]{64}$`,
		post.Header.Get("Authorization"))
	assert.Equal(t, "host;x-project-id;x-sdk-date", signedHeadersOf(get.Header.Get("Authorization")), "a GET has no Content-Type")
	assert.Empty(t, get.Header.Get("X-Security-Token"))
	date, err := time.Parse("20060102T150405Z", post.Header.Get("X-Sdk-Date"))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), date, time.Minute)
	assert.Equal(t, "agent_id=b&agent_id=a&agent_id=a%20b%2Bc&limit=10&status=", get.URL.RawQuery,
		"values go in their order; the signature sorts them")
}

func TestAKSKSecurityTokenIsSentAndSigned(t *testing.T) {
	t.Parallel()
	rec := &signatureRecorder{ak: "TEMPAK", sk: "tempsecret"}
	ts := httptest.NewServer(rec)
	t.Cleanup(ts.Close)
	c, err := cbr.NewClient(cbr.WithEndpoint(ts.URL), cbr.WithProjectID("p1"),
		cbr.WithCredentials(cbr.AKSK{AccessKey: "TEMPAK", SecretKey: "tempsecret", SecurityToken: "sts-token-1"}),
		cbr.WithRetry(noRetry))
	require.NoError(t, err)

	_, err = c.ShowAgent(context.Background(), "a1")
	require.Error(t, err, "the recorder's answer has no agent")
	require.Len(t, rec.seen, 1)
	require.NoError(t, rec.errs[0])
	r := rec.seen[0]
	assert.Equal(t, "sts-token-1", r.Header.Get("X-Security-Token"))
	assert.Equal(t, "host;x-project-id;x-sdk-date;x-security-token", signedHeadersOf(r.Header.Get("Authorization")))

	// The token is covered by the signature: another token breaks it.
	r.Header.Set("X-Security-Token", "sts-token-2")
	assert.EqualError(t, cbrtest.VerifySignature(r, "TEMPAK", "tempsecret", time.Now()), "cbrtest: verify aksk signature fail")
}

func TestAKSKSignsEveryAttemptAfresh(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	clock := newAuthClock()
	var dates []string
	var mu sync.Mutex
	c := authClient(t, srv, cbr.WithCredentials(srv.AKSK()), cbr.WithClock(func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock.Advance(2 * time.Second) // every signature is 2s after the last
		t := clock.Now()
		dates = append(dates, t.UTC().Format("20060102T150405Z"))
		return t
	}))
	srv.InjectFaults(cbrtest.Fault{Status: http.StatusServiceUnavailable}, cbrtest.Fault{Status: http.StatusBadGateway})

	_, err := c.ListAgents(context.Background(), cbr.ListAgentsOptions{})
	require.NoError(t, err, "the third attempt carries a valid signature")
	assert.Equal(t, 3, srv.Requests())
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, dates, 3, "one signature per attempt")
	assert.NotEqual(t, dates[0], dates[1])
	assert.NotEqual(t, dates[1], dates[2])
}

func TestAKSKWrongSecretKeyIsRejected(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	c := authClient(t, srv, cbr.WithCredentials(cbr.AKSK{AccessKey: srv.AccessKey, SecretKey: "not-" + srv.SecretKey}))

	_, err := c.RegisterAgent(context.Background(), authAgent("a1"))
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	assert.Equal(t, "APIGW.0301", apiErr.Code)
	assert.Equal(t, "Incorrect IAM authentication information: verify aksk signature fail", apiErr.Message,
		"the gateway's message, without the cbrtest prefix of VerifySignature")
	assert.ErrorIs(t, err, cbr.ErrUnauthorized)
	assert.Equal(t, 1, apiErr.Attempts, "a 401 is not retried, and static keys are not renewed")
	assert.Equal(t, 1, srv.Requests())
	assert.Empty(t, srv.Agents())
	assert.NotContains(t, err.Error(), srv.SecretKey)
}

func TestAKSKSkewedClockIsRejected(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	for _, tc := range []struct {
		skew time.Duration
		ok   bool
	}{
		{-16 * time.Minute, false},
		{16 * time.Minute, false},
		{-14 * time.Minute, true},
		{14 * time.Minute, true},
	} {
		c := authClient(t, srv, cbr.WithCredentials(srv.AKSK()),
			cbr.WithClock(func() time.Time { return time.Now().Add(tc.skew) }))
		_, err := c.RegisterAgent(context.Background(), authAgent("a1"))
		if tc.ok {
			assert.NoError(t, err, "skew %v", tc.skew)
			continue
		}
		var apiErr *cbr.APIError
		if assert.ErrorAs(t, err, &apiErr, "skew %v", tc.skew) {
			assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
			assert.Contains(t, apiErr.Message, "x-sdk-date")
		}
	}
}

func TestCredentialsAreCheckedInNewClient(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		creds cbr.Credentials
		want  string
	}{
		"AKSK without access key":       {cbr.AKSK{SecretKey: "s"}, "cbr: AKSK: access key is empty"},
		"AKSK without secret key":       {cbr.AKSK{AccessKey: "a"}, "cbr: AKSK: secret key is empty"},
		"AKSK with a comma":             {cbr.AKSK{AccessKey: "a,b", SecretKey: "s"}, "access key contains"},
		"security token with a newline": {cbr.AKSK{AccessKey: "a", SecretKey: "s", SecurityToken: "t\n"}, "security token contains"},
		"empty token":                   {cbr.Token(""), "cbr: token is empty"},
		"token with a newline":          {cbr.Token(secretToken + "\n"), "cbr: token contains a control character, such as a trailing newline"},
		"token with a NUL":              {cbr.Token(secretToken[:4] + "\x00" + secretToken[4:]), "cbr: token contains a control character"},
		"IAMPassword without domain":    {cbr.IAMPassword{User: "u", Password: "p"}, "cbr: IAMPassword: domain is empty"},
		"IAMPassword without user":      {cbr.IAMPassword{Domain: "d", Password: "p"}, "cbr: IAMPassword: user is empty"},
		"IAMPassword without pass":      {cbr.IAMPassword{Domain: "d", User: "u"}, "cbr: IAMPassword: password is empty"},
		"metadata with a query":         {cbr.ECSMetadata{Endpoint: "http://169.254.169.254/?x=1"}, "ECS metadata endpoint"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := cbr.NewClient(cbr.WithRegion("ap-southeast-1"), cbr.WithProjectID("p1"), cbr.WithCredentials(tc.creds))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assertNoSecret(t, err.Error(), name)
			assert.NotContains(t, err.Error(), secretToken[:4]+"\x00", name)
		})
	}
}

func TestUnboundCredentialsRefuseToAuthenticate(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodGet, "https://cbr.example.com/", nil)
	assert.ErrorContains(t, cbr.IAMPassword{Domain: "d", User: "u", Password: "p"}.Authenticate(req, nil), "only through WithCredentials")
	assert.ErrorContains(t, cbr.ECSMetadata{}.Authenticate(req, nil), "only through WithCredentials")
	assert.Empty(t, req.Header)
}

// secretsOf lists the secrets in creds, which must never be printed.
const (
	secretSK       = "SK-super-secret-0123456789"
	secretToken    = "MIItoken-secret-abcdef"
	secretSTS      = "STS-secret-token-xyz"
	secretPassword = "P@ssw0rd-secret!"
)

func TestCredentialsPrintRedacted(t *testing.T) {
	t.Parallel()
	all := map[string]any{
		"Token":       cbr.Token(secretToken),
		"AKSK":        cbr.AKSK{AccessKey: "QTWAOYTTINDUT2QVKYUC", SecretKey: secretSK, SecurityToken: secretSTS},
		"IAMPassword": cbr.IAMPassword{Domain: "acme", User: "installer", Password: secretPassword, Project: "ap-southeast-1"},
		"pointer":     &cbr.AKSK{AccessKey: "QTWAOYTTINDUT2QVKYUC", SecretKey: secretSK},
		"in a struct": struct {
			Creds cbr.Credentials
			Token cbr.Token
			Pass  cbr.IAMPassword
		}{cbr.AKSK{AccessKey: "QTWAOYTTINDUT2QVKYUC", SecretKey: secretSK}, cbr.Token(secretToken), cbr.IAMPassword{Password: secretPassword}},
	}
	for name, v := range all {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
			out := fmt.Sprintf(verb, v)
			assertNoSecret(t, out, name+" "+verb)
			if verb != "%T %v" {
				assert.Contains(t, out, "REDACTED", "%s %s", name, verb)
			}
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("creds", "creds", v, slog.Any("any", v), slog.Group("g", "c", v))
		assertNoSecret(t, buf.String(), name+" slog")
		assert.Contains(t, buf.String(), "REDACTED", name+" slog")
	}
	assert.Equal(t, "cbr.AKSK{AccessKey: QTWA****, SecretKey: REDACTED, SecurityToken: REDACTED}", fmt.Sprint(all["AKSK"]))
	assert.Equal(t, `cbr.IAMPassword{Domain: "acme", User: "installer", Password: REDACTED, Project: "ap-southeast-1"}`, fmt.Sprintf("%#v", all["IAMPassword"]))
}

func TestClientPrintsNoSecret(t *testing.T) {
	t.Parallel()
	for _, creds := range []cbr.Credentials{
		cbr.Token(secretToken),
		cbr.AKSK{AccessKey: "QTWAOYTTINDUT2QVKYUC", SecretKey: secretSK, SecurityToken: secretSTS},
		cbr.IAMPassword{Domain: "acme", User: "installer", Password: secretPassword},
		cbr.ECSMetadata{},
	} {
		c, err := cbr.NewClient(cbr.WithRegion("ap-southeast-1"), cbr.WithProjectID("p1"), cbr.WithCredentials(creds))
		require.NoError(t, err)
		for _, verb := range []string{"%v", "%+v", "%#v"} {
			assertNoSecret(t, fmt.Sprintf(verb, c), fmt.Sprintf("%T %s", creds, verb))
			assertNoSecret(t, fmt.Sprintf(verb, *c), fmt.Sprintf("%T %s of the value", creds, verb))
		}
	}
}

func assertNoSecret(t *testing.T, out, what string) {
	t.Helper()
	for _, s := range []string{secretSK, secretToken, secretSTS, secretPassword} {
		assert.NotContains(t, out, s, what)
	}
}

func TestRedirectsReceiveNoCredentials(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(other.Close)

	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		var sent atomic.Int32
		cbrSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sent.Add(1)
			http.Redirect(w, r, other.URL+r.URL.Path, status)
		}))
		t.Cleanup(cbrSrv.Close)
		for _, creds := range []cbr.Credentials{cbr.Token(secretToken), cbr.AKSK{AccessKey: "AK", SecretKey: secretSK}} {
			c, err := cbr.NewClient(cbr.WithEndpoint(cbrSrv.URL), cbr.WithProjectID("p1"), cbr.WithCredentials(creds),
				cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: time.Millisecond}))
			require.NoError(t, err)
			before := sent.Load()
			_, err = c.RegisterAgent(context.Background(), authAgent("a1"))
			var apiErr *cbr.APIError
			require.ErrorAs(t, err, &apiErr, "%d %T", status, creds)
			assert.Equal(t, status, apiErr.StatusCode)
			assert.Equal(t, int32(1), sent.Load()-before, "a redirect is neither followed nor retried")
		}
	}

	// IAM redirecting the password request: the password goes nowhere else.
	iam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(iam.Close)
	srv := authServer(t)
	c := authClient(t, srv, cbr.WithIAMEndpoint(iam.URL), cbr.WithCredentials(srv.IAMPassword()))
	_, err := c.RegisterAgent(context.Background(), authAgent("a1"))
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusTemporaryRedirect, apiErr.StatusCode)
	assert.Equal(t, "get IAM token", apiErr.Op)
	assert.Equal(t, 0, srv.Requests(), "no token, no CBR request")

	// The metadata service redirecting: neither followed nor answered with keys.
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(meta.Close)
	c = authClient(t, srv, cbr.WithCredentials(cbr.ECSMetadata{Endpoint: meta.URL}))
	_, err = c.RegisterAgent(context.Background(), authAgent("a1"))
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusFound, apiErr.StatusCode)
	assert.Equal(t, "get ECS metadata token", apiErr.Op)
	assert.Equal(t, 0, srv.Requests())

	assert.Equal(t, int32(0), elsewhere.Load(), "the other host received nothing")
}

// errorsAsAPI is errors.As for *cbr.APIError.
func errorsAsAPI(err error) (*cbr.APIError, bool) {
	var apiErr *cbr.APIError
	ok := errors.As(err, &apiErr)
	return apiErr, ok
}

func TestCredentialFetchErrorsHoldNoSecret(t *testing.T) {
	t.Parallel()
	expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	keys := `{"credential":{"access":"TMPAK","secret":"` + secretSK + `","securitytoken":"` + secretSTS + `"`
	for name, tc := range map[string]struct {
		iam   bool   // an IAM token answer, else a metadata keys answer
		token string // X-Subject-Token of an IAM answer
		body  string
		want  string
	}{
		"IAM token without expires_at": {iam: true, token: secretToken, body: `{"token":{}}`,
			want: "cbr: show agent: authenticate: get IAM token: unexpected response: token has no expires_at"},
		"IAM token with a control character": {iam: true, token: secretToken + "\x01", body: `{"token":{"expires_at":"` + expires + `"}}`,
			want: "cbr: show agent: authenticate: get IAM token: the answer is malformed (not quoted: it may hold a secret)"},
		"IAM answer without a token": {iam: true, body: `{"token":{"expires_at":"` + expires + `"}}`,
			want: "cbr: show agent: authenticate: get IAM token: unexpected response: no token in X-Subject-Token"},
		"IAM body cut short": {iam: true, token: secretToken, body: `{"token":{"expires_at":"` + secretToken,
			want: "cbr: show agent: authenticate: get IAM token: decode 201 response: unexpected end of JSON input"},
		"IAM body over 1 MiB": {iam: true, token: secretToken, body: `{"token":{"expires_at":"` + expires + `"}}` + strings.Repeat(" ", 1<<20),
			want: "cbr: show agent: authenticate: get IAM token: decode 201 response: body is over 1048576 bytes"},
		"metadata keys without expires_at": {body: keys + `}}`,
			want: "cbr: show agent: authenticate: get ECS metadata credentials: unexpected response: credential has no expires_at"},
		"metadata access key with a comma": {body: `{"credential":{"access":"TMP,AK","secret":"` + secretSK + `","securitytoken":"` + secretSTS + `","expires_at":"` + expires + `"}}`,
			want: "cbr: show agent: authenticate: get ECS metadata credentials: unexpected response: AKSK: access key contains a space, a comma or a control character"},
		"metadata body cut short": {body: keys,
			want: "cbr: show agent: authenticate: get ECS metadata credentials: decode 200 response: unexpected end of JSON input"},
		"metadata body over 64 KiB": {body: keys + `,"expires_at":"` + expires + `"}}` + strings.Repeat(" ", 64<<10),
			want: "cbr: show agent: authenticate: get ECS metadata credentials: decode 200 response: body is over 65536 bytes"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var answered, cbrRequests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/v3/auth/tokens", "/openstack/latest/securitykey":
					answered.Add(1)
					w.Header()["X-Subject-Token"] = []string{tc.token} // as sent, control character included
					if tc.iam {
						w.WriteHeader(http.StatusCreated)
					}
					io.WriteString(w, tc.body)
				case "/meta-data/latest/api/token":
					w.WriteHeader(http.StatusNotFound)
				default:
					cbrRequests.Add(1)
				}
			}))
			t.Cleanup(srv.Close)
			var creds cbr.Credentials = cbr.ECSMetadata{Endpoint: srv.URL}
			if tc.iam {
				creds = cbr.IAMPassword{Domain: "acme", User: "installer", Password: secretPassword}
			}
			c, err := cbr.NewClient(cbr.WithEndpoint(srv.URL), cbr.WithIAMEndpoint(srv.URL), cbr.WithProjectID("p1"),
				cbr.WithCredentials(creds), cbr.WithRetry(noRetry))
			require.NoError(t, err)

			_, err = c.ShowAgent(context.Background(), "a1")
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
			for _, out := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
				assertNoSecret(t, out, name)
			}
			assert.Equal(t, int32(1), answered.Load())
			assert.Zero(t, cbrRequests.Load())
		})
	}
}
