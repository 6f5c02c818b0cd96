package cbr

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// signRequest returns the value of the Authorization header for one request, signing the lowercase header names
// of signed that header has ("host" always, with the value host) and the X-Sdk-Date of header.
func signRequest(method string, u *url.URL, host string, header http.Header, signed []string, bodyHash, ak, sk string) string {
	s, names := newSigning(method, u, host, header, signed, bodyHash)
	return string(s.appendAuthorization(nil, names, ak, sk))
}

// newSigning returns the signing of signRequest's arguments and the headers to sign.
func newSigning(method string, u *url.URL, host string, header http.Header, signed []string, bodyHash string) (*signing, []headerName) {
	s := &signing{method: method, url: u, host: host, header: header, bodyHash: []byte(bodyHash)}
	var names []headerName
	for _, name := range signed {
		if name == sdkDateHeader {
			date := headerValues(header, headerName{"X-Sdk-Date", sdkDateHeader})
			if len(date) == 0 {
				continue // not signed, as any other absent header
			}
			s.date = []byte(date[0])
		}
		names = append(names, headerName{key: http.CanonicalHeaderKey(name), name: name})
	}
	return s, names
}

// canonicalRequest returns the canonical request signRequest builds for the same arguments.
func canonicalRequest(method string, u *url.URL, host string, header http.Header, signed []string, bodyHash string) string {
	s, names := newSigning(method, u, host, header, signed, bodyHash)
	return string(s.appendCanonicalRequest(nil, s.collectSignedHeaders(nil, names)))
}

// hashBody returns the lowercase hex SHA-256 of body.
func hashBody(body []byte) string { return string(appendBodyHash(nil, body)) }

// canonicalURI returns the canonical URI of rawURL.
func canonicalURI(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	return string(appendCanonicalURI(nil, u))
}

// mustParseURL parses rawURL or fails the test.
func mustParseURL(t testing.TB, rawURL string) *url.URL {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	return u
}

func TestConstants(t *testing.T) {
	assert.Equal(t, "20191115T033655Z", time.Date(2019, 11, 15, 3, 36, 55, 0, time.UTC).Format(sdkDateFormat))
	assert.Equal(t, emptyBodySHA256, hashBody(nil))
	assert.Equal(t, emptyBodySHA256, hashBody([]byte{}))
}

