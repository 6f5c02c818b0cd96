// Package bench compares this SDK with the official huaweicloud-sdk-go-v3 and
// with the fair baseline of ../internal/fair (net/http and encoding/json as a
// careful user would write them), by the paired method of ../internal/paired.
// It is a module of its own so that the official SDK (a 45 MiB module) never
// enters the SDK's go.sum. See ../docs/PERFORMANCE.md:
//
//	cd bench
//	go test -run '^$' -bench . -benchtime 31x
//
// Every benchmark registers the documented agent against the same loopback
// server, which answers with the documented response plus one path; the
// metric "ratio" is the first client's time over the second's. cmd/ holds
// three minimal programs, one per client, for binary sizes:
//
//	go build -trimpath -ldflags='-s -w' -o /tmp/ours ./cmd/ours   # likewise ./cmd/official, ./cmd/raw
package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/internal/fair"
	"github.com/cbrsdk/cbr/internal/paired"
	hcbasic "github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/basic"
	hcconfig "github.com/huaweicloud/huaweicloud-sdk-go-v3/core/config"
	hccbr "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/cbr/v1"
	hcmodel "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/cbr/v1/model"
)

const (
	projectID = "f841e01fd2b14e7fa41b6ae7aa6b0594"
	agentID   = "489654f2-363b-4ebf-966a-bdf079d97114"
	ak        = "AKEXAMPLEAKEXAMPLE00"
	sk        = "SKEXAMPLESKEXAMPLESKEXAMPLESKEXAMPLE0000"
)

// response is the documented register response, with one path.
var response = []byte(`{"agent":{"created_at":"2022-01-30T09:28:09.334+00:00","updated_at":"2022-01-30T09:28:09.334+00:00","agent_id":"489654f2-363b-4ebf-966a-bdf079d97114","agent_version":"1.0.0","agent_type":"native","host_name":"ecs-0001","host_nickname":"","host_ip":"192.168.10.144","host_os":"linux","status":"normal","last_active_time":"2022-01-30T09:28:08.960+00:00","paths":[{"id":"5684b0fb-44c8-4c70-bb59-b03ec2738360","agent_id":"489654f2-363b-4ebf-966a-bdf079d97114","dir_path":"/opt/backup","status":"available","exclude_paths":"*.txt"}]}}`)

func server(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "bench")
		w.Write(response)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// ops is n registrations of the documented agent by one client.
type ops func(n int)

// official is the official SDK, which signs with AK/SK (it has no token
// credentials), with its default configuration.
func official(b *testing.B, srv *httptest.Server) ops {
	creds, err := hcbasic.NewCredentialsBuilder().WithAk(ak).WithSk(sk).WithProjectId(projectID).SafeBuild()
	if err != nil {
		b.Fatal(err)
	}
	hc, err := hccbr.CbrClientBuilder().WithEndpoints([]string{srv.URL}).WithCredential(creds).
		WithHttpConfig(hcconfig.DefaultHttpConfig()).SafeBuild()
	if err != nil {
		b.Fatal(err)
	}
	c := hccbr.NewCbrClient(hc)
	version, typ := "1.0.0", "native"
	return func(n int) {
		for range n {
			req := &hcmodel.RegisterAgentRequest{Body: &hcmodel.AgentRegisterReq{Agent: &hcmodel.AgentRegister{
				AgentId: agentID, HostName: "ecs-00002", HostIp: "10.10.0.2", HostOs: "linux", AgentVersion: &version, AgentType: &typ}}}
			if resp, err := c.RegisterAgent(req); err != nil || resp.Agent == nil || resp.Agent.AgentId != agentID {
				b.Fatal(resp, err)
			}
		}
	}
}

// ours is this SDK with creds.
func ours(b *testing.B, srv *httptest.Server, creds cbr.Credentials) ops {
	c, err := cbr.NewClient(cbr.WithEndpoint(srv.URL), cbr.WithProjectID(projectID), cbr.WithCredentials(creds))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	in := cbr.AgentRegister{AgentID: agentID, HostName: "ecs-00002", HostIP: "10.10.0.2", HostOS: "linux",
		AgentVersion: "1.0.0", AgentType: cbr.AgentTypeNative}
	return func(n int) {
		for range n {
			if a, err := c.RegisterAgent(ctx, in); err != nil || a.AgentID != agentID {
				b.Fatal(a, err)
			}
		}
	}
}

// raw is the fair baseline: signed with AK/SK by fair.Sign when aksk is set,
// else with a token.
func raw(b *testing.B, srv *httptest.Server, aksk bool) ops {
	c := &fair.Client{HTTP: fair.HTTPClient(), AgentsURL: srv.URL + "/v3/" + projectID + "/agents",
		ProjectID: projectID, UserAgent: "raw/1.0", Token: "token", Now: time.Now}
	if aksk {
		c.AK, c.SK = ak, sk
	}
	b.Cleanup(c.HTTP.CloseIdleConnections)
	ctx := context.Background()
	in := fair.Register{AgentID: agentID, HostName: "ecs-00002", HostIP: "10.10.0.2", HostOS: "linux",
		AgentVersion: "1.0.0", AgentType: "native"}
	return func(n int) {
		for range n {
			if a, err := c.RegisterAgent(ctx, in); err != nil || a.AgentID != agentID {
				b.Fatal(a, err)
			}
		}
	}
}

// BenchmarkOursAKSKVsRaw is this SDK against the fair baseline, both AK/SK.
func BenchmarkOursAKSKVsRaw(b *testing.B) {
	srv := server(b)
	paired.Compare(b, ours(b, srv, cbr.AKSK{AccessKey: ak, SecretKey: sk}), raw(b, srv, true))
}

// BenchmarkOfficialVsRaw is the official SDK against the fair baseline, both AK/SK.
func BenchmarkOfficialVsRaw(b *testing.B) {
	srv := server(b)
	paired.Compare(b, official(b, srv), raw(b, srv, true))
}

// BenchmarkOursAKSKVsOfficial is this SDK against the official SDK, both AK/SK.
func BenchmarkOursAKSKVsOfficial(b *testing.B) {
	srv := server(b)
	paired.Compare(b, ours(b, srv, cbr.AKSK{AccessKey: ak, SecretKey: sk}), official(b, srv))
}

// BenchmarkOursTokenVsRaw is this SDK against the fair baseline, both with a token.
func BenchmarkOursTokenVsRaw(b *testing.B) {
	srv := server(b)
	paired.Compare(b, ours(b, srv, cbr.Token("token")), raw(b, srv, false))
}
