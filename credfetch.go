package cbr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/textproto"
	"time"
)

// This file holds the one way credentials are fetched: an IAM token, the
// project ID from IAM, temporary keys from the metadata service. Each is a
// request whose 2xx answer is a JSON document, read whole within a bound of
// size and time.

// jsonFetch is one request to IAM or the metadata service whose 2xx answer is
// a JSON document.
type jsonFetch struct {
	op      string // names the fetch in errors, such as "get IAM token"
	method  string
	url     string
	header  http.Header   // set on the request; nil for none
	body    []byte        // nil for none
	limit   int64         // the largest body read; a longer one is an error
	timeout time.Duration // bounds the whole fetch, body included; 0 for none but ctx's
}

// sendFunc sends one request and says how many attempts it took.
type sendFunc func(*http.Request) (resp *http.Response, attempts int, err error)

// sendOnce sends a request with hc, in one attempt.
func sendOnce(hc *http.Client) sendFunc {
	return func(req *http.Request) (*http.Response, int, error) {
		resp, err := hc.Do(req)
		return resp, 1, err
	}
}

// do sends f with send and decodes the body of a 2xx answer into out; it
// returns the answer's header. The body is read whole, at most f.limit
// bytes, within ctx and f.timeout. A non-2xx answer is an *APIError; a fetch
// that f.timeout (or a bound of withTimeout on ctx) ended is a *timeoutError.
// The error never holds the request's body nor a header of either side.
func (f *jsonFetch) do(ctx context.Context, send sendFunc, out any) (http.Header, error) {
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = withTimeout(ctx, f.op, f.timeout)
		defer cancel()
	}
	var body io.Reader
	if f.body != nil {
		body = bytes.NewReader(f.body)
	}
	req, err := http.NewRequestWithContext(ctx, f.method, f.url, body)
	if err != nil {
		return nil, fetchError(ctx, f.op, err)
	}
	maps.Copy(req.Header, f.header)
	resp, attempts, err := send(req)
	if err != nil {
		return nil, fetchError(ctx, f.op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newAPIError(f.op, resp, attempts)
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, limit: f.limit}
	if err := readJSON(resp, out); err != nil {
		return nil, fetchError(ctx, f.op, err)
	}
	return resp.Header, nil
}

// withTimeout bounds ctx by d for the fetch op: a fetch that d ends, while
// the caller's context is alive, fails with a *timeoutError.
func withTimeout(ctx context.Context, op string, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, &timeoutError{op: op, after: d})
}

// fetchError is the error of the fetch op that failed with err: a
// *timeoutError when a bound of withTimeout on ctx ended it, else err
// prefixed with the operation. net/http quotes a malformed header line of
// the answer in its error, and that line may hold a secret (IAM's
// X-Subject-Token): such an error is replaced by one that does not quote it.
func fetchError(ctx context.Context, op string, err error) error {
	var (
		timedOut  *timeoutError
		malformed textproto.ProtocolError
	)
	switch {
	case ctx.Err() != nil && errors.As(context.Cause(ctx), &timedOut):
		return timedOut
	case errors.As(err, &malformed):
		return fmt.Errorf("cbr: %s: the answer is malformed (not quoted: it may hold a secret)", op)
	}
	err = fmt.Errorf("cbr: %s: %w", op, err)
	if netErr := net.Error(nil); ctx.Err() == nil && errors.As(err, &netErr) && netErr.Timeout() {
		return &attemptTimeoutError{cause: err} // a dial, TLS or header timeout
	}
	return err
}

// cappedBody is a response body that fails once more than limit bytes were read.
type cappedBody struct {
	io.ReadCloser
	limit, read int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if left := b.limit - b.read; int64(len(p)) > left+1 {
		p = p[:left+1] // one byte more tells a body at the cap from one over it
	}
	n, err := b.ReadCloser.Read(p)
	if b.read += int64(n); b.read > b.limit {
		return 0, fmt.Errorf("body is over %d bytes", b.limit)
	}
	return n, err
}

// readJSON decodes the JSON body of resp, at most maxResponseBody bytes, into
// v. Its error names the status and the request ID; the caller prefixes it
// with "cbr: " and the operation.
func readJSON(resp *http.Response, v any) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err == nil {
		return nil
	}
	if id := resp.Header.Get("X-Request-Id"); id != "" {
		return fmt.Errorf("decode %d response (request id %s): %w", resp.StatusCode, id, err)
	}
	return fmt.Errorf("decode %d response: %w", resp.StatusCode, err)
}
