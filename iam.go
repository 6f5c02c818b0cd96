package cbr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// WithIAMEndpoint sets the base URL of IAM, such as
// "https://iam.ap-southeast-1.myhuaweicloud.com", where IAMPassword gets its
// tokens and where the client looks up its project ID. The default is
// https://iam.{region}.myhuaweicloud.com for the region of WithRegion, or the
// global https://iam.myhuaweicloud.com for the regions without an IAM
// endpoint of their own (such as ap-southeast-5 and eu-west-101).
// A URL without a scheme gets https://; plain http:// follows the rules of
// WithEndpoint.
func WithIAMEndpoint(endpoint string) Option {
	return func(c *config) error {
		if endpoint == "" {
			return errors.New("cbr: IAM endpoint is empty")
		}
		c.iamEndpoint = endpoint
		return nil
	}
}

// IAMPassword authenticates as an IAM user with a password: the client gets a
// project-scoped token from IAM (POST /v3/auth/tokens) on first use, sends it
// as X-Auth-Token, and gets a new one 10 minutes before it expires, or at once
// when CBR refuses a token older than a minute (then the refused attempt is
// sent once more). One token request runs at a time however many goroutines
// call. When IAM refuses the password, calls fail with that answer for a
// minute without asking IAM again. IAM's endpoint is the region's (see
// WithIAMEndpoint), or the one of WithIAMEndpoint.
//
// The password is sent only to IAM, and never printed.
type IAMPassword struct {
	// Domain is the name of the account (domain) the user belongs to.
	Domain string
	// User is the IAM user name.
	User string
	// Password is the user's password.
	Password string
	// Project is the name of the project that scopes the token, such as
	// "ap-southeast-1". Empty means the project of WithProjectID, else the
	// project named after the region.
	Project string
}

// Authenticate fails: IAMPassword needs the client that WithCredentials binds it to.
func (p IAMPassword) Authenticate(*http.Request, []byte) error {
	return errors.New("cbr: IAMPassword works only through WithCredentials")
}

// String returns a redacted form, without the password.
func (p IAMPassword) String() string {
	return fmt.Sprintf("cbr.IAMPassword{Domain: %q, User: %q, Password: REDACTED, Project: %q}", p.Domain, p.User, p.Project)
}

// Format prints the redacted form for every fmt verb, %#v and %x included.
func (p IAMPassword) Format(f fmt.State, _ rune) { io.WriteString(f, p.String()) }

// LogValue returns a redacted form for log/slog.
func (p IAMPassword) LogValue() slog.Value { return slog.StringValue(p.String()) }

// MarshalJSON writes the redacted form, so that the password never reaches a
// JSON log, even inside another value.
func (p IAMPassword) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// Bounds of the fetches from IAM.
const (
	// tokenRenewWindow is how long before its expiry an IAM token is renewed.
	tokenRenewWindow = 10 * time.Minute
	// iamTimeout bounds one token request, its answer's body included.
	iamTimeout = 30 * time.Second
	// maxIAMBody caps an answer of IAM; a token without its catalog, or the
	// projects of one name, take a few KiB.
	maxIAMBody = 1 << 20
)

