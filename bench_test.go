package cbr_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cbrsdk/cbr"
	"github.com/cbrsdk/cbr/internal/fair"
	"github.com/cbrsdk/cbr/internal/paired"
)

// The Paired benchmarks compare the SDK with the fair baseline of internal/fair
// by the paired method of internal/paired; see docs/PERFORMANCE.md. Run them
// with a fixed number of pairs:
//
//	go test -run '^$' -bench Paired -benchtime 31x
//
// The metric "ratio" is SDK time / baseline time, the median over the pairs.

// staticServer answers every request with body, as the API answers a
// registration.
func staticServer(b *testing.B, body []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("X-Request-Id", "0123456789abcdef0123456789abcdef")
		w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

const (
	benchAK = "AKEXAMPLEAKEXAMPLE00"
	benchSK = "SKEXAMPLESKEXAMPLESKEXAMPLESKEXAMPLE0000"
)

// registerPair returns n registrations with the SDK and n with the fair
// baseline, both against the same loopback server answering the documented
// registration response.
func registerPair(b *testing.B, creds cbr.Credentials, ak, sk string) (sdk, base func(n int)) {
	srv := staticServer(b, golden(b, "register_response.json"))
	c, err := cbr.NewClient(cbr.WithEndpoint(srv.URL), cbr.WithProjectID(testProject), cbr.WithCredentials(creds))
	if err != nil {
		b.Fatal(err)
	}
	fc := newFairClient(srv, ak, sk, time.Now)
	b.Cleanup(fc.HTTP.CloseIdleConnections)
	ctx := context.Background()
	sdkOps := func(n int) {
		for range n {
			if a, err := c.RegisterAgent(ctx, documentedRegister); err != nil || a.AgentID != testAgentID {
				b.Fatal(a, err)
			}
		}
	}
	baseOps := func(n int) {
		for range n {
			if a, err := fc.RegisterAgent(ctx, fairDocumentedRegister); err != nil || a.AgentID != testAgentID {
				b.Fatal(a, err)
			}
		}
	}
	return sdkOps, baseOps
}

// BenchmarkPairedRegisterToken is RegisterAgent with a token against the fair
// baseline with the same token.
func BenchmarkPairedRegisterToken(b *testing.B) {
	sdk, base := registerPair(b, cbr.Token(testToken), "", "")
	paired.Compare(b, sdk, base)
}

// BenchmarkPairedRegisterAKSK is RegisterAgent signed with AK/SK against the
// fair baseline signed by minimalSign.
func BenchmarkPairedRegisterAKSK(b *testing.B) {
	sdk, base := registerPair(b, cbr.AKSK{AccessKey: benchAK, SecretKey: benchSK}, benchAK, benchSK)
	paired.Compare(b, sdk, base)
}

// BenchmarkPairedParallel64 is 64 goroutines sharing one client against 64
// sharing one fair client, both with the SDK's pool sizes. requests/s of the
// SDK over those of the baseline is 1/ratio.
func BenchmarkPairedParallel64(b *testing.B) {
	sdk, base := registerPair(b, cbr.Token(testToken), "", "")
	spread := func(f func(n int)) func(n int) {
		return func(n int) {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(n) {
						f(1)
					}
				}()
			}
			wg.Wait()
		}
	}
	paired.Compare(b, spread(sdk), spread(base))
}

// BenchmarkPairedSign signs the request of a registration: the SDK's
// AKSK.Authenticate against minimalSign.
func BenchmarkPairedSign(b *testing.B) {
	body := []byte(`{"agent":{"agent_id":"489654f2-363b-4ebf-966a-bdf079d97114","host_name":"ecs-00002",` +
		`"host_ip":"10.10.0.2","host_os":"linux","agent_version":"1.0.0","agent_type":"native"}}`)
	newReq := func() *http.Request {
		req, err := http.NewRequest(http.MethodPost, agentsURL, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json;charset=UTF-8")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "cbr-go/"+cbr.Version)
		req.Header.Set("X-Project-Id", testProject)
		return req
	}
	keys := cbr.AKSK{AccessKey: benchAK, SecretKey: benchSK}
	sdkReq, baseReq := newReq(), newReq()
	paired.Compare(b, func(n int) {
		for range n {
			if err := keys.Authenticate(sdkReq, body); err != nil {
				b.Fatal(err)
			}
		}
	}, func(n int) {
		for range n {
			fair.Sign(baseReq, body, benchAK, benchSK, fair.AKSKHeaders, time.Now())
		}
	})
}

// plainAgent is the documented agent decoded into plain strings, with no
// time parsing and no exclude_paths split: the floor of decoding.
type plainAgent struct {
	AgentID        string      `json:"agent_id"`
	AgentVersion   string      `json:"agent_version"`
	AgentType      string      `json:"agent_type"`
	HostName       string      `json:"host_name"`
	HostNickname   string      `json:"host_nickname"`
	HostIP         string      `json:"host_ip"`
	HostOS         string      `json:"host_os"`
	Status         string      `json:"status"`
	CreatedAt      string      `json:"created_at"`
	UpdatedAt      string      `json:"updated_at"`
	LastActiveTime string      `json:"last_active_time"`
	Paths          []plainPath `json:"paths"`
}

type plainPath struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	AgentID      string `json:"agent_id"`
	DirPath      string `json:"dir_path"`
	ExcludePaths string `json:"exclude_paths"`
}

