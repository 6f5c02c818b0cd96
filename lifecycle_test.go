package cbr_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/cbrtest"
)

func TestShowAgent(t *testing.T) {
	c, mt := newMockClient(t)
	st := answering(200, `{"agent":{
		"agent_id":"489654f2-363b-4ebf-966a-bdf079d97114","agent_type":"native","agent_version":"1.0.0",
		"created_at":"2022-01-30T09:28:09.334153","host_ip":"192.168.10.144","host_name":"ecs-0001","host_nickname":"",
		"host_os":"linux","last_active_time":"2022-01-30T09:28:08.959908","status":"normal","updated_at":null,
		"paths":[{"agent_id":"489654f2-363b-4ebf-966a-bdf079d97114","dir_path":"/opt/backup","id":"p1","status":"available","exclude_paths":"/opt/backup/tmp,*.log"}]}}`)
	mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, st.respond)

	a, err := c.ShowAgent(context.Background(), testAgentID)
	require.NoError(t, err)

	require.Equal(t, 1, st.count())
	req := st.reqs[0]
	assert.Equal(t, "GET", req.Method)
	assert.Equal(t, "/v3/"+testProject+"/agents/"+testAgentID, req.URL.Path)
	assert.Empty(t, req.URL.RawQuery)
	assert.Empty(t, st.bodies[0])
	assertAPIHeaders(t, req, "cbr-go/"+cbr.Version, false)

	assert.Equal(t, testAgentID, a.AgentID)
	assert.Equal(t, cbr.AgentStatusNormal, a.Status)
	assert.Equal(t, time.Date(2022, 1, 30, 9, 28, 9, 334153000, time.UTC), a.CreatedAt)
	assert.True(t, a.UpdatedAt.IsZero())
	require.Len(t, a.Paths, 1)
	assert.Equal(t, cbr.Path{ID: "p1", Status: cbr.PathStatusAvailable, AgentID: testAgentID, DirPath: "/opt/backup",
		ExcludePaths: []string{"/opt/backup/tmp", "*.log"}}, a.Paths[0])
}

func TestShowAgentNotFound(t *testing.T) {
	c, mt := newMockClient(t)
	st := &stub{answers: []answer{{status: 404, body: `{"error_code":"BackupService.7410","error_msg":"Agent missing not found."}`,
		header: http.Header{"X-Request-Id": {"req-1"}}}}}
	mt.RegisterResponder("GET", agentsURL+"/missing", st.respond)

	a, err := c.ShowAgent(context.Background(), "missing")
	assert.Nil(t, a)
	require.ErrorIs(t, err, cbr.ErrNotFound)
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "BackupService.7410", apiErr.Code)
	assert.Equal(t, "req-1", apiErr.RequestID)
	assert.Equal(t, 1, apiErr.Attempts, "a 404 is not retried")
	assert.Equal(t, 1, st.count())
}

func TestShowAgentValidatesID(t *testing.T) {
	c, mt := newMockClient(t)
	for _, id := range []string{"", ".", "..", "a/b", "a\nb"} {
		_, err := c.ShowAgent(context.Background(), id)
		var ve *cbr.ValidationError
		require.ErrorAs(t, err, &ve, "id %q", id)
		assert.Equal(t, "agent_id", ve.Field)
		assert.ErrorIs(t, err, cbr.ErrInvalidRequest)
	}
	assert.Equal(t, 0, mt.GetTotalCallCount(), "nothing is sent for an invalid ID")
}

func TestShowAgentEscapesID(t *testing.T) {
	c, mt := newMockClient(t)
	st := answering(200, `{"agent":{"agent_id":"a b?c"}}`)
	mt.RegisterNoResponder(st.respond)
	a, err := c.ShowAgent(context.Background(), "a b?c")
	require.NoError(t, err)
	assert.Equal(t, "a b?c", a.AgentID)
	require.Equal(t, 1, st.count())
	assert.Equal(t, "/v3/"+testProject+"/agents/a b?c", st.reqs[0].URL.Path, "decoded path")
	assert.Empty(t, st.reqs[0].URL.RawQuery, "the ? is escaped, not a query")
}

