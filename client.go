package cbr

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// Version is the SDK's version, sent in the User-Agent header.
const Version = "0.1.0"

// Client calls the CBR agent API. Build one with NewClient. A Client is
// immutable and safe for concurrent use; share one for the life of the program.
type Client struct {
	base      string // endpoint URL ending in "/"
	projectID string // "" when projects looks it up
	projects  *projectLookup
	api       *pipeline
	ownHTTP   *http.Transport // the transport NewClient made, closed by Close; nil with WithHTTPClient
	// closeCreds closes the idle connections of credentials that have a
	// transport of their own; nil for none. (The credentials themselves are
	// not kept here, so that printing a Client can never reach them.)
	closeCreds func()
}

// Option configures a Client in NewClient.
type Option func(*config) error

// config collects the options before NewClient checks them as a whole.
type config struct {
	region       string
	endpoint     string
	projectID    string
	creds        Credentials
	httpClient   *http.Client
	retry        RetryPolicy
	logs         *callLog // set by WithLogger
	userAgent    string
	insecureHTTP bool
	iamEndpoint  string
	tlsConfig    *tls.Config                           // set by WithTLSConfig
	proxy        func(*http.Request) (*url.URL, error) // set by WithProxy
	proxySet     bool
	env          *envSource       // set by FromEnv
	now          func() time.Time // the clock of credentials; nil for time.Now
}

// WithRegion sets the region, such as "ap-southeast-1", and with it the endpoint
// https://cbr.{region}.myhuaweicloud.com. An unknown region is an error unless
// WithEndpoint is also given. Without WithProjectID, a client with AKSK,
// IAMPassword or ECSMetadata credentials looks up the ID of the project named
// after the region in IAM on first use (GET /v3/projects?name={region}),
// once, and keeps it.
func WithRegion(region string) Option {
	return func(c *config) error {
		if region == "" || strings.ContainsFunc(region, isNotRegionRune) {
			return fmt.Errorf("cbr: invalid region %q", region)
		}
		c.region = region
		return nil
	}
}

// WithEndpoint sets the API's base URL, such as
// "https://cbr.ap-southeast-1.myhuaweicloud.com"; it wins over [WithRegion]'s.
// A URL without a scheme gets https://. Plain http:// is accepted only for a
// loopback host, unless [WithInsecureHTTP] is given.
//
// The client adds /v3/{project_id}/... to the URL's path, so a URL whose path
// names an API version, such as ".../v3", is refused by NewClient. Any other
// path is a prefix, for a gateway that routes by path:
// "https://gateway.example.com/cbr" calls
// https://gateway.example.com/cbr/v3/{project_id}/agents. With [AKSK] the
// signature covers the whole path, prefix included, so such a gateway must
// pass the path on as it is, or sign the request again.
func WithEndpoint(endpoint string) Option {
	return func(c *config) error {
		if endpoint == "" {
			return errors.New("cbr: endpoint is empty")
		}
		c.endpoint = endpoint
		return nil
	}
}

// WithInsecureHTTP allows a plain http:// endpoint on a host other than
// loopback. Credentials then cross the network unencrypted; use it only on a
// network you trust, such as a test rig.
func WithInsecureHTTP() Option {
	return func(c *config) error {
		c.insecureHTTP = true
		return nil
	}
}

// WithProjectID sets the project ID that scopes every call.
func WithProjectID(projectID string) Option {
	return func(c *config) error {
		if err := checkID(projectID); err != nil {
			return fmt.Errorf("cbr: invalid project ID: %s", err.Reason)
		}
		c.projectID = projectID
		return nil
	}
}

// WithCredentials sets how requests are authenticated: Token, AKSK, or another
// Credentials implementation.
func WithCredentials(creds Credentials) Option {
	return func(c *config) error {
		if creds == nil {
			return errors.New("cbr: credentials are nil")
		}
		c.creds = creds
		return nil
	}
}

// WithHTTPClient sets the HTTP client whose transport sends each attempt,
// beneath the client's retry and authentication layers; its Timeout, if any,
// bounds each attempt. The client is not modified. Without this option a
// dedicated, pooled transport with connection, TLS-handshake and
// response-header timeouts is used.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("cbr: HTTP client is nil")
		}
		c.httpClient = hc
		return nil
	}
}

// WithTLSConfig sets the TLS configuration of the client's own transport: a
// private CA pool in RootCAs (a TLS-inspecting proxy, a private endpoint), or
// a client certificate. The configuration is copied; a MinVersion below TLS 1.2
// is raised to it. The transport keeps its dial, TLS-handshake and
// response-header timeouts. It cannot be combined with WithHTTPClient, whose
// transport is yours to configure.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return errors.New("cbr: TLS config is nil")
		}
		c.tlsConfig = cfg
		return nil
	}
}

