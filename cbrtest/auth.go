package cbrtest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cbrsdk/cbr"
)

// This file holds what the fake checks credentials with, written from the
// published algorithm and independently of package cbr: the API gateway's
// SDK-HMAC-SHA256 verification, a fake IAM (password tokens and project
// lookup) and a fake ECS metadata service (temporary keys).

// MaxClockSkew is how far an X-Sdk-Date may be from the gateway's clock.
const MaxClockSkew = 15 * time.Minute

// sdkDateLayout is the layout of X-Sdk-Date.
const sdkDateLayout = "20060102T150405Z"

// iamTimeLayout is how IAM writes expires_at and issued_at.
const iamTimeLayout = "2006-01-02T15:04:05.000000Z"

// authState is the credentials side of a Server.
type authState struct {
	iam, meta *httptest.Server

	mu       sync.Mutex
	lifetime time.Duration        // of tokens and temporary keys issued from now on
	tokens   map[string]time.Time // IAM token: expiry
	temp     map[string]tempKey   // temporary access key: its secret and token
	sessions map[string]bool      // metadata session tokens

	tokenRequests    atomic.Int64
	projectRequests  atomic.Int64
	metadataRequests atomic.Int64
}

// tempKey is a temporary key pair issued by the metadata service.
type tempKey struct {
	secret, token string
	expiry        time.Time
}

// startAuth sets up the credentials the server accepts and starts its fake
// IAM and metadata service.
func (s *Server) startAuth() {
	s.AccessKey = "CBRTEST" + strings.ToUpper(randomHex(7))
	s.SecretKey = randomHex(20)
	s.Region = "ap-southeast-1"
	s.Domain, s.User, s.Password = "cbrtest-domain", "cbrtest-user", "cbrtest-password-"+randomHex(8)
	s.auth.lifetime = 24 * time.Hour
	s.auth.tokens = make(map[string]time.Time)
	s.auth.temp = make(map[string]tempKey)
	s.auth.sessions = make(map[string]bool)

	iam := http.NewServeMux()
	iam.HandleFunc("POST /v3/auth/tokens", s.issueToken)
	iam.HandleFunc("GET /v3/projects", s.listProjects)
	iam.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeIAMError(w, http.StatusNotFound, "The resource could not be found.")
	})
	s.auth.iam = httptest.NewServer(iam)
	s.IAMURL = s.auth.iam.URL

	meta := http.NewServeMux()
	meta.HandleFunc("PUT /meta-data/latest/api/token", s.metadataSession)
	meta.HandleFunc("GET /openstack/latest/securitykey", s.securityKey)
	s.auth.meta = httptest.NewServer(meta)
	s.MetadataURL = s.auth.meta.URL
}

// closeAuth stops the fake IAM and metadata service.
func (s *Server) closeAuth() {
	s.auth.iam.Close()
	s.auth.meta.Close()
}

// AKSK returns the server's permanent key pair as credentials.
func (s *Server) AKSK() cbr.AKSK {
	return cbr.AKSK{AccessKey: s.AccessKey, SecretKey: s.SecretKey}
}

// IAMPassword returns password credentials of the user the fake IAM knows.
// Client sets the IAM endpoint they need.
func (s *Server) IAMPassword() cbr.IAMPassword {
	return cbr.IAMPassword{Domain: s.Domain, User: s.User, Password: s.Password}
}

// ECSMetadata returns credentials that get temporary keys from the fake
// metadata service.
func (s *Server) ECSMetadata() cbr.ECSMetadata {
	return cbr.ECSMetadata{Endpoint: s.MetadataURL}
}

// SetTokenLifetime sets the lifetime of the IAM tokens and temporary keys
// issued from now on (24 hours by default).
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	s.auth.lifetime = d
}

// RevokeTokens invalidates every IAM token and temporary key issued so far,
// as a password change or a removed agency does. Token, AccessKey and
// SecretKey stay valid.
func (s *Server) RevokeTokens() {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	clear(s.auth.tokens)
	clear(s.auth.temp)
}

// TokenRequests returns how many token requests (POST /v3/auth/tokens) the fake IAM has received.
func (s *Server) TokenRequests() int { return int(s.auth.tokenRequests.Load()) }

