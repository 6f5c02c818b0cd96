package cbr

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// This file holds the cache of credentials that are fetched: IAM tokens,
// temporary keys of the metadata service, and the project ID.

// cached holds a value that is fetched on demand and shared by every
// goroutine: an IAM token, temporary keys, a project ID. One fetch runs at a
// time however many goroutines ask. A value is fresh until its renewal time;
// past that, one caller renews it while the others go on using it until it
// expires. A failed fetch is not kept, unless it is permanent: then it is
// returned without fetching for failureMemory.
type cached[T any] struct {
	now func() time.Time
	// window is how long before the end of its lifetime a value is renewed
	// (see renewalTimes); 0 for a value that never goes stale.
	window      time.Duration
	mu          sync.Mutex
	val         T
	ok          bool
	fetched     time.Time // when val was fetched
	renew       time.Time // when to renew; zero for never
	expiry      time.Time // when to stop using it; zero for never
	failure     error     // a permanent failure to fetch, returned until failedUntil
	failedUntil time.Time
	flight      *flight[T]
}

// flight is one fetch that callers wait for.
type flight[T any] struct {
	done chan struct{}
	val  T
	err  error
	// abandoned is set when the fetch failed because the context of the
	// caller that ran it ended, not because the fetch itself failed.
	abandoned bool
}

// fetchFunc fetches a value and says how long it stays valid from the
// moment it was asked for; the lifetime of a value that never goes stale is
// not used.
type fetchFunc[T any] func(ctx context.Context) (val T, lifetime time.Duration, err error)

// retryAfterFailedRenewal is how long a still valid value is used after a
// failed renewal before the next attempt.
const retryAfterFailedRenewal = 30 * time.Second

// failureMemory is how long a permanent failure to fetch (see isPermanent),
// such as a wrong password or a server without an agency, is returned
// without asking again: thousands of hosts with a wrong password must not
// hammer IAM, nor get the user locked out.
const failureMemory = time.Minute

// minAgeToRenew is how old a value must be for a refusal to drop it. A value
// fetched less long ago that the server refuses is refused for another
// reason (missing permissions, a gateway fault) than its age: a new one would
// be refused too, so the refusal is returned instead.
const minAgeToRenew = time.Minute

// get returns the value, fetching it when there is none or it is stale.
func (c *cached[T]) get(ctx context.Context, fetch fetchFunc[T]) (T, error) {
	for {
		c.mu.Lock()
		now := c.now()
		valid := c.ok && (c.expiry.IsZero() || now.Before(c.expiry))
		if valid && (c.renew.IsZero() || now.Before(c.renew)) {
			v := c.val
			c.mu.Unlock()
			return v, nil
		}
		f := c.flight
		if f != nil && valid { // someone is renewing it; it still works meanwhile
			v := c.val
			c.mu.Unlock()
			return v, nil
		}
		if f == nil && c.failure != nil && now.Before(c.failedUntil) {
			err := c.failure
			c.mu.Unlock()
			var zero T
			return zero, err
		}
		if f == nil {
			f = &flight[T]{done: make(chan struct{})}
			c.flight = f
			c.mu.Unlock()
			return c.lead(ctx, f, fetch)
		}
		c.mu.Unlock()
		select {
		case <-f.done:
			if f.abandoned && ctx.Err() == nil {
				continue // the caller that fetched gave up; fetch for this one
			}
			return f.val, f.err
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
}

// lead runs the fetch of flight f and publishes its result.
func (c *cached[T]) lead(ctx context.Context, f *flight[T], fetch fetchFunc[T]) (T, error) {
	asked := c.now()
	val, lifetime, err := fetch(ctx)
	c.mu.Lock()
	c.flight = nil
	now := c.now()
	switch {
	case err == nil:
		c.val, c.ok, c.fetched, c.failure = val, true, now, nil
		c.renew, c.expiry = time.Time{}, time.Time{}
		if c.window > 0 {
			c.renew, c.expiry = renewalTimes(asked, lifetime, c.window)
		}
	case c.ok && (c.expiry.IsZero() || now.Before(c.expiry)):
		// Renewal failed but the value still works: use it a while longer.
		val, err = c.val, nil
		c.renew = now.Add(retryAfterFailedRenewal)
	case isPermanent(err):
		c.failure, c.failedUntil = err, now.Add(failureMemory)
	}
	f.val, f.err, f.abandoned = val, err, err != nil && ctx.Err() != nil
	c.mu.Unlock()
	close(f.done)
	return val, err
}

// invalidate forgets the value if stale reports that it is the one the
// server refused, so that the next get fetches a new one; a value younger
// than minAgeToRenew is kept. It reports whether the next get gives another
// value than the refused one: false when it kept it.
func (c *cached[T]) invalidate(stale func(T) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ok || !stale(c.val) {
		return true // already forgotten or replaced
	}
	if c.now().Sub(c.fetched) < minAgeToRenew {
		return false
	}
	var zero T
	c.val, c.ok = zero, false
	return true
}

// isPermanent reports whether a failure to fetch would recur if asked again
// at once: an *APIError with a 4xx status other than 429.
func isPermanent(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode < 500 &&
		apiErr.StatusCode != http.StatusTooManyRequests
}

// renewalTimes returns when to renew and when to stop using credentials
// asked for at fetched (local clock) that stay valid for lifetime: renew window
// early (at most half the lifetime), stop a tenth of window early (at most a
// tenth of the lifetime). Measuring the lifetime on the server's clock and
// counting it from the local fetch time keeps a skewed local clock harmless.
func renewalTimes(fetched time.Time, lifetime, window time.Duration) (renew, expiry time.Time) {
	lifetime = max(lifetime, 0)
	end := fetched.Add(lifetime)
	return end.Add(-min(window, lifetime/2)), end.Add(-min(window/10, lifetime/10))
}