func TestUnregisterAgentWire(t *testing.T) {
	c, mt := newMockClient(t)
	st := answering(200, "")
	mt.RegisterResponder("DELETE", agentsURL+"/"+testAgentID, st.respond)
	require.NoError(t, c.UnregisterAgent(context.Background(), testAgentID))
	require.Equal(t, 1, st.count())
	assert.Equal(t, "DELETE", st.reqs[0].Method)
	assert.Equal(t, "/v3/"+testProject+"/agents/"+testAgentID, st.reqs[0].URL.Path)
	assert.Empty(t, st.bodies[0])
	assertAPIHeaders(t, st.reqs[0], "cbr-go/"+cbr.Version, false)

	err := c.UnregisterAgent(context.Background(), "a/b")
	assert.ErrorIs(t, err, cbr.ErrInvalidRequest)
	assert.Equal(t, 1, mt.GetTotalCallCount())
}

func TestUnregisterAgentFake(t *testing.T) {
	srv, c := fakeClient(t)
	ctx := context.Background()
	_, err := c.RegisterAgent(ctx, registerAs("a1"))
	require.NoError(t, err)

	require.NoError(t, c.UnregisterAgent(ctx, "a1"))
	_, ok := srv.Agent("a1")
	assert.False(t, ok)

	err = c.UnregisterAgent(ctx, "a1")
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.ErrorIs(t, err, cbr.ErrNotFound)
	assert.Equal(t, "BackupService.7410", apiErr.Code)

	// The first attempt removes the agent but its answer is lost; the retry
	// finds nothing. The agent is gone, as asked: no error.
	_, err = c.RegisterAgent(ctx, registerAs("a2"))
	require.NoError(t, err)
	before := srv.Requests()
	srv.InjectFaults(cbrtest.Fault{Drop: true, AfterHandling: true})
	require.NoError(t, c.UnregisterAgent(ctx, "a2"))
	assert.Equal(t, 2, srv.Requests()-before)
	_, ok = srv.Agent("a2")
	assert.False(t, ok)
}

// --- RegisterAgent reconciliation ---

func TestRegisterAgentStoredThenDropped(t *testing.T) {
	srv, c := fakeClient(t)
	// The first attempt registers the agent, and its connection drops; every
	// later attempt fails. The client must not call that a failure.
	srv.InjectFaults(
		cbrtest.Fault{Drop: true, AfterHandling: true},
		cbrtest.Fault{Status: 503}, cbrtest.Fault{Status: 503}, cbrtest.Fault{Status: 503},
	)
	in := documentedRegister
	a, err := c.RegisterAgent(context.Background(), in)
	require.NoError(t, err)
	require.NotNil(t, a)
	assert.Equal(t, testAgentID, a.AgentID)
	assert.Equal(t, "ecs-00002", a.HostName)
	assert.Equal(t, cbr.AgentStatusNormal, a.Status)
	var sent []string
	for _, r := range srv.RequestLog() {
		sent = append(sent, r.Method+" "+strconv.Itoa(r.Status))
	}
	assert.Equal(t, []string{"POST 0", "GET 503", "GET 503", "GET 503", "GET 200"}, sent,
		"the dropped POST may have taken effect: it is checked, not sent again")
	stored, ok := srv.Agent(testAgentID)
	require.True(t, ok)
	assert.Equal(t, "10.10.0.2", stored.HostIP)
}

