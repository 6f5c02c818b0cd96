package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

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
	testenv.Isolate(t)
}

// withKeys isolates the environment and points FromEnv at srv, with srv's
// key pair: the endpoint overrides send CBR's and IAM's requests to srv,
// whose gateway verifies the signatures and whose IAM gives the project ID.
func withKeys(t *testing.T, srv *cbrtest.Server) {
	t.Helper()
	isolateEnv(t)
	t.Setenv("HUAWEICLOUD_SDK_AK", srv.AccessKey)
	t.Setenv("HUAWEICLOUD_SDK_SK", srv.SecretKey)
	t.Setenv("HUAWEICLOUD_SDK_REGION", "ap-southeast-1")
	t.Setenv("HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1", srv.URL)
	t.Setenv("HUAWEICLOUD_SDK_IAM_ENDPOINT", srv.IAMURL)
}

func newFake(t *testing.T) *cbrtest.Server {
	srv := cbrtest.NewServer()
	t.Cleanup(srv.Close)
	return srv
}

// TestCredentialsAreNotUsedUnlessAsked: with credentials in the environment
// and in the credentials file, the quickstart still runs on its own fake
// and sends nothing to the CBR they point at.
func TestCredentialsAreNotUsedUnlessAsked(t *testing.T) {
	srv := newFake(t)
	withKeys(t, srv)
	file := filepath.Join(os.Getenv("HOME"), ".huaweicloud", "credentials")
	require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o700))
	require.NoError(t, os.WriteFile(file, []byte("[basic]\nak = "+srv.AccessKey+"\nsk = "+srv.SecretKey+"\n"), 0o600))

	r := runQuickstart(context.Background())
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"status": "uninstall"`)
	assert.Contains(t, r.stderr, "quickstart: running on the in-process fake CBR server at http://127.0.0.1:")
	assert.Contains(t, r.stderr, "nothing is sent to Huawei Cloud (use -real to talk to CBR)")
	assert.Equal(t, 0, srv.Requests(), "nothing reached the CBR of the environment")
	assert.Equal(t, 0, srv.ProjectRequests())
	assert.Empty(t, srv.Agents())
}

// TestReal runs the quickstart's -real path against the fake, through
// FromEnv's endpoint overrides.
func TestReal(t *testing.T) {
	srv := newFake(t)
	withKeys(t, srv)

	r := runQuickstart(context.Background(), "-real")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "quickstart: -real: registering a new agent for host ecs-00002 (10.10.0.2) with CBR in ap-southeast-1, "+
		"then marking it uninstalled; it stays in the account, marked uninstalled\n", r.stderr)
	var agent cbr.Agent
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &agent), r.stdout)
	assert.Equal(t, cbr.AgentStatusUninstall, agent.Status)
	stored, ok := srv.Agent(agent.AgentID)
	require.True(t, ok)
	assert.Equal(t, cbr.AgentStatusUninstall, stored.Status)
	assert.Equal(t, 1, srv.ProjectRequests(), "the project ID was looked up in IAM")
	assert.Equal(t, 2, srv.Requests())

	// -region wins over HUAWEICLOUD_SDK_REGION.
	t.Setenv("HUAWEICLOUD_SDK_REGION", "cn-north-4")
	r = runQuickstart(context.Background(), "-real", "-region", "ap-southeast-1")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stderr, "with CBR in ap-southeast-1")
	assert.Equal(t, 4, srv.Requests())
}

func TestRealRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(t *testing.T, srv *cbrtest.Server)
		args []string
		code int
		want string
	}{
		{"no region", func(t *testing.T, srv *cbrtest.Server) { t.Setenv("HUAWEICLOUD_SDK_REGION", "") },
			[]string{"-real"}, exitUsage, "quickstart: -real needs a region: give -region or set HUAWEICLOUD_SDK_REGION"},
		{"no credentials", func(t *testing.T, srv *cbrtest.Server) {
			t.Setenv("HUAWEICLOUD_SDK_AK", "")
			t.Setenv("HUAWEICLOUD_SDK_SK", "")
		}, []string{"-real"}, exitFailed, "quickstart: cbr: FromEnv: no credentials: HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK are not set"},
		{"sk without ak", func(t *testing.T, srv *cbrtest.Server) { t.Setenv("HUAWEICLOUD_SDK_AK", "") },
			[]string{"-real"}, exitFailed, "quickstart: cbr: FromEnv: HUAWEICLOUD_SDK_SK is set but not HUAWEICLOUD_SDK_AK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t)
			withKeys(t, srv)
			tc.set(t, srv)
			r := runQuickstart(context.Background(), tc.args...)
			assert.Equal(t, tc.code, r.code)
			assert.Contains(t, r.stderr, tc.want)
			assert.NotContains(t, r.stderr, srv.SecretKey)
			assert.NotContains(t, r.stderr, "fake")
			assert.Empty(t, r.stdout)
			assert.Equal(t, 0, srv.Requests())
			assert.Equal(t, 0, srv.ProjectRequests())
		})
	}
}
