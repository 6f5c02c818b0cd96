package cbr_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
)

// assertAPIHeaders checks the headers every call carries, and the content
// type of a call with a body; a call without one (GET, DELETE) sends none.
func assertAPIHeaders(t *testing.T, req *http.Request, userAgent string, hasBody bool) {
	t.Helper()
	if hasBody {
		assert.Equal(t, "application/json;charset=UTF-8", req.Header.Get("Content-Type"))
	} else {
		assert.NotContains(t, req.Header, "Content-Type", "no body, so no content type")
	}
	assert.Equal(t, "application/json", req.Header.Get("Accept"))
	assert.Equal(t, userAgent, req.Header.Get("User-Agent"))
	assert.Equal(t, testProject, req.Header.Get("X-Project-Id"))
	assert.Equal(t, testToken, req.Header.Get("X-Auth-Token"))
	assert.Empty(t, req.Header.Get("Authorization"), "token auth sends no signature")
}

func TestRegisterAgentWire(t *testing.T) {
	st := &stub{answers: []answer{{status: 200, body: string(golden(t, "register_response.json")),
		header: http.Header{"X-Request-Id": {"rid-1"}}}}}
	c, mt := newMockClient(t)
	mt.RegisterResponder("POST", agentsURL, st.respond)

	agent, err := c.RegisterAgent(context.Background(), documentedRegister)
	require.NoError(t, err)

	require.Equal(t, 1, st.count())
	req := st.reqs[0]
	assert.Equal(t, "POST", req.Method)
	assert.Equal(t, "/v3/"+testProject+"/agents", req.URL.EscapedPath())
	assert.Empty(t, req.URL.RawQuery)
	assertAPIHeaders(t, req, "cbr-go/"+cbr.Version, true)
	want := compact(t, "register_request.json")
	assert.Equal(t, want, st.bodies[0], "the documented request, byte for byte")
	assert.JSONEq(t, string(golden(t, "register_request.json")), st.bodies[0])
	assert.Equal(t, int64(len(want)), req.ContentLength)

	require.NotNil(t, agent)
	assert.Equal(t, testAgentID, agent.AgentID)
	assert.Equal(t, "ecs-0001", agent.HostName)
	assert.Equal(t, "192.168.10.144", agent.HostIP)
	assert.Equal(t, cbr.AgentStatusNormal, agent.Status)
	assert.Equal(t, cbr.AgentTypeNative, agent.AgentType)
	assert.True(t, agent.CreatedAt.Equal(time.Date(2022, 1, 30, 9, 28, 9, 334e6, time.UTC)))
}

func TestUpdateAgentWire(t *testing.T) {
	const id = "79bd9daa-884f-4f84-b8fe-235d58cd927d" // the documented example's ID
	st := &stub{answers: []answer{{status: 200, body: string(golden(t, "update_response.json"))}}}
	c, mt := newMockClient(t, cbr.WithUserAgent("my-installer/2.1"))
	mt.RegisterResponder("PUT", agentsURL+"/"+id, st.respond)

	agent, err := c.UpdateAgent(context.Background(), id, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)

	require.Equal(t, 1, st.count())
	req := st.reqs[0]
	assert.Equal(t, "PUT", req.Method)
	assert.Equal(t, "/v3/"+testProject+"/agents/"+id, req.URL.EscapedPath())
	assertAPIHeaders(t, req, "my-installer/2.1 cbr-go/"+cbr.Version, true)
	assert.Equal(t, compact(t, "update_request.json"), st.bodies[0])

	require.NotNil(t, agent)
	assert.Equal(t, cbr.AgentStatusUninstall, agent.Status)
	require.Len(t, agent.Paths, 2)
	assert.Equal(t, []string{"*.txt", "/opt/huaweicloud/cbragent/lib/test"}, agent.Paths[0].ExcludePaths)
	assert.Equal(t, "/opt/backup", agent.Paths[1].DirPath)
}

