package main

// Tests of whole runs as main does them: flags, the environment (set with
// t.Setenv after isolateEnv), cbr.FromEnv and the exit codes. Where CBR, IAM
// or the metadata service would be reached, a fake that counts requests
// stands in, so that a test can assert that nothing was sent.

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
	"github.com/cbrsdk/cbr/internal/testenv"
)

// isolateEnv keeps the developer's environment and credentials file out of
// the test.
func isolateEnv(t *testing.T) {
	t.Helper()
	testenv.Isolate(t, "HUAWEICLOUD_SDK_REGION_CBR_XX_TEST_1")
}

// pointAt isolates the environment and sends whatever the installer would
// send to CBR or IAM in ap-southeast-1 to srv, with no credentials set.
func pointAt(t *testing.T, srv *cbrtest.Server) {
	t.Helper()
	isolateEnv(t)
	t.Setenv("HUAWEICLOUD_SDK_REGION", "ap-southeast-1")
	t.Setenv("HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1", srv.URL)
	t.Setenv("HUAWEICLOUD_SDK_IAM_ENDPOINT", srv.IAMURL)
}

// withKeys is pointAt with srv's key pair in the environment.
func withKeys(t *testing.T, srv *cbrtest.Server) {
	t.Helper()
	pointAt(t, srv)
	t.Setenv("HUAWEICLOUD_SDK_AK", srv.AccessKey)
	t.Setenv("HUAWEICLOUD_SDK_SK", srv.SecretKey)
}

// quick are the sources of a real run, with quick retries.
var quick = sources{options: []cbr.Option{
	cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 2, MinWait: time.Millisecond, MaxWait: time.Millisecond}),
}}

// runProcess runs the installer with args, the environment and src.
func runProcess(t *testing.T, src sources, args ...string) installerRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runWith(context.Background(), args, &stdout, &stderr, src.connect)
	return installerRun{code, stdout.String(), stderr.String()}
}

// assertNothingSent checks that srv got no request, its IAM no project
// lookup, and that no state file was written at state.
func assertNothingSent(t *testing.T, srv *cbrtest.Server, state string) {
	t.Helper()
	assert.Equal(t, 0, srv.Requests(), "requests to CBR")
	assert.Equal(t, 0, srv.ProjectRequests(), "project lookups in IAM")
	assert.NoFileExists(t, state)
}

var host = []string{"-hostname", "web-1", "-ip", "10.1.2.3", "-os", "linux"}

func TestRunWithEnvironmentKeys(t *testing.T) {
	srv := newFake(t)
	withKeys(t, srv)
	state := filepath.Join(t.TempDir(), "state.json")
	r := runProcess(t, quick, append([]string{"-state", state, "-path", "/opt/data"}, host...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.NotContains(t, r.stderr, "fake")
	a, ok := srv.Agent(readState(t, state))
	require.True(t, ok, "registered with the signed requests of the environment's keys")
	assert.Equal(t, "web-1", a.HostName)
	assert.Equal(t, []string{"/opt/data"}, srv.Paths(a.AgentID))
	assert.Equal(t, 1, srv.ProjectRequests(), "the project ID was looked up in IAM")
}

// TestRunWithCredentialsFile: keys only in the credentials file, named by
// HUAWEICLOUD_SDK_CREDENTIALS_FILE or at ~/.huaweicloud/credentials, reach
// CBR through FromEnv; the installer does not take them for "no credentials".
func TestRunWithCredentialsFile(t *testing.T) {
	for _, named := range []bool{true, false} {
		srv := newFake(t)
		pointAt(t, srv)
		file := filepath.Join(os.Getenv("HOME"), ".huaweicloud", "credentials")
		if named {
			file = filepath.Join(t.TempDir(), "creds.ini")
			t.Setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", file)
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o700))
		require.NoError(t, os.WriteFile(file, []byte("[basic]\nak = "+srv.AccessKey+"\nsk = "+srv.SecretKey+"\n"), 0o600))

		state := filepath.Join(t.TempDir(), "state.json")
		r := runProcess(t, quick, append([]string{"-state", state}, host...)...)
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.NotContains(t, r.stderr, "fake")
		_, ok := srv.Agent(readState(t, state))
		assert.True(t, ok, "registered in the account of the file's keys (named %v)", named)
	}
}

// TestNoCredentials: without credentials the installer stops with exit code
// 5 before sending anything or writing the state file; it never falls back to
// the fake.
func TestNoCredentials(t *testing.T) {
	srv := newFake(t)
	pointAt(t, srv)
	state := filepath.Join(t.TempDir(), "state.json")
	r := runProcess(t, quick, append([]string{"-state", state, "-path", "/opt/data"}, host...)...)
	assert.Equal(t, exitNoCreds, r.code)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "installer: cbr: FromEnv: no credentials: HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK are not set")
	assert.Contains(t, r.stderr, "no usable credentials, so nothing was sent: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK")
	assert.Contains(t, r.stderr, "to try the installer without CBR, use -fake")
	assert.NotContains(t, r.stderr, "using the in-process fake")
	assertNothingSent(t, srv, state)
}

