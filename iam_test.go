package cbr_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
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

func TestIAMPasswordGetsOneTokenAndReusesIt(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	c := authClient(t, srv, cbr.WithCredentials(srv.IAMPassword()))
	ctx := context.Background()

	for i := range 3 {
		_, err := c.RegisterAgent(ctx, authAgent(fmt.Sprintf("a%d", i)))
		require.NoError(t, err)
	}
	assert.Equal(t, 1, srv.TokenRequests())
	assert.Equal(t, 3, srv.Requests())
}

// iamEvents is a fake IAM and CBR pair that logs what happens, in order.
type iamEvents struct {
	mu     sync.Mutex
	log    []string
	tokens int
	// refuse lists the tokens CBR answers 401 to.
	refuse map[string]bool
	// iamStatus, when set, answers the token request with a status of its choice.
	iamStatus func(n int) int
	lifetime  time.Duration
}

func (e *iamEvents) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

// revoke makes CBR refuse toks from now on.
func (e *iamEvents) revoke(toks ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refuse == nil {
		e.refuse = make(map[string]bool)
	}
	for _, tok := range toks {
		e.refuse[tok] = true
	}
}

func (e *iamEvents) events() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// start starts the fake IAM and CBR and returns a client using IAMPassword.
func (e *iamEvents) start(t *testing.T, opts ...cbr.Option) *cbr.Client {
	t.Helper()
	iam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Auth struct {
				Identity struct {
					Password struct {
						User struct{ Name, Password string }
					}
				}
				Scope struct{ Project map[string]string }
			}
		}
		data, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(data, &body); err != nil || r.URL.Path != "/v3/auth/tokens" || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		e.mu.Lock()
		e.tokens++
		n := e.tokens
		e.mu.Unlock()
		if e.iamStatus != nil {
			if status := e.iamStatus(n); status != http.StatusCreated {
				e.add(fmt.Sprintf("iam %d", status))
				w.WriteHeader(status)
				fmt.Fprintf(w, `{"error":{"code":%d,"message":"IAM is down","title":"%s"}}`, status, http.StatusText(status))
				return
			}
		}
		tok := fmt.Sprintf("T%d", n)
		e.add("iam " + tok)
		lifetime := e.lifetime
		if lifetime == 0 {
			lifetime = 24 * time.Hour
		}
		issued := time.Now().UTC()
		w.Header().Set("X-Subject-Token", tok)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"token":{"issued_at":%q,"expires_at":%q,"project":{"id":"p1","name":"ap-southeast-1"}}}`,
			issued.Format(time.RFC3339Nano), issued.Add(lifetime).Format(time.RFC3339Nano))
	}))
	t.Cleanup(iam.Close)
	cbrSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("X-Auth-Token")
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		refused := e.refuse[tok]
		e.mu.Unlock()
		if refused {
			e.add("cbr " + tok + " 401")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error_code":"APIGW.0307","error_msg":"The token must be updated"}`)
			return
		}
		e.add("cbr " + tok + " 200 " + string(body))
		io.WriteString(w, `{"agent":{"agent_id":"a1"}}`)
	}))
	t.Cleanup(cbrSrv.Close)
	c, err := cbr.NewClient(append([]cbr.Option{
		cbr.WithEndpoint(cbrSrv.URL), cbr.WithProjectID("p1"), cbr.WithIAMEndpoint(iam.URL),
		cbr.WithCredentials(cbr.IAMPassword{Domain: "acme", User: "installer", Password: secretPassword}),
		cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}),
	}, opts...)...)
	require.NoError(t, err)
	return c
}

func TestIAMPassword401RenewsOnceAndRetriesOnce(t *testing.T) {
	t.Parallel()
	e := &iamEvents{}
	clock := newAuthClock()
	c := e.start(t, cbr.WithClock(clock.Now))
	ctx := context.Background()
	_, err := c.ShowAgent(ctx, "a1")
	require.NoError(t, err)
	clock.Advance(2 * time.Minute) // old enough to be renewed when refused
	e.revoke("T1")

	_, err = c.UpdateAgent(ctx, "a1", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)
	assert.Equal(t, []string{
		"iam T1",
		"cbr T1 200 ",
		"cbr T1 401",
		"iam T2",
		`cbr T2 200 {"agent":{"status":"uninstall"}}`,
	}, e.events(), "the retried attempt carries the same body and the new token")
}

