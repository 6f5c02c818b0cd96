package cbrtest

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// This file is the API gateway in front of the fake CBR: what happens to a
// request before a handler of agents.go sees it.

// maxBody is the largest request body the gateway takes: 12 MiB. The
// gateway's documentation gives "12 MB" as its limit for AK/SK-signed
// requests, and 413 APIGW.0201 for a larger body.
const maxBody = 12 << 20

// gateway does what the API gateway does before CBR sees a request: it
// stamps a request ID, logs the request, applies injected faults, and hands
// the rest to serve.
func (s *Server) gateway(mux *http.ServeMux) http.Handler {
	handle := func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		requestID := randomHex(16)
		w.Header().Set("X-Request-Id", requestID)
		rec := &statusRecorder{ResponseWriter: w}
		entry := s.logRequest(r, requestID)
		defer func() { s.logStatus(entry, rec.status) }()
		if f, ok := s.nextFault(r); ok {
			s.applyFault(rec, r, f, mux, requestID)
			return
		}
		s.serve(rec, r, mux, requestID)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// net/http logs a warning for every query with a ";" unless the
		// handler is wrapped in AllowQuerySemicolons, which rewrites ";" to
		// "&". The gateway must see the query as sent: put it back.
		raw := r.URL.RawQuery
		http.AllowQuerySemicolons(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.URL.RawQuery = raw // r is a copy, with a copy of the URL
			handle(w, r)
		})).ServeHTTP(w, r)
	})
}

// serve answers one request that no fault took over, in the gateway's order
// (see Server), then hands it to CBR.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, mux *http.ServeMux, requestID string) {
	if target, ok := normalizedPath(r.URL); ok {
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	}
	if strings.Contains(r.URL.RawQuery, ";") {
		writeGatewayError(w, http.StatusBadRequest, "APIGW.0201", "Bad request: the query contains a raw ;", requestID)
		return
	}
	if !readBody(r) {
		writeGatewayError(w, http.StatusRequestEntityTooLarge, "APIGW.0201", "Request entity too large: the body is over 12 MB", requestID)
		return
	}
	if _, pattern := mux.Handler(r); pattern == "" {
		code, msg := gatewayCode(http.StatusNotFound)
		writeGatewayError(w, http.StatusNotFound, code, msg, requestID)
		return
	}
	if code, msg, ok := s.checkCredentials(r); !ok {
		writeGatewayError(w, http.StatusUnauthorized, code, msg, requestID)
		return
	}
	if p := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/v3/"), "/", 2)[0]; p != s.ProjectID {
		code, msg := gatewayCode(http.StatusForbidden)
		writeGatewayError(w, http.StatusForbidden, code, msg, requestID)
		return
	}
	mux.ServeHTTP(w, r)
}

// readBody reads the body of r into memory, so that it can be read again
// (by the signature check, then the handler); it reports false for a body
// over maxBody. A body that breaks off is kept as far as it came.
func readBody(r *http.Request) bool {
	if r.ContentLength <= maxBody {
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if len(body) <= maxBody {
			r.Body = io.NopCloser(bytes.NewReader(body))
			return true
		}
	}
	// Read on, within a bound, so that a client still sending its body
	// gets the answer rather than a connection reset.
	io.Copy(io.Discard, io.LimitReader(r.Body, 4*maxBody))
	return false
}

// normalizedPath returns the path of u without "." and ".." segments, and
// its query, when u's path has such a segment (also escaped, as %2E): where
// the gateway redirects. The other segments stay as they were sent.
func normalizedPath(u *url.URL) (string, bool) {
	var out []string
	dots := false
	segments := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	for _, seg := range segments {
		dec, err := url.PathUnescape(seg)
		switch {
		case err == nil && dec == ".":
			dots = true
		case err == nil && dec == "..":
			dots = true
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	if !dots {
		return "", false
	}
	target := "/" + strings.Join(out, "/")
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	return target, true
}

// gatewayCode returns the gateway's code and message for a status.
func gatewayCode(status int) (string, string) {
	switch status {
	case http.StatusBadRequest:
		return "APIGW.0201", "Bad request"
	case http.StatusUnauthorized:
		return "APIGW.0301", "Incorrect IAM authentication information"
	case http.StatusForbidden:
		return "APIGW.0302", "The IAM user is not authorized to access the API"
	case http.StatusNotFound:
		return "APIGW.0101", "The API does not exist or has not been published in the environment"
	case http.StatusTooManyRequests:
		return "APIGW.0308", "The throttling threshold has been reached: policy user over ratelimit,limit:100,time:1 minute"
	case http.StatusBadGateway:
		return "APIGW.0610", "No backend available"
	case http.StatusServiceUnavailable:
		return "APIGW.0613", "IAM unavailable"
	case http.StatusGatewayTimeout:
		return "APIGW.0201", "Backend timeout"
	}
	return "APIGW.0601", http.StatusText(status)
}

// writeGatewayError writes the API gateway's error body, which carries the request ID.
func writeGatewayError(w http.ResponseWriter, status int, code, msg, requestID string) {
	writeJSON(w, status, map[string]string{"error_code": code, "error_msg": msg, "request_id": requestID})
}