// TestSignRequestDocExample is V1: the official documentation example, also asserted by the Java SDK.
func TestSignRequestDocExample(t *testing.T) {
	u := mustParseURL(t, "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0")
	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("X-Sdk-Date", "20191115T033655Z")
	signed := []string{"x-sdk-date", "host", "content-type"}
	const host = "service.region.example.com"

	cr := canonicalRequest(http.MethodGet, u, host, header, signed, emptyBodySHA256)
	assert.Equal(t, "GET\n"+
		"/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs/\n"+
		"limit=2&marker=13551d6b-755d-4757-b956-536f674975c0\n"+
		"content-type:application/json\n"+
		"host:service.region.example.com\n"+
		"x-sdk-date:20191115T033655Z\n"+
		"\n"+
		"content-type;host;x-sdk-date\n"+
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", cr)

	crHash := sha256.Sum256([]byte(cr))
	assert.Equal(t, "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a", hex.EncodeToString(crHash[:]))
	assert.Equal(t, "SDK-HMAC-SHA256\n20191115T033655Z\nb25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a",
		string(appendStringToSign(nil, []byte("20191115T033655Z"), crHash)))

	auth := signRequest(http.MethodGet, u, host, header, signed, emptyBodySHA256, "QTWAOYTTINDUT2QVKYUC", "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc")
	assert.Equal(t, "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, "+
		"Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe", auth)
}

// TestSignRequestGoSDKVectors are V2 and V3: test1 and test2 of the official Go SDK's signer tests.
func TestSignRequestGoSDKVectors(t *testing.T) {
	header := http.Header{}
	header.Set("X-Sdk-Date", "20060102T150405Z")
	header.Set("TEST_UNDERSCORE", "TEST_VALUE") // present but not signed
	signed := []string{"x-sdk-date"}

	t.Run("V2 GET", func(t *testing.T) {
		u := mustParseURL(t, "https://example.huaweicloud.com/path?limit=1")
		cr := canonicalRequest(http.MethodGet, u, "example.huaweicloud.com", header, signed, emptyBodySHA256)
		assert.Equal(t, "GET\n/path/\nlimit=1\nx-sdk-date:20060102T150405Z\n\nx-sdk-date\n"+emptyBodySHA256, cr)
		crHash := sha256.Sum256([]byte(cr))
		assert.Equal(t, "85c3b7730f308aee452b16138a42a914397e43a8f0d732dfa521c0ef2afa98a4", hex.EncodeToString(crHash[:]))

		auth := signRequest(http.MethodGet, u, "example.huaweicloud.com", header, signed, emptyBodySHA256, "AccessKey", "SecretKey")
		assert.Equal(t, "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, "+
			"Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624", auth)
	})

	t.Run("V3 POST", func(t *testing.T) {
		u := mustParseURL(t, "https://example.huaweicloud.com/path?key=value")
		h := header.Clone()
		h.Set("Content-Type", "application/json") // present but not signed
		bodyHash := hashBody([]byte(`{"Name":"test","Id":1}` + "\n"))
		require.Equal(t, "a29d7b4c5efd1a22011d69fd7b7aee76fe51e4083c609244228de258afd61289", bodyHash)

		cr := canonicalRequest(http.MethodPost, u, "example.huaweicloud.com", h, signed, bodyHash)
		assert.Equal(t, "POST\n/path/\nkey=value\nx-sdk-date:20060102T150405Z\n\nx-sdk-date\n"+bodyHash, cr)
		crHash := sha256.Sum256([]byte(cr))
		assert.Equal(t, "13f75ff5f5216199f986c7e7f2f77834d5e160ad9e46f37319816dc72ba7eeab", hex.EncodeToString(crHash[:]))

		auth := signRequest(http.MethodPost, u, "example.huaweicloud.com", h, signed, bodyHash, "AccessKey", "SecretKey")
		assert.Equal(t, "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, "+
			"Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59", auth)
	})
}

// TestSignRequestCBRRegister is the CBR RegisterAgent golden vector reproduced with the official Go SDK.
func TestSignRequestCBRRegister(t *testing.T) {
	body := []byte(`{"agent":{"agent_id":"489654f2-363b-4ebf-966a-bdf079d97114","host_name":"ecs-00002",` +
		`"host_ip":"10.10.0.2","host_os":"linux","agent_version":"1.0.0","agent_type":"native"}}` + "\n")
	require.Len(t, body, 172)
	bodyHash := hashBody(body)
	require.Equal(t, "2cafbb018c3d46420fa701e3d16097a60e1b1297525b51fa670c24a3e9741024", bodyHash)

	u := mustParseURL(t, "https://cbr.ap-southeast-1.myhuaweicloud.com/v3/f841e01fd2b14e7fa41b6ae7aa6b0594/agents")
	header := http.Header{}
	header.Set("Content-Type", "application/json;charset=UTF-8")
	header.Set("User-Agent", "huaweicloud-usdk-go/3.0; vector")
	header.Set("X-Project-Id", "f841e01fd2b14e7fa41b6ae7aa6b0594")
	header.Set("X-Sdk-Date", "20240101T000000Z")

	auth := signRequest(http.MethodPost, u, u.Host, header, []string{"user-agent", "x-project-id", "x-sdk-date"}, bodyHash,
		"AKEXAMPLEAKEXAMPLE00", "SKEXAMPLESKEXAMPLESKEXAMPLESKEXAMPLE0000")
	assert.Equal(t, "SDK-HMAC-SHA256 Access=AKEXAMPLEAKEXAMPLE00, SignedHeaders=user-agent;x-project-id;x-sdk-date, "+
		"Signature=e06bc2fb9890071b5cd156c2d12ec5ab269c07571fa3d666f1a3d0db1c85f712", auth)
}

// TestCanonicalQueryEscaping is the escaping vector of the official Go SDK's TestSigner_canonicalQueryString.
func TestCanonicalQueryEscaping(t *testing.T) {
	const want = "enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29"

	values := url.Values{
		"limit":  {"1"},
		"enable": {"true"},
		"test":   {"一 (&=?!#%.*)"},
		"path":   {"/tmp/123"},
		"multi":  {"3", "1", "2"},
	}
	// Encode writes a space as "+"; a client may also send "%20". Both decode to the same parameters.
	for _, raw := range []string{values.Encode(), strings.ReplaceAll(values.Encode(), "+", "%20")} {
		assert.Equal(t, want, string(appendCanonicalQuery(nil, raw)), raw)
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"none", "", ""},
		{"sorted by code point, uppercase first", "b=1&F=2&a=3", "F=2&a=3&b=1"},
		{"repeated key, values sorted", "tag=b&tag=a&tag=c&id=1", "id=1&tag=a&tag=b&tag=c"},
		{"empty value keeps the equals sign", "parm2=&parm1=x", "parm1=x&parm2="},
		{"key without equals sign", "flag&a=1", "a=1&flag="},
		{"unreserved kept, the rest escaped", "k=A-z_0.9~%2B%40%3A+", "k=A-z_0.9~%2B%40%3A%20"},
		{"empty pairs skipped", "&&a=1&", "a=1"},
		{"malformed pairs skipped", "a=%zz&b=2&c=1;d=2&e=%E4%B8%80", "b=2&e=%E4%B8%80"},
		{"many keys", "p=1&o=1&n=1&m=1&l=1&k=1&j=1&i=1&h=1&g=1&f=1&e=1&d=1&c=1&b=1&a=1&q=1&r=1",
			"a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1&k=1&l=1&m=1&n=1&o=1&p=1&q=1&r=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, string(appendCanonicalQuery(nil, tt.raw)))
		})
	}
}

