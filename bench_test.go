package cbr_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cbrsdk/cbr"
)

// Run with: go test -run '^$' -bench . -benchmem -count=6 -benchtime=1s
//
// BenchmarkRegisterAgent and BenchmarkRegisterAgentRaw send the same request
// to the same static handler, so the difference between them is the cost of
// the client.

// staticServer answers every request with the documented register response.
func staticServer(b *testing.B) *httptest.Server {
	body := golden(b, "register_response.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("X-Request-Id", "0123456789abcdef0123456789abcdef")
		w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func BenchmarkRegisterAgent(b *testing.B) {
	srv := staticServer(b)
	c, err := cbr.NewClient(cbr.WithEndpoint(srv.URL), cbr.WithProjectID(testProject), cbr.WithCredentials(cbr.Token(testToken)))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		agent, err := c.RegisterAgent(ctx, documentedRegister)
		if err != nil || agent.AgentID != testAgentID {
			b.Fatal(agent, err)
		}
	}
}

// rawAgent is what a program without the SDK would decode: the API's fields
// as plain strings.
type rawAgent struct {
	AgentID        string `json:"agent_id"`
	AgentVersion   string `json:"agent_version"`
	AgentType      string `json:"agent_type"`
	HostName       string `json:"host_name"`
	HostNickname   string `json:"host_nickname"`
	HostIP         string `json:"host_ip"`
	HostOS         string `json:"host_os"`
	Status         string `json:"status"`
	CreatedAt      string `json:"created_at"`
	UpdatedAt      string `json:"updated_at"`
	LastActiveTime string `json:"last_active_time"`
}

// BenchmarkRegisterAgentRaw is the baseline: plain net/http and encoding/json,
// the same headers with an X-Auth-Token, no validation, retries or typed errors.
func BenchmarkRegisterAgentRaw(b *testing.B) {
	srv := staticServer(b)
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	url := srv.URL + "/v3/" + testProject + "/agents"
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		body, err := json.Marshal(struct {
			Agent cbr.AgentRegister `json:"agent"`
		}{documentedRegister})
		if err != nil {
			b.Fatal(err)
		}
		req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json;charset=UTF-8")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "cbr-go/"+cbr.Version)
		req.Header.Set("X-Project-Id", testProject)
		req.Header.Set("X-Auth-Token", testToken)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var out struct {
			Agent rawAgent `json:"agent"`
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			err = json.Unmarshal(data, &out)
		}
		if err != nil || resp.StatusCode != http.StatusOK || out.Agent.AgentID != testAgentID {
			b.Fatal(resp.StatusCode, err)
		}
	}
}

func BenchmarkDecodeAgent(b *testing.B) {
	data := golden(b, "update_response.json")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var out struct {
			Agent cbr.Agent `json:"agent"`
		}
		if err := json.Unmarshal(data, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeAgentRaw is the baseline of BenchmarkDecodeAgent: the same
// body into plain strings, with no time parsing and no exclude_paths split.
func BenchmarkDecodeAgentRaw(b *testing.B) {
	data := golden(b, "update_response.json")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var out struct {
			Agent struct {
				rawAgent
				Paths []struct {
					ID           string `json:"id"`
					Status       string `json:"status"`
					AgentID      string `json:"agent_id"`
					DirPath      string `json:"dir_path"`
					ExcludePaths string `json:"exclude_paths"`
				} `json:"paths"`
			} `json:"agent"`
		}
		if err := json.Unmarshal(data, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// cannedTransport answers every request with one 200 response, without a
// network, so that a benchmark through it measures the client alone.
type cannedTransport []byte

func (body cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json;charset=UTF-8"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}

func cannedClient(b *testing.B, body []byte) *cbr.Client {
	c, err := cbr.NewClient(cbr.WithEndpoint(testEndpoint), cbr.WithProjectID(testProject),
		cbr.WithCredentials(cbr.Token(testToken)), cbr.WithHTTPClient(&http.Client{Transport: cannedTransport(body)}))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkShowAgentNoNetwork is a ShowAgent call whose answer, an agent with
// two paths, comes from memory: the whole cost of the client, decoding included.
func BenchmarkShowAgentNoNetwork(b *testing.B) {
	c := cannedClient(b, golden(b, "update_response.json"))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		agent, err := c.ShowAgent(ctx, testAgentID)
		if err != nil || len(agent.Paths) != 2 {
			b.Fatal(agent, err)
		}
	}
}

// BenchmarkListAgentsNoNetwork is a ListAgents call whose answer, a page of
// 100 agents with two paths each, comes from memory.
func BenchmarkListAgentsNoNetwork(b *testing.B) {
	var one struct {
		Agent json.RawMessage `json:"agent"`
	}
	if err := json.Unmarshal(golden(b, "update_response.json"), &one); err != nil {
		b.Fatal(err)
	}
	page := bytes.Repeat(append(one.Agent, ','), 100)
	body := []byte(`{"agents":[` + string(page[:len(page)-1]) + `],"count":100,"limit":100,"offset":0}`)
	c := cannedClient(b, body)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		list, err := c.ListAgents(ctx, cbr.ListAgentsOptions{Limit: 100})
		if err != nil || len(list.Agents) != 100 {
			b.Fatal(list, err)
		}
	}
}
