package cbr

import (
	"context"
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
