package cbrtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The verifier is checked against the published vectors, independently of
// package cbr's signer.

// v1Request is the official documentation's example (vector V1).
func v1Request() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0", nil)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Sdk-Date", "20191115T033655Z")
	r.Header.Set("Authorization", "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, "+
		"Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe")
	return r
}

const (
	v1AK = "QTWAOYTTINDUT2QVKYUC"
	v1SK = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
)

var v1Time = time.Date(2019, 11, 15, 3, 36, 55, 0, time.UTC)

func TestVerifySignatureDocVector(t *testing.T) {
	t.Parallel()
	require.NoError(t, VerifySignature(v1Request(), v1AK, v1SK, v1Time))
	assert.NoError(t, VerifySignature(v1Request(), v1AK, v1SK, v1Time.Add(MaxClockSkew)), "15 minutes late is still accepted")
	assert.NoError(t, VerifySignature(v1Request(), v1AK, v1SK, v1Time.Add(-MaxClockSkew)), "15 minutes early is still accepted")

	tests := map[string]struct {
		change func(r *http.Request)
		sk     string
		now    time.Time
		want   string
	}{
		"wrong secret key": {sk: "wrong", want: "verify aksk signature fail"},
		"other access key": {change: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), v1AK, "OTHERKEY", 1))
		}, want: "ak not exist"},
		"changed query":    {change: func(r *http.Request) { r.URL.RawQuery = "limit=3&marker=13551d6b-755d-4757-b956-536f674975c0" }, want: "verify aksk signature fail"},
		"changed path":     {change: func(r *http.Request) { r.URL.Path = "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/subnets" }, want: "verify aksk signature fail"},
		"changed header":   {change: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, want: "verify aksk signature fail"},
		"other host":       {change: func(r *http.Request) { r.Host = "evil.example.com" }, want: "verify aksk signature fail"},
		"changed method":   {change: func(r *http.Request) { r.Method = http.MethodDelete }, want: "verify aksk signature fail"},
		"missing header":   {change: func(r *http.Request) { r.Header.Del("Content-Type") }, want: "signed header content-type is missing"},
		"16 minutes late":  {now: v1Time.Add(16 * time.Minute), want: "more than 15m0s away"},
		"16 minutes early": {now: v1Time.Add(-16 * time.Minute), want: "more than 15m0s away"},
		"no authorization": {change: func(r *http.Request) { r.Header.Del("Authorization") }, want: "unsupported signing algorithm"},
		"date not signed": {change: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ";x-sdk-date", "", 1))
		}, want: "x-sdk-date is not signed"},
		"bad date":          {change: func(r *http.Request) { r.Header.Set("X-Sdk-Date", "2019-11-15T03:36:55Z") }, want: "not in the format"},
		"another algorithm": {change: func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x") }, want: "unsupported signing algorithm"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := v1Request()
			if tc.change != nil {
				tc.change(r)
			}
			sk, now := v1SK, v1Time
			if tc.sk != "" {
				sk = tc.sk
			}
			if !tc.now.IsZero() {
				now = tc.now
			}
			err := VerifySignature(r, v1AK, sk, now)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "cbrtest: "), "error %q", err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestVerifySignatureBodyVector is vector V3: a POST whose body, with the
// trailing newline of json.Encoder, is hashed; Content-Type and an
// underscored header are present but not signed.
func TestVerifySignatureBodyVector(t *testing.T) {
	t.Parallel()
	const body = "{\"Name\":\"test\",\"Id\":1}\n"
	newRequest := func(body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "https://example.huaweicloud.com/path?key=value", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("TEST_UNDERSCORE", "TEST_VALUE")
		r.Header.Set("X-Sdk-Date", "20060102T150405Z")
		r.Header.Set("Authorization", "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, "+
			"Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59")
		return r
	}
	now := time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)

	r := newRequest(body)
	require.NoError(t, VerifySignature(r, "AccessKey", "SecretKey", now))
	got, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	assert.Equal(t, body, string(got), "the body is put back for the handler")

	err = VerifySignature(newRequest(strings.TrimSuffix(body, "\n")), "AccessKey", "SecretKey", now)
	require.Error(t, err, "one byte less of body must break the signature")
	assert.EqualError(t, err, "cbrtest: verify aksk signature fail")

	unsigned := newRequest("anything")
	unsigned.Header.Set("X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD")
	assert.Error(t, VerifySignature(unsigned, "AccessKey", "SecretKey", now), "UNSIGNED-PAYLOAD changes the canonical request")
}

func TestVerifySignatureRepeatedQueryAndEscaping(t *testing.T) {
	t.Parallel()
	// The escaping vector's query, sent in another order: the canonical form sorts it.
	r := httptest.NewRequest(http.MethodGet, "https://example.com/a%20b/c?test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29&multi=3&multi=1&multi=2&path=%2Ftmp%2F123&limit=1&enable=true", nil)
	signed := []string{"host", "x-sdk-date"}
	r.Header.Set("X-Sdk-Date", "20060102T150405Z")
	canonical, err := canonicalRequest(r, signed, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	require.NoError(t, err)
	assert.Equal(t, "GET\n/a%20b/c/\n"+
		"enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29\n"+
		"host:example.com\nx-sdk-date:20060102T150405Z\n\nhost;x-sdk-date\n"+
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", canonical)
}

func TestMetadataServiceNeedsASessionToken(t *testing.T) {
	t.Parallel()
	srv := NewServer()
	t.Cleanup(srv.Close)
	get := func(token string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, srv.MetadataURL+"/openstack/latest/securitykey", nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("X-Metadata-Token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	resp := get("")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	req, err := http.NewRequest(http.MethodPut, srv.MetadataURL+"/meta-data/latest/api/token", nil)
	require.NoError(t, err)
	req.Header.Set("X-Metadata-Token-Ttl-Seconds", "60")
	tokResp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	session, err := io.ReadAll(tokResp.Body)
	tokResp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, tokResp.StatusCode)

	resp = get(string(session))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Regexp(t, `^\{"credential":\{"access":"CBRTESTTMP[0-9A-F]{10}","expires_at":"[0-9-]{10}T[0-9:.]{15}Z","secret":"[0-9a-f]{40}","securitytoken":"cbrtest-security-token-[0-9a-f]{64}"\}\}\n?$`, string(body))
	assert.Equal(t, 2, srv.MetadataRequests())
}