func TestCanonicalURI(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"empty path", "https://h", "/"},
		{"empty path with query", "https://h?a=1", "/"},
		{"root", "https://h/", "/"},
		{"trailing slash added", "https://h/v1/x/vpcs", "/v1/x/vpcs/"},
		{"trailing slash kept", "https://h/v1/x/vpcs/", "/v1/x/vpcs/"},
		{"space", "https://h/v3/p/agents/a%20b", "/v3/p/agents/a%20b/"},
		{"unicode", "https://h/v3/p/é/一", "/v3/p/%C3%A9/%E4%B8%80/"},
		{"reserved characters escaped", "https://h/a:b@c!$'()*+,;=", "/a%3Ab%40c%21%24%27%28%29%2A%2B%2C%3B%3D/"},
		{"unreserved characters kept", "https://h/A-z_0.9~", "/A-z_0.9~/"},
		{"escaped slash stays in its segment", "https://h/v3/p/agents/a%2Fb", "/v3/p/agents/a%2Fb/"},
		{"escaped slash and space", "https://h/agents/a%2Fb%20c/paths", "/agents/a%2Fb%20c/paths/"},
		{"empty segments kept", "https://h//a//b", "//a//b/"},
		{"percent sign", "https://h/100%25", "/100%25/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, canonicalURI(t, tt.url))
		})
	}
}

func TestCanonicalURIFromURLFields(t *testing.T) {
	// A path set directly: "/" inside a segment cannot be expressed without RawPath.
	assert.Equal(t, "/agents/a/b/", string(appendCanonicalURI(nil, &url.URL{Path: "/agents/a/b"})))
	// A valid RawPath wins, as in net/http.
	assert.Equal(t, "/agents/a%2Fb/", string(appendCanonicalURI(nil, &url.URL{Path: "/agents/a/b", RawPath: "/agents/a%2Fb"})))
	// A RawPath that does not encode Path is ignored, as in net/http.
	assert.Equal(t, "/agents/x/", string(appendCanonicalURI(nil, &url.URL{Path: "/agents/x", RawPath: "/agents/a%2Fb"})))
	// An invalid RawPath is ignored.
	assert.Equal(t, "/agents/a%25zz/", string(appendCanonicalURI(nil, &url.URL{Path: "/agents/a%zz", RawPath: "/agents/a%zz"})))
	// A relative path is made absolute.
	assert.Equal(t, "/v1/x/", string(appendCanonicalURI(nil, &url.URL{Path: "v1/x"})))
	// No URL at all.
	assert.Equal(t, "/", string(appendCanonicalURI(nil, nil)))
	// Appending keeps what dst already holds.
	assert.Equal(t, "GET\n/", string(appendCanonicalURI([]byte("GET\n"), &url.URL{})))
}