// TestAgentIDIsEscaped checks that an ID with characters that mean something
// in a URL stays one path segment.
func TestAgentIDIsEscaped(t *testing.T) {
	st := &stub{answers: []answer{{status: 200, body: string(golden(t, "update_response.json"))}}}
	c, mt := newMockClient(t)
	mt.RegisterNoResponder(st.respond)

	_, err := c.UpdateAgent(context.Background(), "a b?c#d%e..", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	require.NoError(t, err)
	require.Equal(t, 1, st.count())
	assert.Equal(t, "/v3/"+testProject+"/agents/a%20b%3Fc%23d%25e..", st.reqs[0].URL.EscapedPath())
	assert.Empty(t, st.reqs[0].URL.RawQuery)
	assert.Empty(t, st.reqs[0].URL.Fragment)
}

func TestSuccessWithoutAgentIsAnError(t *testing.T) {
	for _, body := range []string{`{}`, `{"agent":null}`, `not json`, ``} {
		t.Run(body, func(t *testing.T) {
			st := &stub{answers: []answer{{status: 200, body: body, header: http.Header{"X-Request-Id": {"rid-9"}}}}}
			c, mt := newMockClient(t)
			mt.RegisterResponder("POST", agentsURL, st.respond)
			// The registration may have happened: the client asks, and is told it did not.
			mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, httpmock.NewStringResponder(404,
				`{"error_code":"BackupService.7410","error_msg":"Agent not found."}`))

			agent, err := c.RegisterAgent(context.Background(), documentedRegister)
			require.Error(t, err)
			assert.Nil(t, agent)
			assert.True(t, strings.HasPrefix(err.Error(), "cbr: register agent: "), err.Error())
			var apiErr *cbr.APIError
			assert.False(t, errors.As(err, &apiErr), "a 200 is not an API error")
			assert.Contains(t, err.Error(), "is not registered")
			assert.Equal(t, 1, st.count(), "a 200 is not retried")
			assert.Equal(t, 2, mt.GetTotalCallCount(), "the POST and the check")
		})
	}
}

func TestAnyTwoHundredIsSuccess(t *testing.T) {
	for _, status := range []int{200, 201, 202} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			st := &stub{answers: []answer{{status: status, body: string(golden(t, "register_response.json"))}}}
			c, mt := newMockClient(t)
			mt.RegisterResponder("POST", agentsURL, st.respond)
			agent, err := c.RegisterAgent(context.Background(), documentedRegister)
			require.NoError(t, err)
			assert.Equal(t, testAgentID, agent.AgentID)
		})
	}
}