func TestIAMPassword401TwiceIsReturned(t *testing.T) {
	t.Parallel()
	e := &iamEvents{}
	clock := newAuthClock()
	c := e.start(t, cbr.WithClock(clock.Now))
	ctx := context.Background()
	_, err := c.ShowAgent(ctx, "a1")
	require.NoError(t, err)
	clock.Advance(2 * time.Minute)
	e.revoke("T1", "T2", "T3")

	_, err = c.ShowAgent(ctx, "a1")
	apiErr, ok := errorsAsAPI(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	assert.Equal(t, "APIGW.0307", apiErr.Code)
	assert.Equal(t, 2, apiErr.Attempts)
	assert.Equal(t, []string{"iam T1", "cbr T1 200 ", "cbr T1 401", "iam T2", "cbr T2 401"}, e.events(),
		"renew once, retry once, then give up")
}

func TestIAMPasswordFreshTokenRefusedIsReturned(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	c := authClient(t, srv, cbr.WithCredentials(srv.IAMPassword()))
	refused := make([]cbrtest.Fault, 10)
	for i := range refused {
		refused[i] = cbrtest.Fault{Status: http.StatusUnauthorized, Code: "APIGW.0301", Message: "Incorrect IAM authentication information"}
	}
	srv.InjectFaults(refused...)

	for i := range 5 {
		_, err := c.ShowAgent(context.Background(), "a1")
		apiErr, ok := errorsAsAPI(err)
		require.True(t, ok, "%v", err)
		assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode, "call %d", i)
		assert.Equal(t, 1, apiErr.Attempts, "call %d", i)
	}
	assert.Equal(t, 1, srv.TokenRequests(), "a token fetched a moment ago is not renewed when refused")
	assert.Equal(t, 5, srv.Requests(), "nor sent again")
}

func TestIAMPasswordManyGoroutinesShareOneToken(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	clock := newAuthClock()
	c := authClient(t, srv, cbr.WithCredentials(srv.IAMPassword()), cbr.WithClock(clock.Now))
	ctx := context.Background()

	run50 := func() {
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for i := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := c.RegisterAgent(ctx, authAgent(fmt.Sprintf("a%d", i)))
				errs <- err
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			assert.NoError(t, err)
		}
	}

	run50()
	assert.Equal(t, 1, srv.TokenRequests(), "50 goroutines without a token: one token request")

	clock.Advance(25 * time.Hour) // the token has expired
	run50()
	assert.Equal(t, 2, srv.TokenRequests(), "50 goroutines with an expired token: one token request")
	assert.Equal(t, 100, srv.Requests())
}

func TestIAMPasswordRenewsBeforeExpiry(t *testing.T) {
	t.Parallel()
	e := &iamEvents{}
	clock := newAuthClock()
	c := e.start(t, cbr.WithClock(clock.Now))
	ctx := context.Background()
	show := func() {
		t.Helper()
		_, err := c.ShowAgent(ctx, "a1")
		require.NoError(t, err)
	}

	show()
	clock.Advance(23*time.Hour + 49*time.Minute)
	show() // 11 minutes left: not yet
	clock.Advance(2 * time.Minute)
	show() // 9 minutes left: renewed
	show()
	assert.Equal(t, []string{"iam T1", "cbr T1 200 ", "cbr T1 200 ", "iam T2", "cbr T2 200 ", "cbr T2 200 "}, e.events())
}

