package cbr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// ECSMetadata gets temporary AK/SK credentials from the metadata service of
// the Elastic Cloud Server (ECS) the program runs on, from the agency (IAM
// role) attached to the server, and renews them before they expire. The
// server needs an agency with CBR permissions. Use it for an agent installer
// on a cloud server: no key is stored on the host.
//
// It is used only when given to WithCredentials; the client never falls back
// to it. It talks to the metadata service with a transport of its own (no
// proxy, 3s timeout), not the one of WithHTTPClient: tests point Endpoint at
// a fake such as cbrtest.Server's.
type ECSMetadata struct {
	// Endpoint is the metadata service's base URL; empty means
	// http://169.254.169.254. Tests point it at cbrtest.Server.MetadataURL.
	Endpoint string
}

// defaultMetadataEndpoint is the ECS metadata service.
const defaultMetadataEndpoint = "http://169.254.169.254/"

// Authenticate fails: ECSMetadata needs the client that WithCredentials binds it to.
func (m ECSMetadata) Authenticate(*http.Request, []byte) error {
	return errors.New("cbr: ECSMetadata works only through WithCredentials")
}

// The ECS metadata service hands out the temporary keys of the server's
// agency. First PUT meta-data/latest/api/token gets a session token (an older
// service answers 404, 405 or 503, and the keys are then asked for without
// one); then GET openstack/latest/securitykey returns
// {"credential":{"access","secret","securitytoken","expires_at"}}.
const (
	metadataTokenPath   = "meta-data/latest/api/token"
	metadataKeysPath    = "openstack/latest/securitykey"
	metadataTimeout     = 3 * time.Second
	metadataTokenTTL    = "21600"
	metadataRenewWindow = 15 * time.Minute
	maxMetadataBody     = 64 << 10
)

// bind checks the endpoint and binds the metadata credentials to the client's
// clock. They use a dedicated HTTP client: the metadata service is a
// link-local address, never reached through a proxy.
func (m ECSMetadata) bind(b binding) (Credentials, error) {
	endpoint := m.Endpoint
	if endpoint == "" {
		endpoint = defaultMetadataEndpoint
	}
	u, err := parseEndpoint(endpoint, "ECS metadata endpoint", true)
	if err != nil {
		return nil, err
	}
	return &metadataKeys{
		base: u.String(),
		http: &http.Client{
			Transport: &http.Transport{
				DialContext:           (&net.Dialer{Timeout: metadataTimeout}).DialContext,
				ResponseHeaderTimeout: metadataTimeout,
				MaxIdleConns:          1,
				IdleConnTimeout:       30 * time.Second,
			},
			CheckRedirect: refuseRedirect,
		},
		timeout: metadataTimeout,
		now:     b.now,
		keys:    cached[AKSK]{now: b.now, window: metadataRenewWindow},
	}, nil
}

// metadataKeys is an ECSMetadata bound to a client: it holds the current
// temporary keys.
type metadataKeys struct {
	base    string // endpoint ending in "/"
	http    *http.Client
	timeout time.Duration // of one fetch: metadataTimeout
	now     func() time.Time
	keys    cached[AKSK]
}

// Authenticate signs req with the current temporary keys, getting them first
// if needed.
func (m *metadataKeys) Authenticate(req *http.Request, body []byte) error {
	k, err := m.keys.get(req.Context(), m.fetch)
	if err != nil {
		return err
	}
	return k.sign(req, body, m.now())
}

// expire forgets the keys that were refused, unless new ones replaced them
// or they are too new to be the cause; it reports whether others will be used.
func (m *metadataKeys) expire(refused *http.Request) bool {
	used := refused.Header.Get("X-Security-Token")
	return m.keys.invalidate(func(k AKSK) bool { return k.SecurityToken == used })
}

// Format prints the endpoint and no key, for every fmt verb.
func (m *metadataKeys) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "cbr.ECSMetadata{Endpoint: %q}", m.base)
}

// fetch gets temporary keys from the metadata service: a session token,
// then the keys, both within m.timeout.
func (m *metadataKeys) fetch(ctx context.Context) (AKSK, time.Duration, error) {
	const op = "get ECS metadata credentials"
	ctx, cancel := withTimeout(ctx, op, m.timeout)
	defer cancel()
	token, err := m.sessionToken(ctx)
	if err != nil {
		return AKSK{}, 0, err
	}
	var out struct {
		Credential struct {
			Access        string    `json:"access"`
			Secret        string    `json:"secret"`
			SecurityToken string    `json:"securitytoken"`
			ExpiresAt     time.Time `json:"expires_at"`
		} `json:"credential"`
	}
	f := &jsonFetch{op: op, method: http.MethodGet, url: m.base + metadataKeysPath, limit: maxMetadataBody}
	if token != "" {
		f.header = http.Header{"X-Metadata-Token": {token}}
	}
	// A 401 saying "Please configure Cloud Service Agency first" means the
	// server has no agency; the message is in the error.
	if _, err := f.do(ctx, sendOnce(m.http), &out); err != nil {
		return AKSK{}, 0, err
	}
	c := out.Credential
	k := AKSK{AccessKey: c.Access, SecretKey: c.Secret, SecurityToken: c.SecurityToken}
	if err := k.check(); err != nil {
		return AKSK{}, 0, &ResponseError{Op: op, Reason: trimPrefix(err)}
	}
	if c.ExpiresAt.IsZero() {
		return AKSK{}, 0, &ResponseError{Op: op, Reason: "credential has no expires_at"}
	}
	// The service gives no issue time: the lifetime is measured on the local clock.
	return k, c.ExpiresAt.Sub(m.now()), nil
}

// sessionToken gets a metadata session token, or "" from a service that has
// none. Its answer is plain text.
func (m *metadataKeys) sessionToken(ctx context.Context) (string, error) {
	const op = "get ECS metadata token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, m.base+metadataTokenPath, nil)
	if err != nil {
		return "", fetchError(ctx, op, err)
	}
	req.Header.Set("X-Metadata-Token-Ttl-Seconds", metadataTokenTTL)
	resp, err := m.http.Do(req)
	if err != nil {
		return "", fetchError(ctx, op, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusServiceUnavailable:
		return "", nil
	default:
		return "", newAPIError(op, resp, 1)
	}
	data, err := io.ReadAll(&cappedBody{ReadCloser: resp.Body, limit: maxMetadataBody})
	if err != nil {
		return "", fetchError(ctx, op, err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" || strings.ContainsFunc(token, isControl) {
		return "", &ResponseError{Op: op, Reason: "no usable token in the body"}
	}
	return token, nil
}
