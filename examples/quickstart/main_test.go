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

func TestRun(t *testing.T) {
	t.Setenv("HUAWEICLOUD_SDK_AK", "") // the fake server, whatever the environment holds
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer

	require.NoError(t, run(ctx, &stdout, &stderr))

	var agent map[string]any
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &agent), "stdout is one JSON document: %s", stdout.String())
	assert.Equal(t, "uninstall", agent["status"])
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, agent["agent_id"])
	assert.Equal(t, "ecs-00002", agent["host_name"])
	assert.Equal(t, "10.10.0.2", agent["host_ip"])
	assert.Equal(t, "native", agent["agent_type"])
	assert.Regexp(t, regexp.MustCompile(`^quickstart: no HUAWEICLOUD_SDK_\* credentials .* fake CBR server at http://127\.0\.0\.1:\d+\n$`), stderr.String())
}

func TestRunStopsWithTheContext(t *testing.T) {
	t.Setenv("HUAWEICLOUD_SDK_AK", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer

	err := run(ctx, &stdout, &stderr)
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, stdout.String())
}

func TestNewAgentID(t *testing.T) {
	a, b := newAgentID(), newAgentID()
	assert.NotEqual(t, a, b)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, a)
}
