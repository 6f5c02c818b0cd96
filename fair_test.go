package cbr_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/internal/fair"
)

// The fair baseline must be what it claims: a correct signer, the SDK's
// transport, the same request on the wire and the same agent decoded.

func TestMinimalSignerMatchesPublishedVectors(t *testing.T) {
	sdkDate := []fair.SignedHeader{{Key: "X-Sdk-Date", Name: "x-sdk-date"}}
	tests := []struct {
		name, method, url string
		header            http.Header
		body              string
		signed            []fair.SignedHeader
		date              time.Time
		ak, sk, want      string
	}{{
		name: "V1, the documentation's example", method: "GET",
		url:    "https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&marker=13551d6b-755d-4757-b956-536f674975c0",
		header: http.Header{"Content-Type": {"application/json"}},
		signed: []fair.SignedHeader{{Key: "Content-Type", Name: "content-type"}, {Key: "Host", Name: "host"}, {Key: "X-Sdk-Date", Name: "x-sdk-date"}},
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
		signed: []fair.SignedHeader{{Key: "User-Agent", Name: "user-agent"}, {Key: "X-Project-Id", Name: "x-project-id"}, {Key: "X-Sdk-Date", Name: "x-sdk-date"}},
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
			fair.Sign(req, []byte(tt.body), tt.ak, tt.sk, tt.signed, tt.date)
			assert.Equal(t, tt.want, req.Header.Get("Authorization"))
		})
	}
}

func TestFairTransportMatchesSDK(t *testing.T) {
	sdk, base := cbr.NewTransport(), fair.Transport()
	// Every setting but the functions (Proxy, DialContext), which cannot be compared.
	sdk.Proxy, base.Proxy, sdk.DialContext, base.DialContext = nil, nil, nil, nil
	assert.Equal(t, sdk, base)
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
func newFairClient(srv *httptest.Server, ak, sk string, now func() time.Time) *fair.Client {
	return &fair.Client{
		HTTP:      fair.HTTPClient(),
		AgentsURL: srv.URL + "/v3/" + testProject + "/agents",
		ProjectID: testProject,
		UserAgent: "cbr-go/" + cbr.Version,
		Token:     testToken,
		AK:        ak, SK: sk, Now: now,
	}
}

// fairDocumentedRegister is documentedRegister for the fair baseline.
var fairDocumentedRegister = fair.Register{AgentID: testAgentID, HostName: "ecs-00002", HostIP: "10.10.0.2",
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
			base, err := newFairClient(srv.srv, tt.ak, tt.sk, now).RegisterAgent(context.Background(), fairDocumentedRegister)
			require.NoError(t, err)

			require.Len(t, srv.reqs, 2)
			sdkReq, fairReq := srv.reqs[0], srv.reqs[1]
			assert.Equal(t, sdkReq.Method, fairReq.Method)
			assert.Equal(t, sdkReq.URL.String(), fairReq.URL.String())
			assert.Equal(t, srv.bodies[0], srv.bodies[1])
			// Byte for byte the same headers, the signature included.
			assert.Equal(t, sdkReq.Header, fairReq.Header)

			want := cbr.Agent{
				AgentID: base.AgentID, AgentVersion: base.AgentVersion, AgentType: cbr.AgentType(base.AgentType),
				HostName: base.HostName, HostNickname: base.HostNickname, HostIP: base.HostIP, HostOS: base.HostOS,
				Status: cbr.AgentStatus(base.Status), CreatedAt: base.CreatedAt.Time, UpdatedAt: base.UpdatedAt.Time,
				LastActiveTime: base.LastActiveTime.Time,
			}
			for _, p := range base.Paths {
				want.Paths = append(want.Paths, cbr.Path{ID: p.ID, Status: cbr.PathStatus(p.Status), AgentID: p.AgentID,
					DirPath: p.DirPath, ExcludePaths: p.ExcludePaths})
			}
			require.Len(t, want.Paths, 2)
			assert.Equal(t, want, *got)
		})
	}
}