func TestValidationSendsNothing(t *testing.T) {
	register := func(mod func(*cbr.AgentRegister)) func(*cbr.Client) error {
		return func(c *cbr.Client) error {
			in := documentedRegister
			mod(&in)
			_, err := c.RegisterAgent(context.Background(), in)
			return err
		}
	}
	update := func(id string, status cbr.AgentStatus) func(*cbr.Client) error {
		return func(c *cbr.Client) error {
			_, err := c.UpdateAgent(context.Background(), id, cbr.AgentUpdate{Status: status})
			return err
		}
	}
	tests := []struct {
		name  string
		call  func(*cbr.Client) error
		op    string
		field string
		want  string // the whole error string
	}{
		{"empty agent_id", register(func(in *cbr.AgentRegister) { in.AgentID = "" }), "register agent", "agent_id", "cbr: register agent: invalid agent_id: is required"},
		{"agent_id with slash", register(func(in *cbr.AgentRegister) { in.AgentID = "a/b" }), "register agent", "agent_id", `cbr: register agent: invalid agent_id: must not contain "/"`},
		{"agent_id dot", register(func(in *cbr.AgentRegister) { in.AgentID = "." }), "register agent", "agent_id", `cbr: register agent: invalid agent_id: must not be "." or ".."`},
		{"agent_id dot-dot", register(func(in *cbr.AgentRegister) { in.AgentID = ".." }), "register agent", "agent_id", `cbr: register agent: invalid agent_id: must not be "." or ".."`},
		{"agent_id NUL", register(func(in *cbr.AgentRegister) { in.AgentID = "a\x00b" }), "register agent", "agent_id", "cbr: register agent: invalid agent_id: contains a control character"},
		{"agent_id DEL", register(func(in *cbr.AgentRegister) { in.AgentID = "a\x7f" }), "register agent", "agent_id", "cbr: register agent: invalid agent_id: contains a control character"},
		{"empty host_name", register(func(in *cbr.AgentRegister) { in.HostName = "" }), "register agent", "host_name", "cbr: register agent: invalid host_name: is required"},
		{"blank host_name", register(func(in *cbr.AgentRegister) { in.HostName = "  " }), "register agent", "host_name", "cbr: register agent: invalid host_name: is required"},
		{"host_name newline", register(func(in *cbr.AgentRegister) { in.HostName = "a\nb" }), "register agent", "host_name", "cbr: register agent: invalid host_name: contains a control character"},
		{"empty host_ip", register(func(in *cbr.AgentRegister) { in.HostIP = "" }), "register agent", "host_ip", "cbr: register agent: invalid host_ip: is required"},
		{"empty host_os", register(func(in *cbr.AgentRegister) { in.HostOS = "" }), "register agent", "host_os", "cbr: register agent: invalid host_os: is required"},
		{"host_os tab", register(func(in *cbr.AgentRegister) { in.HostOS = "li\tnux" }), "register agent", "host_os", "cbr: register agent: invalid host_os: contains a control character"},
		{"host_nickname newline", register(func(in *cbr.AgentRegister) { in.HostNickname = "x\r\n" }), "register agent", "host_nickname", "cbr: register agent: invalid host_nickname: contains a control character"},
		{"host_ip name", register(func(in *cbr.AgentRegister) { in.HostIP = "ecs-00002" }), "register agent", "host_ip", "cbr: register agent: invalid host_ip: is not an IPv4 or IPv6 address"},
		{"host_ip short", register(func(in *cbr.AgentRegister) { in.HostIP = "10.10.0" }), "register agent", "host_ip", "cbr: register agent: invalid host_ip: is not an IPv4 or IPv6 address"},
		{"host_ip with port", register(func(in *cbr.AgentRegister) { in.HostIP = "10.10.0.2:80" }), "register agent", "host_ip", "cbr: register agent: invalid host_ip: is not an IPv4 or IPv6 address"},
		{"host_ip with zone", register(func(in *cbr.AgentRegister) { in.HostIP = "fe80::1%eth0" }), "register agent", "host_ip", "cbr: register agent: invalid host_ip: is not an IPv4 or IPv6 address"},
		{"host_ip CIDR", register(func(in *cbr.AgentRegister) { in.HostIP = "10.10.0.0/24" }), "register agent", "host_ip", "cbr: register agent: invalid host_ip: is not an IPv4 or IPv6 address"},
		{"agent_type unknown", register(func(in *cbr.AgentRegister) { in.AgentType = "windows" }), "register agent", "agent_type", "cbr: register agent: invalid agent_type: must be cloud or native"},
		{"agent_type case", register(func(in *cbr.AgentRegister) { in.AgentType = "Native" }), "register agent", "agent_type", "cbr: register agent: invalid agent_type: must be cloud or native"},
		{"agent_version", register(func(in *cbr.AgentRegister) { in.AgentVersion = "1.0" }), "register agent", "agent_version",
			"cbr: register agent: invalid agent_version: does not end in three dot-separated numbers of 1 to 3 digits, such as 1.0.0"},
		{"update empty agent_id", update("", cbr.AgentStatusUninstall), "update agent", "agent_id", "cbr: update agent: invalid agent_id: is required"},
		{"update agent_id with slash", update("../x", cbr.AgentStatusUninstall), "update agent", "agent_id", `cbr: update agent: invalid agent_id: must not contain "/"`},
		{"update agent_id dot-dot", update("..", cbr.AgentStatusUninstall), "update agent", "agent_id", `cbr: update agent: invalid agent_id: must not be "." or ".."`},
		{"update agent_id newline", update("a\n", cbr.AgentStatusUninstall), "update agent", "agent_id", "cbr: update agent: invalid agent_id: contains a control character"},
		{"update empty status", update(testAgentID, ""), "update agent", "status", "cbr: update agent: invalid status: must be uninstall"},
		{"update status normal", update(testAgentID, cbr.AgentStatusNormal), "update agent", "status", "cbr: update agent: invalid status: must be uninstall"},
		{"update status case", update(testAgentID, "UNINSTALL"), "update agent", "status", "cbr: update agent: invalid status: must be uninstall"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, mt := newMockClient(t)

			err := tt.call(c)

			require.Error(t, err)
			assert.ErrorIs(t, err, cbr.ErrInvalidRequest)
			var v *cbr.ValidationError
			require.ErrorAs(t, err, &v)
			assert.Equal(t, tt.op, v.Op)
			assert.Equal(t, tt.field, v.Field)
			assert.EqualError(t, err, tt.want)
			for _, sentinel := range []error{cbr.ErrNotFound, cbr.ErrUnauthorized, cbr.ErrForbidden, cbr.ErrRateLimited} {
				assert.NotErrorIs(t, err, sentinel)
			}
			assert.Equal(t, 0, mt.GetTotalCallCount(), "nothing is sent")
		})
	}
}

