package cbr

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Credentials authenticate requests to CBR. The client calls Authenticate once
// for every attempt, retries included, beneath its retry loop, so a signature or
// a token is always fresh.
//
// Token, AKSK, IAMPassword and ECSMetadata are interchangeable through
// WithCredentials. A Credentials value must be safe for concurrent use, and
// must never print a secret. Those of this package print redacted, except in
// an unexported field of a struct of yours (see AKSK).
type Credentials interface {
	// Authenticate adds authentication headers to req, one attempt of a request
	// that the client built. body is the exact body to be sent (nil for none);
	// req.Body must not be read. req.Context() is the call's context.
	Authenticate(req *http.Request, body []byte) error
}

// Token is a static, project-scoped IAM token, sent as X-Auth-Token. It is
// the authentication the CBR API reference documents. A token is valid for
// 24 hours; IAMPassword gets a token and renews it.
type Token string

// Authenticate sets the X-Auth-Token header.
func (t Token) Authenticate(req *http.Request, _ []byte) error {
	if t == "" {
		return errors.New("cbr: token is empty")
	}
	req.Header.Set("X-Auth-Token", string(t))
	return nil
}

// bind rejects a token that cannot be sent, so that NewClient fails rather
// than the first call: an empty one, or one with a control character, such
// as the newline at the end of the file it was read from. The error never
// holds the token.
func (t Token) bind(binding) (Credentials, error) {
	switch {
	case t == "":
		return nil, errors.New("cbr: token is empty")
	case strings.ContainsFunc(string(t), isControl):
		return nil, errors.New("cbr: token contains a control character, such as a trailing newline")
	}
	return t, nil
}

// String returns a redacted form, so that the token never reaches a log.
func (t Token) String() string { return "cbr.Token(REDACTED)" }

// Format prints the redacted form for every fmt verb, %#v and %x included.
func (t Token) Format(f fmt.State, _ rune) { io.WriteString(f, t.String()) }

// LogValue returns a redacted form for log/slog.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalJSON writes the redacted form, so that the token never reaches a
// JSON log, even inside another value.
func (t Token) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// AKSK is an access key and secret key pair, which signs every attempt with
// SDK-HMAC-SHA256: the method, path, query, body hash and the headers Host,
// Content-Type, X-Sdk-Date (the time of the attempt), X-Project-Id and
// X-Security-Token. With SecurityToken set it is a temporary key pair (from
// IAM's securitytokens API or an agency), and the token is sent as
// X-Security-Token.
//
// Signatures are checked against the gateway's clock: one more than 15
// minutes off is rejected, so the host's clock must be right.
//
// An AKSK prints redacted with fmt's verbs, slog and encoding/json: the
// first four characters of the access key, never the secret key or the
// security token. fmt cannot redact an AKSK held in an unexported field of a
// struct of yours, though: it prints such a field without calling its Format
// method, secret key included (and so does slog's text handler). Keep
// credentials out of structs you print.
type AKSK struct {
	// AccessKey is the access key ID (AK).
	AccessKey string
	// SecretKey is the secret access key (SK). It signs and is never sent.
	SecretKey string
	// SecurityToken comes with a temporary key pair; empty for a permanent one.
	SecurityToken string
}

// akskSignedHeaders are the headers AKSK signs when present; "host" and
// "x-sdk-date" are always signed.
var akskSignedHeaders = []headerName{
	{"Content-Type", "content-type"}, {"Host", hostHeader}, {"X-Project-Id", "x-project-id"},
	{"X-Sdk-Date", sdkDateHeader}, {"X-Security-Token", "x-security-token"},
}

// Authenticate signs req with the current time.
func (k AKSK) Authenticate(req *http.Request, body []byte) error {
	return k.sign(req, body, time.Now())
}