func TestCanonicalHeaders(t *testing.T) {
	u := mustParseURL(t, "https://h/v1")

	t.Run("multiple values sorted and trimmed, one line each", func(t *testing.T) {
		header := http.Header{
			"X-Sdk-Date": {" 20240101T000000Z\t"},
			"X-Multi":    {"  b ", "c", "\ta"},
		}
		cr := canonicalRequest(http.MethodGet, u, "h", header, []string{"x-sdk-date", "x-multi"}, emptyBodySHA256)
		assert.Equal(t, "GET\n/v1/\n\nx-multi:a\nx-multi:b\nx-multi:c\nx-sdk-date:20240101T000000Z\n\nx-multi;x-sdk-date\n"+emptyBodySHA256, cr)
	})

	t.Run("absent header dropped from SignedHeaders", func(t *testing.T) {
		header := http.Header{"X-Sdk-Date": {"20240101T000000Z"}}
		signed := []string{"x-security-token", "x-sdk-date", "content-type", "host"}
		cr := canonicalRequest(http.MethodGet, u, "h:8443", header, signed, emptyBodySHA256)
		assert.Equal(t, "GET\n/v1/\n\nhost:h:8443\nx-sdk-date:20240101T000000Z\n\nhost;x-sdk-date\n"+emptyBodySHA256, cr)

		auth := signRequest(http.MethodGet, u, "h:8443", header, signed, emptyBodySHA256, "AK", "SK")
		assert.Contains(t, auth, ", SignedHeaders=host;x-sdk-date, ")
	})

	t.Run("empty value is signed, name with no values is not", func(t *testing.T) {
		header := http.Header{"X-Sdk-Date": {"d"}, "X-Empty": {""}, "X-None": {}}
		cr := canonicalRequest(http.MethodGet, u, "h", header, []string{"x-none", "x-empty", "x-sdk-date"}, emptyBodySHA256)
		assert.Equal(t, "GET\n/v1/\n\nx-empty:\nx-sdk-date:d\n\nx-empty;x-sdk-date\n"+emptyBodySHA256, cr)
	})

	t.Run("host comes from the argument, not the header", func(t *testing.T) {
		header := http.Header{"X-Sdk-Date": {"d"}, "Host": {"evil.example.com"}}
		cr := canonicalRequest(http.MethodGet, u, "h", header, []string{"host", "x-sdk-date"}, emptyBodySHA256)
		assert.Equal(t, "GET\n/v1/\n\nhost:h\nx-sdk-date:d\n\nhost;x-sdk-date\n"+emptyBodySHA256, cr)
	})
}

func TestSignRequestIsPure(t *testing.T) {
	u := mustParseURL(t, "https://h/v1/a%2Fb?b=2&a=1&a=0")
	header := http.Header{
		"X-Sdk-Date": {"20240101T000000Z"},
		"X-Multi":    {"z", " y", "x"},
	}
	signed := []string{"x-sdk-date", "x-multi", "host"}
	headerBefore := header.Clone()
	signedBefore := append([]string(nil), signed...)
	urlBefore := *u

	first := signRequest(http.MethodPut, u, "h", header, signed, "UNSIGNED-PAYLOAD", "AK", "SK")
	for range 10 {
		assert.Equal(t, first, signRequest(http.MethodPut, u, "h", header, signed, "UNSIGNED-PAYLOAD", "AK", "SK"))
	}
	assert.Equal(t, headerBefore, header)
	assert.Equal(t, signedBefore, signed)
	assert.Equal(t, urlBefore, *u)
}

func TestSignRequestUsesSdkDateAndKeys(t *testing.T) {
	u := mustParseURL(t, "https://h/v1")
	header := http.Header{"X-Sdk-Date": {"20240101T000000Z"}}
	signed := []string{"x-sdk-date"}
	base := signRequest(http.MethodGet, u, "h", header, signed, emptyBodySHA256, "AK", "SK")

	other := http.Header{"X-Sdk-Date": {"20240101T000001Z"}}
	assert.NotEqual(t, base, signRequest(http.MethodGet, u, "h", other, signed, emptyBodySHA256, "AK", "SK"))
	assert.NotEqual(t, signatureOf(base), signatureOf(signRequest(http.MethodGet, u, "h", header, signed, emptyBodySHA256, "AK", "SK2")))
	assert.Equal(t, signatureOf(base), signatureOf(signRequest(http.MethodGet, u, "h", header, signed, emptyBodySHA256, "AK2", "SK")))

	// The date in the string to sign is the header value, so the signature can be recomputed by hand.
	cr := canonicalRequest(http.MethodGet, u, "h", header, signed, emptyBodySHA256)
	sts := appendStringToSign(nil, []byte("20240101T000000Z"), sha256.Sum256([]byte(cr)))
	mac := hmac.New(sha256.New, []byte("SK"))
	mac.Write(sts)
	assert.Equal(t, hex.EncodeToString(mac.Sum(nil)), signatureOf(base))
}

