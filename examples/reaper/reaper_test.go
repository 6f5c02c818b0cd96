package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

// t0 is the time of the tests' server clock, and so of the reaper's.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// reaperRun is one run of the reaper.
type reaperRun struct {
	code           int
	stdout, stderr string
}

// runAgainst runs the reaper with args against srv, whose clock is the
// reaper's, with a client made with opts.
func runAgainst(t *testing.T, srv *cbrtest.Server, args []string, opts ...cbr.Option) reaperRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runWith(context.Background(), args, &stdout, &stderr, func(config, io.Writer) (*cbr.Client, func(), error) {
		c, err := srv.Client(opts...)
		return c, func() {}, err
	}, srv.Now)
	return reaperRun{code, stdout.String(), stderr.String()}
}

// newFake starts a server with its clock at t0.
func newFake(t *testing.T) *cbrtest.Server {
	srv := cbrtest.NewServer()
	t.Cleanup(srv.Close)
	srv.SetClock(func() time.Time { return t0 })
	return srv
}

// fleet is 2,500 agents, the kinds interleaved in ID order so that every
// page of a listing holds each kind: 1,300 to uninstall (1,200 normal, 100
// abnormal, silent 31 days or more), 100 uninstalled long ago, 700 active
// within 30 days (one exactly 30 days ago), 400 of unknown activity.
func fleet() (agents []cbr.Agent, old []string) {
	for i := range 2500 {
		a := cbr.Agent{AgentID: fmt.Sprintf("agent-%04d", i), HostName: fmt.Sprintf("host-%d", i), Status: cbr.AgentStatusNormal}
		silent := time.Duration(31+i%300) * day
		switch k := i % 25; {
		case k < 12:
			old = append(old, a.AgentID)
		case k == 12:
			a.Status = cbr.AgentStatusAbnormal
			old = append(old, a.AgentID)
		case k == 13:
			a.Status = cbr.AgentStatusUninstall
		case k < 21:
			silent = time.Duration(i%30) * day
		default:
			silent = -1
		}
		if i == 14 {
			silent = 30 * day // exactly the age: not older than it
		}
		if silent >= 0 {
			a.LastActiveTime = t0.Add(-silent)
		}
		agents = append(agents, a)
	}
	return agents, old
}

// puts returns the agent IDs of the PUT requests the server received.
func puts(srv *cbrtest.Server) []string {
	var ids []string
	for _, r := range srv.RequestLog() {
		if r.Method == http.MethodPut {
			ids = append(ids, strings.TrimPrefix(r.Path, "agents/"))
		}
	}
	return ids
}

// statuses returns the status of every stored agent.
func statuses(srv *cbrtest.Server) map[string]cbr.AgentStatus {
	out := make(map[string]cbr.AgentStatus)
	for _, a := range srv.Agents() {
		out[a.AgentID] = a.Status
	}
	return out
}

func TestApplyUninstallsEveryOldAgentAndNoOther(t *testing.T) {
	srv := newFake(t)
	agents, old := fleet()
	require.NoError(t, srv.SetAgents(agents...))
	require.Len(t, old, 1300)

	run := runAgainst(t, srv, []string{"-region", "ap-southeast-1", "-apply"})
	require.Equal(t, exitOK, run.code, run.stderr)

	assert.ElementsMatch(t, old, puts(srv), "one PUT for each old agent, none for any other")
	got := statuses(srv)
	for _, a := range agents {
		want := a.Status
		if slices.Contains(old, a.AgentID) {
			want = cbr.AgentStatusUninstall
		}
		assert.Equal(t, want, got[a.AgentID], a.AgentID)
	}
	for _, r := range srv.RequestLog() {
		assert.Contains(t, []int{http.StatusOK}, r.Status, "%+v", r)
	}

	assert.Equal(t, 1300, strings.Count(run.stdout, " uninstalled\n"))
	assert.Contains(t, run.stdout, "\nlisted (normal,abnormal)      2400\n")
	assert.Contains(t, run.stdout, "\nactive within 30d0h           700\n")
	assert.Contains(t, run.stdout, "\nactivity unknown, left alone  400\n")
	assert.Contains(t, run.stdout, "\nsilent for over 30d0h         1300\n  uninstalled                 1300\n")
	assert.Contains(t, run.stderr, "reaper: [1300/1300] agent-2487: uninstalled\n")
	assert.Contains(t, run.stderr, "reaper: done: 1300 agents uninstalled\n")

	again := runAgainst(t, srv, []string{"-region", "ap-southeast-1", "-apply"})
	require.Equal(t, exitOK, again.code, again.stderr)
	assert.Len(t, puts(srv), 1300, "nothing left to do")
	assert.Contains(t, again.stderr, "reaper: 1100 agents listed: 0 silent for over 720h0m0s, 700 active within it, 400 of unknown activity (left alone)\n")
}

