package cbr

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// envSources returns the sources of fromEnv: variables from vars, files from
// files, and /home/u as the home directory.
func envSources(vars, files map[string]string) Option {
	return fromEnv(
		func(name string) string { return vars[name] },
		func(path string) ([]byte, error) {
			if data, ok := files[path]; ok {
				return []byte(data), nil
			}
			return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
		},
		func() (string, error) { return "/home/u", nil },
	)
}

// resolveEnv applies opts the way NewClient does, FromEnv last.
func resolveEnv(opts ...Option) (config, error) {
	var cfg config
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return cfg, err
		}
	}
	if cfg.env == nil {
		return cfg, nil
	}
	return cfg, cfg.env.apply(&cfg)
}

const defaultProfile = "/home/u/.huaweicloud/credentials"

func TestFromEnvVariables(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"HUAWEICLOUD_SDK_AK":                        "ENVAK",
		"HUAWEICLOUD_SDK_SK":                        "envsecret",
		"HUAWEICLOUD_SDK_SECURITY_TOKEN":            "envtoken",
		"HUAWEICLOUD_SDK_PROJECT_ID":                "envproject",
		"HUAWEICLOUD_SDK_IAM_ENDPOINT":              "iam.internal.example.com",
		"HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1": "https://cbr.internal.example.com, https://cbr2.internal.example.com",
		"HUAWEICLOUD_SDK_REGION_CBR_CN_NORTH_4":     "https://not-this-region.example.com",
	}
	// The profile must not be read when the variables have the keys.
	files := map[string]string{defaultProfile: "[basic]\nak = FILEAK\nsk = filesecret\n"}
	cfg, err := resolveEnv(WithRegion("ap-southeast-1"), envSources(vars, files))
	require.NoError(t, err)
	assert.Equal(t, AKSK{AccessKey: "ENVAK", SecretKey: "envsecret", SecurityToken: "envtoken"}, cfg.creds)
	assert.Equal(t, "envproject", cfg.projectID)
	assert.Equal(t, "iam.internal.example.com", cfg.iamEndpoint)
	assert.Equal(t, "https://cbr.internal.example.com", cfg.endpoint, "the first of the list")

	c, err := NewClient(WithRegion("ap-southeast-1"), envSources(vars, files))
	require.NoError(t, err)
	assert.Equal(t, "https://cbr.internal.example.com/", c.base)
	assert.Equal(t, "envproject", c.projectID)
}

func TestFromEnvExplicitOptionsWin(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"HUAWEICLOUD_SDK_AK":                        "ENVAK",
		"HUAWEICLOUD_SDK_SK":                        "envsecret",
		"HUAWEICLOUD_SDK_PROJECT_ID":                "envproject",
		"HUAWEICLOUD_SDK_IAM_ENDPOINT":              "https://iam.env.example.com",
		"HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1": "https://cbr.env.example.com",
	}
	explicit := []Option{
		WithRegion("ap-southeast-1"), WithEndpoint("https://cbr.explicit.example.com"), WithProjectID("explicitproject"),
		WithIAMEndpoint("https://iam.explicit.example.com"), WithCredentials(Token("explicit")),
	}
	for name, opts := range map[string][]Option{
		"FromEnv first": append([]Option{envSources(vars, nil)}, explicit...),
		"FromEnv last":  append(append([]Option(nil), explicit...), envSources(vars, nil)),
	} {
		cfg, err := resolveEnv(opts...)
		require.NoError(t, err, name)
		assert.Equal(t, Token("explicit"), cfg.creds, name)
		assert.Equal(t, "explicitproject", cfg.projectID, name)
		assert.Equal(t, "https://iam.explicit.example.com", cfg.iamEndpoint, name)
		assert.Equal(t, "https://cbr.explicit.example.com", cfg.endpoint, name)
	}

	// Explicit credentials need none from the environment.
	_, err := resolveEnv(WithCredentials(Token("explicit")), envSources(nil, nil))
	assert.NoError(t, err)
}