// signatureOf returns the Signature part of an Authorization value.
func signatureOf(auth string) string {
	_, sig, _ := strings.Cut(auth, "Signature=")
	return sig
}

func TestSignRequestOddInputs(t *testing.T) {
	// None of these may panic; each still yields a well-formed header.
	longHeader := http.Header{"X-Sdk-Date": {strings.Repeat("9", 4096)}, "X-Long": {strings.Repeat("v", 4096)}}
	manyNames := make([]string, 0, 40)
	for i := range 40 {
		manyNames = append(manyNames, "x-h"+strings.Repeat("a", i))
	}
	tests := []struct {
		name   string
		u      *url.URL
		header http.Header
		signed []string
	}{
		{"nil URL and header", nil, nil, []string{"host", "x-sdk-date"}},
		{"no signed headers", &url.URL{}, http.Header{}, nil},
		{"malformed query", &url.URL{Path: "/", RawQuery: "%%%&;;&=&a=%"}, nil, nil},
		{"long values", &url.URL{Path: strings.Repeat("/seg", 500), RawQuery: strings.Repeat("k=v&", 500)}, longHeader, []string{"x-sdk-date", "x-long"}},
		{"many signed names", &url.URL{Path: "/"}, longHeader, manyNames},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var auth string
			require.NotPanics(t, func() {
				auth = signRequest("GET", tt.u, "h", tt.header, tt.signed, emptyBodySHA256, "AK", "SK")
			})
			assert.True(t, strings.HasPrefix(auth, "SDK-HMAC-SHA256 Access=AK, SignedHeaders="), auth)
			assert.Len(t, signatureOf(auth), 64)
		})
	}
}

func FuzzSignRequest(f *testing.F) {
	f.Add("https://h/v1/a%2Fb?x=1&x=&y", "host;x-sdk-date;x-a", " v ", "20240101T000000Z")
	f.Add("/%zz/é?%;=&", ";;HOST", "", "")
	f.Fuzz(func(t *testing.T, rawURL, signedList, value, date string) {
		u, err := url.Parse(rawURL)
		if err != nil {
			u = nil
		}
		header := http.Header{"X-Sdk-Date": {date}, "X-A": {value, date}}
		auth := signRequest("POST", u, "h", header, strings.Split(signedList, ";"), emptyBodySHA256, "AK", "SK")
		if !strings.HasPrefix(auth, "SDK-HMAC-SHA256 Access=AK, SignedHeaders=") || len(signatureOf(auth)) != 64 {
			t.Fatalf("malformed Authorization %q", auth)
		}
	})
}

// BenchmarkSignRequest signs a realistic CBR RegisterAgent POST with four signed headers.
func BenchmarkSignRequest(b *testing.B) {
	u := mustParseURL(b, "https://cbr.ap-southeast-1.myhuaweicloud.com/v3/f841e01fd2b14e7fa41b6ae7aa6b0594/agents")
	header := http.Header{}
	header.Set("Content-Type", "application/json;charset=UTF-8")
	header.Set("Accept", "application/json")
	header.Set("User-Agent", "cbrsdk-go/0.1.0")
	header.Set("X-Project-Id", "f841e01fd2b14e7fa41b6ae7aa6b0594")
	header.Set("X-Sdk-Date", "20240101T000000Z")
	signed := []string{"host", "user-agent", "x-project-id", "x-sdk-date"}
	bodyHash := "2cafbb018c3d46420fa701e3d16097a60e1b1297525b51fa670c24a3e9741024"

	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		signRequest(http.MethodPost, u, u.Host, header, signed, bodyHash, "AKEXAMPLEAKEXAMPLE00", "SKEXAMPLESKEXAMPLESKEXAMPLESKEXAMPLE0000")
	}
}