func TestIAMPasswordOutageDuringRenewalKeepsTheValidToken(t *testing.T) {
	t.Parallel()
	e := &iamEvents{iamStatus: func(n int) int {
		if n == 1 {
			return http.StatusCreated
		}
		return http.StatusServiceUnavailable
	}}
	clock := newAuthClock()
	c := e.start(t, cbr.WithClock(clock.Now), cbr.WithRetry(noRetry))
	ctx := context.Background()

	_, err := c.ShowAgent(ctx, "a1")
	require.NoError(t, err)
	clock.Advance(23*time.Hour + 55*time.Minute) // in the renewal window, still valid
	_, err = c.ShowAgent(ctx, "a1")
	require.NoError(t, err, "IAM is down, but the token still works")
	_, err = c.ShowAgent(ctx, "a1")
	require.NoError(t, err)
	assert.Equal(t, []string{"iam T1", "cbr T1 200 ", "iam 503", "cbr T1 200 ", "cbr T1 200 "}, e.events(),
		"after a failed renewal the next attempt waits a little")

	clock.Advance(10 * time.Minute) // expired
	_, err = c.ShowAgent(ctx, "a1")
	apiErr, ok := errorsAsAPI(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
	assert.Equal(t, "get IAM token", apiErr.Op)
}

func TestIAMPasswordTransientIAMFailureIsRetried(t *testing.T) {
	t.Parallel()
	e := &iamEvents{iamStatus: func(n int) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusCreated
	}}
	c := e.start(t)
	_, err := c.ShowAgent(context.Background(), "a1")
	require.NoError(t, err)
	assert.Equal(t, []string{"iam 503", "iam T2", "cbr T2 200 "}, e.events())
}

func TestIAMPasswordWrongPassword(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	var logs bytes.Buffer
	pw := srv.IAMPassword()
	pw.Password = secretPassword
	c := authClient(t, srv, cbr.WithCredentials(pw),
		cbr.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))

	_, err := c.RegisterAgent(context.Background(), authAgent("a1"))
	apiErr, ok := errorsAsAPI(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, "get IAM token", apiErr.Op)
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	assert.Equal(t, "401", apiErr.Code)
	assert.Equal(t, "The username or password is wrong.", apiErr.Message)
	assert.ErrorIs(t, err, cbr.ErrUnauthorized)
	assert.Equal(t, 1, srv.TokenRequests(), "a refused password is not retried")
	assert.Equal(t, 0, srv.Requests())
	for _, out := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", apiErr), logs.String(), string(apiErr.Body)} {
		assert.NotContains(t, out, secretPassword)
	}
}

func TestIAMPasswordRefusedPasswordIsNotSentAgainForAMinute(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	pw := srv.IAMPassword()
	pw.Password = secretPassword
	clock := newAuthClock()
	c := authClient(t, srv, cbr.WithCredentials(pw), cbr.WithClock(clock.Now))
	show := func() {
		_, err := c.ShowAgent(context.Background(), "a1")
		assert.ErrorIs(t, err, cbr.ErrUnauthorized)
		assert.ErrorContains(t, err, "The username or password is wrong.")
	}

	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			show()
		}()
	}
	wg.Wait()
	for range 10 {
		show()
	}
	assert.Equal(t, 1, srv.TokenRequests(), "20 calls: one token request")

	clock.Advance(59 * time.Second)
	show()
	assert.Equal(t, 1, srv.TokenRequests())
	clock.Advance(time.Second)
	show()
	show()
	assert.Equal(t, 2, srv.TokenRequests(), "a minute later the password is sent once more")
	assert.Zero(t, srv.Requests())
}

func TestIAMPasswordTokenRequestAtTheWire(t *testing.T) {
	t.Parallel()
	var got *http.Request
	var body []byte
	iam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":401,"message":"The username or password is wrong.","title":"Unauthorized"}}`)
	}))
	t.Cleanup(iam.Close)
	for name, tc := range map[string]struct {
		opts  []cbr.Option
		pw    cbr.IAMPassword
		scope string
	}{
		"scoped by region name":  {opts: []cbr.Option{cbr.WithRegion("ap-southeast-1"), cbr.WithIAMEndpoint(iam.URL)}, scope: `{"name":"ap-southeast-1"}`},
		"scoped by project ID":   {opts: []cbr.Option{cbr.WithEndpoint("https://cbr.example.com"), cbr.WithIAMEndpoint(iam.URL), cbr.WithProjectID("p42")}, scope: `{"id":"p42"}`},
		"scoped by project name": {opts: []cbr.Option{cbr.WithRegion("ap-southeast-1"), cbr.WithIAMEndpoint(iam.URL), cbr.WithProjectID("p42")}, pw: cbr.IAMPassword{Project: "ap-southeast-1_sub"}, scope: `{"name":"ap-southeast-1_sub"}`},
	} {
		pw := tc.pw
		pw.Domain, pw.User, pw.Password = "acme", "installer", `pa"ss`
		c, err := cbr.NewClient(append(tc.opts, cbr.WithCredentials(pw), cbr.WithRetry(noRetry))...)
		require.NoError(t, err, name)
		_, err = c.ShowAgent(context.Background(), "a1")
		require.Error(t, err, name)
		require.NotNil(t, got, name)
		assert.Equal(t, http.MethodPost, got.Method, name)
		assert.Equal(t, "/v3/auth/tokens", got.URL.Path, name)
		assert.Equal(t, "nocatalog=true", got.URL.RawQuery, name)
		assert.Equal(t, "application/json;charset=utf8", got.Header.Get("Content-Type"), name)
		assert.Empty(t, got.Header.Get("Authorization"), name)
		assert.JSONEq(t, `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"installer","password":"pa\"ss","domain":{"name":"acme"}}}},"scope":{"project":`+tc.scope+`}}}`,
			string(body), name)
	}
}

