package cbr

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestAuthTransportRefusesOtherHosts(t *testing.T) {
	t.Parallel()
	var sent int
	tr := &authTransport{
		creds: Token("secret-token"),
		host:  "cbr.example.com",
		base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent++
			return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
		}),
	}
	req := httptest.NewRequest(http.MethodGet, "https://evil.example.com/v3/p1/agents", nil)
	resp, err := tr.RoundTrip(req)
	assert.Nil(t, resp)
	var redir *redirectError
	require.ErrorAs(t, err, &redir)
	assert.Equal(t, "cbr: refusing to send credentials to another host evil.example.com", err.Error())
	assert.Empty(t, req.Header.Get("X-Auth-Token"))
	assert.Zero(t, sent)

	resp, err = tr.RoundTrip(httptest.NewRequest(http.MethodGet, "https://cbr.example.com/v3/p1/agents", nil))
	require.NoError(t, err)
	assert.Equal(t, "secret-token", resp.Request.Header.Get("X-Auth-Token"))
	assert.Equal(t, 1, sent)
}
