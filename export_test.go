package cbr

import "time"

// WithClock sets the clock of the client's credentials: the X-Sdk-Date of
// signatures and the renewal of tokens and temporary keys. For tests only.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		c.now = now
		return nil
	}
}
