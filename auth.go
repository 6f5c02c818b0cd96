package cbr

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
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