// TestPartialCredentials: half a key pair, in the environment or in the
// credentials file, or a credentials file that is named but missing, is
// exit code 5 and names what is missing; the secret is never printed.
func TestPartialCredentials(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(t *testing.T, srv *cbrtest.Server)
		want string
	}{
		{"sk without ak", func(t *testing.T, srv *cbrtest.Server) {
			t.Setenv("HUAWEICLOUD_SDK_SK", srv.SecretKey)
		}, "cbr: FromEnv: HUAWEICLOUD_SDK_SK is set but not HUAWEICLOUD_SDK_AK"},
		{"ak without sk", func(t *testing.T, srv *cbrtest.Server) {
			t.Setenv("HUAWEICLOUD_SDK_AK", srv.AccessKey)
		}, "cbr: FromEnv: HUAWEICLOUD_SDK_AK is set but not HUAWEICLOUD_SDK_SK"},
		{"file with sk only", func(t *testing.T, srv *cbrtest.Server) {
			file := filepath.Join(t.TempDir(), "creds.ini")
			require.NoError(t, os.WriteFile(file, []byte("[basic]\nsk = "+srv.SecretKey+"\n"), 0o600))
			t.Setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", file)
		}, "is set but not ak in "},
		{"named file missing", func(t *testing.T, srv *cbrtest.Server) {
			t.Setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "missing.ini"))
		}, "cbr: FromEnv: credentials file: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t)
			pointAt(t, srv)
			tc.set(t, srv)
			state := filepath.Join(t.TempDir(), "state.json")
			r := runProcess(t, quick, append([]string{"-state", state}, host...)...)
			assert.Equal(t, exitNoCreds, r.code)
			assert.Contains(t, r.stderr, tc.want)
			assert.Contains(t, r.stderr, "nothing was sent")
			assert.NotContains(t, r.stderr, srv.SecretKey)
			assert.NotContains(t, r.stderr+r.stdout, "registered")
			assertNothingSent(t, srv, state)
		})
	}
}

func TestUninstallWithoutCredentials(t *testing.T) {
	srv := newFake(t)
	pointAt(t, srv)
	state := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(state, []byte(`{"agent_id":"kept-id"}`), 0o600))
	r := runProcess(t, quick, "-state", state, "-uninstall")
	assert.Equal(t, exitNoCreds, r.code)
	assert.Contains(t, r.stderr, "cbr: FromEnv: no credentials")
	assert.Empty(t, r.stdout)
	assert.Equal(t, 0, srv.Requests())
	assert.Equal(t, "kept-id", readState(t, state), "the state file is kept")
}

// TestFakeOnlyWhenAsked: -fake runs against a new in-process fake and says
// so, even with credentials in the environment, which it does not use.
func TestFakeOnlyWhenAsked(t *testing.T) {
	srv := newFake(t)
	withKeys(t, srv)
	state := filepath.Join(t.TempDir(), "state.json")
	r := runProcess(t, sources{}, append([]string{"-fake", "-state", state, "-path", "/opt/data"}, host...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stderr, "installer: -fake: using the in-process fake CBR server at http://127.0.0.1:")
	assert.Contains(t, r.stderr, "nothing is sent to Huawei Cloud")
	assert.Contains(t, r.stdout, "registered agent "+readState(t, state))
	assert.Contains(t, r.stdout, "backup paths added: /opt/data")
	assert.Equal(t, 0, srv.Requests(), "the environment's CBR was not used")
	assert.Equal(t, 0, srv.ProjectRequests())

	r = runProcess(t, sources{}, "-fake", "-ecs-metadata", "-state", state)
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "-fake and -ecs-metadata do not go together")
}