// TestAgentVersionPattern checks the API's pattern ((\d){1,3}\.){2}(\d){1,3}$,
// anchored at the end only, as the server applies it: a valid version is sent,
// an invalid one is refused before anything is sent.
func TestAgentVersionPattern(t *testing.T) {
	tests := []struct {
		version string
		valid   bool
	}{
		{"1.0.0", true},
		{"999.999.999", true},
		{"0.0.0", true},
		{"v1.0.0", true},   // only the end is anchored
		{"1234.0.0", true}, // "234.0.0" matches
		{"1.2.3.4", true},  // "2.3.4" matches
		{"release-2.10.3", true},
		{"1.0", false},
		{"1", false},
		{"1.0.1234", false},  // the last number has at most 3 digits
		{"1.1234.0", false},  // so has the middle one
		{"1.0.0-rc1", false}, // the end is anchored
		{"1.0.0.", false},
		{"1..0", false},
		{".1.0", false},
		{"a.b.c", false},
		{"1.0.x", false},
		{"1.0.0 ", false},
		{"１.０.０", false}, // fullwidth digits are not \d
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			st := &stub{answers: []answer{{status: 200, body: string(golden(t, "register_response.json"))}}}
			c, mt := newMockClient(t)
			mt.RegisterResponder("POST", agentsURL, st.respond)
			in := documentedRegister
			in.AgentVersion = tt.version

			_, err := c.RegisterAgent(context.Background(), in)

			if tt.valid {
				require.NoError(t, err)
				require.Equal(t, 1, st.count())
				assert.Contains(t, st.bodies[0], `"agent_version":"`+tt.version+`"`)
				return
			}
			var v *cbr.ValidationError
			require.ErrorAs(t, err, &v)
			assert.Equal(t, "agent_version", v.Field)
			assert.Equal(t, 0, st.count())
		})
	}
}

func TestHostIPForms(t *testing.T) {
	for _, ip := range []string{"10.10.0.2", "192.168.10.144", "::1", "fd00::2", "2001:db8::8a2e:370:7334", "::ffff:10.0.0.1"} {
		t.Run(ip, func(t *testing.T) {
			st := &stub{answers: []answer{{status: 200, body: string(golden(t, "register_response.json"))}}}
			c, mt := newMockClient(t)
			mt.RegisterResponder("POST", agentsURL, st.respond)
			in := documentedRegister
			in.HostIP = ip
			_, err := c.RegisterAgent(context.Background(), in)
			require.NoError(t, err)
			require.Equal(t, 1, st.count())
			assert.Contains(t, st.bodies[0], `"host_ip":"`+ip+`"`)
		})
	}
}

func TestOptionalFieldsAreSent(t *testing.T) {
	st := &stub{answers: []answer{{status: 200, body: string(golden(t, "register_response.json"))}}}
	c, mt := newMockClient(t)
	mt.RegisterResponder("POST", agentsURL, st.respond)

	_, err := c.RegisterAgent(context.Background(), cbr.AgentRegister{
		AgentID: "id-1", HostName: "h", HostIP: "10.0.0.1", HostOS: "windows",
		HostNickname: "web <1> & co", AgentType: cbr.AgentTypeCloud,
	})
	require.NoError(t, err)
	require.Equal(t, 1, st.count())
	assert.JSONEq(t, `{"agent":{"agent_id":"id-1","host_name":"h","host_ip":"10.0.0.1","host_os":"windows",
		"host_nickname":"web <1> & co","agent_type":"cloud"}}`, st.bodies[0])
}