func TestDryRunChangesNothing(t *testing.T) {
	srv := newFake(t)
	agents, old := fleet()
	require.NoError(t, srv.SetAgents(agents...))
	before := statuses(srv)

	run := runAgainst(t, srv, []string{"-region", "ap-southeast-1"})
	require.Equal(t, exitOK, run.code, run.stderr)
	assert.Empty(t, puts(srv))
	for _, r := range srv.RequestLog() {
		assert.Equal(t, "GET", r.Method, "only listings: %+v", r)
		assert.Equal(t, "agents", r.Path)
	}
	assert.Equal(t, before, statuses(srv))
	assert.Equal(t, len(old), strings.Count(run.stdout, " would uninstall\n"))
	assert.Contains(t, run.stderr, "reaper: dry run: nothing will be changed; give -apply to uninstall\n")
	assert.Contains(t, run.stderr, "reaper: dry run: 1300 agents would be uninstalled; give -apply to do it\n")
}

// TestTable checks the whole output of a small run, and that the age is
// measured against the clock given.
func TestTable(t *testing.T) {
	srv := newFake(t)
	require.NoError(t, srv.SetAgents(
		cbr.Agent{AgentID: "b-silent", HostName: "db-1", Status: cbr.AgentStatusAbnormal, LastActiveTime: t0.Add(-(45*day + 3*time.Hour))},
		cbr.Agent{AgentID: "a-silent", HostName: "web-1", LastActiveTime: t0.Add(-8 * day)},
		cbr.Agent{AgentID: "c-recent", HostName: "web-2", LastActiveTime: t0.Add(-6 * day)},
		cbr.Agent{AgentID: "d-unknown", HostName: "batch-1"},
	))
	run := runAgainst(t, srv, []string{"-region", "ap-southeast-1", "-older-than", "168h", "-apply"})
	require.Equal(t, exitOK, run.code, run.stderr)
	assert.Equal(t, ""+
		"AGENT ID  HOST   STATUS    LAST ACTIVE (UTC)    SILENT  RESULT\n"+
		"a-silent  web-1  normal    2025-05-24 12:00:00  8d0h    uninstalled\n"+
		"b-silent  db-1   abnormal  2025-04-17 09:00:00  45d3h   uninstalled\n"+
		"\n"+
		"TOTAL                         AGENTS\n"+
		"listed (normal,abnormal)      4\n"+
		"active within 7d0h            1\n"+
		"activity unknown, left alone  1\n"+
		"silent for over 7d0h          2\n"+
		"  uninstalled                 2\n", run.stdout)
}