func TestFromEnvWithExplicitCredentialsReadsNoFile(t *testing.T) {
	t.Parallel()
	var reads []string
	files := map[string]string{
		defaultProfile:   "[basic]\nak = FILEAK\nsk = filesecret\nproject_id = fileproject\niam_endpoint = https://iam.file.example.com\n",
		"/etc/cbr/creds": "[basic]\nproject_id = namedproject\n",
	}
	opt := func(vars map[string]string) Option {
		return fromEnv(func(name string) string { return vars[name] },
			func(path string) ([]byte, error) {
				reads = append(reads, path)
				if data, ok := files[path]; ok {
					return []byte(data), nil
				}
				return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
			},
			func() (string, error) { return "/home/u", nil })
	}
	for name, vars := range map[string]map[string]string{
		"default file":       nil,
		"named file":         {"HUAWEICLOUD_SDK_CREDENTIALS_FILE": "/etc/cbr/creds"},
		"named file missing": {"HUAWEICLOUD_SDK_CREDENTIALS_FILE": "/etc/cbr/missing"},
	} {
		cfg, err := resolveEnv(WithRegion("ap-southeast-1"), WithCredentials(Token("explicit")), opt(vars))
		require.NoError(t, err, name)
		assert.Equal(t, Token("explicit"), cfg.creds, name)
		assert.Empty(t, cfg.projectID, "%s: the file's project is not applied to other credentials", name)
		assert.Empty(t, cfg.iamEndpoint, name)
	}
	assert.Empty(t, reads, "no file is read")
}

func TestFromEnvKeysComeFromOneSource(t *testing.T) {
	t.Parallel()
	files := map[string]string{defaultProfile: "[basic]\nak = FILEAK\nsk = filesecret\n"}
	cfg, err := resolveEnv(envSources(map[string]string{"HUAWEICLOUD_SDK_SECURITY_TOKEN": "envtoken"}, files))
	require.NoError(t, err)
	assert.Equal(t, AKSK{AccessKey: "FILEAK", SecretKey: "filesecret"}, cfg.creds,
		"the file's keys do not take the environment's security token")

	files[defaultProfile] += "security_token = filetoken\n"
	cfg, err = resolveEnv(envSources(map[string]string{"HUAWEICLOUD_SDK_SECURITY_TOKEN": "envtoken"}, files))
	require.NoError(t, err)
	assert.Equal(t, AKSK{AccessKey: "FILEAK", SecretKey: "filesecret", SecurityToken: "filetoken"}, cfg.creds)
}

func TestFromEnvUnknownRegionWithEndpointOverride(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"HUAWEICLOUD_SDK_AK":                  "ENVAK",
		"HUAWEICLOUD_SDK_SK":                  "envsecret",
		"HUAWEICLOUD_SDK_PROJECT_ID":          "p1",
		"HUAWEICLOUD_SDK_REGION_CBR_XX_NEW_1": "cbr.xx-new-1.example.com",
	}
	c, err := NewClient(WithRegion("xx-new-1"), envSources(vars, nil))
	require.NoError(t, err)
	assert.Equal(t, "https://cbr.xx-new-1.example.com/", c.base)

	delete(vars, "HUAWEICLOUD_SDK_REGION_CBR_XX_NEW_1")
	_, err = NewClient(WithRegion("xx-new-1"), envSources(vars, nil))
	assert.EqualError(t, err, `cbr: unknown region "xx-new-1": give its endpoint with WithEndpoint`)
}

func TestFromEnvProfileFile(t *testing.T) {
	t.Parallel()
	profile := `; Huawei Cloud credentials
[global]
ak = GLOBALAK
sk = globalsecret

[basic]
# the keys of the installer
ak = FILEAK
sk = "file secret"
security_token = filetoken
project_id = fileproject
iam_endpoint = https://iam.file.example.com
`
	cfg, err := resolveEnv(envSources(map[string]string{"HUAWEICLOUD_SDK_PROJECT_ID": "envproject"},
		map[string]string{defaultProfile: profile}))
	require.NoError(t, err)
	assert.Equal(t, AKSK{AccessKey: "FILEAK", SecretKey: "file secret", SecurityToken: "filetoken"}, cfg.creds)
	assert.Equal(t, "envproject", cfg.projectID, "a variable wins over the file")
	assert.Equal(t, "https://iam.file.example.com", cfg.iamEndpoint)

	cfg, err = resolveEnv(envSources(map[string]string{"HUAWEICLOUD_SDK_CREDENTIALS_FILE": "/etc/cbr/creds"},
		map[string]string{"/etc/cbr/creds": "[BASIC]\r\nAK=CRLFAK\r\nSK=crlfsecret\r\n", defaultProfile: profile}))
	require.NoError(t, err)
	assert.Equal(t, AKSK{AccessKey: "CRLFAK", SecretKey: "crlfsecret"}, cfg.creds, "the named file, not the default")
}