// decodeAgents returns a function that decodes data n times into a new
// value of T each time.
func decodeAgents[T any](b *testing.B, data []byte) func(n int) {
	return func(n int) {
		for range n {
			var v T
			if err := json.Unmarshal(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkPairedDecodeAgent decodes the documented agent with two paths into
// the public Agent, against encoding/json into plain strings.
func BenchmarkPairedDecodeAgent(b *testing.B) {
	data := golden(b, "update_response.json")
	paired.Compare(b,
		decodeAgents[struct {
			Agent cbr.Agent `json:"agent"`
		}](b, data),
		decodeAgents[struct {
			Agent plainAgent `json:"agent"`
		}](b, data))
}

// BenchmarkPairedDecodeAgentOps decodes the documented agent with two paths
// as the operations do (through the wire form, not Agent.UnmarshalJSON),
// against encoding/json into plain strings.
func BenchmarkPairedDecodeAgentOps(b *testing.B) {
	data := golden(b, "update_response.json")
	paired.Compare(b, func(n int) {
		for range n {
			if _, err := cbr.DecodeAgentResponse(data); err != nil {
				b.Fatal(err)
			}
		}
	}, decodeAgents[struct {
		Agent plainAgent `json:"agent"`
	}](b, data))
}

// BenchmarkDecodeAgent is json.Unmarshal of the documented agent with two
// paths into the public Agent, alone: the one to profile.
func BenchmarkDecodeAgent(b *testing.B) {
	decode := decodeAgents[struct {
		Agent cbr.Agent `json:"agent"`
	}](b, golden(b, "update_response.json"))
	b.ReportAllocs()
	b.ResetTimer()
	decode(b.N)
}

// agentPage returns a ListAgents answer of n copies of the documented agent
// with two paths.
func agentPage(b *testing.B, n int) []byte {
	var one struct {
		Agent json.RawMessage `json:"agent"`
	}
	if err := json.Unmarshal(golden(b, "update_response.json"), &one); err != nil {
		b.Fatal(err)
	}
	page := bytes.Repeat(append(one.Agent, ','), n)
	return []byte(`{"agents":[` + string(page[:len(page)-1]) + `],"count":` + strconv.Itoa(n) + `,"limit":1000,"offset":0}`)
}

// BenchmarkPairedDecodePage decodes a page of 1,000 agents (the SDK's side)
// against 1,000 decodings of one agent (the baseline's side): a ratio of 1 or
// less means an agent of a page costs no more than an agent alone.
func BenchmarkPairedDecodePage(b *testing.B) {
	page := agentPage(b, 1000)
	one := decodeAgents[struct {
		Agent cbr.Agent `json:"agent"`
	}](b, golden(b, "update_response.json"))
	paired.Compare(b, decodeAgents[cbr.AgentList](b, page), func(n int) { one(1000 * n) })
}

// BenchmarkPairedDecodePageOps is BenchmarkPairedDecodePage as ListAgents and
// ShowAgent decode, through the wire form.
func BenchmarkPairedDecodePageOps(b *testing.B) {
	page := agentPage(b, 1000)
	one := golden(b, "update_response.json")
	paired.Compare(b, func(n int) {
		for range n {
			if list, err := cbr.DecodeAgentListResponse(page); err != nil || len(list.Agents) != 1000 {
				b.Fatal(err)
			}
		}
	}, func(n int) {
		for range 1000 * n {
			if _, err := cbr.DecodeAgentResponse(one); err != nil {
				b.Fatal(err)
			}
		}
	})
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
// two paths, comes from memory: the whole cost of the client, decoding
// included. It is the one to profile.
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
// 1,000 agents with two paths each, comes from memory.
func BenchmarkListAgentsNoNetwork(b *testing.B) {
	c := cannedClient(b, agentPage(b, 1000))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		list, err := c.ListAgents(ctx, cbr.ListAgentsOptions{Limit: 1000})
		if err != nil || len(list.Agents) != 1000 {
			b.Fatal(list, err)
		}
	}
}