// TestChecksBeforeAnythingIsSent: every value the installer can check is
// checked before it sends anything or writes the state file, with valid
// credentials in the environment.
func TestChecksBeforeAnythingIsSent(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-path", "relative/dir"}, []string{`cbr: add agent paths: invalid add_path: "relative/dir" is not an absolute POSIX path or a Windows drive path`, "fix -path"}},
		{[]string{"-path", "/opt/data", "-path", "/"}, []string{`-path "/": the whole file system cannot be a backup path`}},
		{[]string{"-path", "/opt/data\n"}, []string{"invalid add_path", "fix -path"}},
		{[]string{"-type", "weird"}, []string{`-type must be native or cloud, not "weird"`}},
		{[]string{"-region", "ap-southeast1"}, []string{`unknown region "ap-southeast1" (from -region); did you mean ap-southeast-1?`}},
		{[]string{"-region", ""}, []string{"a region is required: give -region or set HUAWEICLOUD_SDK_REGION"}},
		{[]string{"-ip", "not-an-ip"}, []string{"cbr: register agent: invalid host_ip: is not an IPv4 or IPv6 address", "fix -ip"}},
		{[]string{"-agent-version", "1.0"}, []string{"invalid agent_version", "fix -agent-version"}},
		{[]string{"-hostname", " "}, []string{"invalid host_name: is required", "fix -hostname"}},
		{[]string{"-nickname", "a\tb"}, []string{"invalid host_nickname: contains a control character", "fix -nickname"}},
		{[]string{"-os", ""}, []string{"invalid host_os: is required", "fix -os"}},
	} {
		srv := newFake(t)
		withKeys(t, srv)
		state := filepath.Join(t.TempDir(), "state.json")
		args := append(append([]string{"-state", state}, host...), tc.args...)
		r := runProcess(t, quick, args...)
		assert.Equal(t, exitUsage, r.code, tc.args)
		for _, want := range tc.want {
			assert.Contains(t, r.stderr, want, tc.args)
		}
		assert.Empty(t, r.stdout, tc.args)
		assertNothingSent(t, srv, state)
	}
}

// TestInvalidAgentIDInStateFile: a state file whose agent ID the API would
// refuse is a problem on this host, found before anything is sent.
func TestInvalidAgentIDInStateFile(t *testing.T) {
	srv := newFake(t)
	withKeys(t, srv)
	state := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(state, []byte(`{"agent_id":"a/b"}`), 0o600))
	r := runProcess(t, quick, append([]string{"-state", state}, host...)...)
	assert.Equal(t, exitLocal, r.code)
	assert.Contains(t, r.stderr, `invalid agent_id: must not contain "/"`)
	assert.Contains(t, r.stderr, "the agent ID in the state file "+state+" is not valid")
	assert.Equal(t, 0, srv.Requests())
}

func TestRegionCloseMatches(t *testing.T) {
	srv := newFake(t)
	withKeys(t, srv)
	state := filepath.Join(t.TempDir(), "state.json")
	for _, tc := range []struct{ region, want string }{
		{"ap-southeast1", "did you mean ap-southeast-1?"},
		{"AP-SOUTHEAST-1", "did you mean ap-southeast-1?"},
		{"ap-southeast-9", "did you mean ap-southeast-1 or ap-southeast-2 or ap-southeast-3 or ap-southeast-4 or ap-southeast-5?"},
		{"cn-nrth-4", "did you mean cn-north-4?"},
		{"la-", "did you mean la-north-2 or la-south-2?"},
		{"mars-1", "the known regions are ap-southeast-1, ap-southeast-2, "},
	} {
		r := runProcess(t, quick, append([]string{"-state", state, "-region", tc.region}, host...)...)
		assert.Equal(t, exitUsage, r.code, tc.region)
		assert.Contains(t, r.stderr, `installer: unknown region "`+tc.region+`" (from -region); `+tc.want, tc.region)
	}

	t.Setenv("HUAWEICLOUD_SDK_REGION", "eu-west-1")
	r := runProcess(t, quick, append([]string{"-state", state}, host...)...)
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, `unknown region "eu-west-1" (from HUAWEICLOUD_SDK_REGION); did you mean eu-west-0?`)
	assertNothingSent(t, srv, state)
}