func TestFromEnvErrorsNameWhatIsMissing(t *testing.T) {
	t.Parallel()
	region := []Option{WithRegion("ap-southeast-1")}
	keys := map[string]string{"HUAWEICLOUD_SDK_AK": "A", "HUAWEICLOUD_SDK_SK": "S", "HUAWEICLOUD_SDK_PROJECT_ID": "p1"}
	with := func(name, value string) map[string]string {
		vars := map[string]string{name: value}
		for k, v := range keys {
			if k != name {
				vars[k] = v
			}
		}
		return vars
	}
	for name, tc := range map[string]struct {
		opts  []Option
		vars  map[string]string
		files map[string]string
		want  string
	}{
		"nothing": {want: "cbr: FromEnv: no credentials: HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK are not set and " +
			defaultProfile + " does not exist"},
		"AK only": {vars: map[string]string{"HUAWEICLOUD_SDK_AK": "A"},
			want: "cbr: FromEnv: HUAWEICLOUD_SDK_AK is set but not HUAWEICLOUD_SDK_SK"},
		"SK only": {vars: map[string]string{"HUAWEICLOUD_SDK_SK": "S"},
			want: "cbr: FromEnv: HUAWEICLOUD_SDK_SK is set but not HUAWEICLOUD_SDK_AK"},
		"file without sk": {files: map[string]string{defaultProfile: "[basic]\nak = A\n"},
			want: "cbr: FromEnv: ak in " + defaultProfile + " is set but not sk in " + defaultProfile},
		"file without [basic]": {files: map[string]string{defaultProfile: "[global]\nak = A\nsk = S\n"},
			want: "cbr: FromEnv: no credentials: HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK are not set and " +
				defaultProfile + " has no ak and sk in [basic]"},
		"named file missing": {vars: map[string]string{"HUAWEICLOUD_SDK_CREDENTIALS_FILE": "/etc/cbr/creds"},
			want: "cbr: FromEnv: credentials file: open /etc/cbr/creds: file does not exist"},
		"malformed file": {files: map[string]string{defaultProfile: "[basic]\nak A-secret-looking-line\n"},
			want: "cbr: FromEnv: credentials file " + defaultProfile + ": line 2: no '=' in a key line"},
		"bad project": {vars: map[string]string{"HUAWEICLOUD_SDK_AK": "A", "HUAWEICLOUD_SDK_SK": "S", "HUAWEICLOUD_SDK_PROJECT_ID": "a/b"},
			want: `cbr: FromEnv: HUAWEICLOUD_SDK_PROJECT_ID: invalid project ID: must not contain "/"`},
		"bad endpoint": {opts: region, vars: with("HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1", "ftp://cbr.example.com"),
			want: `cbr: FromEnv: HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1: invalid endpoint: scheme "ftp" is not http or https`},
		"plain http endpoint": {opts: region, vars: with("HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1", "http://cbr.example.com"),
			want: "cbr: FromEnv: HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1: endpoint \"cbr.example.com\" is plain http on a non-loopback host: use https, or WithInsecureHTTP"},
		"bad IAM endpoint": {vars: with("HUAWEICLOUD_SDK_IAM_ENDPOINT", "https://iam.example.com/?x=1"),
			want: "cbr: FromEnv: HUAWEICLOUD_SDK_IAM_ENDPOINT: invalid IAM endpoint: it must not have user info, a query or a fragment"},
		"bad IAM endpoint in the file": {files: map[string]string{defaultProfile: "[basic]\nak = A\nsk = S\niam_endpoint = ftp://iam.example.com\n"},
			want: "cbr: FromEnv: iam_endpoint in " + defaultProfile + `: invalid IAM endpoint: scheme "ftp" is not http or https`},
		"bad access key": {vars: with("HUAWEICLOUD_SDK_AK", "A,B"),
			want: "cbr: FromEnv: HUAWEICLOUD_SDK_AK: AKSK: access key contains a space, a comma or a control character"},
		"bad access key in the file": {files: map[string]string{defaultProfile: "[basic]\nak = A B\nsk = S\n"},
			want: "cbr: FromEnv: ak in " + defaultProfile + ": AKSK: access key contains a space, a comma or a control character"},
		"bad security token": {vars: with("HUAWEICLOUD_SDK_SECURITY_TOKEN", "t\x01t"),
			want: "cbr: FromEnv: HUAWEICLOUD_SDK_SECURITY_TOKEN: AKSK: security token contains a control character"},
	} {
		_, err := resolveEnv(append(tc.opts, envSources(tc.vars, tc.files))...)
		assert.EqualError(t, err, tc.want, name)
		if err != nil {
			assert.NotContains(t, err.Error(), "secret", name)
		}
	}
}

