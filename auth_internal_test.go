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

// benchmarkAuthenticate measures one attempt's authentication of a
// RegisterAgent request.
func benchmarkAuthenticate(b *testing.B, creds Credentials) {
	body := []byte(`{"agent":{"agent_id":"489654f2-363b-4ebf-966a-bdf079d97114","host_name":"ecs-00002","host_ip":"10.10.0.2","host_os":"linux","agent_version":"1.0.0","agent_type":"native"}}`)
	req := httptest.NewRequest(http.MethodPost, "https://cbr.ap-southeast-1.myhuaweicloud.com/v3/f841e01fd2b14e7fa41b6ae7aa6b0594/agents", nil)
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	req.Header.Set("X-Project-Id", "f841e01fd2b14e7fa41b6ae7aa6b0594")
	b.ReportAllocs()
	for range b.N {
		r := req.Clone(req.Context())
		if err := creds.Authenticate(r, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticateToken(b *testing.B) { benchmarkAuthenticate(b, Token("MIItoken")) }

func BenchmarkAuthenticateAKSK(b *testing.B) {
	benchmarkAuthenticate(b, AKSK{AccessKey: "QTWAOYTTINDUT2QVKYUC", SecretKey: "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"})
}