// ProjectRequests returns how many project lookups (GET /v3/projects) the fake IAM has received.
func (s *Server) ProjectRequests() int { return int(s.auth.projectRequests.Load()) }

// MetadataRequests returns how many requests for temporary keys
// (GET /openstack/latest/securitykey) the fake metadata service has received.
func (s *Server) MetadataRequests() int { return int(s.auth.metadataRequests.Load()) }

// checkCredentials does the gateway's authentication of r: an X-Auth-Token
// that is Token or was issued by the fake IAM and has not expired, or an
// SDK-HMAC-SHA256 signature by AccessKey or by temporary keys. It returns
// the gateway's error code and message when they are refused.
func (s *Server) checkCredentials(r *http.Request) (code, msg string, ok bool) {
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		return s.checkToken(tok)
	}
	if r.Header.Get("Authorization") == "" {
		return "APIGW.0301", "Incorrect IAM authentication information: no X-Auth-Token or Authorization header", false
	}
	if err := verify(r, s.secretFor, time.Now()); err != nil {
		return "APIGW.0301", "Incorrect IAM authentication information: " + err.Error(), false
	}
	return "", "", true
}

// checkToken accepts Token and unexpired tokens of the fake IAM.
func (s *Server) checkToken(tok string) (code, msg string, ok bool) {
	if tok == s.Token {
		return "", "", true
	}
	s.auth.mu.Lock()
	expiry, issued := s.auth.tokens[tok]
	s.auth.mu.Unlock()
	switch {
	case !issued:
		return "APIGW.0301", "Incorrect IAM authentication information: decrypt token fail", false
	case !time.Now().Before(expiry):
		return "APIGW.0307", "The token must be updated", false
	}
	return "", "", true
}

// secretFor returns the secret key of an access key the server knows, and
// the security token that must come with it ("" for the permanent key).
func (s *Server) secretFor(ak string) (secret, token string, err error) {
	if ak == s.AccessKey {
		return s.SecretKey, "", nil
	}
	s.auth.mu.Lock()
	k, ok := s.auth.temp[ak]
	s.auth.mu.Unlock()
	switch {
	case !ok:
		return "", "", fmt.Errorf("get secretKey failed, ak:%s, err:ak not exist", ak)
	case !time.Now().Before(k.expiry):
		return "", "", errors.New("the security token has expired")
	}
	return k.secret, k.token, nil
}

// VerifySignature checks the SDK-HMAC-SHA256 signature of r as the API
// gateway does: the access key must be accessKey, X-Sdk-Date must be signed
// and within MaxClockSkew of now, and the signature, computed with secretKey
// over the headers that SignedHeaders lists, must match. It reads r.Body and
// puts it back. Use it in a handler of your own fake. Its errors hold the
// reason the gateway gives, prefixed "cbrtest: ".
func VerifySignature(r *http.Request, accessKey, secretKey string, now time.Time) error {
	err := verify(r, func(ak string) (string, string, error) {
		if ak != accessKey {
			return "", "", fmt.Errorf("get secretKey failed, ak:%s, err:ak not exist", ak)
		}
		return secretKey, "", nil
	}, now)
	if err != nil {
		return fmt.Errorf("cbrtest: %w", err)
	}
	return nil
}