// TestFromEnvProcessEnvironment is the one test of FromEnv itself, with the
// process's environment; it cannot run in parallel.
func TestFromEnvProcessEnvironment(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", "")
	t.Setenv("HUAWEICLOUD_SDK_AK", "")
	t.Setenv("HUAWEICLOUD_SDK_SK", "")
	t.Setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", "")
	t.Setenv("HUAWEICLOUD_SDK_PROJECT_ID", "p-env")
	t.Setenv("HUAWEICLOUD_SDK_IAM_ENDPOINT", "")
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".huaweicloud"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".huaweicloud", "credentials"),
		[]byte("[basic]\nak = HOMEAK\nsk = homesecret\n"), 0o600))

	var auth, path string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth, path = r.Header.Get("Authorization"), r.URL.Path
		io.WriteString(w, `{"agent":{"agent_id":"a1"}}`)
	}))
	t.Cleanup(ts.Close)
	c, err := NewClient(WithEndpoint(ts.URL), FromEnv())
	require.NoError(t, err)
	_, err = c.ShowAgent(context.Background(), "a1")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(auth, "SDK-HMAC-SHA256 Access=HOMEAK, "), auth)
	assert.Equal(t, "/v3/p-env/agents/a1", path)
}

func TestFromEnvRegion(t *testing.T) {
	t.Parallel()
	keys := map[string]string{"HUAWEICLOUD_SDK_AK": "ENVAK", "HUAWEICLOUD_SDK_SK": "envsecret", "HUAWEICLOUD_SDK_PROJECT_ID": "p1"}
	with := func(extra map[string]string) map[string]string {
		vars := map[string]string{}
		for k, v := range keys {
			vars[k] = v
		}
		for k, v := range extra {
			vars[k] = v
		}
		return vars
	}

	// The region sets the endpoint, as WithRegion would.
	c, err := NewClient(envSources(with(map[string]string{"HUAWEICLOUD_SDK_REGION": " cn-north-4 "}), nil))
	require.NoError(t, err)
	assert.Equal(t, "https://cbr.cn-north-4.myhuaweicloud.com/", c.base)

	// ... and the region's endpoint variable still applies to it.
	c, err = NewClient(envSources(with(map[string]string{
		"HUAWEICLOUD_SDK_REGION":                "cn-north-4",
		"HUAWEICLOUD_SDK_REGION_CBR_CN_NORTH_4": "https://cbr.proxy.example.com",
	}), nil))
	require.NoError(t, err)
	assert.Equal(t, "https://cbr.proxy.example.com/", c.base)

	// WithRegion wins, whatever the order of the options.
	vars := with(map[string]string{"HUAWEICLOUD_SDK_REGION": "cn-north-4"})
	for _, opts := range [][]Option{
		{WithRegion("ap-southeast-1"), envSources(vars, nil)},
		{envSources(vars, nil), WithRegion("ap-southeast-1")},
	} {
		c, err = NewClient(opts...)
		require.NoError(t, err)
		assert.Equal(t, "https://cbr.ap-southeast-1.myhuaweicloud.com/", c.base)
	}

	// With WithEndpoint, the region is still the client's: it names the
	// project to look up when no project ID is given.
	cfg, err := resolveEnv(WithEndpoint("https://cbr.explicit.example.com"), envSources(map[string]string{
		"HUAWEICLOUD_SDK_AK": "ENVAK", "HUAWEICLOUD_SDK_SK": "envsecret", "HUAWEICLOUD_SDK_REGION": "cn-north-4",
	}, nil))
	require.NoError(t, err)
	assert.Equal(t, "cn-north-4", cfg.region)
	assert.Equal(t, "https://cbr.explicit.example.com", cfg.endpoint)

	// Without the variable nothing changes: the endpoint is still missing.
	_, err = NewClient(envSources(with(nil), nil))
	assert.EqualError(t, err, "cbr: missing endpoint: use WithRegion or WithEndpoint")
}

