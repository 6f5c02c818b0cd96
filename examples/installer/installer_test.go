package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

// installerRun is one run of the installer against a shared fake server.
type installerRun struct {
	code           int
	stdout, stderr string
}

// runAgainst runs the installer with args against srv, in region
// ap-southeast-1 unless args give another.
func runAgainst(t *testing.T, srv *cbrtest.Server, args ...string) installerRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"-region", "ap-southeast-1"}, args...)
	code := runWith(context.Background(), args, &stdout, &stderr, func(config, io.Writer) (*cbr.Client, func(), error) {
		c, err := srv.Client()
		return c, func() {}, err
	})
	return installerRun{code, stdout.String(), stderr.String()}
}

func newFake(t *testing.T) *cbrtest.Server {
	srv := cbrtest.NewServer()
	t.Cleanup(srv.Close)
	return srv
}

func readState(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var st struct {
		AgentID string `json:"agent_id"`
	}
	require.NoError(t, json.Unmarshal(data, &st))
	return st.AgentID
}

func TestInstallTwiceKeepsOneAgent(t *testing.T) {
	srv := newFake(t)
	state := filepath.Join(t.TempDir(), "etc", "cbr-agent", "state.json")
	host := []string{"-state", state, "-hostname", "web-1", "-ip", "10.1.2.3", "-os", "linux"}

	first := runAgainst(t, srv, append(host, "-path", "/opt/data", "-path", "/var/log")...)
	require.Equal(t, exitOK, first.code, first.stderr)
	id := readState(t, state)
	assert.Contains(t, first.stderr, "new agent ID "+id+" saved in "+state)
	assert.Contains(t, first.stdout, "registered agent "+id+" (host web-1, 10.1.2.3, linux), status normal\n")
	assert.Contains(t, first.stdout, "backup paths added: /opt/data, /var/log\n")

	info, err := os.Stat(state)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the state file is private")
	dirInfo, err := os.Stat(filepath.Dir(state))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), dirInfo.Mode().Perm())

	second := runAgainst(t, srv, append(host, "-path", "/opt/data", "-path", "/srv")...)
	require.Equal(t, exitOK, second.code, second.stderr)
	assert.Equal(t, id, readState(t, state), "a re-run keeps the agent ID")
	assert.NotContains(t, second.stderr, "new agent ID")
	assert.Contains(t, second.stdout, "registered agent "+id)
	assert.Contains(t, second.stdout, "backup paths added: /srv\n")
	assert.Contains(t, second.stdout, "backup paths already present: /opt/data\n")

	agents := srv.Agents()
	require.Len(t, agents, 1, "one agent, registered twice")
	assert.Equal(t, id, agents[0].AgentID)
	assert.Equal(t, "web-1", agents[0].HostName)
	assert.Equal(t, "10.1.2.3", agents[0].HostIP)
	assert.Equal(t, cbr.AgentTypeNative, agents[0].AgentType)
	assert.Equal(t, "1.0.0", agents[0].AgentVersion)
	assert.Equal(t, []string{"/opt/data", "/var/log", "/srv"}, srv.Paths(id))
}

func TestInstallTightensStateFileMode(t *testing.T) {
	srv := newFake(t)
	state := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(state, []byte(`{"agent_id":"kept-id"}`), 0o644))
	require.NoError(t, os.Chmod(state, 0o644))

	r := runAgainst(t, srv, "-state", state, "-hostname", "web-1", "-ip", "10.1.2.3")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "registered agent kept-id ")
	info, err := os.Stat(state)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestUninstall(t *testing.T) {
	srv := newFake(t)
	state := filepath.Join(t.TempDir(), "state.json")
	r := runAgainst(t, srv, "-state", state, "-hostname", "web-1", "-ip", "10.1.2.3")
	require.Equal(t, exitOK, r.code, r.stderr)
	id := readState(t, state)

	r = runAgainst(t, srv, "-state", state, "-uninstall")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "agent "+id+" marked uninstall; its backups are kept, and its ID stays in "+state+
		" so that a reinstall registers the same agent\n", r.stdout)
	a, ok := srv.Agent(id)
	require.True(t, ok, "uninstall keeps the agent (and its backups)")
	assert.Equal(t, cbr.AgentStatusUninstall, a.Status)

	// Uninstalling again (a removal script run twice) is not an error.
	before := srv.Requests()
	r = runAgainst(t, srv, "-state", state, "-uninstall")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "agent "+id+" marked uninstall")
	assert.Equal(t, 2, srv.Requests()-before, "the refused update and the show that settles it")

	// A reinstall registers the same agent, normal again.
	r = runAgainst(t, srv, "-state", state, "-hostname", "web-1", "-ip", "10.1.2.3")
	require.Equal(t, exitOK, r.code, r.stderr)
	a, _ = srv.Agent(id)
	assert.Equal(t, cbr.AgentStatusNormal, a.Status)
	assert.Len(t, srv.Agents(), 1)
}

