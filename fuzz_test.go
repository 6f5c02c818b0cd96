package cbr_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jarcoal/httpmock"

	"github.com/cbrsdk/cbr"
)

// Fuzz targets of what the client decodes and what it refuses to send. Run
// one with go test -run '^$' -fuzz '^FuzzName$' -fuzztime 10s; the seeds in
// testdata/fuzz/FuzzName run with every go test.

// breaksLine reports whether s would break a log line.

// validUTF8 reports whether every s is valid UTF-8.
func validUTF8(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// fuzzClient returns a client whose every request mt answers.
func fuzzClient(t testing.TB, mt *httpmock.MockTransport) *cbr.Client {
	t.Helper()
	c, err := cbr.NewClient(cbr.WithEndpoint("https://cbr.example.com"), cbr.WithProjectID("p1"),
		cbr.WithCredentials(cbr.Token("t")), cbr.WithHTTPClient(&http.Client{Transport: mt}),
		cbr.WithRetry(noRetry))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// FuzzAgentResponse decodes any 200 body as ShowAgent's and ListAgents'
// answer: the client never panics, and an error is one line that names the
// operation.
func FuzzAgentResponse(f *testing.F) {
	for _, seed := range []string{
		`{"agent":{"agent_id":"a1","host_name":"ecs","host_ip":"10.0.0.1","host_os":"linux","status":"normal","created_at":"2024-01-02T03:04:05.000000","paths":[{"id":"p","dir_path":"/opt","exclude_paths":"a,b"}]}}`,
		`{"agents":[{"agent_id":"a1","created_at":"2024-01-02T03:04:05Z","updated_at":null,"last_active_time":""}],"count":1,"limit":10,"offset":0}`,
		`{}`, `null`, `{"agent":null}`, `{"agent":{"agent_id":"a1"`, `<html>maintenance</html>`, ``,
		`{"agent":{"created_at":"2024-13-45T99:99:99\n"}}`, `{"agents":[{"paths":[{"exclude_paths":7}]}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		mt := httpmock.NewMockTransport()
		mt.RegisterNoResponder(httpmock.NewBytesResponder(http.StatusOK, body))
		c := fuzzClient(t, mt)
		ctx := context.Background()

		a, err := c.ShowAgent(ctx, "a1")
		checkDecoded(t, "show agent", err, a != nil)
		l, err := c.ListAgents(ctx, cbr.ListAgentsOptions{})
		checkDecoded(t, "list agents", err, l != nil)
		if a != nil { // what was decoded encodes and decodes back to itself
			data, err := json.Marshal(a)
			if err != nil {
				t.Fatalf("marshal %+v: %v", a, err)
			}
			var back cbr.Agent
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatalf("unmarshal %s: %v", data, err)
			}
			if back.AgentID != a.AgentID || back.HostIP != a.HostIP || !back.CreatedAt.Equal(a.CreatedAt) ||
				len(back.Paths) != len(a.Paths) {
				t.Fatalf("round trip changed the agent: %+v, then %+v", a, back)
			}
		}
	})
}

// checkDecoded checks the outcome of a decoded 2xx: a result or an error,
// never both; an error of one line that names op.
func checkDecoded(t *testing.T, op string, err error, got bool) {
	t.Helper()
	switch {
	case err == nil && !got:
		t.Fatalf("%s: no result and no error", op)
	case err != nil && got:
		t.Fatalf("%s: a result and an error: %v", op, err)
	case err == nil:
		return
	}
	msg := err.Error()
	if breaksLine(msg) || !strings.HasPrefix(msg, "cbr: "+op+": ") {
		t.Fatalf("%s: error %q is not one line naming the operation", op, msg)
	}
	var apiErr *cbr.APIError
	if errors.As(err, &apiErr) {
		t.Fatalf("%s: a 200 is not an *APIError: %v", op, err)
	}
}

// FuzzAPIErrorBody parses any body of a 4xx or 5xx: the error is an
// *APIError of that status that keeps the body (at most 64 KiB), and its
// message is one short line.
func FuzzAPIErrorBody(f *testing.F) {
	for _, seed := range []struct {
		status int
		body   string
	}{
		{400, `{"error_code":"BackupService.7403","error_msg":"Invalid agent a1","request_id":"r1"}`},
		{401, `{"error":{"code":401,"message":"The token is expired.","title":"Unauthorized"}}`},
		{403, `{"code":"APIGW.0301","message":"Incorrect IAM authentication information"}`},
		{404, `{"error_code":"BackupService.7410","error_msg":"Agent a1 not found.\r\nretry"}`},
		{500, "<html>\u2028Internal\u0085Error</html>"},
		{502, ``}, {503, `{"error":null}`}, {429, `{"code":[1,2],"message":7}`},
	} {
		f.Add(seed.status, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = 400 + (status%200+200)%200 // 400 to 599
		mt := httpmock.NewMockTransport()
		mt.RegisterNoResponder(httpmock.NewBytesResponder(status, body))
		c := fuzzClient(t, mt)

		_, err := c.ShowAgent(context.Background(), "a1")
		var apiErr *cbr.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("status %d: not an *APIError: %v", status, err)
		}
		if apiErr.StatusCode != status || apiErr.Op != "show agent" {
			t.Fatalf("status %d: got status %d, op %q", status, apiErr.StatusCode, apiErr.Op)
		}
		want := body[:min(len(body), 64<<10)]
		if string(apiErr.Body) != string(want) {
			t.Fatalf("status %d: body of %d bytes kept as %d bytes", status, len(want), len(apiErr.Body))
		}
		msg := err.Error()
		if breaksLine(msg) || len(msg) > 1024 || !strings.HasPrefix(msg, "cbr: show agent: ") {
			t.Fatalf("status %d: error %q is not one short line", status, msg)
		}
	})
}

// FuzzAgentRegisterValidation registers any agent: a refused one is a
// *ValidationError of one line and nothing is sent; an accepted one is sent
// once, exactly as given.
func FuzzAgentRegisterValidation(f *testing.F) {
	f.Add("489654f2-363b-4ebf-966a-bdf079d97114", "ecs-00002", "10.10.0.2", "linux", "", "1.0.0", "native")
	f.Add("a1", "host", "fe80::1%eth0", "windows", "nick", "v1.0.0", "cloud")
	f.Add("a\u2028b", "host\u0085", "::ffff:10.0.0.1", "linux", "n\u2029", "1234.0.0", "")
	f.Add("..", " ", "10.0.0.256", "\x7f", "\r\n", "1.0", "other")
	f.Add("a/b", "h", "1.2.3.4", "os", "", "", "")
	f.Fuzz(func(t *testing.T, id, hostName, hostIP, hostOS, nickname, version, agentType string) {
		in := cbr.AgentRegister{AgentID: id, HostName: hostName, HostIP: hostIP, HostOS: hostOS,
			HostNickname: nickname, AgentVersion: version, AgentType: cbr.AgentType(agentType)}
		var sent []cbr.AgentRegister
		mt := httpmock.NewMockTransport()
		mt.RegisterNoResponder(func(r *http.Request) (*http.Response, error) {
			data, err := io.ReadAll(r.Body)
			if err != nil {
				return nil, err
			}
			var body struct{ Agent cbr.AgentRegister }
			if err := json.Unmarshal(data, &body); err != nil {
				t.Errorf("sent a body that is not JSON: %q: %v", data, err)
			}
			sent = append(sent, body.Agent)
			return httpmock.NewStringResponse(http.StatusOK, `{"agent":{"agent_id":"a1"}}`), nil
		})
		c := fuzzClient(t, mt)

		_, err := c.RegisterAgent(context.Background(), in)
		var vErr *cbr.ValidationError
		switch {
		case errors.As(err, &vErr):
			if !errors.Is(err, cbr.ErrInvalidRequest) || breaksLine(err.Error()) || len(sent) != 0 {
				t.Fatalf("refused %+v with %q, %d requests sent", in, err, len(sent))
			}
		case len(sent) != 1:
			t.Fatalf("accepted %+v (result %v) but sent %d requests", in, err, len(sent))
		case sent[0] != in && validUTF8(id, hostName, hostIP, hostOS, nickname, version, agentType):
			// encoding/json turns invalid UTF-8 into U+FFFD; the SDK does not refuse it (yet).
			t.Fatalf("sent %+v for %+v", sent[0], in)
		}
		if err != nil && breaksLine(err.Error()) {
			t.Fatalf("error %q breaks its line", err)
		}
	})
}