func TestFromEnvRegionErrors(t *testing.T) {
	t.Parallel()
	for region, want := range map[string]string{
		"ap-southeast1":  `cbr: FromEnv: HUAWEICLOUD_SDK_REGION: unknown region "ap-southeast1" (did you mean ap-southeast-1?): give its endpoint with WithEndpoint`,
		"xx-nowhere-9":   `cbr: FromEnv: HUAWEICLOUD_SDK_REGION: unknown region "xx-nowhere-9": give its endpoint with WithEndpoint`,
		"AP-SOUTHEAST-1": `cbr: FromEnv: HUAWEICLOUD_SDK_REGION: invalid region "AP-SOUTHEAST-1"`,
		"ap\u2028x":      `cbr: FromEnv: HUAWEICLOUD_SDK_REGION: invalid region "ap\u2028x"`,
	} {
		vars := map[string]string{"HUAWEICLOUD_SDK_AK": "A", "HUAWEICLOUD_SDK_SK": "S", "HUAWEICLOUD_SDK_PROJECT_ID": "p1", "HUAWEICLOUD_SDK_REGION": region}
		_, err := NewClient(envSources(vars, nil))
		assert.EqualError(t, err, want, region)
	}

	// A new region works with its endpoint, from WithEndpoint or from its variable.
	vars := map[string]string{"HUAWEICLOUD_SDK_AK": "A", "HUAWEICLOUD_SDK_SK": "S", "HUAWEICLOUD_SDK_PROJECT_ID": "p1", "HUAWEICLOUD_SDK_REGION": "xx-new-1"}
	_, err := NewClient(envSources(vars, nil), WithEndpoint("https://cbr.xx-new-1.example.com"))
	assert.NoError(t, err)
	vars["HUAWEICLOUD_SDK_REGION_CBR_XX_NEW_1"] = "https://cbr.xx-new-1.example.com"
	c, err := NewClient(envSources(vars, nil))
	require.NoError(t, err)
	assert.Equal(t, "https://cbr.xx-new-1.example.com/", c.base)
}

// TestFromEnvRegionIsNotReadFromTheFile checks that a region key in the
// credentials file, which the official SDKs do not write, is ignored.
func TestFromEnvRegionIsNotReadFromTheFile(t *testing.T) {
	t.Parallel()
	files := map[string]string{defaultProfile: "[basic]\nak = FILEAK\nsk = filesecret\nproject_id = p1\nregion = cn-north-4\n"}
	_, err := NewClient(envSources(nil, files))
	assert.EqualError(t, err, "cbr: missing endpoint: use WithRegion or WithEndpoint")
}

// TestFromEnvErrorsAreOneLine checks that what FromEnv reads cannot break
// the line of its error, whatever it holds.
func TestFromEnvErrorsAreOneLine(t *testing.T) {
	t.Parallel()
	for name, vars := range map[string]map[string]string{
		"credentials file": {"HUAWEICLOUD_SDK_CREDENTIALS_FILE": "/etc/cbr\u2028creds"},
		"IAM endpoint":     {"HUAWEICLOUD_SDK_AK": "A", "HUAWEICLOUD_SDK_SK": "S", "HUAWEICLOUD_SDK_IAM_ENDPOINT": "https://iam\u0085.example.com"},
		"CBR endpoint": {"HUAWEICLOUD_SDK_AK": "A", "HUAWEICLOUD_SDK_SK": "S", "HUAWEICLOUD_SDK_REGION": "cn-north-4",
			"HUAWEICLOUD_SDK_REGION_CBR_CN_NORTH_4": "https://cbr\u2029.example.com/v3"},
		"region":     {"HUAWEICLOUD_SDK_AK": "A", "HUAWEICLOUD_SDK_SK": "S", "HUAWEICLOUD_SDK_REGION": "cn\nnorth"},
		"access key": {"HUAWEICLOUD_SDK_AK": "A\u2028B", "HUAWEICLOUD_SDK_SK": "S"},
	} {
		_, err := NewClient(envSources(vars, nil))
		if assert.Error(t, err, name) {
			assert.NotContains(t, err.Error(), "\n", name)
			assert.False(t, strings.ContainsAny(err.Error(), "\u0085\u2028\u2029"), "%s: %q", name, err)
		}
	}
	_, err := NewClient(envSources(map[string]string{"HUAWEICLOUD_SDK_CREDENTIALS_FILE": "/etc/cbr\u2028creds"}, nil))
	assert.EqualError(t, err, `cbr: FromEnv: credentials file "/etc/cbr\u2028creds" contains a control character`)
	_, err = NewClient(WithEndpoint("https://cbr\u2028.example.com"), WithProjectID("p"), WithCredentials(Token("t")))
	assert.EqualError(t, err, "cbr: invalid endpoint: contains a control character")
}
