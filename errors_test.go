package cbr_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
)

// TestAPIErrorBodyShapes decodes every error body the API, its gateway and
// IAM send (cbr-api.md §2), as the client receives them.
func TestAPIErrorBodyShapes(t *testing.T) {
	html := "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
	tests := []struct {
		name      string
		status    int
		body      string
		requestID string // X-Request-Id header
		sentinel  error  // nil: no sentinel matches

		code, message, wantRequestID string
		errorString                  string
	}{
		{
			name: "CBR invalid agent", status: 400, requestID: "0f1e2d3c",
			body: `{"error_code":"BackupService.7403","error_msg":"Invalid agent 489654f2-363b-4ebf-966a-bdf079d97114"}`,
			code: "BackupService.7403", message: "Invalid agent 489654f2-363b-4ebf-966a-bdf079d97114", wantRequestID: "0f1e2d3c",
			errorString: "cbr: show agent: 400 Bad Request BackupService.7403: Invalid agent 489654f2-363b-4ebf-966a-bdf079d97114 (request id 0f1e2d3c)",
		},
		{
			name: "CBR agent not found", status: 404, requestID: "9a8b7c6d", sentinel: cbr.ErrNotFound,
			body: `{"error_code" : "BackupService.7410", "error_msg" : "Agent 489654f2-363b-4ebf-966a-bdf079d97114 not found."}`,
			code: "BackupService.7410", message: "Agent 489654f2-363b-4ebf-966a-bdf079d97114 not found.", wantRequestID: "9a8b7c6d",
			errorString: "cbr: show agent: 404 Not Found BackupService.7410: Agent 489654f2-363b-4ebf-966a-bdf079d97114 not found. (request id 9a8b7c6d)",
		},
		{
			name: "APIGW with request_id in the body only", status: 401, sentinel: cbr.ErrUnauthorized,
			body: `{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information: decrypt token fail","request_id":"b7c1e2d9f0a4"}`,
			code: "APIGW.0301", message: "Incorrect IAM authentication information: decrypt token fail", wantRequestID: "b7c1e2d9f0a4",
			errorString: "cbr: show agent: 401 Unauthorized APIGW.0301: Incorrect IAM authentication information: decrypt token fail (request id b7c1e2d9f0a4)",
		},
		{
			name: "APIGW: the header wins over the body", status: 403, requestID: "from-header", sentinel: cbr.ErrForbidden,
			body: `{"error_code":"APIGW.0302","error_msg":"The IAM user is not authorized to access the API","request_id":"from-body"}`,
			code: "APIGW.0302", message: "The IAM user is not authorized to access the API", wantRequestID: "from-header",
			errorString: "cbr: show agent: 403 Forbidden APIGW.0302: The IAM user is not authorized to access the API (request id from-header)",
		},
		{
			name: "APIGW throttled", status: 429, requestID: "r429", sentinel: cbr.ErrRateLimited,
			body: `{"error_code":"APIGW.0308","error_msg":"The throttling threshold has been reached: policy user over ratelimit,limit:100,time:1 minute","request_id":"r429"}`,
			code: "APIGW.0308", message: "The throttling threshold has been reached: policy user over ratelimit,limit:100,time:1 minute", wantRequestID: "r429",
			errorString: "cbr: show agent: 429 Too Many Requests APIGW.0308: The throttling threshold has been reached: policy user over ratelimit,limit:100,time:1 minute (request id r429)",
		},
		{
			name: "code and message", status: 400, requestID: "r1",
			body: `{"code":"CBR.0001","message":"The request is malformed."}`,
			code: "CBR.0001", message: "The request is malformed.", wantRequestID: "r1",
			errorString: "cbr: show agent: 400 Bad Request CBR.0001: The request is malformed. (request id r1)",
		},
		{
			name: "IAM nested error", status: 401, sentinel: cbr.ErrUnauthorized,
			body: `{"error":{"code":401,"message":"The username or password is wrong.","title":"Unauthorized"}}`,
			code: "401", message: "The username or password is wrong.",
			errorString: "cbr: show agent: 401 Unauthorized: The username or password is wrong.",
		},
		{
			name: "IAM nested error with title only", status: 403, sentinel: cbr.ErrForbidden,
			body: `{"error":{"code":"403","title":"Forbidden"}}`,
			code: "403", message: "Forbidden",
			errorString: "cbr: show agent: 403 Forbidden: Forbidden",
		},
		{
			name: "plain text", status: 500, requestID: "r500",
			body:    "upstream connect error or disconnect/reset before headers\n",
			message: "upstream connect error or disconnect/reset before headers", wantRequestID: "r500",
			errorString: "cbr: show agent: 500 Internal Server Error: upstream connect error or disconnect/reset before headers (request id r500)",
		},
		{
			name: "HTML", status: 502, body: html,
			message:     strings.TrimSpace(html),
			errorString: "cbr: show agent: 502 Bad Gateway: <html>  <head><title>502 Bad Gateway</title></head>  <body>  <center><h1>502 Bad Gateway</h1></center>  </body>  </html>",
		},
		{
			name: "empty body", status: 404, requestID: "r404", sentinel: cbr.ErrNotFound,
			wantRequestID: "r404",
			errorString:   "cbr: show agent: 404 Not Found (request id r404)",
		},
		{
			name: "truncated JSON", status: 400, body: `{"error_code":"BackupService.7403","error_`,
			message:     `{"error_code":"BackupService.7403","error_`,
			errorString: `cbr: show agent: 400 Bad Request: {"error_code":"BackupService.7403","error_`,
		},
		{
			name: "JSON of another shape", status: 400, body: `["a","b"]`,
			message:     `["a","b"]`,
			errorString: `cbr: show agent: 400 Bad Request: ["a","b"]`,
		},
		{
			name: "multi-line message", status: 400, requestID: "r\nX",
			body: `{"error_code":"E.1","error_msg":"first line\nsecond line"}`,
			code: "E.1", message: "first line\nsecond line", wantRequestID: "r\nX",
			errorString: "cbr: show agent: 400 Bad Request E.1: first line second line (request id r X)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			if tt.requestID != "" {
				header["X-Request-Id"] = []string{tt.requestID}
			}
			if tt.status == http.StatusTooManyRequests {
				header.Set("Retry-After", "3600") // beyond the call's time: answered at once
			}
			st := &stub{answers: []answer{{status: tt.status, body: tt.body, header: header}}}
			c, mt := newMockClient(t, cbr.WithRetry(noRetry))
			mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, st.respond)

			agent, err := c.ShowAgent(context.Background(), testAgentID)
			require.Error(t, err)
			assert.Nil(t, agent)

			var apiErr *cbr.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, "show agent", apiErr.Op)
			assert.Equal(t, tt.status, apiErr.StatusCode)
			assert.Equal(t, tt.code, apiErr.Code)
			assert.Equal(t, tt.message, apiErr.Message)
			assert.Equal(t, tt.wantRequestID, apiErr.RequestID)
			assert.Equal(t, 1, apiErr.Attempts)
			assert.Equal(t, tt.body, string(apiErr.Body))
			assert.Equal(t, tt.errorString, err.Error())
			assert.NotContains(t, err.Error(), "\n")
			for _, sentinel := range []error{cbr.ErrNotFound, cbr.ErrUnauthorized, cbr.ErrForbidden, cbr.ErrRateLimited, cbr.ErrInvalidRequest} {
				assert.Equal(t, sentinel == tt.sentinel, errors.Is(err, sentinel), "errors.Is(err, %v)", sentinel)
			}
		})
	}
}