// TestRegionWithItsOwnEndpoint: a region cbr.Regions does not list is
// accepted when HUAWEICLOUD_SDK_REGION_CBR_{REGION} gives its endpoint, as
// FromEnv does.
func TestRegionWithItsOwnEndpoint(t *testing.T) {
	srv := newFake(t)
	withKeys(t, srv)
	t.Setenv("HUAWEICLOUD_SDK_REGION_CBR_XX_TEST_1", srv.URL)
	t.Setenv("HUAWEICLOUD_SDK_PROJECT_ID", srv.ProjectID)
	state := filepath.Join(t.TempDir(), "state.json")
	r := runProcess(t, quick, append([]string{"-state", state, "-region", "xx-test-1"}, host...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	_, ok := srv.Agent(readState(t, state))
	assert.True(t, ok)
}

func TestECSMetadataInstalls(t *testing.T) {
	srv := newFake(t)
	pointAt(t, srv)
	src := quick
	src.metadataEndpoint = srv.MetadataURL
	state := filepath.Join(t.TempDir(), "state.json")
	r := runProcess(t, src, append([]string{"-ecs-metadata", "-state", state}, host...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	a, ok := srv.Agent(readState(t, state))
	require.True(t, ok)
	assert.Equal(t, cbr.AgentTypeCloud, a.AgentType)
	assert.Equal(t, 1, srv.MetadataRequests(), "the agency's keys came from the metadata service")
}

// TestECSMetadataNoService: with -ecs-metadata on a host where no metadata
// service answers (refused, dropped, or silent), the installer says so with
// its own exit code, and sends nothing to IAM or CBR.
func TestECSMetadataNoService(t *testing.T) {
	for _, tc := range []struct {
		name     string
		endpoint func(t *testing.T) string
	}{
		{"refused", refusingEndpoint},
		{"dropped", droppingEndpoint},
		{"silent", silentEndpoint}, // waits out the SDK's 3 s bound of a metadata request
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t)
			pointAt(t, srv)
			src := sources{metadataEndpoint: tc.endpoint(t), options: []cbr.Option{cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 1})}}
			state := filepath.Join(t.TempDir(), "state.json")
			r := runProcess(t, src, append([]string{"-ecs-metadata", "-state", state}, host...)...)
			assert.Equal(t, exitNoMetadata, r.code, r.stderr)
			assert.Contains(t, r.stderr, "get ECS metadata")
			assert.Contains(t, r.stderr, "installer: no ECS metadata service answered (169.254.169.254): this host is not a Huawei Cloud server")
			assert.Contains(t, r.stderr, "On premises, drop -ecs-metadata")
			assert.NotContains(t, r.stderr, "run again later")
			assert.NotContains(t, r.stderr, "gave up after")
			assert.Empty(t, r.stdout)
			assert.Equal(t, 0, srv.Requests())
			assert.Equal(t, 0, srv.ProjectRequests())
		})
	}
}

// TestECSMetadataNoAgency: the metadata service answers the request for keys
// with 401 when the server has no agency.
func TestECSMetadataNoAgency(t *testing.T) {
	var keyRequests atomic.Int32
	meta := fakeMetadata(t, func(w http.ResponseWriter, r *http.Request) {
		keyRequests.Add(1)
		http.Error(w, "Please configure Cloud Service Agency first", http.StatusUnauthorized)
	})
	srv := newFake(t)
	pointAt(t, srv)
	src := quick
	src.metadataEndpoint = meta
	state := filepath.Join(t.TempDir(), "state.json")
	r := runProcess(t, src, append([]string{"-ecs-metadata", "-state", state}, host...)...)
	assert.Equal(t, exitNoAgency, r.code, r.stderr)
	assert.Contains(t, r.stderr, "get ECS metadata credentials: 401 Unauthorized: Please configure Cloud Service Agency first")
	assert.Contains(t, r.stderr, "installer: the ECS metadata service has no keys for this server: it has no agency. Attach an agency")
	assert.NotContains(t, r.stderr, "HUAWEICLOUD_SDK_AK")
	assert.NotContains(t, r.stderr, "run again later")
	assert.Equal(t, int32(1), keyRequests.Load())
	assert.Equal(t, 0, srv.Requests())
	assert.Equal(t, 0, srv.ProjectRequests())
}

