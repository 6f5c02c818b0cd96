package cbr_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
)

// This file is the fair baseline of the benchmarks: what a careful user
// would write by hand with net/http and encoding/json to get what the SDK's
// RegisterAgent gives, without retries, validation or typed errors. It
// uses the same transport timeouts and pool sizes as the SDK's default
// transport, sends the same headers and body, decodes into typed structs
// with time.Time timestamps (the documented forms) and exclude_paths split,
// checks the status and builds a small error on a non-2xx answer. For AK/SK
// it adds minimalSign, a plain SDK-HMAC-SHA256 signer.

// fairTransport is the SDK's default transport (see newTransport), written
// out as a user would; TestFairTransportMatchesSDK keeps the two equal.
func fairTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   8,
		ForceAttemptHTTP2:     true,
	}
}

// fairClient registers agents with net/http alone.
type fairClient struct {
	hc        *http.Client
	agentsURL string // endpoint + "/v3/{project_id}/agents", built once
	projectID string
	userAgent string
	token     string // X-Auth-Token, when ak is empty
	ak, sk    string
	now       func() time.Time // the clock of signatures
}

// fairRegister is the body of a registration.
type fairRegister struct {
	AgentID      string `json:"agent_id"`
	HostName     string `json:"host_name"`
	HostIP       string `json:"host_ip"`
	HostOS       string `json:"host_os"`
	HostNickname string `json:"host_nickname,omitempty"`
	AgentVersion string `json:"agent_version,omitempty"`
	AgentType    string `json:"agent_type,omitempty"`
}

// fairAgent is an agent as a user would decode it.
type fairAgent struct {
	AgentID        string     `json:"agent_id"`
	AgentVersion   string     `json:"agent_version"`
	AgentType      string     `json:"agent_type"`
	HostName       string     `json:"host_name"`
	HostNickname   string     `json:"host_nickname"`
	HostIP         string     `json:"host_ip"`
	HostOS         string     `json:"host_os"`
	Status         string     `json:"status"`
	CreatedAt      apiTime    `json:"created_at"`
	UpdatedAt      apiTime    `json:"updated_at"`
	LastActiveTime apiTime    `json:"last_active_time"`
	Paths          []fairPath `json:"paths"`
}

// fairPath is a backup path as a user would decode it.
type fairPath struct {
	ID           string    `json:"id"`
	Status       string    `json:"status"`
	AgentID      string    `json:"agent_id"`
	DirPath      string    `json:"dir_path"`
	ExcludePaths commaList `json:"exclude_paths"`
}

// apiTime is a timestamp in the documented forms: "2022-01-30T09:28:09.334153"
// (no zone: UTC), "2022-01-30T09:28:09.334+00:00", null.
type apiTime struct{ time.Time }

func (t *apiTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s, err := strconv.Unquote(string(b))
	if err != nil || s == "" {
		return err
	}
	layout := "2006-01-02T15:04:05" // time.Parse accepts a fraction after the seconds
	if strings.HasSuffix(s, "Z") || strings.LastIndexAny(s, "+-") > len("2006-01-02") {
		layout = time.RFC3339
	}
	t.Time, err = time.ParseInLocation(layout, s, time.UTC)
	return err
}

// commaList is exclude_paths, one comma-separated string on the wire.
type commaList []string