// sign sets X-Sdk-Date to now, X-Security-Token when there is one, and the
// Authorization header with the signature of req and body. It makes two
// allocations: one string holds X-Sdk-Date and Authorization, one slice the
// values of the three headers.
func (k AKSK) sign(req *http.Request, body []byte, now time.Time) error {
	if err := k.check(); err != nil {
		return err
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	values := make([]string, 3) // X-Sdk-Date, Authorization, X-Security-Token
	req.Header.Del("X-Security-Token")
	if k.SecurityToken != "" {
		values[2] = k.SecurityToken
		req.Header["X-Security-Token"] = values[2:3:3]
	}
	var hashBuf [2 * sha256.Size]byte
	var buf [256]byte
	out := appendSdkDate(buf[:0], now)
	dateLen := len(out)
	s := signing{method: req.Method, url: req.URL, host: host, date: out, header: req.Header,
		bodyHash: appendBodyHash(hashBuf[:0], body)}
	both := string(s.appendAuthorization(out, akskSignedHeaders, k.AccessKey, k.SecretKey))
	values[0], values[1] = both[:dateLen], both[dateLen:]
	req.Header["X-Sdk-Date"] = values[0:1:1]
	req.Header["Authorization"] = values[1:2:2]
	return nil
}

// check reports an AKSK that cannot sign: a missing key, or a character that
// cannot go into a header.
func (k AKSK) check() error {
	switch {
	case k.AccessKey == "":
		return errors.New("cbr: AKSK: access key is empty")
	case k.SecretKey == "":
		return errors.New("cbr: AKSK: secret key is empty")
	case strings.ContainsFunc(k.AccessKey, isNotKeyRune):
		return errors.New("cbr: AKSK: access key contains a space, a comma or a control character")
	case strings.ContainsFunc(k.SecurityToken, isControl):
		return errors.New("cbr: AKSK: security token contains a control character")
	}
	return nil
}

// isNotKeyRune reports whether r cannot appear in an access key, which goes
// into the Authorization header as "Access=AK,".
func isNotKeyRune(r rune) bool { return isControl(r) || r == ' ' || r == ',' }

// String returns a redacted form: the first four characters of the access
// key, and no secret.
func (k AKSK) String() string {
	var b strings.Builder
	b.WriteString("cbr.AKSK{AccessKey: ")
	b.WriteString(keyPrefix(k.AccessKey))
	b.WriteString(", SecretKey: REDACTED")
	if k.SecurityToken != "" {
		b.WriteString(", SecurityToken: REDACTED")
	}
	b.WriteString("}")
	return b.String()
}

// Format prints the redacted form for every fmt verb, %#v and %x included.
func (k AKSK) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// LogValue returns a redacted form for log/slog.
func (k AKSK) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON writes the redacted form, so that the keys never reach a JSON
// log, even inside another value.
func (k AKSK) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// keyPrefix shows enough of an access key to tell keys apart in a log.
func keyPrefix(ak string) string {
	if len(ak) <= 4 {
		return strings.Repeat("*", len(ak))
	}
	return strings.Map(func(r rune) rune {
		if isNotKeyRune(r) {
			return '?'
		}
		return r
	}, ak[:4]) + "****"
}

// binding is what NewClient gives credentials that need more than the request
// to authenticate it: an HTTP client for IAM or the metadata service, the
// region and project, and a clock.
type binding struct {
	region    string
	projectID string
	iam       string       // IAM endpoint ending in "/", or "" if unknown
	iamHost   string       // the host of iam
	http      *http.Client // the base HTTP client; it follows no redirect
	now       func() time.Time
}

// binder is implemented by credentials that NewClient must bind to the
// client: bind returns the credentials the client then uses, checked and
// ready. It does no I/O.
type binder interface {
	bind(b binding) (Credentials, error)
}

// renewer is implemented by credentials that can go stale on the server's
// side before the client knows, such as a revoked IAM token. After a 401 the
// client calls expire with the attempt that was refused; when expire reports
// that other credentials will be used, the client authenticates the attempt
// again and sends it once more.
type renewer interface {
	expire(refused *http.Request) bool
}

// bind checks the keys and binds them to the client's clock.
func (k AKSK) bind(b binding) (Credentials, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	return &akskSigner{keys: k, now: b.now}, nil
}

// akskSigner is an AKSK bound to a client.
type akskSigner struct {
	keys AKSK
	now  func() time.Time
}

// Authenticate signs req.
func (s *akskSigner) Authenticate(req *http.Request, body []byte) error {
	return s.keys.sign(req, body, s.now())
}

// Format prints the redacted form of the keys for every fmt verb.
func (s *akskSigner) Format(f fmt.State, _ rune) { io.WriteString(f, s.keys.String()) }

// ECSMetadata gets temporary AK/SK credentials from the metadata service of
// the Elastic Cloud Server (ECS) the program runs on, from the agency (IAM
// role) attached to the server, and renews them before they expire. The
// server needs an agency with CBR permissions. Use it for an agent installer
// on a cloud server: no key is stored on the host.
//
// It is used only when given to WithCredentials; the client never falls back
// to it. It talks to the metadata service with a transport of its own (no
// proxy, 3s timeout), not the one of WithHTTPClient: tests point Endpoint at
// a fake such as cbrtest.Server's.
type ECSMetadata struct {
	// Endpoint is the metadata service's base URL; empty means
	// http://169.254.169.254. Tests point it at cbrtest.Server.MetadataURL.
	Endpoint string
}

// defaultMetadataEndpoint is the ECS metadata service.
const defaultMetadataEndpoint = "http://169.254.169.254/"

// Authenticate fails: ECSMetadata needs the client that WithCredentials binds it to.
func (m ECSMetadata) Authenticate(*http.Request, []byte) error {
	return errors.New("cbr: ECSMetadata works only through WithCredentials")
}

// cached holds a value that is fetched on demand and shared by every
// goroutine: an IAM token, temporary keys, a project ID. One fetch runs at a
// time however many goroutines ask. A value is fresh until its renewal time;
// past that, one caller renews it while the others go on using it until it
// expires. A failed fetch is not kept, unless it is permanent: then it is
// returned without fetching for failureMemory.
type cached[T any] struct {
	now         func() time.Time
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

// fetchFunc fetches a value and says when to renew it and when it expires,
// zero times for never.
type fetchFunc[T any] func(ctx context.Context) (val T, renew, expiry time.Time, err error)

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
	val, renew, expiry, err := fetch(ctx)
	c.mu.Lock()
	c.flight = nil
	now := c.now()
	switch {
	case err == nil:
		c.val, c.ok, c.fetched, c.renew, c.expiry = val, true, now, renew, expiry
		c.failure = nil
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
// fetched at fetched (local clock) that stay valid for lifetime: renew window
// early (at most half the lifetime), stop a tenth of window early (at most a
// tenth of the lifetime). Measuring the lifetime on the server's clock and
// counting it from the local fetch time keeps a skewed local clock harmless.
func renewalTimes(fetched time.Time, lifetime, window time.Duration) (renew, expiry time.Time) {
	lifetime = max(lifetime, 0)
	end := fetched.Add(lifetime)
	return end.Add(-min(window, lifetime/2)), end.Add(-min(window/10, lifetime/10))
}