// TestECSMetadataAddressAnsweredByAnother: another status than 401 at the
// metadata service's address, such as a proxy's 403, is not "no agency".
func TestECSMetadataAddressAnsweredByAnother(t *testing.T) {
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "resolve_deny: denied destination", http.StatusForbidden)
	}))
	t.Cleanup(meta.Close)
	srv := newFake(t)
	pointAt(t, srv)
	src := quick
	src.metadataEndpoint = meta.URL
	r := runProcess(t, src, append([]string{"-ecs-metadata", "-state", filepath.Join(t.TempDir(), "s.json")}, host...)...)
	assert.Equal(t, exitNoMetadata, r.code, r.stderr)
	assert.Contains(t, r.stderr, "get ECS metadata token: 403 Forbidden: resolve_deny: denied destination")
	assert.Contains(t, r.stderr, "did not answer as the service does: a proxy or firewall may stand in the way")
	assert.NotContains(t, r.stderr, "no agency")
	assert.Equal(t, 0, srv.Requests())
}

// fakeMetadata is a metadata service that gives session tokens and answers
// the request for keys with keys.
func fakeMetadata(t *testing.T, keys http.HandlerFunc) string {
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "PUT /meta-data/latest/api/token":
			_, _ = w.Write([]byte("session-token"))
		case "GET /openstack/latest/securitykey":
			keys(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(meta.Close)
	return meta.URL
}

// TestECSMetadataKeysRefusedByCBR: keys the agency gives but CBR refuses are
// about the agency's permissions, not about HUAWEICLOUD_SDK_AK.
func TestECSMetadataKeysRefusedByCBR(t *testing.T) {
	srv := newFake(t)
	pointAt(t, srv)
	t.Setenv("HUAWEICLOUD_SDK_PROJECT_ID", srv.ProjectID)
	srv.InjectFaults(cbrtest.Fault{Status: 403, Code: "APIGW.0302", Message: "The IAM user is forbidden in the currently selected region"})
	src := quick
	src.metadataEndpoint = srv.MetadataURL
	r := runProcess(t, src, append([]string{"-ecs-metadata", "-state", filepath.Join(t.TempDir(), "s.json")}, host...)...)
	assert.Equal(t, exitDenied, r.code, r.stderr)
	assert.Contains(t, r.stderr, "APIGW.0302")
	assert.Contains(t, r.stderr, "check that the server's agency grants CBR permissions")
	assert.NotContains(t, r.stderr, "HUAWEICLOUD_SDK_AK")
}

// refusingEndpoint is the address of a port that was just closed: connecting
// to it is refused.
func refusingEndpoint(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

// droppingEndpoint accepts connections and closes them without an answer.
func droppingEndpoint(t *testing.T) string {
	return listen(t, func(c net.Conn) { c.Close() })
}

// silentEndpoint accepts connections and never answers.
func silentEndpoint(t *testing.T) string {
	return listen(t, func(net.Conn) {})
}

// listen serves each connection with handle until the test ends, then closes
// the listener and every connection.
func listen(t *testing.T, handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			handle(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

func TestExitCodesDocumented(t *testing.T) {
	src, err := os.ReadFile("main.go")
	require.NoError(t, err)
	for code, what := range map[int]string{
		exitOK: "done", exitFailed: "CBR failed", exitUsage: "invalid flags", exitLocal: "a problem on this host",
		exitDenied: "refused the credentials", exitNoCreds: "no credentials", exitNoMetadata: "no ECS metadata service",
		exitNoAgency: "has no agency",
	} {
		line := "//\t" + string(rune('0'+code)) + "  "
		i := strings.Index(string(src), line)
		require.GreaterOrEqual(t, i, 0, "exit code %d is in the package documentation", code)
		end := strings.IndexByte(string(src[i:]), '\n')
		assert.Contains(t, string(src[i:i+end]), what, "exit code %d", code)
		assert.Contains(t, exitCodesHelp, "  "+string(rune('0'+code))+"  ", "exit code %d is in -h", code)
	}
}
