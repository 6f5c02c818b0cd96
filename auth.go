package cbr

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
)

// Credentials authenticate requests to CBR. The client calls Authenticate once
// for every attempt, retries included, beneath its retry loop, so a signature or
// a token is always fresh.
//
// Token and AKSK are the credentials most programs need. A Credentials value
// must be safe for concurrent use, and must never print a secret.
type Credentials interface {
	// Authenticate adds authentication headers to req, one attempt of a request
	// that the client built. body is the exact body to be sent (nil for none);
	// req.Body must not be read. req.Context() is the call's context.
	Authenticate(req *http.Request, body []byte) error
}

// Token is a static, project-scoped IAM token, sent as X-Auth-Token. It is
// the authentication the CBR API reference documents. A token is valid for
// 24 hours; see IAM password credentials for a token that renews itself.
type Token string

// Authenticate sets the X-Auth-Token header.
func (t Token) Authenticate(req *http.Request, _ []byte) error {
	if t == "" {
		return errors.New("cbr: token is empty")
	}
	req.Header.Set("X-Auth-Token", string(t))
	return nil
}

// String returns a redacted form, so that the token never reaches a log.
func (t Token) String() string { return "cbr.Token(REDACTED)" }

// Format prints the redacted form for every fmt verb, %#v and %x included.
func (t Token) Format(f fmt.State, _ rune) { io.WriteString(f, t.String()) }

// LogValue returns a redacted form for log/slog.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalJSON returns the redacted form as a JSON string, so that a token in a
// struct logged as JSON stays secret. Use string(t) for the token itself.
func (t Token) MarshalJSON() ([]byte, error) { return []byte(`"` + t.String() + `"`), nil }