func TestIAMPasswordNeedsAnIAMEndpointAndAProject(t *testing.T) {
	t.Parallel()
	pw := cbr.IAMPassword{Domain: "d", User: "u", Password: "p"}
	_, err := cbr.NewClient(cbr.WithEndpoint("https://cbr.example.com"), cbr.WithProjectID("p1"), cbr.WithCredentials(pw))
	assert.EqualError(t, err, "cbr: IAMPassword: missing IAM endpoint: use WithRegion or WithIAMEndpoint")
	_, err = cbr.NewClient(cbr.WithEndpoint("https://cbr.example.com"), cbr.WithIAMEndpoint("https://iam.example.com"), cbr.WithCredentials(pw))
	assert.EqualError(t, err, "cbr: IAMPassword: missing project: set Project, or use WithProjectID or WithRegion")
	_, err = cbr.NewClient(cbr.WithRegion("ap-southeast-1"), cbr.WithIAMEndpoint("http://iam.example.com"), cbr.WithCredentials(pw))
	assert.ErrorContains(t, err, "cbr: IAM endpoint \"iam.example.com\" is plain http")
}

func TestProjectIDIsLookedUpOnceOnFirstUse(t *testing.T) {
	t.Parallel()
	for name, creds := range map[string]func(*cbrtest.Server) cbr.Credentials{
		"AKSK":        func(s *cbrtest.Server) cbr.Credentials { return s.AKSK() },
		"IAMPassword": func(s *cbrtest.Server) cbr.Credentials { return s.IAMPassword() },
		"ECSMetadata": func(s *cbrtest.Server) cbr.Credentials { return s.ECSMetadata() },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := authServer(t)
			c, err := cbr.NewClient(cbr.WithEndpoint(srv.URL), cbr.WithRegion(srv.Region), cbr.WithIAMEndpoint(srv.IAMURL),
				cbr.WithCredentials(creds(srv)))
			require.NoError(t, err)
			assert.Equal(t, 0, srv.ProjectRequests()+srv.TokenRequests()+srv.MetadataRequests(), "NewClient does no I/O")

			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := c.RegisterAgent(context.Background(), authAgent(fmt.Sprintf("a%d", i)))
					assert.NoError(t, err)
				}()
			}
			close(start)
			wg.Wait()
			assert.Equal(t, 1, srv.ProjectRequests(), "one lookup for 50 goroutines")
			assert.Len(t, srv.Agents(), 50, "registered in the project found")
		})
	}
}

