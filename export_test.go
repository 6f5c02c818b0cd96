package cbr

import (
	"context"
	"encoding/json"
	"net/url"
	"time"
)

// WithClock sets the clock of the client's credentials: the X-Sdk-Date of
// signatures and the renewal of tokens and temporary keys. For tests only.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		c.now = now
		return nil
	}
}

// Call sends one call through the client's pipeline, for tests of requests
// that no operation makes yet, such as a GET with a query.
func (c *Client) Call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	_, err := c.do(ctx, "test call", method, path, query, in, out)
	return err
}

// NewTransport is the transport of a client built without WithHTTPClient,
// for the fair baseline of the benchmarks.
var NewTransport = newTransport

// DecodeAgentResponse decodes an {"agent": {...}} answer as the operations
// do, through the wire form, for the benchmarks.
func DecodeAgentResponse(data []byte) (*Agent, error) {
	var out agentBody
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	return out.result("decode", outcome{status: 200})
}

// DecodeAgentListResponse decodes a ListAgents answer as ListAgents does, for
// the benchmarks.
func DecodeAgentListResponse(data []byte) (*AgentList, error) {
	var out agentListWire
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	return out.list(), nil
}