func TestFailedUninstallIsReported(t *testing.T) {
	srv := newFake(t)
	agents, old := fleet()
	require.NoError(t, srv.SetAgents(agents...))
	srv.InjectFaults(cbrtest.Fault{Method: "PUT", Path: "agents/agent-0005", Status: 500})

	run := runAgainst(t, srv, []string{"-region", "ap-southeast-1", "-apply"}, cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 1}))
	assert.Equal(t, exitFailed, run.code)
	assert.ElementsMatch(t, old, puts(srv), "the others were done")
	got := statuses(srv)
	assert.Equal(t, cbr.AgentStatusNormal, got["agent-0005"])
	assert.Equal(t, 1299, strings.Count(run.stdout, " uninstalled\n"))
	assert.Regexp(t, `\nagent-0005 +host-5 +normal .* FAILED: cbr: .*500.*\n`, run.stdout)
	assert.Contains(t, run.stdout, "\n  uninstalled                 1299\n  FAILED                      1\n")
	assert.Contains(t, run.stderr, "reaper: [6/1300] agent-0005: FAILED: cbr: ")
	assert.Contains(t, run.stderr, "reaper: 1299 of 1300 agents uninstalled, 1 failed, 0 not attempted; running again is safe\n")

	again := runAgainst(t, srv, []string{"-region", "ap-southeast-1", "-apply"})
	require.Equal(t, exitOK, again.code, again.stderr)
	assert.Equal(t, cbr.AgentStatusUninstall, statuses(srv)["agent-0005"], "a second run finishes the job")
}

// TestRefusedCredentialsStopTheRun checks that a 401 stops the run: every
// other agent would fail the same way.
func TestRefusedCredentialsStopTheRun(t *testing.T) {
	srv := newFake(t)
	agents, old := fleet()
	require.NoError(t, srv.SetAgents(agents...))
	srv.InjectFaults(cbrtest.Fault{Method: "PUT", Skip: 2, Status: 401})

	run := runAgainst(t, srv, []string{"-region", "ap-southeast-1", "-apply"}, cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 1}))
	assert.Equal(t, exitDenied, run.code)
	assert.Equal(t, old[:3], puts(srv))
	assert.Contains(t, run.stdout, "\n  uninstalled                 2\n  FAILED                      1\n  not attempted               1297\n")
}

func TestFailedListingChangesNothing(t *testing.T) {
	for _, tt := range []struct {
		status int
		code   int
	}{{403, exitDenied}, {401, exitDenied}, {500, exitFailed}} {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			srv := newFake(t)
			agents, _ := fleet()
			require.NoError(t, srv.SetAgents(agents...))
			// The second page of the listing fails.
			srv.InjectFaults(cbrtest.Fault{Method: "GET", Path: "agents", Skip: 1, Status: tt.status})

			run := runAgainst(t, srv, []string{"-region", "ap-southeast-1", "-apply"}, cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 1}))
			assert.Equal(t, tt.code, run.code)
			assert.Empty(t, puts(srv))
			assert.Empty(t, run.stdout)
			assert.Contains(t, run.stderr, fmt.Sprintf("reaper: cbr: list agents: %d", tt.status))
			assert.Contains(t, run.stderr, "reaper: nothing was changed\n")
		})
	}
}