func TestRegisterAgentDroppedNothingStored(t *testing.T) {
	srv, c := fakeClient(t)
	for range 4 {
		srv.InjectFaults(cbrtest.Fault{Method: "POST", Drop: true})
	}
	a, err := c.RegisterAgent(context.Background(), documentedRegister)
	assert.Nil(t, a)
	require.Error(t, err)
	assert.NotErrorIs(t, err, cbr.ErrNotFound, "the error is the registration's, not the check's")
	assert.Contains(t, err.Error(), "cbr: register agent: ")
	assert.Contains(t, err.Error(), "agent "+testAgentID+" is not registered")
	var sent []string
	for _, r := range srv.RequestLog() {
		sent = append(sent, r.Method)
	}
	assert.Equal(t, []string{"POST", "GET", "POST", "GET", "POST", "GET", "POST", "GET"}, sent,
		"each attempt that may have taken effect is checked before the next is sent; 4 in all")
	assert.Empty(t, srv.Agents())
}

func TestRegisterAgentSingleAttemptDropped(t *testing.T) {
	srv, c := fakeClient(t, cbr.WithRetry(noRetry))
	srv.InjectFaults(cbrtest.Fault{Drop: true, AfterHandling: true})
	a, err := c.RegisterAgent(context.Background(), documentedRegister)
	require.NoError(t, err)
	assert.Equal(t, testAgentID, a.AgentID)
	assert.Equal(t, 2, srv.Requests())
}

func TestRegisterAgentDefiniteFailureIsNotChecked(t *testing.T) {
	srv, c := fakeClient(t)
	srv.InjectFaults(cbrtest.Fault{Status: 400, Code: "BackupService.7403", Message: "Invalid agent"})
	_, err := c.RegisterAgent(context.Background(), documentedRegister)
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "BackupService.7403", apiErr.Code)
	assert.Equal(t, 2, srv.Requests(), "a 7403 may mean the agent exists: one check")
	assert.Regexp(t, `^cbr: register agent: 400 Bad Request BackupService.7403: Invalid agent \(request id \w+\); agent `+testAgentID+` is not registered$`, err.Error())

	// Throttled again and again: the call waits its turn, however many attempts that takes.
	srv2, c2 := fakeClient(t)
	for range 10 {
		srv2.InjectFaults(cbrtest.Fault{Status: 429})
	}
	a, err := c2.RegisterAgent(context.Background(), documentedRegister)
	require.NoError(t, err)
	assert.Equal(t, testAgentID, a.AgentID)
	assert.Equal(t, 11, srv2.Requests())
}

func TestRegisterAgentDialErrorIsNotChecked(t *testing.T) {
	c, mt := newMockClient(t)
	st := &stub{answers: []answer{{err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}}}
	mt.RegisterNoResponder(st.respond)
	_, err := c.RegisterAgent(context.Background(), documentedRegister)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connection refused")
	assert.Equal(t, 4, st.count())
	for _, req := range st.reqs {
		assert.Equal(t, "POST", req.Method, "no request reached the server, so there is nothing to check")
	}
}

func TestRegisterAgentOtherHostFacts(t *testing.T) {
	srv, c := fakeClient(t)
	ctx := context.Background()
	other := documentedRegister
	other.HostName, other.HostIP = "someone-else", "10.0.0.9"
	_, err := c.RegisterAgent(ctx, other)
	require.NoError(t, err)

	srv.InjectFaults(cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true})
	_, err = c.RegisterAgent(ctx, documentedRegister)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exists with other host facts or uninstalled")
}

func TestRegisterAgentUninstalledIsNotConfirmed(t *testing.T) {
	srv, c := fakeClient(t)
	ctx := context.Background()
	_, err := c.RegisterAgent(ctx, documentedRegister)
	require.NoError(t, err)
	_, err = c.UpdateAgent(ctx, testAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)

	// A re-install whose attempts never reach the server: the agent found is
	// the old, uninstalled one, which is not this registration.
	srv.InjectFaults(cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true}, cbrtest.Fault{Drop: true})
	_, err = c.RegisterAgent(ctx, documentedRegister)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "exists with other host facts or uninstalled")

	// The same re-install, through: normal again.
	a, err := c.RegisterAgent(ctx, documentedRegister)
	require.NoError(t, err)
	assert.Equal(t, cbr.AgentStatusNormal, a.Status)
}

