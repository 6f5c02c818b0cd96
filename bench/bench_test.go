// Package bench compares this SDK with the official huaweicloud-sdk-go-v3 and
// with plain net/http, in one run on one machine. It is a module of its own so
// that the official SDK (a 45 MiB module) never enters the SDK's go.sum.
//
//	cd bench
//	go test -run '^$' -bench . -count 6 -benchtime 1s | tee /tmp/bench.txt
//	go run golang.org/x/perf/cmd/benchstat@latest /tmp/bench.txt
//
// Every benchmark registers the documented agent against the same loopback
// server, which answers with the documented response plus one path. cmd/
// holds three minimal programs, one per client, for binary sizes:
//
//	go build -trimpath -ldflags='-s -w' -o /tmp/ours ./cmd/ours   # likewise ./cmd/official, ./cmd/raw
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cbrsdk/cbr"
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

// BenchmarkOfficial is the official SDK, which signs with AK/SK (it has no token credentials).
func BenchmarkOfficial(b *testing.B) {
	srv := server(b)
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
	req := &hcmodel.RegisterAgentRequest{Body: &hcmodel.AgentRegisterReq{Agent: &hcmodel.AgentRegister{
		AgentId: agentID, HostName: "ecs-00002", HostIp: "10.10.0.2", HostOs: "linux", AgentVersion: &version, AgentType: &typ}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.RegisterAgent(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCBRAKSK is this SDK signing with AK/SK, as the official SDK does.
func BenchmarkCBRAKSK(b *testing.B) { benchCBR(b, cbr.AKSK{AccessKey: ak, SecretKey: sk}) }

// BenchmarkCBRToken is this SDK with an IAM token.
func BenchmarkCBRToken(b *testing.B) { benchCBR(b, cbr.Token("token")) }

func benchCBR(b *testing.B, creds cbr.Credentials) {
	srv := server(b)
	c, err := cbr.NewClient(cbr.WithEndpoint(srv.URL), cbr.WithProjectID(projectID), cbr.WithCredentials(creds))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	in := cbr.AgentRegister{AgentID: agentID, HostName: "ecs-00002", HostIP: "10.10.0.2", HostOS: "linux",
		AgentVersion: "1.0.0", AgentType: cbr.AgentTypeNative}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.RegisterAgent(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRaw is the floor: net/http and encoding/json with a token, decoding
// into plain strings, with no validation, retries, signing or typed errors.
func BenchmarkRaw(b *testing.B) {
	srv := server(b)
	hc := &http.Client{}
	type agent struct {
		AgentID, AgentVersion, AgentType, HostName, HostNickname, HostIP, HostOS, Status string
		CreatedAt, UpdatedAt, LastActiveTime                                             string
		Paths                                                                            []map[string]string
	}
	in := map[string]any{"agent": map[string]string{"agent_id": agentID, "host_name": "ecs-00002",
		"host_ip": "10.10.0.2", "host_os": "linux", "agent_version": "1.0.0", "agent_type": "native"}}
	b.ReportAllocs()
	for b.Loop() {
		body, _ := json.Marshal(in)
		req, _ := http.NewRequestWithContext(context.Background(), "POST", srv.URL+"/v3/"+projectID+"/agents", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json;charset=UTF-8")
		req.Header.Set("X-Auth-Token", "token")
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var out struct{ Agent agent }
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err, resp.StatusCode)
		}
	}
}