func TestUninstallNothingRegistered(t *testing.T) {
	srv := newFake(t)
	dir := t.TempDir()

	r := runAgainst(t, srv, "-state", filepath.Join(dir, "missing.json"), "-uninstall")
	assert.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stderr, "nothing to uninstall")
	assert.Empty(t, r.stdout)
	assert.Equal(t, 0, srv.Requests())

	state := filepath.Join(dir, "state.json")
	require.NoError(t, os.WriteFile(state, []byte(`{"agent_id":"never-registered"}`), 0o600))
	r = runAgainst(t, srv, "-state", state, "-uninstall")
	assert.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stderr, "agent never-registered is not registered with CBR in this project; nothing to uninstall")
	assert.Equal(t, 1, srv.Requests())
}

// TestUninstallDeletedAgent is -uninstall of an agent that was deleted, when
// the API refuses the update with its one documented error, 400
// BackupService.7403, rather than 404: the show that follows finds nothing,
// and there is nothing to uninstall.
func TestUninstallDeletedAgent(t *testing.T) {
	srv := newFake(t)
	state := filepath.Join(t.TempDir(), "state.json")
	require.NoError(t, os.WriteFile(state, []byte(`{"agent_id":"deleted-agent"}`), 0o600))
	srv.InjectFaults(cbrtest.Fault{Status: 400, Code: "BackupService.7403", Message: "Invalid agent deleted-agent"})

	r := runAgainst(t, srv, "-state", state, "-uninstall")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stderr, "agent deleted-agent is not registered with CBR in this project; nothing to uninstall")
	assert.Empty(t, r.stdout)
	assert.Equal(t, 2, srv.Requests(), "the refused update and the show")
}

func TestInstallSurvivesLostAnswer(t *testing.T) {
	srv := newFake(t)
	// The registration takes effect but its answer is lost, and every retry fails.
	srv.InjectFaults(cbrtest.Fault{Drop: true, AfterHandling: true},
		cbrtest.Fault{Status: 503}, cbrtest.Fault{Status: 503}, cbrtest.Fault{Status: 503})
	state := filepath.Join(t.TempDir(), "state.json")
	r := runAgainst(t, srv, "-state", state, "-hostname", "web-1", "-ip", "10.1.2.3")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "registered agent "+readState(t, state))
}

func TestInstallTimeout(t *testing.T) {
	srv := newFake(t)
	srv.InjectFaults(cbrtest.Fault{Delay: time.Hour})
	state := filepath.Join(t.TempDir(), "state.json")
	r := runAgainst(t, srv, "-state", state, "-hostname", "web-1", "-ip", "10.1.2.3", "-timeout", "100ms")
	assert.Equal(t, exitFailed, r.code)
	assert.Contains(t, r.stderr, "context deadline exceeded")
	assert.Contains(t, r.stderr, "installer: gave up after -timeout 100ms; run again later: the agent ID in "+state+" is kept")
	assert.NotEmpty(t, readState(t, state), "the ID is saved before registering, for the next run")
	assert.Empty(t, srv.Agents())
}

func TestInstallCredentialsRefused(t *testing.T) {
	srv := newFake(t)
	srv.InjectFaults(cbrtest.Fault{Status: 401, Code: "APIGW.0301", Message: "Incorrect IAM authentication information"})
	r := runAgainst(t, srv, "-state", filepath.Join(t.TempDir(), "s.json"), "-hostname", "web-1", "-ip", "10.1.2.3")
	assert.Equal(t, exitDenied, r.code)
	assert.Contains(t, r.stderr, "APIGW.0301")
	assert.Contains(t, r.stderr, "check HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK (or the credentials file) and the project ID")
}

func TestInstallPathQuota(t *testing.T) {
	srv := newFake(t)
	srv.SetPathQuota(1)
	r := runAgainst(t, srv, "-state", filepath.Join(t.TempDir(), "s.json"), "-hostname", "web-1", "-ip", "10.1.2.3",
		"-path", "/a", "-path", "/b")
	assert.Equal(t, exitFailed, r.code)
	assert.Contains(t, r.stdout, "registered agent", "the registration itself succeeded")
	assert.Contains(t, r.stderr, "BackupService.7407")
	assert.Contains(t, r.stderr, "as many backup paths as CBR allows")
}

