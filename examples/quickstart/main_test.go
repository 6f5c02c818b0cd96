package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quickstartRun is one run of the quickstart.
type quickstartRun struct {
	code           int
	stdout, stderr string
}

func runQuickstart(ctx context.Context, args ...string) quickstartRun {
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return quickstartRun{code, stdout.String(), stderr.String()}
}

func TestRun(t *testing.T) {
	isolateEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	r := runQuickstart(ctx)
	require.Equal(t, exitOK, r.code, r.stderr)
	var agent map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &agent), "stdout is one JSON document: %s", r.stdout)
	assert.Equal(t, "uninstall", agent["status"])
	assert.Contains(t, r.stdout, `"status": "uninstall"`, "what CI greps for")
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, agent["agent_id"])
	assert.Equal(t, "ecs-00002", agent["host_name"])
	assert.Equal(t, "10.10.0.2", agent["host_ip"])
	assert.Equal(t, "native", agent["agent_type"])
	assert.Regexp(t, regexp.MustCompile(`^quickstart: running on the in-process fake CBR server at http://127\.0\.0\.1:\d+; nothing is sent to Huawei Cloud \(use -real to talk to CBR\)\n$`), r.stderr)
}

func TestRunStopsWithTheContext(t *testing.T) {
	isolateEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	r := runQuickstart(ctx)
	assert.Equal(t, exitFailed, r.code)
	assert.Contains(t, r.stderr, "context canceled")
	assert.Empty(t, r.stdout)
}

func TestFlags(t *testing.T) {
	isolateEnv(t)
	r := runQuickstart(context.Background(), "-h")
	assert.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stderr, "-real")
	assert.Empty(t, r.stdout)

	r = runQuickstart(context.Background(), "-no-such-flag")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "flag provided but not defined: -no-such-flag")

	r = runQuickstart(context.Background(), "extra")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, `quickstart: unexpected argument "extra"`)
	assert.Empty(t, r.stdout)
}

func TestNewAgentID(t *testing.T) {
	a, b := newAgentID(), newAgentID()
	assert.NotEqual(t, a, b)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, a)
}
