package cbr

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors, matched with errors.Is. An *APIError matches the one for its
// status code; a *ValidationError matches ErrInvalidRequest.
var (
	// ErrNotFound matches an *APIError with status 404.
	ErrNotFound = errors.New("cbr: not found")
	// ErrUnauthorized matches an *APIError with status 401.
	ErrUnauthorized = errors.New("cbr: unauthorized")
	// ErrForbidden matches an *APIError with status 403.
	ErrForbidden = errors.New("cbr: forbidden")
	// ErrRateLimited matches an *APIError with status 429.
	ErrRateLimited = errors.New("cbr: rate limited")
	// ErrInvalidRequest matches a *ValidationError: the request was rejected
	// before anything was sent.
	ErrInvalidRequest = errors.New("cbr: invalid request")
	// ErrUnexpectedResponse matches a *ResponseError: a 2xx answer the client
	// cannot use.
	ErrUnexpectedResponse = errors.New("cbr: unexpected response")
	// ErrAttemptTimeout matches an attempt that took longer than the retry
	// policy's AttemptTimeout, or than the http.Client.Timeout of
	// WithHTTPClient, or that hit one of the transport's own timeouts (dial,
	// TLS handshake, response header), while the caller's context was still
	// alive. It is retried like a dropped connection; when the last attempt
	// timed out, the call's error matches it. It never matches
	// context.DeadlineExceeded, which only the caller's context ending does.
	ErrAttemptTimeout = errors.New("cbr: attempt timed out")
)

// maxErrorBody caps how much of an error response body is read and kept.
const maxErrorBody = 64 << 10

// APIError is a non-2xx answer from the API, the API gateway or IAM.
type APIError struct {
	// Op is the operation that failed, such as "register agent".
	Op string
	// StatusCode is the HTTP status of the final attempt.
	StatusCode int
	// Code is the service error code, such as "BackupService.7410" or "APIGW.0301".
	Code string
	// Message is the service's error message.
	Message string
	// RequestID is the X-Request-Id header, or the request_id of the body.
	RequestID string
	// Attempts is how many attempts were sent, including the first.
	Attempts int
	// Body is the raw response body, capped at 64 KiB.
	Body []byte
}

// Error returns one line with the operation, status, code, message and request ID.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("cbr: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(strconv.Itoa(e.StatusCode))
	if text := http.StatusText(e.StatusCode); text != "" {
		b.WriteString(" ")
		b.WriteString(text)
	}
	if e.Code != "" && e.Code != strconv.Itoa(e.StatusCode) { // IAM's code repeats the status
		b.WriteString(" ")
		b.WriteString(oneLine(e.Code, 100))
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(oneLine(e.Message, 300))
	}
	if e.RequestID != "" {
		b.WriteString(" (request id ")
		b.WriteString(oneLine(e.RequestID, 100))
		b.WriteString(")")
	}
	if e.Attempts > 1 {
		b.WriteString(" (after ")
		b.WriteString(strconv.Itoa(e.Attempts))
		b.WriteString(" attempts)")
	}
	return b.String()
}

// Is reports whether target is the sentinel for e's status code.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	}
	return false
}

// ValidationError reports a request that was rejected before anything was sent.
type ValidationError struct {
	// Op is the operation, such as "register agent".
	Op string
	// Field is the JSON name of the offending field or parameter, such as "host_ip".
	Field string
	// Reason says what is wrong with it.
	Reason string
}

// Error returns one line naming the operation, the field and the reason.
func (e *ValidationError) Error() string {
	if e.Op == "" {
		return "cbr: invalid " + e.Field + ": " + e.Reason
	}
	return "cbr: " + e.Op + ": invalid " + e.Field + ": " + e.Reason
}

// Is reports whether target is ErrInvalidRequest.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidRequest }

// ResponseError is a 2xx answer the client cannot use: a body that is not
// JSON, is cut short, is over 16 MiB, or lacks the object the operation
// returns (such as {}, null or {"agent":null}). It matches
// ErrUnexpectedResponse. The server may have acted on the request.
type ResponseError struct {
	// Op is the operation, such as "show agent".
	Op string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// RequestID is the X-Request-Id header of the answer.
	RequestID string
	// Reason says what is wrong with the answer.
	Reason string

	err error // the decoder's error, if that is what is wrong
}

// Error returns one line with the operation, status, reason and request ID.
func (e *ResponseError) Error() string {
	msg := "cbr: " + e.Op + ": unexpected response: " + oneLine(e.Reason, 300)
	if e.StatusCode != 0 {
		msg = "cbr: " + e.Op + ": unexpected " + strconv.Itoa(e.StatusCode) + " response: " + oneLine(e.Reason, 300)
	}
	if e.RequestID != "" {
		msg += " (request id " + oneLine(e.RequestID, 100) + ")"
	}
	return msg
}

// Is reports whether target is ErrUnexpectedResponse.
func (e *ResponseError) Is(target error) bool { return target == ErrUnexpectedResponse }

// Unwrap returns the decoder's error, such as a *json.SyntaxError, or nil.
func (e *ResponseError) Unwrap() error { return e.err }