func TestProjectLookupAtTheWire(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	answers := []string{
		`{"projects":[]}`,
		`{"projects":[{"id":"p1","name":"ap-southeast-1"},{"id":"p2","name":"ap-southeast-1"}]}`,
		`{"projects":[{"id":"p9","name":"ap-southeast-1_sub"},{"id":"p1","name":"ap-southeast-1"}]}`,
	}
	var lookups []*http.Request
	var mu sync.Mutex
	iam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := cbrtest.VerifySignature(r, "AK", "SK", time.Now())
		mu.Lock()
		lookups = append(lookups, r)
		mu.Unlock()
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, answers[min(int(calls.Add(1))-1, len(answers)-1)])
	}))
	t.Cleanup(iam.Close)
	var paths []string
	cbrSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path+" "+r.Header.Get("X-Project-Id"))
		mu.Unlock()
		io.WriteString(w, `{"agent":{"agent_id":"a1"}}`)
	}))
	t.Cleanup(cbrSrv.Close)
	c, err := cbr.NewClient(cbr.WithEndpoint(cbrSrv.URL), cbr.WithRegion("ap-southeast-1"), cbr.WithIAMEndpoint(iam.URL),
		cbr.WithCredentials(cbr.AKSK{AccessKey: "AK", SecretKey: "SK"}))
	require.NoError(t, err)
	ctx := context.Background()

	_, err = c.ShowAgent(ctx, "a1")
	assert.EqualError(t, err, `cbr: show agent: find project ID: IAM has no project named "ap-southeast-1": use WithProjectID`)
	_, err = c.ShowAgent(ctx, "a1")
	assert.EqualError(t, err, `cbr: show agent: find project ID: IAM has 2 projects named "ap-southeast-1": use WithProjectID`)
	_, err = c.ShowAgent(ctx, "a1")
	require.NoError(t, err, "a failed lookup is not kept")
	_, err = c.ShowAgent(ctx, "a1")
	require.NoError(t, err)

	require.Len(t, lookups, 3)
	r := lookups[2]
	assert.Equal(t, "/v3/projects", r.URL.Path)
	assert.Equal(t, "name=ap-southeast-1", r.URL.RawQuery)
	assert.Equal(t, "host;x-sdk-date", signedHeadersOf(r.Header.Get("Authorization")))
	assert.Equal(t, []string{"/v3/p1/agents/a1 p1", "/v3/p1/agents/a1 p1"}, paths)
}

