package cbr

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

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
		keys:    cached[AKSK]{now: b.now},
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

// fetch gets temporary keys from the metadata service.
func (m *metadataKeys) fetch(ctx context.Context) (AKSK, time.Time, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	token, err := m.sessionToken(ctx)
	if err != nil {
		return AKSK{}, time.Time{}, time.Time{}, err
	}
	const op = "get ECS metadata credentials"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.base+metadataKeysPath, nil)
	if err != nil {
		return AKSK{}, time.Time{}, time.Time{}, fmt.Errorf("cbr: %s: %w", op, err)
	}
	if token != "" {
		req.Header.Set("X-Metadata-Token", token)
	}
	fetched := m.now()
	resp, err := m.http.Do(req)
	if err != nil {
		return AKSK{}, time.Time{}, time.Time{}, fmt.Errorf("cbr: %s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// A 401 saying "Please configure Cloud Service Agency first" means
		// the server has no agency; the message is in the error.
		return AKSK{}, time.Time{}, time.Time{}, newAPIError(op, resp, 1)
	}
	var out struct {
		Credential struct {
			Access        string    `json:"access"`
			Secret        string    `json:"secret"`
			SecurityToken string    `json:"securitytoken"`
			ExpiresAt     time.Time `json:"expires_at"`
		} `json:"credential"`
	}
	if err := readJSON(resp, &out); err != nil {
		return AKSK{}, time.Time{}, time.Time{}, fmt.Errorf("cbr: %s: %w", op, err)
	}
	c := out.Credential
	k := AKSK{AccessKey: c.Access, SecretKey: c.Secret, SecurityToken: c.SecurityToken}
	if err := k.check(); err != nil {
		return AKSK{}, time.Time{}, time.Time{}, &ResponseError{Op: op, Reason: strings.TrimPrefix(err.Error(), "cbr: ")}
	}
	if c.ExpiresAt.IsZero() {
		return AKSK{}, time.Time{}, time.Time{}, &ResponseError{Op: op, Reason: "credential has no expires_at"}
	}
	// The service gives no issue time: the lifetime is measured on the local clock.
	renew, expiry := renewalTimes(fetched, c.ExpiresAt.Sub(fetched), metadataRenewWindow)
	return k, renew, expiry, nil
}

// sessionToken gets a metadata session token, or "" from a service that has none.
func (m *metadataKeys) sessionToken(ctx context.Context) (string, error) {
	const op = "get ECS metadata token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, m.base+metadataTokenPath, nil)
	if err != nil {
		return "", fmt.Errorf("cbr: %s: %w", op, err)
	}
	req.Header.Set("X-Metadata-Token-Ttl-Seconds", metadataTokenTTL)
	resp, err := m.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("cbr: %s: %w", op, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusServiceUnavailable:
		return "", nil
	default:
		return "", newAPIError(op, resp, 1)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBody))
	if err != nil {
		return "", fmt.Errorf("cbr: %s: %w", op, err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" || strings.ContainsFunc(token, isControl) {
		return "", &ResponseError{Op: op, Reason: "no usable token in the body"}
	}
	return token, nil
}