// verify checks the signature of r, with the secret key and security token
// that secretFor gives for its access key.
func verify(r *http.Request, secretFor func(ak string) (secret, token string, err error), now time.Time) error {
	algorithm, params, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if algorithm != "SDK-HMAC-SHA256" {
		return fmt.Errorf("unsupported signing algorithm %q", algorithm)
	}
	fields := make(map[string]string)
	for _, part := range strings.Split(params, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	ak, signedList, signature := fields["Access"], fields["SignedHeaders"], fields["Signature"]
	if ak == "" || signedList == "" || signature == "" {
		return errors.New("authorization header lacks Access, SignedHeaders or Signature")
	}
	secret, token, err := secretFor(ak)
	if err != nil {
		return err
	}
	if token != "" && r.Header.Get("X-Security-Token") != token {
		return errors.New("the security token does not match the temporary access key")
	}
	signed := strings.Split(signedList, ";")
	if !slices.Contains(signed, "x-sdk-date") {
		return errors.New("x-sdk-date is not signed")
	}
	date, err := time.Parse(sdkDateLayout, r.Header.Get("X-Sdk-Date"))
	if err != nil {
		return errors.New("x-sdk-date is not in the format YYYYMMDDTHHMMSSZ")
	}
	if d := now.Sub(date); d > MaxClockSkew || d < -MaxClockSkew {
		return fmt.Errorf("x-sdk-date %s is more than %v away from the server's time", date.Format(sdkDateLayout), MaxClockSkew)
	}
	bodyHash, err := readBodyHash(r)
	if err != nil {
		return err
	}
	canonical, err := canonicalRequest(r, signed, bodyHash)
	if err != nil {
		return err
	}
	crHash := sha256.Sum256([]byte(canonical))
	stringToSign := "SDK-HMAC-SHA256\n" + r.Header.Get("X-Sdk-Date") + "\n" + hex.EncodeToString(crHash[:])
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(stringToSign))
	if !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(signature)) {
		return errors.New("verify aksk signature fail")
	}
	return nil
}

// readBodyHash hashes the body of r and puts it back; a body sent with
// X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD is not hashed.
func readBodyHash(r *http.Request) (string, error) {
	if r.Header.Get("X-Sdk-Content-Sha256") == "UNSIGNED-PAYLOAD" {
		return "UNSIGNED-PAYLOAD", nil
	}
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			return "", fmt.Errorf("read body: %w", err)
		}
		if len(body) > maxBody {
			return "", errors.New("the body is too large")
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:]), nil
}

// canonicalRequest builds the canonical request of r:
// method, URI, query, headers, signed header names and body hash, one a line.
func canonicalRequest(r *http.Request, signed []string, bodyHash string) (string, error) {
	var b strings.Builder
	b.WriteString(r.Method + "\n")

	// The URI: every segment of the path as sent, decoded and encoded again; it ends in "/".
	for _, seg := range strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/") {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return "", fmt.Errorf("bad path: %w", err)
		}
		b.WriteString("/" + uriEncode(dec))
	}
	if !strings.HasSuffix(b.String(), "/") {
		b.WriteString("/")
	}
	b.WriteString("\n")

	// The query: encoded name=value pairs, sorted by name and then value.
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", fmt.Errorf("bad query: %w", err)
	}
	var pairs []string
	for _, name := range slices.Sorted(maps.Keys(query)) {
		for _, v := range slices.Sorted(slices.Values(query[name])) {
			pairs = append(pairs, uriEncode(name)+"="+uriEncode(v))
		}
	}
	b.WriteString(strings.Join(pairs, "&") + "\n")

	// The headers, in the order of their sorted names, one line a value.
	sortedNames := slices.Sorted(slices.Values(signed))
	for _, name := range sortedNames {
		if name != strings.ToLower(name) {
			return "", fmt.Errorf("signed header %q is not lowercase", name)
		}
		values := r.Header.Values(name)
		if name == "host" {
			values = []string{r.Host}
		}
		if len(values) == 0 {
			return "", fmt.Errorf("signed header %s is missing", name)
		}
		trimmed := make([]string, len(values))
		for i, v := range values {
			trimmed[i] = strings.TrimSpace(v)
		}
		slices.Sort(trimmed)
		for _, v := range trimmed {
			b.WriteString(name + ":" + v + "\n")
		}
	}
	b.WriteString("\n" + strings.Join(sortedNames, ";") + "\n" + bodyHash)
	return b.String(), nil
}