// WithProxy sets the proxy of the client's own transport, in place of the one
// the environment names (HTTPS_PROXY, HTTP_PROXY, NO_PROXY): proxy returns
// the proxy's URL for a request, or nil for none; http.ProxyURL(u) always
// uses u, and a nil proxy uses none. The transport keeps its timeouts. It
// cannot be combined with WithHTTPClient, whose transport is yours to
// configure. The ECS metadata service is never reached through a proxy.
func WithProxy(proxy func(*http.Request) (*url.URL, error)) Option {
	return func(c *config) error {
		c.proxy, c.proxySet = proxy, true
		return nil
	}
}

// WithLogger logs one record when a call ends, "cbr: call" at level Info or
// "cbr: call failed" at level Warn (the operation may still settle it, as
// RegisterAgent's check does; an error that stands is returned, for the
// caller to log), with the operation (op), method, path
// (without the query), status, attempts, duration and request_id (the
// X-Request-Id of the last answer), and the error; and one record
// "cbr: retrying" before each retry, with the attempt, the reason and the
// wait, at level Info after throttling and Warn after a failure. No header,
// body or secret is ever logged. Without it the client never logs.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("cbr: logger is nil")
		}
		c.logs = newCallLog(l)
		return nil
	}
}

// WithUserAgent puts product, such as "my-installer/2.1", in front of the
// User-Agent header.
func WithUserAgent(product string) Option {
	return func(c *config) error {
		if product == "" || strings.ContainsFunc(product, isControl) {
			return fmt.Errorf("cbr: invalid user agent %q", product)
		}
		c.userAgent = product
		return nil
	}
}

// NewClient returns a client configured by opts. It does no I/O and reads no
// environment variable or file: every value comes from opts (FromEnv reads
// the environment, and only when given). An endpoint (from WithEndpoint or
// WithRegion) and credentials are required, and a project ID unless the
// client can look it up in IAM (see WithRegion).
func NewClient(opts ...Option) (*Client, error) {
	cfg := config{retry: DefaultRetryPolicy()}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.env != nil {
		if err := cfg.env.apply(&cfg); err != nil {
			return nil, err
		}
	}
	endpoint := cfg.endpoint
	if endpoint == "" && cfg.region != "" {
		var ok bool
		if endpoint, ok = regionEndpoint(cfg.region); !ok {
			return nil, unknownRegionError(cfg.region)
		}
	}
	if endpoint == "" {
		return nil, errors.New("cbr: missing endpoint: use WithRegion or WithEndpoint")
	}
	base, err := parseEndpoint(endpoint, "endpoint", cfg.insecureHTTP)
	if err != nil {
		return nil, err
	}
	if cfg.creds == nil {
		return nil, errors.New("cbr: missing credentials: use WithCredentials")
	}
	var own *http.Transport
	switch {
	case cfg.httpClient != nil && (cfg.tlsConfig != nil || cfg.proxySet):
		return nil, errors.New("cbr: WithTLSConfig and WithProxy set the client's own transport: configure the transport of WithHTTPClient instead")
	case cfg.httpClient == nil:
		own = newTransport()
		if cfg.tlsConfig != nil {
			own.TLSClientConfig = cfg.tlsConfig.Clone()
			own.TLSClientConfig.MinVersion = max(own.TLSClientConfig.MinVersion, tls.VersionTLS12)
		}
		if cfg.proxySet {
			own.Proxy = cfg.proxy
		}
		cfg.httpClient = &http.Client{Transport: own}
	}
	projects, err := setUpAuth(&cfg)
	if err != nil {
		return nil, err
	}
	ua := "cbr-go/" + Version
	if cfg.userAgent != "" {
		ua = cfg.userAgent + " " + ua
	}
	c := &Client{
		base:      base.String(),
		projectID: cfg.projectID,
		projects:  projects,
		api:       newPipeline(cfg, base.Host, ua),
		ownHTTP:   own,
	}
	if m, ok := cfg.creds.(*metadataKeys); ok {
		c.closeCreds = m.http.CloseIdleConnections
	}
	return c, nil
}