func (l *commaList) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil || s == "" {
		return err
	}
	items := strings.Split(s, ",")
	*l = items[:0]
	for _, item := range items {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

// registerAgent is POST /v3/{project_id}/agents.
func (c *fairClient) registerAgent(ctx context.Context, in fairRegister) (*fairAgent, error) {
	body, err := json.Marshal(struct {
		Agent fairRegister `json:"agent"`
	}{in})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.agentsURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("X-Project-Id", c.projectID)
	if c.ak != "" {
		minimalSign(req, body, c.ak, c.sk, akskHeaders, c.now())
	} else {
		req.Header.Set("X-Auth-Token", c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("register agent: %s: %.200s", resp.Status, data)
	}
	var out struct {
		Agent *fairAgent `json:"agent"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("register agent: %w", err)
	}
	if out.Agent == nil {
		return nil, errors.New("register agent: no agent in the response")
	}
	return out.Agent, nil
}

// signedHeader names a header to sign: its key in http.Header and its name
// in the signature.
type signedHeader struct{ key, name string }

// akskHeaders are the headers the SDK signs, sorted by name.
var akskHeaders = []signedHeader{
	{"Content-Type", "content-type"}, {"Host", "host"}, {"X-Project-Id", "x-project-id"},
	{"X-Sdk-Date", "x-sdk-date"}, {"X-Security-Token", "x-security-token"},
}

// minimalSign signs req with SDK-HMAC-SHA256, as a careful user would write
// it from the published algorithm: the headers of signed (sorted by name) that
// req has, Host from the URL, X-Sdk-Date set to now.
func minimalSign(req *http.Request, body []byte, ak, sk string, signed []signedHeader, now time.Time) {
	date := now.UTC().Format("20060102T150405Z")
	req.Header.Set("X-Sdk-Date", date)
	var cr, names strings.Builder
	cr.WriteString(req.Method)
	cr.WriteString("\n")
	path := req.URL.Path
	if path == "" {
		path = "/"
	}
	for _, segment := range strings.Split(path[1:], "/") {
		cr.WriteString("/" + escape(segment))
	}
	if !strings.HasSuffix(path, "/") {
		cr.WriteString("/")
	}
	cr.WriteString("\n")
	query := req.URL.Query()
	keys := make([]string, 0, len(query))
	for k := range query {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		values := query[k]
		sort.Strings(values)
		for j, v := range values {
			if i > 0 || j > 0 {
				cr.WriteString("&")
			}
			cr.WriteString(escape(k) + "=" + escape(v))
		}
	}
	cr.WriteString("\n")
	for _, h := range signed {
		value := req.Header.Get(h.key)
		if h.key == "Host" {
			value = req.URL.Host
		} else if value == "" {
			continue
		}
		cr.WriteString(h.name + ":" + strings.TrimSpace(value) + "\n")
		if names.Len() > 0 {
			names.WriteString(";")
		}
		names.WriteString(h.name)
	}
	bodyHash := sha256.Sum256(body)
	cr.WriteString("\n" + names.String() + "\n" + hex.EncodeToString(bodyHash[:]))
	crHash := sha256.Sum256([]byte(cr.String()))
	mac := hmac.New(sha256.New, []byte(sk))
	mac.Write([]byte("SDK-HMAC-SHA256\n" + date + "\n" + hex.EncodeToString(crHash[:])))
	req.Header.Set("Authorization", "SDK-HMAC-SHA256 Access="+ak+", SignedHeaders="+names.String()+
		", Signature="+hex.EncodeToString(mac.Sum(nil)))
}

// escape percent-encodes s, keeping only A-Z a-z 0-9 - _ . ~.
func escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") // QueryEscape also keeps only those, and writes " " as "+"
}

// The fair baseline must be what it claims: a correct signer, the SDK's
// transport, the same request on the wire and the same agent decoded.

func TestMinimalSignerMatchesPublishedVectors(t *testing.T) {
	sdkDate := []signedHeader{{"X-Sdk-Date", "x-sdk-date"}}
	tests := []struct {
		name, method, url string
		header            http.Header
		body              string
		signed            []signedHeader
		date              time.Time
		ak, sk, want      string
	}{{
		name: "V1, the documentation's example", method: "GET",
		url:    "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0",
		header: http.Header{"Content-Type": {"application/json"}},
		signed: []signedHeader{{"Content-Type", "content-type"}, {"Host", "host"}, {"X-Sdk-Date", "x-sdk-date"}},
		date:   time.Date(2019, 11, 15, 3, 36, 55, 0, time.UTC),
		ak:     "QTWAOYTTINDUT2QVKYUC", sk: "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
		want: "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, " +
			"Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe",
	}, {
		name: "V2, the Go SDK's GET", method: "GET", url: "https://example.huaweicloud.com/path?limit=1",
		header: http.Header{"Test_underscore": {"TEST_VALUE"}}, signed: sdkDate,
		date: time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC), ak: "AccessKey", sk: "SecretKey",
		want: "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624",
	}, {
		name: "V3, the Go SDK's POST", method: "POST", url: "https://example.huaweicloud.com/path?key=value",
		header: http.Header{"Content-Type": {"application/json"}}, body: `{"Name":"test","Id":1}` + "\n", signed: sdkDate,
		date: time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC), ak: "AccessKey", sk: "SecretKey",
		want: "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59",
	}, {
		name: "CBR RegisterAgent", method: "POST", url: "https://cbr.ap-southeast-1.myhuaweicloud.com/v3/f841e01fd2b14e7fa41b6ae7aa6b0594/agents",
		header: http.Header{
			"Content-Type": {"application/json;charset=UTF-8"}, "User-Agent": {"huaweicloud-usdk-go/3.0; vector"},
			"X-Project-Id": {"f841e01fd2b14e7fa41b6ae7aa6b0594"},
		},
		body: `{"agent":{"agent_id":"489654f2-363b-4ebf-966a-bdf079d97114","host_name":"ecs-00002",` +
			`"host_ip":"10.10.0.2","host_os":"linux","agent_version":"1.0.0","agent_type":"native"}}` + "\n",
		signed: []signedHeader{{"User-Agent", "user-agent"}, {"X-Project-Id", "x-project-id"}, {"X-Sdk-Date", "x-sdk-date"}},
		date:   time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		ak:     "AKEXAMPLEAKEXAMPLE00", sk: "SKEXAMPLESKEXAMPLESKEXAMPLESKEXAMPLE0000",
		want: "SDK-HMAC-SHA256 Access=AKEXAMPLEAKEXAMPLE00, SignedHeaders=user-agent;x-project-id;x-sdk-date, " +
			"Signature=e06bc2fb9890071b5cd156c2d12ec5ab269c07571fa3d666f1a3d0db1c85f712",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, strings.NewReader(tt.body))
			require.NoError(t, err)
			req.Header = tt.header
			minimalSign(req, []byte(tt.body), tt.ak, tt.sk, tt.signed, tt.date)
			assert.Equal(t, tt.want, req.Header.Get("Authorization"))
		})
	}
}

func TestFairTransportMatchesSDK(t *testing.T) {
	sdk, fair := cbr.NewTransport(), fairTransport()
	// Every setting but the functions (Proxy, DialContext), which cannot be compared.
	sdk.Proxy, fair.Proxy, sdk.DialContext, fair.DialContext = nil, nil, nil, nil
	assert.Equal(t, sdk, fair)
}

// capture is a loopback server that records the requests it is sent and
// answers each with body.
type capture struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []*http.Request
	bodies []string
}

func newCapture(t testing.TB, body []byte) *capture {
	c := &capture{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.reqs, c.bodies = append(c.reqs, r), append(c.bodies, string(data))
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Write(body)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// newFairClient is the fair baseline aimed at srv: with a token, or with AK/SK
// when ak is set.
func newFairClient(srv *httptest.Server, ak, sk string, now func() time.Time) *fairClient {
	return &fairClient{
		hc:        &http.Client{Transport: fairTransport()},
		agentsURL: srv.URL + "/v3/" + testProject + "/agents",
		projectID: testProject,
		userAgent: "cbr-go/" + cbr.Version,
		token:     testToken,
		ak:        ak, sk: sk, now: now,
	}
}

// fairDocumentedRegister is documentedRegister for the fair baseline.
var fairDocumentedRegister = fairRegister{AgentID: testAgentID, HostName: "ecs-00002", HostIP: "10.10.0.2",
	HostOS: "linux", AgentVersion: "1.0.0", AgentType: "native"}

func TestFairBaselineSendsAndDecodesWhatTheSDKDoes(t *testing.T) {
	now := func() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }
	for _, tt := range []struct {
		name   string
		creds  cbr.Credentials
		ak, sk string
	}{
		{"token", cbr.Token(testToken), "", ""},
		{"AK/SK", cbr.AKSK{AccessKey: "AKEXAMPLEAKEXAMPLE00", SecretKey: "SKEXAMPLESKEXAMPLESKEXAMPLESKEXAMPLE0000"},
			"AKEXAMPLEAKEXAMPLE00", "SKEXAMPLESKEXAMPLESKEXAMPLESKEXAMPLE0000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCapture(t, golden(t, "update_response.json"))
			c, err := cbr.NewClient(cbr.WithEndpoint(srv.srv.URL), cbr.WithProjectID(testProject),
				cbr.WithCredentials(tt.creds), cbr.WithClock(now))
			require.NoError(t, err)
			got, err := c.RegisterAgent(context.Background(), documentedRegister)
			require.NoError(t, err)
			fair, err := newFairClient(srv.srv, tt.ak, tt.sk, now).registerAgent(context.Background(), fairDocumentedRegister)
			require.NoError(t, err)

			require.Len(t, srv.reqs, 2)
			sdkReq, fairReq := srv.reqs[0], srv.reqs[1]
			assert.Equal(t, sdkReq.Method, fairReq.Method)
			assert.Equal(t, sdkReq.URL.String(), fairReq.URL.String())
			assert.Equal(t, srv.bodies[0], srv.bodies[1])
			// Byte for byte the same headers, the signature included.
			assert.Equal(t, sdkReq.Header, fairReq.Header)

			want := cbr.Agent{
				AgentID: fair.AgentID, AgentVersion: fair.AgentVersion, AgentType: cbr.AgentType(fair.AgentType),
				HostName: fair.HostName, HostNickname: fair.HostNickname, HostIP: fair.HostIP, HostOS: fair.HostOS,
				Status: cbr.AgentStatus(fair.Status), CreatedAt: fair.CreatedAt.Time, UpdatedAt: fair.UpdatedAt.Time,
				LastActiveTime: fair.LastActiveTime.Time,
			}
			for _, p := range fair.Paths {
				want.Paths = append(want.Paths, cbr.Path{ID: p.ID, Status: cbr.PathStatus(p.Status), AgentID: p.AgentID,
					DirPath: p.DirPath, ExcludePaths: p.ExcludePaths})
			}
			require.Len(t, want.Paths, 2)
			assert.Equal(t, want, *got)
		})
	}
}
