package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

// TestQuickstartFromEnv runs the quickstart's cloud path against the fake:
// the endpoint overrides of FromEnv point it at cbrtest, whose gateway
// verifies the signatures and whose IAM gives the project ID.
func TestQuickstartFromEnv(t *testing.T) {
	srv := cbrtest.NewServer()
	t.Cleanup(srv.Close)
	isolateEnv(t)
	t.Setenv("HUAWEICLOUD_SDK_AK", srv.AccessKey)
	t.Setenv("HUAWEICLOUD_SDK_SK", srv.SecretKey)
	t.Setenv("HUAWEICLOUD_SDK_REGION", "ap-southeast-1")
	t.Setenv("HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1", srv.URL)
	t.Setenv("HUAWEICLOUD_SDK_IAM_ENDPOINT", srv.IAMURL)

	var out, notes bytes.Buffer
	require.NoError(t, run(context.Background(), &out, &notes))
	assert.Equal(t, "quickstart: using CBR in ap-southeast-1 with the HUAWEICLOUD_SDK_* credentials\n", notes.String())
	var agent cbr.Agent
	require.NoError(t, json.Unmarshal(out.Bytes(), &agent), out.String())
	assert.Equal(t, cbr.AgentStatusUninstall, agent.Status)
	stored, ok := srv.Agent(agent.AgentID)
	require.True(t, ok)
	assert.Equal(t, cbr.AgentStatusUninstall, stored.Status)
	assert.Equal(t, 1, srv.ProjectRequests(), "the project ID was looked up in IAM")
	assert.Equal(t, 2, srv.Requests())

	t.Setenv("HUAWEICLOUD_SDK_REGION", "")
	assert.EqualError(t, run(context.Background(), io.Discard, io.Discard), "HUAWEICLOUD_SDK_AK is set: also set HUAWEICLOUD_SDK_REGION, such as ap-southeast-1")
}

// isolateEnv clears every variable FromEnv and the quickstart read and points
// HOME at an empty directory, so that neither the developer's environment nor
// their ~/.huaweicloud/credentials reaches the test.
func isolateEnv(t *testing.T) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	for _, name := range []string{
		"HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN", "HUAWEICLOUD_SDK_PROJECT_ID",
		"HUAWEICLOUD_SDK_IAM_ENDPOINT", "HUAWEICLOUD_SDK_CREDENTIALS_FILE", "HUAWEICLOUD_SDK_REGION",
		"HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1",
	} {
		t.Setenv(name, "")
	}
}