// uriEncode percent-encodes every byte of s but the RFC 3986 unreserved
// characters, with uppercase hex.
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// issueToken handles POST /v3/auth/tokens: a password token scoped to the
// server's project, by name (Region) or ID.
func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) {
	s.auth.tokenRequests.Add(1)
	var body struct {
		Auth struct {
			Identity struct {
				Methods  []string `json:"methods"`
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
						Domain   struct {
							Name string `json:"name"`
						} `json:"domain"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
			Scope struct {
				Project *struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	if !decode(w, r, &body) || !slices.Contains(body.Auth.Identity.Methods, "password") {
		writeIAMError(w, http.StatusBadRequest, "The request body is invalid.")
		return
	}
	user := body.Auth.Identity.Password.User
	if user.Name != s.User || user.Password != s.Password || user.Domain.Name != s.Domain {
		writeIAMError(w, http.StatusUnauthorized, "The username or password is wrong.")
		return
	}
	if p := body.Auth.Scope.Project; p == nil || p.ID != s.ProjectID && p.Name != s.Region {
		writeIAMError(w, http.StatusBadRequest, "The project in the scope does not exist.")
		return
	}
	tok := "MIIcbrtest" + randomHex(24)
	issued := time.Now().UTC()
	s.auth.mu.Lock()
	expiry := issued.Add(s.auth.lifetime)
	s.auth.tokens[tok] = expiry
	s.auth.mu.Unlock()
	w.Header().Set("X-Subject-Token", tok)
	writeJSON(w, http.StatusCreated, map[string]any{"token": map[string]any{
		"expires_at": expiry.Format(iamTimeLayout),
		"issued_at":  issued.Format(iamTimeLayout),
		"methods":    []string{"password"},
		"project": map[string]any{"id": s.ProjectID, "name": s.Region,
			"domain": map[string]string{"id": "cbrtest-domain-id", "name": s.Domain}},
		"user": map[string]any{"id": "cbrtest-user-id", "name": s.User,
			"domain": map[string]string{"id": "cbrtest-domain-id", "name": s.Domain}},
	}})
}

// listProjects handles GET /v3/projects?name=...: the server's one project,
// named after Region, to a caller with a token or a valid signature.
func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) {
	s.auth.projectRequests.Add(1)
	if _, msg, ok := s.checkCredentials(r); !ok {
		writeIAMError(w, http.StatusUnauthorized, msg)
		return
	}
	projects := []map[string]any{}
	if name := r.URL.Query().Get("name"); name == "" || name == s.Region {
		projects = append(projects, map[string]any{
			"id": s.ProjectID, "name": s.Region, "domain_id": "cbrtest-domain-id", "parent_id": "cbrtest-domain-id",
			"enabled": true, "is_domain": false, "description": "",
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": projects, "links": map[string]any{"next": nil}})
}

// metadataSession handles PUT /meta-data/latest/api/token: a session token
// for the metadata service.
func (s *Server) metadataSession(w http.ResponseWriter, r *http.Request) {
	if ttl, err := strconv.Atoi(r.Header.Get("X-Metadata-Token-Ttl-Seconds")); err != nil || ttl < 1 || ttl > 21600 {
		http.Error(w, "X-Metadata-Token-Ttl-Seconds must be 1 to 21600", http.StatusBadRequest)
		return
	}
	tok := randomHex(16)
	s.auth.mu.Lock()
	s.auth.sessions[tok] = true
	s.auth.mu.Unlock()
	io.WriteString(w, tok)
}

// securityKey handles GET /openstack/latest/securitykey: new temporary keys
// for a caller with a session token.
func (s *Server) securityKey(w http.ResponseWriter, r *http.Request) {
	s.auth.metadataRequests.Add(1)
	ak := "CBRTESTTMP" + strings.ToUpper(randomHex(5))
	k := tempKey{secret: randomHex(20), token: "cbrtest-security-token-" + randomHex(32)}
	s.auth.mu.Lock()
	session := s.auth.sessions[r.Header.Get("X-Metadata-Token")]
	if session {
		k.expiry = time.Now().UTC().Add(s.auth.lifetime)
		s.auth.temp[ak] = k
	}
	s.auth.mu.Unlock()
	if !session {
		http.Error(w, "Unauthorized: missing or invalid X-Metadata-Token", http.StatusUnauthorized)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"credential": map[string]string{
		"access": ak, "secret": k.secret, "securitytoken": k.token, "expires_at": k.expiry.Format(iamTimeLayout),
	}})
}

// writeIAMError writes IAM's error body.
func writeIAMError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": status, "message": msg, "title": http.StatusText(status),
	}})
}