func TestProjectLookupIsRetriedAndHonoursTheContext(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	block, second := make(chan struct{}), make(chan struct{})
	iam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			close(second)
			select {
			case <-block:
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			io.WriteString(w, `{"projects":[{"id":"p1","name":"ap-southeast-1"}]}`)
		}
	}))
	t.Cleanup(iam.Close)
	t.Cleanup(func() { close(block) })
	cbrSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"agent":{"agent_id":"a1"}}`)
	}))
	t.Cleanup(cbrSrv.Close)
	c, err := cbr.NewClient(cbr.WithEndpoint(cbrSrv.URL), cbr.WithRegion("ap-southeast-1"), cbr.WithIAMEndpoint(iam.URL),
		cbr.WithCredentials(cbr.AKSK{AccessKey: "AK", SecretKey: "SK"}),
		cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 2, MinWait: time.Millisecond, MaxWait: time.Millisecond}))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-second
		cancel()
	}()
	_, err = c.ShowAgent(ctx, "a1")
	assert.ErrorIs(t, err, context.Canceled, "the second attempt hangs until the call is cancelled")
	assert.Equal(t, int32(2), calls.Load(), "the 503 was retried")

	_, err = c.ShowAgent(context.Background(), "a1")
	require.NoError(t, err, "the next call looks it up again")
	assert.Equal(t, int32(3), calls.Load())
}

func TestMissingProjectIDWithoutLookup(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string][]cbr.Option{
		"token":              {cbr.WithRegion("ap-southeast-1"), cbr.WithCredentials(cbr.Token("t"))},
		"custom credentials": {cbr.WithRegion("ap-southeast-1"), cbr.WithCredentials(customCreds{})},
	} {
		_, err := cbr.NewClient(opts...)
		assert.EqualError(t, err, "cbr: missing project ID: use WithProjectID, or WithRegion with AKSK, IAMPassword or ECSMetadata credentials", name)
	}
	_, err := cbr.NewClient(cbr.WithEndpoint("https://cbr.example.com"), cbr.WithCredentials(cbr.AKSK{AccessKey: "a", SecretKey: "s"}))
	assert.EqualError(t, err, "cbr: missing project ID: use WithProjectID or WithRegion")
	_, err = cbr.NewClient(cbr.WithEndpoint("https://cbr.example.com"), cbr.WithRegion("xx-unknown-9"), cbr.WithCredentials(cbr.AKSK{AccessKey: "a", SecretKey: "s"}))
	assert.NoError(t, err, "an unknown region with an endpoint: IAM defaults to iam.{region}")
}

type customCreds struct{}

func (customCreds) Authenticate(req *http.Request, _ []byte) error {
	req.Header.Set("X-Custom", "1")
	return nil
}

func TestRegions(t *testing.T) {
	t.Parallel()
	regions := cbr.Regions()
	require.Len(t, regions, 34)
	for _, r := range regions {
		_, err := cbr.NewClient(cbr.WithRegion(r), cbr.WithProjectID("p1"), cbr.WithCredentials(cbr.Token("t")))
		assert.NoError(t, err, r)
	}
	regions[0] = "changed"
	assert.Equal(t, "ap-southeast-1", cbr.Regions()[0], "Regions returns a copy")

	_, err := cbr.NewClient(cbr.WithRegion("xx-nowhere-1"), cbr.WithProjectID("p1"), cbr.WithCredentials(cbr.Token("t")))
	assert.EqualError(t, err, `cbr: unknown region "xx-nowhere-1": give its endpoint with WithEndpoint`)
	_, err = cbr.NewClient(cbr.WithRegion("xx-nowhere-1"), cbr.WithEndpoint("https://cbr.xx-nowhere-1.example.com"),
		cbr.WithProjectID("p1"), cbr.WithCredentials(cbr.Token("t")))
	assert.NoError(t, err)
	for _, bad := range []string{"", "AP-SOUTHEAST-1", "ap_southeast_1", "ap-southeast-1/", "ap southeast"} {
		_, err = cbr.NewClient(cbr.WithRegion(bad), cbr.WithEndpoint("https://cbr.example.com"), cbr.WithProjectID("p1"), cbr.WithCredentials(cbr.Token("t")))
		assert.ErrorContains(t, err, "cbr: invalid region", bad)
	}
}

func TestIAMPasswordRevokedTokenManyGoroutinesRenewOnce(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	clock := newAuthClock()
	c := authClient(t, srv, cbr.WithCredentials(srv.IAMPassword()), cbr.WithClock(clock.Now))
	ctx := context.Background()
	_, err := c.RegisterAgent(ctx, authAgent("a1"))
	require.NoError(t, err)
	clock.Advance(2 * time.Minute) // old enough to be renewed when refused
	srv.RevokeTokens()

	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := c.ShowAgent(ctx, "a1")
			assert.NoError(t, err)
		}()
	}
	close(start)
	wg.Wait()
	assert.Equal(t, 2, srv.TokenRequests(), "50 refusals of one token: one renewal")
	// Each call was sent once or, when refused with the old token, twice.
	assert.GreaterOrEqual(t, srv.Requests(), 1+50+1)
	assert.LessOrEqual(t, srv.Requests(), 1+50*2)
}

func TestGatewayRefusesExpiredTokens(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	srv.SetTokenLifetime(-time.Second) // every token the fake IAM issues has already expired
	c := authClient(t, srv, cbr.WithCredentials(srv.IAMPassword()))

	_, err := c.RegisterAgent(context.Background(), authAgent("a1"))
	apiErr, ok := errorsAsAPI(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, http.StatusUnauthorized, apiErr.StatusCode)
	assert.Equal(t, "APIGW.0307", apiErr.Code)
	assert.Equal(t, "The token must be updated", apiErr.Message)
	assert.Equal(t, 1, apiErr.Attempts, "a token just issued is not renewed when refused")
	assert.Equal(t, 1, srv.TokenRequests())
	assert.Empty(t, srv.Agents())
}

func TestEndpointErrorsNameTheEndpointAndKeepTheCause(t *testing.T) {
	t.Parallel()
	base := []cbr.Option{cbr.WithRegion("ap-southeast-1"), cbr.WithProjectID("p1")}
	for name, tc := range map[string]struct {
		opts []cbr.Option
		want string
	}{
		"endpoint": {[]cbr.Option{cbr.WithEndpoint("https://cbr.example.com/%zz"), cbr.WithCredentials(cbr.Token("t"))},
			`cbr: invalid endpoint: parse "https://cbr.example.com/%zz": invalid URL escape "%zz"`},
		"IAM endpoint": {[]cbr.Option{cbr.WithIAMEndpoint("https://iam.example.com/%zz"), cbr.WithCredentials(cbr.Token("t"))},
			`cbr: invalid IAM endpoint: parse "https://iam.example.com/%zz": invalid URL escape "%zz"`},
		"ECS metadata endpoint": {[]cbr.Option{cbr.WithCredentials(cbr.ECSMetadata{Endpoint: "http://169.254.169.254/%zz"})},
			`cbr: invalid ECS metadata endpoint: parse "http://169.254.169.254/%zz": invalid URL escape "%zz"`},
	} {
		_, err := cbr.NewClient(append(base, tc.opts...)...)
		assert.EqualError(t, err, tc.want, name)
		var urlErr *url.Error
		assert.ErrorAs(t, err, &urlErr, name)
	}
	_, err := cbr.NewClient(append(base, cbr.WithCredentials(cbr.ECSMetadata{Endpoint: "ftp://169.254.169.254"}))...)
	assert.EqualError(t, err, `cbr: invalid ECS metadata endpoint: scheme "ftp" is not http or https`)
}

func TestProjectLookupRefusalIsRememberedOnTheClientClock(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	clock := newAuthClock()
	c, err := cbr.NewClient(cbr.WithEndpoint(srv.URL), cbr.WithRegion(srv.Region), cbr.WithIAMEndpoint(srv.IAMURL),
		cbr.WithCredentials(cbr.AKSK{AccessKey: srv.AccessKey, SecretKey: "not-" + srv.SecretKey}), cbr.WithClock(clock.Now))
	require.NoError(t, err)
	show := func() {
		_, err := c.ShowAgent(context.Background(), "a1")
		assert.ErrorIs(t, err, cbr.ErrUnauthorized)
		assert.ErrorContains(t, err, "find project ID: 401 Unauthorized")
	}

	show()
	show()
	assert.Equal(t, 1, srv.ProjectRequests(), "IAM's refusal is remembered")
	clock.Advance(time.Minute)
	show()
	assert.Equal(t, 2, srv.ProjectRequests(), "for a minute of the client's clock")
	assert.Zero(t, srv.Requests())
}

func TestProjectLookupUsesTheRegionsIAM(t *testing.T) {
	t.Parallel()
	for region, iam := range map[string]string{
		"ap-southeast-1": "https://iam.ap-southeast-1.myhuaweicloud.com",
		"eu-west-101":    "https://iam.myhuaweicloud.com", // no IAM endpoint of its own: the global one
	} {
		mt := httpmock.NewMockTransport()
		mt.RegisterResponderWithQuery(http.MethodGet, iam+"/v3/projects", "name="+region,
			httpmock.NewStringResponder(http.StatusOK, `{"projects":[{"id":"p1","name":"`+region+`"}]}`))
		mt.RegisterResponder(http.MethodGet, "https://cbr."+region+".myhuaweicloud.com/v3/p1/agents/a1",
			httpmock.NewStringResponder(http.StatusOK, `{"agent":{"agent_id":"a1"}}`))
		c, err := cbr.NewClient(cbr.WithRegion(region), cbr.WithCredentials(cbr.AKSK{AccessKey: "AK", SecretKey: "SK"}),
			cbr.WithHTTPClient(&http.Client{Transport: mt}), cbr.WithRetry(noRetry))
		require.NoError(t, err)

		_, err = c.ShowAgent(context.Background(), "a1")
		require.NoError(t, err, region)
		assert.Equal(t, 2, mt.GetTotalCallCount(), region)
	}
}

func TestTruncatedJSONAnswersAreDecodeErrors(t *testing.T) {
	t.Parallel()
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusNotFound) // no session tokens
			return
		}
		io.WriteString(w, `{"credential":`)
	}))
	t.Cleanup(meta.Close)
	truncated := func(status int, body string) httpmock.Responder {
		return func(r *http.Request) (*http.Response, error) {
			resp := httpmock.NewStringResponse(status, body)
			resp.Header.Set("X-Request-Id", "rid-1")
			resp.Header.Set("X-Subject-Token", "MIItoken")
			return resp, nil
		}
	}
	mt := httpmock.NewMockTransport()
	mt.RegisterResponder(http.MethodGet, "https://cbr.example.com/v3/p1/agents/a1", truncated(http.StatusOK, `{"agent":`))
	mt.RegisterResponderWithQuery(http.MethodPost, "https://iam.example.com/v3/auth/tokens", "nocatalog=true", truncated(http.StatusCreated, `{"token":`))
	mt.RegisterResponderWithQuery(http.MethodGet, "https://iam.example.com/v3/projects", "name=ap-southeast-1", truncated(http.StatusOK, `{"projects":`))

	for name, tc := range map[string]struct {
		opts []cbr.Option
		want string
	}{
		"CBR": {[]cbr.Option{cbr.WithProjectID("p1"), cbr.WithCredentials(cbr.Token("t"))},
			"cbr: show agent: unexpected 200 response: decode body: unexpected end of JSON input (request id rid-1)"},
		"IAM token": {[]cbr.Option{cbr.WithProjectID("p1"), cbr.WithCredentials(cbr.IAMPassword{Domain: "d", User: "u", Password: "p"})},
			"cbr: show agent: authenticate: get IAM token: decode 201 response (request id rid-1): unexpected end of JSON input"},
		"project lookup": {[]cbr.Option{cbr.WithCredentials(cbr.AKSK{AccessKey: "AK", SecretKey: "SK"})},
			"cbr: show agent: find project ID: unexpected 200 response: decode body: unexpected end of JSON input (request id rid-1)"},
		"ECS metadata": {[]cbr.Option{cbr.WithProjectID("p1"), cbr.WithCredentials(cbr.ECSMetadata{Endpoint: meta.URL})},
			"cbr: show agent: authenticate: get ECS metadata credentials: decode 200 response: unexpected end of JSON input"},
	} {
		c, err := cbr.NewClient(append([]cbr.Option{cbr.WithRegion("ap-southeast-1"), cbr.WithEndpoint("https://cbr.example.com"),
			cbr.WithIAMEndpoint("https://iam.example.com"), cbr.WithHTTPClient(&http.Client{Transport: mt}),
			cbr.WithRetry(noRetry)}, tc.opts...)...)
		require.NoError(t, err, name)
		_, err = c.ShowAgent(context.Background(), "a1")
		assert.EqualError(t, err, tc.want, name)
		var syntaxErr *json.SyntaxError
		assert.ErrorAs(t, err, &syntaxErr, name)
	}
}

func TestIAMPasswordUsesTheTransportSetAfterNewClient(t *testing.T) {
	srv := cbrtest.NewServer()
	defer srv.Close()
	hc := &http.Client{}
	c, err := srv.Client(cbr.WithCredentials(srv.IAMPassword()), cbr.WithHTTPClient(hc))
	require.NoError(t, err)
	var seen []string
	var mu sync.Mutex
	hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})
	_, err = c.ListAgents(context.Background(), cbr.ListAgentsOptions{})
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"POST /v3/auth/tokens", "GET /v3/" + srv.ProjectID + "/agents"}, seen,
		"the token request too goes through the transport set after NewClient")
}

func TestCredentialFetchTimeoutIsAnAttemptTimeout(t *testing.T) {
	timeout := &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	rt := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, timeout })
	c, err := cbr.NewClient(cbr.WithEndpoint(testEndpoint), cbr.WithProjectID(testProject), cbr.WithRegion("ap-southeast-1"),
		cbr.WithCredentials(cbr.IAMPassword{Domain: "d", User: "u", Password: "p"}),
		cbr.WithHTTPClient(&http.Client{Transport: rt}), cbr.WithRetry(noRetry))
	require.NoError(t, err)
	_, err = c.ShowAgent(context.Background(), testAgentID)
	assert.ErrorIs(t, err, cbr.ErrAttemptTimeout)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
}

func TestProjectLookupLogsItsPathWithoutTheQuery(t *testing.T) {
	srv := cbrtest.NewServer()
	defer srv.Close()
	var buf syncBuffer
	c, err := cbr.NewClient(cbr.WithEndpoint(srv.URL), cbr.WithRegion(srv.Region), cbr.WithIAMEndpoint(srv.IAMURL),
		cbr.WithCredentials(srv.AKSK()), cbr.WithLogger(slogTo(&buf)))
	require.NoError(t, err)
	_, err = c.ListAgents(context.Background(), cbr.ListAgentsOptions{})
	require.NoError(t, err)
	out := buf.String()
	assert.Contains(t, out, `op="find project ID" method=GET path=/v3/projects status=200`)
	assert.NotContains(t, out, "name=", "the query stays out of the log")
}