func TestAPIErrorBodyIsCapped(t *testing.T) {
	body := `{"error_code":"E.1","error_msg":"` + strings.Repeat("x", 100<<10) + `"}`
	st := &stub{answers: []answer{{status: 500, body: body}}}
	c, mt := newMockClient(t, cbr.WithRetry(noRetry))
	mt.RegisterResponder("GET", agentsURL+"/"+testAgentID, st.respond)

	_, err := c.ShowAgent(context.Background(), testAgentID)
	var apiErr *cbr.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Len(t, apiErr.Body, 64<<10, "the body is read up to 64 KiB")
	assert.Equal(t, body[:64<<10], string(apiErr.Body))
	assert.Less(t, len(err.Error()), 512, "the error line stays short")
	assert.True(t, strings.HasPrefix(err.Error(), "cbr: show agent: 500 Internal Server Error: "), err.Error())
}

func TestAPIErrorWrapped(t *testing.T) {
	st := &stub{answers: []answer{{status: 404, body: `{"error_code":"BackupService.7410","error_msg":"Agent x not found."}`}}}
	c, mt := newMockClient(t)
	mt.RegisterResponder("PUT", agentsURL+"/x", st.respond)

	_, err := c.UpdateAgent(context.Background(), "x", cbr.AgentUpdate{Status: cbr.AgentStatusUninstall})
	wrapped := fmt.Errorf("uninstall: %w", err)

	assert.ErrorIs(t, wrapped, cbr.ErrNotFound)
	var apiErr *cbr.APIError
	require.ErrorAs(t, wrapped, &apiErr)
	assert.Equal(t, "BackupService.7410", apiErr.Code)
}

func TestAPIErrorZeroValue(t *testing.T) {
	assert.Equal(t, "cbr: 0", (&cbr.APIError{}).Error())
	assert.Equal(t, "cbr: 418 I'm a teapot", (&cbr.APIError{StatusCode: 418}).Error())
	assert.Equal(t, "cbr: 599 E.1", (&cbr.APIError{StatusCode: 599, Code: "E.1"}).Error())
	assert.Equal(t, "cbr: invalid agent_id: is required", (&cbr.ValidationError{Field: "agent_id", Reason: "is required"}).Error())
}