func TestInstallBadStateFile(t *testing.T) {
	srv := newFake(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	require.NoError(t, os.WriteFile(state, []byte("garbage"), 0o600))
	r := runAgainst(t, srv, "-state", state, "-hostname", "h", "-ip", "10.1.2.3")
	assert.Equal(t, exitLocal, r.code)
	assert.Contains(t, r.stderr, "state file "+state+" does not hold an agent ID; fix it, or remove it to register this host as a new agent")

	r = runAgainst(t, srv, "-state", state, "-uninstall")
	assert.Equal(t, exitLocal, r.code)

	// A state file that cannot be read.
	r = runAgainst(t, srv, "-state", dir, "-hostname", "h", "-ip", "10.1.2.3")
	assert.Equal(t, exitLocal, r.code)
	assert.Contains(t, r.stderr, "installer: cannot read the state file: ")
	assert.Contains(t, r.stderr, "choose another file with -state")
	assert.Equal(t, 0, srv.Requests())
}

func TestHelp(t *testing.T) {
	srv := newFake(t)
	r := runAgainst(t, srv, "-h")
	assert.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stderr, "Usage: installer [flags]")
	assert.Contains(t, r.stderr, "-uninstall")
	assert.Contains(t, r.stderr, "Exit codes:")
	assert.Equal(t, 0, srv.Requests())
}

func TestPrimaryIPv4(t *testing.T) {
	ip, err := primaryIPv4()
	if err != nil {
		assert.Contains(t, err.Error(), "found no IPv4 address")
		return
	}
	addr, perr := netip.ParseAddr(ip)
	require.NoError(t, perr)
	assert.True(t, addr.Is4(), ip)
	assert.False(t, addr.IsLoopback(), ip)
	assert.False(t, addr.IsLinkLocalUnicast(), ip)
}

func TestDetectedHostFacts(t *testing.T) {
	if _, err := primaryIPv4(); err != nil {
		// Without an address to detect, the installer asks for -ip.
		srv := newFake(t)
		r := runAgainst(t, srv, "-state", filepath.Join(t.TempDir(), "s.json"))
		assert.Equal(t, exitLocal, r.code)
		assert.Contains(t, r.stderr, "pass the address to register with -ip")
		return
	}
	srv := newFake(t)
	r := runAgainst(t, srv, "-state", filepath.Join(t.TempDir(), "s.json"))
	require.Equal(t, exitOK, r.code, r.stderr)
	hostname, err := os.Hostname()
	require.NoError(t, err)
	agents := srv.Agents()
	require.Len(t, agents, 1)
	assert.Equal(t, hostname, agents[0].HostName)
	assert.Equal(t, runtime.GOOS, agents[0].HostOS)
}

func TestDefaultStatePath(t *testing.T) {
	if os.Geteuid() == 0 {
		assert.Equal(t, "/var/lib/cbr-agent/state.json", defaultStatePath(), "root's state does not depend on HOME")
		return
	}
	t.Setenv("XDG_CONFIG_HOME", "/tmp/cfg")
	assert.Equal(t, "/tmp/cfg/cbr-agent/state.json", defaultStatePath())
}

func TestFirstRunsAtOnceShareOneAgentID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	ids := make(chan string, 8)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			id, _, err := loadOrCreateAgentID(path)
			ids <- id
			errs <- err
		}()
	}
	first := <-ids
	require.NoError(t, <-errs)
	for range 7 {
		assert.Equal(t, first, <-ids)
		require.NoError(t, <-errs)
	}
	assert.Equal(t, first, readState(t, path))
}

func TestECSMetadataMeansACloudAgent(t *testing.T) {
	cfg, err := parseFlags([]string{"-ecs-metadata", "-region", "ap-southeast-1"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "cloud", cfg.agentType)
	cfg, err = parseFlags([]string{"-ecs-metadata", "-region", "ap-southeast-1", "-type", "native"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "native", cfg.agentType, "an explicit -type wins")
	cfg, err = parseFlags([]string{"-fake"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "native", cfg.agentType)
}

func TestUsageErrors(t *testing.T) {
	srv := newFake(t)
	state := filepath.Join(t.TempDir(), "s.json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-timeout", "0s"}, "-timeout must be positive"},
		{[]string{"-uninstall", "-path", "/a"}, "-path and -uninstall do not go together"},
		{[]string{"-no-such-flag"}, "flag provided but not defined"},
		{[]string{"-ecs-metadata", "-region", ""}, "a region is required: give -region or set HUAWEICLOUD_SDK_REGION"},
	} {
		r := runAgainst(t, srv, append([]string{"-state", state}, tc.args...)...)
		assert.Equal(t, exitUsage, r.code, tc.args)
		assert.Contains(t, r.stderr, tc.want, tc.args)
		assert.Empty(t, r.stdout, tc.args)
	}
	assert.Equal(t, 0, srv.Requests())
	assert.NoFileExists(t, state)
}