// Close closes the idle connections of the transports the client made for
// itself: its own pool, and that of ECSMetadata credentials; a client built
// WithHTTPClient leaves that client's transport alone. The client holds no
// goroutine of its own, so after Close nothing of it is left running; it can
// still be used, and then opens new connections.
func (c *Client) Close() error {
	if c.ownHTTP != nil {
		c.ownHTTP.CloseIdleConnections()
	}
	if c.closeCreds != nil {
		c.closeCreds()
	}
	return nil
}

// Format prints the client's endpoint and project ID, for every fmt verb; it
// never prints the credentials.
func (c *Client) Format(f fmt.State, _ rune) {
	if c == nil {
		io.WriteString(f, "<nil>")
		return
	}
	fmt.Fprintf(f, "cbr.Client{endpoint: %s, project: %s}", c.base, c.projectID)
}

// parseEndpoint checks an endpoint URL and returns it with a path ending in
// "/". name says which endpoint it is in errors, such as "IAM endpoint".
//
// A path is a prefix that every call's path follows, for a gateway that
// routes by path; but a path with an API version segment, such as
// "https://cbr.ap-southeast-1.myhuaweicloud.com/v3", is refused: the client
// adds the version itself, and would call /v3/v3/....
func parseEndpoint(endpoint, name string, insecureHTTP bool) (*url.URL, error) {
	if reason := checkText(endpoint); reason != "" {
		return nil, fmt.Errorf("cbr: invalid %s: %s", name, reason)
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("cbr: invalid %s: %w", name, err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("cbr: invalid %s: scheme %q is not http or https", name, u.Scheme)
	case u.Host == "":
		return nil, fmt.Errorf("cbr: invalid %s: no host", name)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("cbr: invalid %s: it must not have user info, a query or a fragment", name)
	case u.Scheme == "http" && !insecureHTTP && !isLoopback(u.Hostname()):
		return nil, fmt.Errorf("cbr: %s %q is plain http on a non-loopback host: use https, or WithInsecureHTTP", name, u.Host)
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if isVersionSegment(seg) {
			return nil, fmt.Errorf("cbr: invalid %s: path %q has the API version %q: give the URL without it, such as %s://%s; the client adds the version", name, u.Path, seg, u.Scheme, u.Host)
		}
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		u.RawPath = ""
	}
	return u, nil
}

// isVersionSegment reports whether a path segment names an API version,
// such as "v3" or "v3.0".
func isVersionSegment(seg string) bool {
	if len(seg) < 2 || seg[0]|0x20 != 'v' {
		return false
	}
	major, minor, _ := strings.Cut(seg[1:], ".")
	digits := func(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }
	return digits(major) && (minor == "" || digits(minor))
}

// isLoopback reports whether host is "localhost" or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// do sends one API call: it marshals in (nil for no body) once, sends it with
// retries, and decodes a 2xx answer into out (nil to discard it). A non-2xx
// answer is an *APIError. op names the operation in errors; path is relative
// to /v3/{project_id}/ and already escaped.
func (c *Client) do(ctx context.Context, op, method, path string, query url.Values, in, out any) (outcome, error) {
	return c.doCall(ctx, call{op: op, method: method, out: out}, path, query, in)
}

// doCall is do with the call's op, method, out and settle given in cl.
func (c *Client) doCall(ctx context.Context, cl call, path string, query url.Values, in any) (outcome, error) {
	op := cl.op
	if err := ctx.Err(); err != nil {
		return outcome{}, &opError{op: op, err: err}
	}
	projectID, err := c.project(ctx)
	if err != nil {
		return outcome{}, &opError{op: op, err: err}
	}
	cl.projectID = projectID
	if in != nil {
		if cl.body, err = json.Marshal(in); err != nil {
			return outcome{}, fmt.Errorf("cbr: %s: encode request: %w", op, err)
		}
	}
	cl.url = c.base + "v3/" + url.PathEscape(projectID) + "/" + path
	cl.path = urlPath(cl.url)
	if len(query) > 0 {
		cl.url += "?" + strings.ReplaceAll(query.Encode(), "+", "%20")
	}
	return c.api.send(ctx, &cl)
}

// project returns the project ID that scopes every call, looking it up in
// IAM on first use when it was not given.
func (c *Client) project(ctx context.Context) (string, error) {
	if c.projects != nil {
		return c.projects.get(ctx)
	}
	return c.projectID, nil
}

// isControl reports whether r is a character the client never sends: a
// control character (Unicode category Cc: C0, DEL and C1, U+0085 included),
// or the line and paragraph separators U+2028 and U+2029, which break a line
// as a newline does.
func isControl(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }

// isNotRegionRune reports whether r cannot appear in a region ID.
func isNotRegionRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
}