// bind checks the password credentials and binds them to the client's IAM.
func (p IAMPassword) bind(b binding) (Credentials, error) {
	switch {
	case p.Domain == "":
		return nil, errors.New("cbr: IAMPassword: domain is empty")
	case p.User == "":
		return nil, errors.New("cbr: IAMPassword: user is empty")
	case p.Password == "":
		return nil, errors.New("cbr: IAMPassword: password is empty")
	case b.iam == "":
		return nil, errors.New("cbr: IAMPassword: missing IAM endpoint: use WithRegion or WithIAMEndpoint")
	}
	var scope map[string]string
	switch {
	case p.Project != "":
		scope = map[string]string{"name": p.Project}
	case b.projectID != "":
		scope = map[string]string{"id": b.projectID}
	case b.region != "":
		scope = map[string]string{"name": b.region}
	default:
		return nil, errors.New("cbr: IAMPassword: missing project: set Project, or use WithProjectID or WithRegion")
	}
	body, err := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{
			"methods": []string{"password"},
			"password": map[string]any{"user": map[string]any{
				"name": p.User, "password": p.Password, "domain": map[string]string{"name": p.Domain},
			}},
		},
		"scope": map[string]any{"project": scope},
	}})
	if err != nil {
		return nil, fmt.Errorf("cbr: IAMPassword: %w", err)
	}
	return &iamToken{
		p:       p,
		url:     b.iam + "v3/auth/tokens?nocatalog=true",
		body:    body,
		http:    b.http,
		timeout: iamTimeout,
		now:     b.now,
		token:   cached[string]{now: b.now, window: tokenRenewWindow},
	}, nil
}

// iamToken is an IAMPassword bound to a client: it holds the current token.
type iamToken struct {
	p       IAMPassword // for String only
	url     string
	body    []byte // the token request, with the password
	http    *http.Client
	timeout time.Duration // of one token request: iamTimeout
	now     func() time.Time
	token   cached[string]
}

// Authenticate sets X-Auth-Token, getting a token first if needed.
func (t *iamToken) Authenticate(req *http.Request, _ []byte) error {
	tok, err := t.token.get(req.Context(), t.fetch)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", tok)
	return nil
}

// expire forgets the token that was refused, unless a new one replaced it or
// it is too new to be the cause; it reports whether another will be used.
func (t *iamToken) expire(refused *http.Request) bool {
	used := refused.Header.Get("X-Auth-Token")
	return t.token.invalidate(func(tok string) bool { return tok == used })
}

// Format prints the redacted form of the password credentials for every fmt verb.
func (t *iamToken) Format(f fmt.State, _ rune) { io.WriteString(f, t.p.String()) }

// fetch gets a token from IAM: 2xx (IAM answers 201), the token in
// X-Subject-Token, its lifetime in the body.
func (t *iamToken) fetch(ctx context.Context) (string, time.Duration, error) {
	const op = "get IAM token"
	var out struct {
		Token struct {
			ExpiresAt time.Time `json:"expires_at"`
			IssuedAt  time.Time `json:"issued_at"`
		} `json:"token"`
	}
	header, err := (&jsonFetch{
		op: op, method: http.MethodPost, url: t.url, body: t.body, limit: maxIAMBody, timeout: t.timeout,
		header: http.Header{"Content-Type": {"application/json;charset=utf8"}, "Accept": {"application/json"}},
	}).do(ctx, sendOnce(t.http), &out)
	tok := header.Get("X-Subject-Token")
	switch {
	case err != nil:
		return "", 0, err
	case tok == "" || strings.ContainsFunc(tok, isControl):
		return "", 0, &ResponseError{Op: op, Reason: "no token in X-Subject-Token"}
	case out.Token.ExpiresAt.IsZero():
		return "", 0, &ResponseError{Op: op, Reason: "token has no expires_at"}
	}
	// The lifetime is measured on IAM's clock, when it says when it issued the token.
	issued := out.Token.IssuedAt
	if issued.IsZero() {
		issued = t.now()
	}
	return tok, out.Token.ExpiresAt.Sub(issued), nil
}

// projectLookup finds the client's project ID by name in IAM, once:
// GET {iam}/v3/projects?name={name}, authenticated by the client's credentials,
// with the client's retries.
type projectLookup struct {
	name string
	url  string
	iam  *pipeline
	id   cached[string]
}