// registerCanceledWhen calls RegisterAgent with a context that is canceled
// once ready reports true, polled from the test goroutine, and returns the
// call's error. The call must still be waiting then.
func registerCanceledWhen(t *testing.T, c *cbr.Client, ready func() bool) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.RegisterAgent(ctx, documentedRegister)
		done <- err
	}()
	require.Eventually(t, ready, 10*time.Second, time.Millisecond)
	select {
	case err := <-done:
		require.Failf(t, "RegisterAgent returned before its answer", "%v", err)
	default:
	}
	cancel()
	return <-done
}

func TestRegisterAgentCanceledDuringEffectiveAttempt(t *testing.T) {
	srv, c := fakeClient(t)
	// The request takes effect, then the answer is held until the client gives up.
	srv.InjectFaults(cbrtest.Fault{AfterHandling: true, Delay: time.Minute})
	err := registerCanceledWhen(t, c, func() bool { _, stored := srv.Agent(testAgentID); return stored })

	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "whether agent "+testAgentID+" was registered is unknown")
	assert.Equal(t, 1, srv.Requests(), "no check after the context ended")

	// Registering again with the same ID settles it, with no second agent.
	a, err := c.RegisterAgent(context.Background(), documentedRegister)
	require.NoError(t, err)
	assert.Equal(t, testAgentID, a.AgentID)
	assert.Len(t, srv.Agents(), 1)
}

func TestRegisterAgentCanceledBeforeEffect(t *testing.T) {
	srv, c := fakeClient(t)
	srv.InjectFaults(cbrtest.Fault{Delay: time.Minute})
	err := registerCanceledWhen(t, c, func() bool { return srv.Requests() == 1 })

	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "was registered is unknown", "the request was sent")
	assert.Equal(t, 1, srv.Requests(), "the attempt only")
	assert.Empty(t, srv.Agents())
}

// TestRegisterAgentDeadline checks that a registration whose deadline passes
// while its answer is held returns promptly, its check included, with an
// error matching context.DeadlineExceeded. Whether the request reached the
// server by then depends on timing; the tests above settle what happens at
// the server.
func TestRegisterAgentDeadline(t *testing.T) {
	for _, afterHandling := range []bool{false, true} {
		t.Run(fmt.Sprint("after handling ", afterHandling), func(t *testing.T) {
			srv, c := fakeClient(t)
			srv.InjectFaults(cbrtest.Fault{AfterHandling: afterHandling, Delay: time.Minute})
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()

			start := time.Now()
			_, err := c.RegisterAgent(ctx, documentedRegister)
			assert.Less(t, time.Since(start), 10*time.Second, "the answer is held for a minute: the deadline is honoured, check included")
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.LessOrEqual(t, srv.Requests(), 1, "no retry and no check after the deadline")
		})
	}
}

func TestRegisterAgentSuccessWithoutBodyIsChecked(t *testing.T) {
	c, mt := newMockClient(t)
	post := answering(200, `{}`)
	show := answering(200, `{"agent":{"agent_id":"`+testAgentID+
		`","host_name":"ecs-00002","host_ip":"10.10.0.2","host_os":"linux","status":"normal"}}`)
	mt.RegisterResponder("POST", agentsURL, post.respond)
	mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, show.respond)
	a, err := c.RegisterAgent(context.Background(), documentedRegister)
	require.NoError(t, err)
	assert.Equal(t, "ecs-00002", a.HostName)
	assert.Equal(t, 1, post.count())
	assert.Equal(t, 1, show.count())
}

