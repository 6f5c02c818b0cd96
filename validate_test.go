package cbr_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
)

// breaksLine reports whether s holds anything that ends a line on a
// terminal or in a log viewer.
func breaksLine(s string) bool {
	return strings.ContainsAny(s, "\n\r\v\f\u0085\u2028\u2029")
}

// unsendable are strings that must never be sent: control characters of
// every kind (C0, DEL, C1 with U+0085), the line and paragraph separators,
// and invalid UTF-8, which encoding/json would silently replace.
var unsendable = map[string]string{
	"NUL":           "a\x00b",
	"newline":       "a\nb",
	"DEL":           "a\x7fb",
	"U+0085 (NEL)":  "a\u0085b",
	"U+009B (CSI)":  "a\u009bb",
	"U+2028":        "a\u2028b",
	"U+2029":        "a\u2029b",
	"invalid UTF-8": "a\xffb",
}

// TestUnsendableTextIsRefused checks every string an operation sends: each
// is refused before anything is sent, with a *ValidationError whose text is
// one line.
func TestUnsendableTextIsRefused(t *testing.T) {
	validCheck := cbr.AgentCheckRequest{ResourceID: "r1", ResourceType: cbr.ResourceTypeServer}
	for name, bad := range unsendable {
		calls := []struct {
			field string
			call  func(*cbr.Client) error
		}{
			{"agent_id", func(c *cbr.Client) error {
				_, err := c.RegisterAgent(context.Background(), registerAs(bad))
				return err
			}},
			{"host_name", func(c *cbr.Client) error {
				in := documentedRegister
				in.HostName = bad
				_, err := c.RegisterAgent(context.Background(), in)
				return err
			}},
			{"host_os", func(c *cbr.Client) error {
				in := documentedRegister
				in.HostOS = bad
				_, err := c.RegisterAgent(context.Background(), in)
				return err
			}},
			{"host_nickname", func(c *cbr.Client) error {
				in := documentedRegister
				in.HostNickname = bad
				_, err := c.RegisterAgent(context.Background(), in)
				return err
			}},
			{"agent_version", func(c *cbr.Client) error { // the pattern is anchored at the end only
				in := documentedRegister
				in.AgentVersion = bad + "1.0.0"
				_, err := c.RegisterAgent(context.Background(), in)
				return err
			}},
			{"agent_id", func(c *cbr.Client) error {
				_, err := c.UpdateAgent(context.Background(), bad, cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
				return err
			}},
			{"agent_id", func(c *cbr.Client) error { _, err := c.ShowAgent(context.Background(), bad); return err }},
			{"agent_id", func(c *cbr.Client) error { return c.UnregisterAgent(context.Background(), bad) }},
			{"status", func(c *cbr.Client) error {
				_, err := c.ListAgents(context.Background(), cbr.ListAgentsOptions{Status: cbr.AgentStatus(bad)})
				return err
			}},
			{"agent_id", func(c *cbr.Client) error {
				_, err := c.ListAgents(context.Background(), cbr.ListAgentsOptions{AgentIDs: []string{"ok", bad}})
				return err
			}},
			{"add_path", func(c *cbr.Client) error {
				_, err := c.AddAgentPaths(context.Background(), "a1", cbr.AddPathsRequest{Paths: []string{"/ok", "/" + bad}})
				return err
			}},
			{"exclude_path.exclude_path_name", func(c *cbr.Client) error {
				_, err := c.AddAgentPaths(context.Background(), "a1", cbr.AddPathsRequest{Paths: []string{"/ok"},
					Exclude: []cbr.ExcludePath{{PathName: "/ok", ExcludePathNames: []string{bad}}}})
				return err
			}},
			{"agent_id", func(c *cbr.Client) error {
				_, err := c.AddAgentPaths(context.Background(), bad, cbr.AddPathsRequest{Paths: []string{"/ok"}})
				return err
			}},
			{"remove_path", func(c *cbr.Client) error {
				_, err := c.RemoveAgentPaths(context.Background(), "a1", cbr.RemovePathsRequest{Paths: []string{"/ok", bad}})
				return err
			}},
			{"resource_id", func(c *cbr.Client) error {
				_, err := c.CheckAgents(context.Background(), cbr.CheckAgentsRequest{Resources: []cbr.AgentCheckRequest{
					validCheck, {ResourceID: bad, ResourceType: cbr.ResourceTypeServer}}})
				return err
			}},
			{"resource_name", func(c *cbr.Client) error {
				_, err := c.CheckAgents(context.Background(), cbr.CheckAgentsRequest{Resources: []cbr.AgentCheckRequest{
					{ResourceID: "r1", ResourceType: cbr.ResourceTypeServer, ResourceName: bad}}})
				return err
			}},
		}
		for _, tc := range calls {
			c, mt := newMockClient(t)
			err := tc.call(c)
			var ve *cbr.ValidationError
			if assert.ErrorAs(t, err, &ve, "%s in %s", name, tc.field) {
				assert.Equal(t, tc.field, ve.Field, name)
			}
			assert.False(t, breaksLine(err.Error()), "%s in %s: %q is one line", name, tc.field, err.Error())
			assert.Equal(t, 0, mt.GetTotalCallCount(), "%s in %s: nothing is sent", name, tc.field)
		}
	}
}

// TestUnsendableOptionsAreRefused checks the strings NewClient takes: the
// project ID and user agent, and the credentials that go into headers.
func TestUnsendableOptionsAreRefused(t *testing.T) {
	for name, bad := range unsendable {
		if name == "invalid UTF-8" {
			continue // headers carry bytes: only the project ID, which goes into the path, must be UTF-8
		}
		for what, opts := range map[string][]cbr.Option{
			"project ID":          {cbr.WithProjectID(bad), cbr.WithCredentials(cbr.Token("t"))},
			"user agent":          {cbr.WithUserAgent(bad), cbr.WithProjectID("p"), cbr.WithCredentials(cbr.Token("t"))},
			"token":               {cbr.WithProjectID("p"), cbr.WithCredentials(cbr.Token(bad))},
			"access key":          {cbr.WithProjectID("p"), cbr.WithCredentials(cbr.AKSK{AccessKey: bad, SecretKey: "s"})},
			"AKSK security token": {cbr.WithProjectID("p"), cbr.WithCredentials(cbr.AKSK{AccessKey: "a", SecretKey: "s", SecurityToken: bad})},
		} {
			_, err := cbr.NewClient(append([]cbr.Option{cbr.WithEndpoint(testEndpoint)}, opts...)...)
			if assert.Error(t, err, "%s in the %s", name, what) {
				assert.False(t, breaksLine(err.Error()), "%s in the %s: %q is one line", name, what, err.Error())
			}
		}
	}
	_, err := cbr.NewClient(cbr.WithEndpoint(testEndpoint), cbr.WithProjectID("p\xff"), cbr.WithCredentials(cbr.Token("t")))
	assert.EqualError(t, err, "cbr: invalid project ID: is not valid UTF-8")
}

// TestTextBeyondASCIIIsSent checks that the checks refuse only what they
// must: letters, symbols and spaces of any script are sent as they are.
func TestTextBeyondASCIIIsSent(t *testing.T) {
	c, mt := newMockClient(t)
	st := answering(200, `{"agent":{"agent_id":"agent-ü"}}`)
	mt.RegisterNoResponder(st.respond)
	in := registerAs("agent-ü")
	in.HostName, in.HostNickname = "服务器-01", "caf\u00e9 \u00a0host" // NBSP is a space, not a control
	_, err := c.RegisterAgent(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, 1, st.count())
	assert.Contains(t, st.bodies[0], `"host_name":"服务器-01"`)
	assert.Equal(t, "/v3/"+testProject+"/agents", st.reqs[0].URL.Path)
}

// TestValidateMatchesTheOperation checks that each request type's Validate
// returns the very error its operation returns, Op included, and nil for a
// valid request.
func TestValidateMatchesTheOperation(t *testing.T) {
	c, mt := newMockClient(t)
	ctx := context.Background()
	badRegister := registerAs("a1")
	badRegister.HostIP = "ecs-00002"

	for _, tc := range []struct {
		name     string
		validate func() error
		call     func() error
		op       string
		field    string
	}{
		{"AgentRegister", badRegister.Validate,
			func() error { _, err := c.RegisterAgent(ctx, badRegister); return err }, "register agent", "host_ip"},
		{"AgentUpdate", cbr.AgentUpdate{Status: cbr.AgentStatusNormal}.Validate,
			func() error {
				_, err := c.UpdateAgent(ctx, "a1", cbr.AgentUpdate{Status: cbr.AgentStatusNormal})
				return err
			}, "update agent", "status"},
		{"AddPathsRequest", cbr.AddPathsRequest{Paths: []string{"relative/path"}}.Validate,
			func() error {
				_, err := c.AddAgentPaths(ctx, "a1", cbr.AddPathsRequest{Paths: []string{"relative/path"}})
				return err
			}, "add agent paths", "add_path"},
		{"RemovePathsRequest", cbr.RemovePathsRequest{}.Validate,
			func() error { _, err := c.RemoveAgentPaths(ctx, "a1", cbr.RemovePathsRequest{}); return err },
			"remove agent paths", "remove_path"},
		{"CheckAgentsRequest", cbr.CheckAgentsRequest{Resources: []cbr.AgentCheckRequest{{ResourceID: "r1", ResourceType: "OS::Cinder::Volume"}}}.Validate,
			func() error {
				_, err := c.CheckAgents(ctx, cbr.CheckAgentsRequest{Resources: []cbr.AgentCheckRequest{{ResourceID: "r1", ResourceType: "OS::Cinder::Volume"}}})
				return err
			}, "check agents", "resource_type"},
		{"ListAgentsOptions", cbr.ListAgentsOptions{Limit: 1001}.Validate,
			func() error { _, err := c.ListAgents(ctx, cbr.ListAgentsOptions{Limit: 1001}); return err },
			"list agents", "limit"},
	} {
		err := tc.validate()
		var ve *cbr.ValidationError
		require.ErrorAs(t, err, &ve, tc.name)
		assert.Equal(t, tc.op, ve.Op, tc.name)
		assert.Equal(t, tc.field, ve.Field, tc.name)
		assert.ErrorIs(t, err, cbr.ErrInvalidRequest, tc.name)
		assert.Equal(t, err, tc.call(), "%s: Validate returns what the operation returns", tc.name)
	}
	assert.Equal(t, 0, mt.GetTotalCallCount())

	for name, validate := range map[string]func() error{
		"AgentRegister":      documentedRegister.Validate,
		"AgentUpdate":        cbr.AgentUpdate{Status: cbr.AgentStatusUninstall}.Validate,
		"AddPathsRequest":    cbr.AddPathsRequest{Paths: []string{"/opt/data", `D:\data`}}.Validate,
		"RemovePathsRequest": cbr.RemovePathsRequest{Paths: []string{"relative/path"}}.Validate,
		"CheckAgentsRequest": cbr.CheckAgentsRequest{Resources: []cbr.AgentCheckRequest{{ResourceID: "r1", ResourceType: cbr.ResourceTypeBareMetalServer}}}.Validate,
		"ListAgentsOptions":  cbr.ListAgentsOptions{}.Validate,
		"unknown status":     cbr.ListAgentsOptions{Status: "upgrading"}.Validate,
	} {
		assert.NoError(t, validate(), name)
	}
}

// TestValidationErrorsQuoteInput checks that a reason holding the caller's
// input quotes it, so that it cannot break the line or pass for SDK text.
func TestValidationErrorsQuoteInput(t *testing.T) {
	err := cbr.AddPathsRequest{Paths: []string{"/ok\u2028injected: line"}}.Validate()
	require.Error(t, err)
	assert.Equal(t, `cbr: add agent paths: invalid add_path: "/ok\u2028injected: line" contains a control character`, err.Error())
	err = cbr.RemovePathsRequest{Paths: []string{""}}.Validate()
	assert.EqualError(t, err, `cbr: remove agent paths: invalid remove_path: "" is empty`)
	assert.True(t, errors.Is(err, cbr.ErrInvalidRequest))
}