// TestAgentsThatChangedAreLeftAlone checks the second read before each
// change: agents that became active, were uninstalled or unregistered
// since the listing are not uninstalled.
func TestAgentsThatChangedAreLeftAlone(t *testing.T) {
	srv := newFake(t)
	for _, id := range []string{"a", "b", "c", "d"} {
		require.NoError(t, srv.SetAgents(cbr.Agent{AgentID: id, HostName: "h", LastActiveTime: t0.Add(-60 * day)}))
	}
	other, err := srv.Client()
	require.NoError(t, err)
	changes := map[string]func(){
		"/agents/a": func() { require.NoError(t, srv.SetAgents(cbr.Agent{AgentID: "a", HostName: "h", LastActiveTime: t0})) },
		"/agents/b": func() {
			_, err := other.UpdateAgent(context.Background(), "b", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
			require.NoError(t, err)
		},
		"/agents/c": func() { require.NoError(t, other.UnregisterAgent(context.Background(), "c")) },
	}
	// Someone changes a, b and c just before the reaper reads them again.
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		for suffix, change := range changes {
			if r.Method == "GET" && strings.HasSuffix(r.URL.Path, suffix) {
				change()
			}
		}
		return tr.RoundTrip(r)
	})}

	run := runAgainst(t, srv, []string{"-region", "ap-southeast-1", "-apply"}, cbr.WithHTTPClient(hc))
	require.Equal(t, exitOK, run.code, run.stderr)
	assert.Equal(t, []string{"b", "d"}, puts(srv), "b by someone else, d by the reaper")
	assert.Regexp(t, `\na +h .* left alone: active again\n`, run.stdout)
	assert.Regexp(t, `\nb +h .* left alone: already gone\n`, run.stdout)
	assert.Regexp(t, `\nc +h .* left alone: already gone\n`, run.stdout)
	assert.Regexp(t, `\nd +h .* uninstalled\n`, run.stdout)
	assert.Equal(t, cbr.AgentStatusNormal, statuses(srv)["a"])
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestUsage(t *testing.T) {
	t.Setenv("HUAWEICLOUD_SDK_REGION", "")
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{nil, "reaper: give -region (or set HUAWEICLOUD_SDK_REGION), or -fake for a demo (see -h)\n"},
		{[]string{"-fake", "-region", "ap-southeast-1"}, "reaper: -fake and -region do not go together (see -h)\n"},
		{[]string{"-fake", "-older-than", "23h"}, "reaper: -older-than must be at least 24h0m0s, not 23h0m0s (see -h)\n"},
		{[]string{"-fake", "-status", "normal,uninstall"}, `reaper: -status: "uninstall" is not normal or abnormal (see -h)` + "\n"},
		{[]string{"-fake", "-timeout", "0s"}, "reaper: -timeout must be positive, not 0s (see -h)\n"},
		{[]string{"-fake", "now"}, `reaper: unexpected argument "now" (see -h)` + "\n"},
		{[]string{"-older"}, "flag provided but not defined: -older\n"},
		{[]string{"-region", "ap-southeast-9"}, `reaper: unknown region "ap-southeast-9": did you mean ap-southeast-1, `},
		{[]string{"-region", "mars"}, `reaper: unknown region "mars" (set HUAWEICLOUD_SDK_REGION_CBR_MARS to its CBR endpoint to use it) (see -h)` + "\n"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			assert.Equal(t, exitUsage, code)
			assert.Empty(t, stdout.String())
			assert.True(t, strings.HasPrefix(stderr.String(), tt.msg), "%s", stderr.String())
		})
	}
	var stdout, stderr bytes.Buffer
	assert.Equal(t, exitOK, run(context.Background(), []string{"-h"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "Exit codes: 0 done;")
}

// TestNoCredentialsIsAnError checks that without credentials the reaper
// fails, and does not fall back to the fake.
func TestNoCredentialsIsAnError(t *testing.T) {
	for _, v := range []string{"HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN", "HUAWEICLOUD_SDK_PROJECT_ID"} {
		t.Setenv(v, "")
	}
	t.Setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	for _, args := range [][]string{{"-region", "ap-southeast-1"}, {"-region", "ap-southeast-1", "-apply"}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		assert.Equal(t, exitConfig, code, stderr.String())
		assert.Empty(t, stdout.String())
		assert.Contains(t, stderr.String(), "reaper: cbr: ")
		assert.NotContains(t, stderr.String(), "fake")
	}

	t.Setenv("HUAWEICLOUD_SDK_SK", "only-half-of-a-key")
	var stdout, stderr bytes.Buffer
	assert.Equal(t, exitConfig, run(context.Background(), []string{"-region", "ap-southeast-1"}, &stdout, &stderr), stderr.String())
	assert.Contains(t, stderr.String(), "HUAWEICLOUD_SDK_AK")
}

func TestFakeDemo(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, exitOK, run(context.Background(), []string{"-fake"}, &stdout, &stderr), stderr.String())
	assert.Contains(t, stderr.String(), "reaper: -fake: an in-process fake CBR at http://127.0.0.1:")
	assert.Equal(t, 3, strings.Count(stdout.String(), " would uninstall\n"))

	stdout.Reset()
	stderr.Reset()
	require.Equal(t, exitOK, run(context.Background(), []string{"-fake", "-apply", "-older-than", "2400h"}, &stdout, &stderr), stderr.String())
	assert.Regexp(t, `\ndemo-07 +old-2 +normal .* 365d0h +uninstalled\n`, stdout.String())
	assert.Equal(t, 1, strings.Count(stdout.String(), " uninstalled\n"))
}