func TestRegisterAgentCheckFails(t *testing.T) {
	c, mt := newMockClient(t)
	post := answering(502, `{"error_code":"APIGW.0610","error_msg":"No backend available"}`)
	show := answering(503, `{"error_code":"APIGW.0613","error_msg":"IAM unavailable"}`)
	mt.RegisterResponder("POST", agentsURL, post.respond)
	mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, show.respond)
	_, err := c.RegisterAgent(context.Background(), documentedRegister)
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 502, apiErr.StatusCode, "the registration's error")
	assert.Contains(t, err.Error(), "whether agent "+testAgentID+" was registered is unknown: show agent: 503 Service Unavailable APIGW.0613")
	assert.Equal(t, 1, strings.Count(err.Error(), "cbr: "), "one prefix: %s", err)
	assert.Equal(t, 1, post.count(), "a POST that may have taken effect is not sent again before the check says it did not")
	assert.Equal(t, 4, show.count(), "4 GET attempts")
}

// --- UpdateAgent on an uninstalled agent ---

func TestUpdateAgentUninstallTwiceFake(t *testing.T) {
	srv, c := fakeClient(t)
	ctx := context.Background()
	_, err := c.RegisterAgent(ctx, documentedRegister)
	require.NoError(t, err)
	_, err = c.UpdateAgent(ctx, testAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)

	before := srv.Requests()
	a, err := c.UpdateAgent(ctx, testAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)
	assert.Equal(t, cbr.AgentStatusUninstall, a.Status)
	assert.Equal(t, 2, srv.Requests()-before, "the refused update, then a show")
}

func TestUpdateAgentInvalidAgentStays(t *testing.T) {
	c, mt := newMockClient(t)
	update := answering(400, `{"error_code":"BackupService.7403","error_msg":"Invalid agent `+testAgentID+`"}`)
	show := answering(200, `{"agent":{"agent_id":"`+testAgentID+`","status":"normal"}}`)
	mt.RegisterResponder("PUT", agentsURL+"/"+testAgentID, update.respond)
	mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, show.respond)
	_, err := c.UpdateAgent(context.Background(), testAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr, "the agent is not uninstalled, so the refusal stands")
	assert.Equal(t, "BackupService.7403", apiErr.Code)
	require.Equal(t, 1, update.count())
	assert.JSONEq(t, `{"agent":{"status":"uninstall"}}`, update.bodies[0])
	assert.Equal(t, 1, show.count(), "then a show")
}

// TestUpdateAgentUnknownToTheAPI is an uninstall of an agent that was
// deleted: the API documents only 400 BackupService.7403 for an update, and
// the show that follows says 404. The result matches ErrNotFound, so that an
// installer can tell that there is nothing to uninstall.
func TestUpdateAgentUnknownToTheAPI(t *testing.T) {
	c, mt := newMockClient(t)
	update := answering(400, `{"error_code":"BackupService.7403","error_msg":"Invalid agent `+testAgentID+`"}`)
	show := answering(404, `{"error_code":"BackupService.7410","error_msg":"Agent `+testAgentID+` not found."}`)
	mt.RegisterResponder("PUT", agentsURL+"/"+testAgentID, update.respond)
	mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, show.respond)

	a, err := c.UpdateAgent(context.Background(), testAgentID, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	assert.Nil(t, a)
	require.ErrorIs(t, err, cbr.ErrNotFound)
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "BackupService.7403", apiErr.Code, "the update's error comes first")
	assert.Equal(t, "cbr: update agent: 400 Bad Request BackupService.7403: Invalid agent "+testAgentID+
		"; show agent: 404 Not Found BackupService.7410: Agent "+testAgentID+" not found.", err.Error())
	assert.Equal(t, 1, update.count(), "a 400 is not retried")
	assert.Equal(t, 1, show.count())
}

