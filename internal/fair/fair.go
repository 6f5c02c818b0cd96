// Package fair is the fair baseline of the benchmarks of this module and of
// bench/: what a careful user would write by hand with net/http and
// encoding/json to get what the SDK's RegisterAgent gives.
package fair

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
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The baseline does what the SDK's RegisterAgent does, without retries,
// validation or typed errors. It uses the same transport timeouts and pool sizes as the SDK's default
// transport, sends the same headers and body, decodes into typed structs
// with time.Time timestamps (the documented forms) and exclude_paths split,
// checks the status and builds a small error on a non-2xx answer. For AK/SK
// it adds Sign, a plain SDK-HMAC-SHA256 signer.

// Transport is the SDK's default transport (see newTransport), written
// out as a user would; TestFairTransportMatchesSDK keeps the two equal.
func Transport() *http.Transport {
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

// HTTPClient is the program's one HTTP client: the SDK's transport settings,
// and a bound of 30s on each exchange, body included, as the SDK's
// RetryPolicy.AttemptTimeout bounds each attempt; a careful user never sends
// without one.
func HTTPClient() *http.Client {
	return &http.Client{Transport: Transport(), Timeout: 30 * time.Second}
}

// Client registers agents with net/http alone.
type Client struct {
	HTTP      *http.Client
	AgentsURL string // endpoint + "/v3/{project_id}/agents", built once
	ProjectID string
	UserAgent string
	Token     string // X-Auth-Token, when AK is empty
	AK, SK    string
	Now       func() time.Time // the clock of signatures
}

// Register is the body of a registration.
type Register struct {
	AgentID      string `json:"agent_id"`
	HostName     string `json:"host_name"`
	HostIP       string `json:"host_ip"`
	HostOS       string `json:"host_os"`
	HostNickname string `json:"host_nickname,omitempty"`
	AgentVersion string `json:"agent_version,omitempty"`
	AgentType    string `json:"agent_type,omitempty"`
}

// Agent is an agent as a user would decode it.
type Agent struct {
	AgentID        string `json:"agent_id"`
	AgentVersion   string `json:"agent_version"`
	AgentType      string `json:"agent_type"`
	HostName       string `json:"host_name"`
	HostNickname   string `json:"host_nickname"`
	HostIP         string `json:"host_ip"`
	HostOS         string `json:"host_os"`
	Status         string `json:"status"`
	CreatedAt      Time   `json:"created_at"`
	UpdatedAt      Time   `json:"updated_at"`
	LastActiveTime Time   `json:"last_active_time"`
	Paths          []Path `json:"paths"`
}

// Path is a backup path as a user would decode it.
type Path struct {
	ID           string    `json:"id"`
	Status       string    `json:"status"`
	AgentID      string    `json:"agent_id"`
	DirPath      string    `json:"dir_path"`
	ExcludePaths CommaList `json:"exclude_paths"`
}

// Time is a timestamp in the documented forms: "2022-01-30T09:28:09.334153"
// (no zone: UTC), "2022-01-30T09:28:09.334+00:00", null.
type Time struct{ time.Time }

// UnmarshalJSON parses the forms listed on Time.
func (t *Time) UnmarshalJSON(b []byte) error {
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

// CommaList is exclude_paths, one comma-separated string on the wire.
type CommaList []string

// UnmarshalJSON splits the string on commas, trimmed, without empty items.
func (l *CommaList) UnmarshalJSON(b []byte) error {
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

// RegisterAgent is POST /v3/{project_id}/agents.
func (c *Client) RegisterAgent(ctx context.Context, in Register) (*Agent, error) {
	body, err := json.Marshal(struct {
		Agent Register `json:"agent"`
	}{in})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.AgentsURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.UserAgent)
	req.Header.Set("X-Project-Id", c.ProjectID)
	if c.AK != "" {
		Sign(req, body, c.AK, c.SK, AKSKHeaders, c.Now())
	} else {
		req.Header.Set("X-Auth-Token", c.Token)
	}
	resp, err := c.HTTP.Do(req)
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
		Agent *Agent `json:"agent"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("register agent: %w", err)
	}
	if out.Agent == nil {
		return nil, errors.New("register agent: no agent in the response")
	}
	return out.Agent, nil
}

// SignedHeader names a header to sign: its key in http.Header and its name
// in the signature.
type SignedHeader struct{ Key, Name string }

// AKSKHeaders are the headers the SDK signs, sorted by name.
var AKSKHeaders = []SignedHeader{
	{"Content-Type", "content-type"}, {"Host", "host"}, {"X-Project-Id", "x-project-id"},
	{"X-Sdk-Date", "x-sdk-date"}, {"X-Security-Token", "x-security-token"},
}

// Sign signs req with SDK-HMAC-SHA256, as a careful user would write
// it from the published algorithm: the headers of signed (sorted by name) that
// req has, Host from the URL, X-Sdk-Date set to now.
func Sign(req *http.Request, body []byte, ak, sk string, signed []SignedHeader, now time.Time) {
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
		value := req.Header.Get(h.Key)
		if h.Key == "Host" {
			value = req.URL.Host
		} else if value == "" {
			continue
		}
		cr.WriteString(h.Name + ":" + strings.TrimSpace(value) + "\n")
		if names.Len() > 0 {
			names.WriteString(";")
		}
		names.WriteString(h.Name)
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