// signing runs once per attempt: it allocates only the string that holds
// X-Sdk-Date and Authorization, and the slice of the header values.
func TestSignAllocations(t *testing.T) {
	body := []byte(`{"agent":{"agent_id":"489654f2-363b-4ebf-966a-bdf079d97114"}}`)
	for _, tt := range []struct {
		name, method, url string
		keys              AKSK
	}{
		{"register", "POST", "https://cbr.example.com/v3/p/agents", AKSK{AccessKey: "AK", SecretKey: "SK"}},
		{"with a security token", "POST", "https://cbr.example.com/v3/p/agents", AKSK{AccessKey: "AK", SecretKey: "SK", SecurityToken: "token"}},
		{"list with a query", "GET", "https://cbr.example.com/v3/p/agents?limit=1000&offset=0&status=normal", AKSK{AccessKey: "AK", SecretKey: "SK"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, nil)
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json;charset=UTF-8")
			req.Header.Set("X-Project-Id", "p")
			now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			allocs := testing.AllocsPerRun(100, func() {
				if err := tt.keys.sign(req, body, now); err != nil {
					t.Fatal(err)
				}
			})
			assert.Equal(t, 2.0, allocs)
		})
	}
}

func TestHMACSHA256MatchesCryptoHMAC(t *testing.T) {
	for _, keyLen := range []int{0, 1, 40, 63, 64, 65, 200} {
		for _, msgLen := range []int{0, 1, 98, 255, 256, 257, 1000} {
			key := strings.Repeat("k", keyLen)
			msg := []byte(strings.Repeat("m", msgLen))
			mac := hmac.New(sha256.New, []byte(key))
			mac.Write(msg)
			got := hmacSHA256(key, msg)
			assert.Equal(t, mac.Sum(nil), got[:], "key %d bytes, message %d bytes", keyLen, msgLen)
		}
	}
}

func TestAppendSdkDate(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2019, 11, 15, 3, 36, 55, 999999999, time.UTC),
		time.Date(2024, 12, 31, 23, 59, 59, 0, time.FixedZone("", -5*3600)), // the next day in UTC
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), // past 4 digits: as time.Format writes it
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		assert.Equal(t, tm.UTC().Format(sdkDateFormat), string(appendSdkDate(nil, tm)), "%v", tm)
	}
}

// A header set directly in the map, under a key that is not canonical, is
// signed all the same.
func TestSignFindsNonCanonicalKeys(t *testing.T) {
	u := mustParseURL(t, "https://h/v1")
	canonical := http.Header{"X-Sdk-Date": {"d"}, "X-Project-Id": {"p"}}
	other := http.Header{"X-Sdk-Date": {"d"}, "x-project-id": {"p"}}
	signed := []string{"x-project-id", "x-sdk-date"}
	want := signRequest("GET", u, "h", canonical, signed, emptyBodySHA256, "AK", "SK")
	assert.Contains(t, want, "SignedHeaders=x-project-id;x-sdk-date,")
	assert.Equal(t, want, signRequest("GET", u, "h", other, signed, emptyBodySHA256, "AK", "SK"))
}

// canonicalQueryByParseQuery is the canonical query built the plain way,
// with url.ParseQuery, sorted names and sorted values.
func canonicalQueryByParseQuery(rawQuery string) string {
	params, _ := url.ParseQuery(rawQuery)
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(params)) {
		values := params[k]
		slices.Sort(values)
		for _, v := range values {
			pairs = append(pairs, string(appendEscaped(nil, k))+"="+string(appendEscaped(nil, v)))
		}
	}
	return strings.Join(pairs, "&")
}

func FuzzCanonicalQuery(f *testing.F) {
	for _, q := range []string{"", "b=1&a=2&a=1", "a=%zz&b=2&c=1;d=2&e=%E4%B8%80", "&&=&x&x=&+=%20", "k=A-z_0.9~%2B%40%3A+"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		if got, want := string(appendCanonicalQuery(nil, rawQuery)), canonicalQueryByParseQuery(rawQuery); got != want {
			t.Fatalf("query %q: got %q, want %q", rawQuery, got, want)
		}
	})
}