func TestRegisterAgentCheckSharesTheCallsTimeBudget(t *testing.T) {
	t.Parallel()
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			time.Sleep(400 * time.Millisecond) // most of the call's budget
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		gets.Add(1)
		w.WriteHeader(http.StatusTooManyRequests) // the check is throttled throughout
	}))
	defer srv.Close()
	c := newServerClient(t, srv.URL, cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 1,
		ThrottleMinWait: 20 * time.Millisecond, ThrottleMaxWait: 20 * time.Millisecond, MaxDuration: 500 * time.Millisecond}))

	start := time.Now()
	_, err := c.RegisterAgent(context.Background(), documentedRegister) // no deadline: MaxDuration bounds it
	require.Error(t, err)
	assert.Contains(t, err.Error(), "whether agent "+testAgentID+" was registered is unknown")
	assert.Less(t, time.Since(start), 800*time.Millisecond, "the check ends within the register's MaxDuration, not one of its own")
	assert.Less(t, gets.Load(), int32(15))
}

func TestRegisterAgentHandshakeThatNeverEndsIsNotChecked(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns atomic.Int32
	done := make(chan struct{})
	defer close(done)
	go func() { // accepts, and never says a word of TLS
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { <-done; conn.Close() }()
		}
	}()
	defer ln.Close()
	c := newServerClient(t, "https://"+ln.Addr().String(), cbr.WithRetry(cbr.RetryPolicy{MaxAttempts: 2,
		MinWait: time.Millisecond, MaxWait: time.Millisecond, AttemptTimeout: 200 * time.Millisecond, MaxDuration: 10 * time.Second}))

	_, err = c.RegisterAgent(context.Background(), documentedRegister)
	require.ErrorIs(t, err, cbr.ErrAttemptTimeout)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
	assert.NotContains(t, err.Error(), "registered", "nothing was written: nothing to check")
	assert.Equal(t, int32(2), conns.Load(), "two attempts, and no ShowAgent")
}

func TestRegisterAgentFailuresCountAcrossRounds(t *testing.T) {
	dial := answer{err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	unavailable := answer{status: 503, body: `{"error_code":"APIGW.0613","error_msg":"IAM unavailable"}`}
	st := &stub{answers: []answer{dial, unavailable, dial, unavailable, dial, unavailable, dial, unavailable}}
	c, mt := newMockClient(t)
	mt.RegisterResponder("POST", agentsURL, st.respond)
	answerNotRegistered(mt)

	_, err := c.RegisterAgent(context.Background(), documentedRegister)
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 503, apiErr.StatusCode)
	assert.Contains(t, err.Error(), "agent "+testAgentID+" is not registered")
	assert.Equal(t, fastRetry.MaxAttempts, st.count(), "MaxAttempts failed attempts in all, not per round")
	assert.Equal(t, 2, mt.GetCallCountInfo()["GET "+agentsURL+"/"+testAgentID], "one check after each 503")
}

func TestRegisterAgentThrottling503IsNotChecked(t *testing.T) {
	st := &stub{answers: []answer{
		{status: 503, body: `{"error_code":"APIGW.0308","error_msg":"The throttling threshold has been reached"}`,
			header: http.Header{"Retry-After": {"0"}}},
		{status: 200, body: string(golden(t, "register_response.json"))},
	}}
	c, mt := newMockClient(t)
	mt.RegisterResponder("POST", agentsURL, st.respond)

	_, err := c.RegisterAgent(context.Background(), documentedRegister)
	require.NoError(t, err)
	assert.Equal(t, 2, st.count(), "a 503 with Retry-After is throttling: the request was not taken, and is sent again")
	assert.Zero(t, mt.GetCallCountInfo()["GET "+agentsURL+"/"+testAgentID], "nothing to check")
}

func TestTransportWithoutAnswerOrError(t *testing.T) {
	rt := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil })
	c := newServerClient(t, testEndpoint, cbr.WithHTTPClient(&http.Client{Transport: rt}), cbr.WithRetry(noRetry))
	_, err := c.ShowAgent(context.Background(), testAgentID)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "returned neither an answer nor an error")
}