// attemptTimeoutError is an attempt that timed out while the caller's context
// was alive. It matches ErrAttemptTimeout and is a net.Error whose Timeout is
// true, but it does not unwrap to its cause, which may be a
// context.DeadlineExceeded of the attempt's own deadline.
type attemptTimeoutError struct{ cause error }

func (e *attemptTimeoutError) Error() string {
	return "attempt timed out: " + trimPrefix(e.cause)
}
func (e *attemptTimeoutError) Is(target error) bool { return target == ErrAttemptTimeout }
func (e *attemptTimeoutError) Timeout() bool        { return true }
func (e *attemptTimeoutError) Temporary() bool      { return true }

// opError is a failed operation that is not an answer from the API: a
// transport failure, a done context, credentials or a project lookup that
// failed. It unwraps to its cause, for errors.Is and errors.As.
type opError struct {
	op       string
	attempts int // attempts sent; 0 when none was
	err      error
}

// Error returns "cbr: {op}: {cause}", with the number of attempts when the
// cause is the last of several.
func (e *opError) Error() string {
	msg := "cbr: " + e.op + ": " + trimPrefix(e.err)
	if e.attempts > 1 {
		msg += " (after " + strconv.Itoa(e.attempts) + " attempts)"
	}
	return msg
}

// Unwrap returns the cause.
func (e *opError) Unwrap() error { return e.err }

// trimPrefix returns err's message without its "cbr: " prefix, so that an
// error that wraps another says "cbr: " once.
func trimPrefix(err error) string { return strings.TrimPrefix(err.Error(), "cbr: ") }

// newAPIError reads at most maxErrorBody bytes of resp's body and builds the
// error with apiError.
func newAPIError(op string, resp *http.Response, attempts int) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return apiError(op, resp.StatusCode, resp.Header, body, attempts)
}

// apiError builds the error of a non-2xx answer from every known body shape:
// CBR's and the gateway's {"error_code","error_msg"}, {"code","message"},
// IAM's nested {"error":{"code","message"}}, or plain text. body is kept.
func apiError(op string, status int, header http.Header, body []byte, attempts int) *APIError {
	e := &APIError{
		Op:         op,
		StatusCode: status,
		RequestID:  header.Get("X-Request-Id"),
		Attempts:   attempts,
		Body:       body,
	}
	var shape struct {
		ErrorCode string          `json:"error_code"`
		ErrorMsg  string          `json:"error_msg"`
		Code      json.RawMessage `json:"code"`
		Message   string          `json:"message"`
		RequestID string          `json:"request_id"`
		Error     *struct {
			Code    json.RawMessage `json:"code"`
			Message string          `json:"message"`
			Title   string          `json:"title"`
		} `json:"error"`
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &shape) == nil {
		switch {
		case shape.ErrorCode != "" || shape.ErrorMsg != "":
			e.Code, e.Message = shape.ErrorCode, shape.ErrorMsg
		case len(shape.Code) > 0 || shape.Message != "":
			e.Code, e.Message = rawCode(shape.Code), shape.Message
		case shape.Error != nil:
			e.Code, e.Message = rawCode(shape.Error.Code), shape.Error.Message
			if e.Message == "" {
				e.Message = shape.Error.Title
			}
		}
		if e.RequestID == "" {
			e.RequestID = shape.RequestID
		}
	}
	if e.Code == "" && e.Message == "" {
		e.Message = string(trimmed)
	}
	return e
}

// rawCode turns a JSON string or number into a code string ("401", "APIGW.0301").
func rawCode(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

// oneLine folds control characters to spaces and cuts s to at most max bytes,
// on a character boundary, so that a server's message cannot break a log line.
func oneLine(s string, max int) string {
	if len(s) > max {
		for max > 0 && !utf8.RuneStart(s[max]) {
			max--
		}
		s = s[:max] + "..."
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s)
}

// credentialsError wraps a failure of Credentials.Authenticate.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "authenticate: " + trimPrefix(e.err) }
func (e *credentialsError) Unwrap() error { return e.err }

// redirectError is a request to another host than the endpoint's, which the
// client refuses to authenticate.
type redirectError struct{ host string }

func (e *redirectError) Error() string {
	return "cbr: refusing to send credentials to another host " + e.host
}

// timeoutError is a fetch of credentials that its own time bound ended while
// the caller's context was alive. It is a net.Error with Timeout true, so
// that the client retries the call, and it matches ErrAttemptTimeout, not
// context.DeadlineExceeded, which only the caller's context ending does.
type timeoutError struct {
	op    string
	after time.Duration
}

func (e *timeoutError) Error() string {
	return "cbr: " + e.op + ": no complete answer within " + e.after.String()
}

// Timeout reports true: the fetch timed out.
func (e *timeoutError) Timeout() bool { return true }

// Temporary reports true, as net.Error asks: another fetch may succeed.
func (e *timeoutError) Temporary() bool { return true }

// Is reports whether target is ErrAttemptTimeout.
func (e *timeoutError) Is(target error) bool { return target == ErrAttemptTimeout }

// bothError is an error that matches two errors, with a message that says
// "cbr: " once.
type bothError struct {
	msg  string
	errs []error
}

func (e *bothError) Error() string   { return e.msg }
func (e *bothError) Unwrap() []error { return e.errs }