// newProjectLookup returns the project lookup of a client whose configuration
// has no project ID, or an error when it cannot look it up: that takes a
// project name (the region's, or IAMPassword's Project), an IAM endpoint, and
// credentials that IAM accepts (AKSK, IAMPassword or ECSMetadata).
func newProjectLookup(cfg config, b binding) (*projectLookup, error) {
	name := cfg.region
	switch c := cfg.creds.(type) {
	case *akskSigner, *metadataKeys:
	case *iamToken:
		if c.p.Project != "" {
			name = c.p.Project
		}
	default:
		return nil, errors.New("cbr: missing project ID: use WithProjectID, or WithRegion with AKSK, IAMPassword or ECSMetadata credentials")
	}
	switch {
	case name == "":
		return nil, errors.New("cbr: missing project ID: use WithProjectID or WithRegion")
	case b.iam == "":
		return nil, errors.New("cbr: missing project ID: use WithProjectID, or WithIAMEndpoint to look it up")
	}
	return &projectLookup{
		name: name,
		url:  b.iam + "v3/projects?name=" + url.QueryEscape(name),
		iam:  newPipeline(cfg, b.iamHost, ""),
		id:   cached[string]{now: b.now},
	}, nil
}

// get returns the project ID, looking it up on first use. A failed lookup is
// tried again on the next call, except a 4xx refusal from IAM, which is
// returned for a minute without asking IAM again.
func (l *projectLookup) get(ctx context.Context) (string, error) {
	return l.id.get(ctx, l.fetch)
}

// fetch looks the project up; exactly one project must have the name.
func (l *projectLookup) fetch(ctx context.Context) (string, time.Duration, error) {
	const op = "find project ID"
	var out struct {
		Projects []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"projects"`
	}
	if _, err := l.iam.send(ctx, &call{op: op, method: http.MethodGet, url: l.url, path: urlPath(l.url), out: &out}); err != nil {
		return "", 0, err
	}
	var ids []string
	for _, p := range out.Projects {
		if p.Name == l.name {
			ids = append(ids, p.ID)
		}
	}
	switch {
	case len(ids) == 0:
		return "", 0, fmt.Errorf("cbr: %s: IAM has no project named %q: use WithProjectID", op, l.name)
	case len(ids) > 1:
		return "", 0, fmt.Errorf("cbr: %s: IAM has %d projects named %q: use WithProjectID", op, len(ids), l.name)
	}
	if vErr := checkID(ids[0]); vErr != nil {
		return "", 0, &ResponseError{Op: op, Reason: "project ID " + vErr.Reason}
	}
	return ids[0], 0, nil
}

// setUpAuth binds the credentials of cfg to the client (replacing cfg.creds)
// and, when cfg has no project ID, returns the lookup that will find it.
func setUpAuth(cfg *config) (*projectLookup, error) {
	b := binding{region: cfg.region, projectID: cfg.projectID, http: noRedirects(cfg.httpClient), now: cfg.now}
	if b.now == nil {
		b.now = time.Now
	}
	switch {
	case cfg.iamEndpoint != "":
		u, err := parseEndpoint(cfg.iamEndpoint, "IAM endpoint", cfg.insecureHTTP)
		if err != nil {
			return nil, err
		}
		b.iam, b.iamHost = u.String(), u.Host
	case cfg.region != "":
		b.iamHost = iamHost(cfg.region)
		b.iam = "https://" + b.iamHost + "/"
	}
	if c, ok := cfg.creds.(binder); ok {
		bound, err := c.bind(b)
		if err != nil {
			return nil, err
		}
		cfg.creds = bound
	}
	if cfg.projectID != "" {
		return nil, nil
	}
	return newProjectLookup(*cfg, b)
}

// noRedirects returns a client that sends with hc's transport, read for every
// request as the client's calls read it, and follows no redirect, so that a
// credential never reaches another host.
func noRedirects(hc *http.Client) *http.Client {
	return &http.Client{Transport: transportOf{hc}, Timeout: hc.Timeout, CheckRedirect: refuseRedirect}
}

// transportOf sends with the transport hc has when the request is sent.
type transportOf struct{ hc *http.Client }

func (t transportOf) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt := t.hc.Transport; rt != nil {
		return rt.RoundTrip(req)
	}
	return http.DefaultTransport.RoundTrip(req)
}
