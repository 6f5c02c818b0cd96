package cbr

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FromEnv configures the client from the environment variables of Huawei
// Cloud's official SDKs, or from their credentials file. NewClient reads them
// only when this option is given, and they fill in only what the other
// options leave unset, whatever the order of the options:
//
//	HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK     AKSK credentials
//	HUAWEICLOUD_SDK_SECURITY_TOKEN             their security token (temporary keys)
//	HUAWEICLOUD_SDK_PROJECT_ID                 the project ID
//	HUAWEICLOUD_SDK_IAM_ENDPOINT               the IAM endpoint (see [WithIAMEndpoint])
//	HUAWEICLOUD_SDK_REGION                     the region (see [WithRegion]), such as ap-southeast-1
//	HUAWEICLOUD_SDK_REGION_CBR_{REGION}        the CBR endpoint of the region,
//	                                           such as HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1
//
// The region of HUAWEICLOUD_SDK_REGION is used as if given with WithRegion,
// unless WithRegion is given: it sets the endpoint (unless [WithEndpoint] or
// HUAWEICLOUD_SDK_REGION_CBR_{REGION} gives one), and the project whose ID
// the client looks up when no project ID is given. An unknown region without
// an endpoint is an error that names the nearest known regions.
//
// When WithCredentials gives no credentials and neither HUAWEICLOUD_SDK_AK
// nor HUAWEICLOUD_SDK_SK is set, the keys ak, sk, security_token,
// project_id and iam_endpoint are read from the [basic] section of the INI
// file named by HUAWEICLOUD_SDK_CREDENTIALS_FILE, by default
// ~/.huaweicloud/credentials; a variable still wins over the file for
// project_id and iam_endpoint. The key pair and its security token always
// come together, from the variables or from the file. The official SDKs
// write no region in that file (its keys are ak, sk, security_token,
// project_id, domain_id, iam_endpoint, idp_id and id_token_file), so the
// region comes only from WithRegion or HUAWEICLOUD_SDK_REGION. NewClient
// fails with an error that names what is missing, or the variable or key
// that is wrong.
func FromEnv() Option {
	return fromEnv(os.Getenv, os.ReadFile, os.UserHomeDir)
}

// fromEnv is FromEnv with its sources given, so that tests need not touch the
// process's environment or files.
func fromEnv(getenv func(string) string, readFile func(string) ([]byte, error), home func() (string, error)) Option {
	return func(c *config) error {
		c.env = &envSource{getenv: getenv, readFile: readFile, home: home}
		return nil
	}
}

// envSource reads the environment for FromEnv.
type envSource struct {
	getenv   func(string) string
	readFile func(string) ([]byte, error)
	home     func() (string, error)
}

// The keys of the credentials file, each with its environment variable.
var envKeys = map[string]string{
	"ak":             "HUAWEICLOUD_SDK_AK",
	"sk":             "HUAWEICLOUD_SDK_SK",
	"security_token": "HUAWEICLOUD_SDK_SECURITY_TOKEN",
	"project_id":     "HUAWEICLOUD_SDK_PROJECT_ID",
	"iam_endpoint":   "HUAWEICLOUD_SDK_IAM_ENDPOINT",
}

// apply fills in what c lacks from the environment. It runs after every
// other option.
func (e *envSource) apply(c *config) error {
	vals := make(map[string]string, len(envKeys))
	src := make(map[string]string, len(envKeys)) // where each value came from, for errors
	for key, name := range envKeys {
		if v := strings.TrimSpace(e.getenv(name)); v != "" {
			vals[key], src[key] = v, name
		}
	}
	var file profileFile
	if c.creds == nil && vals["ak"] == "" && vals["sk"] == "" {
		var err error
		if file, err = e.profile(); err != nil {
			return err
		}
		delete(vals, "security_token") // it comes with the keys, from the file
		for key := range envKeys {
			if v := file.vals[key]; v != "" && vals[key] == "" {
				vals[key], src[key] = v, key+" in "+file.path
			}
		}
	}
	if c.creds == nil {
		switch {
		case vals["ak"] == "" && vals["sk"] == "":
			where := "HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK are not set"
			if file.missing != "" {
				where += " and " + file.missing + " does not exist"
			} else if file.path != "" {
				where += " and " + file.path + " has no ak and sk in [basic]"
			}
			return errors.New("cbr: FromEnv: no credentials: " + where)
		case vals["ak"] == "":
			return fmt.Errorf("cbr: FromEnv: %s is set but not %s", src["sk"], missingName("ak", file.path))
		case vals["sk"] == "":
			return fmt.Errorf("cbr: FromEnv: %s is set but not %s", src["ak"], missingName("sk", file.path))
		}
		k := AKSK{AccessKey: vals["ak"], SecretKey: vals["sk"], SecurityToken: vals["security_token"]}
		if err := k.check(); err != nil {
			bad := "ak" // check finds a bad access key before a bad security token
			if !strings.ContainsFunc(k.AccessKey, isNotKeyRune) {
				bad = "security_token"
			}
			return fmt.Errorf("cbr: FromEnv: %s: %s", src[bad], trimPrefix(err))
		}
		c.creds = k
	}
	if c.projectID == "" && vals["project_id"] != "" {
		if err := WithProjectID(vals["project_id"])(c); err != nil {
			return fmt.Errorf("cbr: FromEnv: %s: %s", src["project_id"], trimPrefix(err))
		}
	}
	if c.iamEndpoint == "" && vals["iam_endpoint"] != "" {
		if _, err := parseEndpoint(vals["iam_endpoint"], "IAM endpoint", c.insecureHTTP); err != nil {
			return fmt.Errorf("cbr: FromEnv: %s: %s", src["iam_endpoint"], trimPrefix(err))
		}
		c.iamEndpoint = vals["iam_endpoint"]
	}
	regionFromEnv := false
	if v := strings.TrimSpace(e.getenv("HUAWEICLOUD_SDK_REGION")); c.region == "" && v != "" {
		if err := WithRegion(v)(c); err != nil {
			return fmt.Errorf("cbr: FromEnv: HUAWEICLOUD_SDK_REGION: %s", trimPrefix(err))
		}
		regionFromEnv = true
	}
	if c.endpoint == "" && c.region != "" {
		name := "HUAWEICLOUD_SDK_REGION_CBR_" + strings.ToUpper(strings.ReplaceAll(c.region, "-", "_"))
		// The official SDKs allow a comma-separated list; the first is used.
		first, _, _ := strings.Cut(e.getenv(name), ",")
		if first = strings.TrimSpace(first); first != "" {
			if _, err := parseEndpoint(first, "endpoint", c.insecureHTTP); err != nil {
				return fmt.Errorf("cbr: FromEnv: %s: %s", name, trimPrefix(err))
			}
			c.endpoint = first
		}
	}
	if _, known := regionEndpoint(c.region); regionFromEnv && c.endpoint == "" && !known {
		return fmt.Errorf("cbr: FromEnv: HUAWEICLOUD_SDK_REGION: %s", trimPrefix(unknownRegionError(c.region)))
	}
	return nil
}

// missingName names a missing value: its variable, or its file key.
func missingName(key, path string) string {
	if path != "" {
		return key + " in " + path
	}
	return envKeys[key]
}

// profileFile is the outcome of reading the credentials file.
type profileFile struct {
	path    string            // the file read, or ""
	missing string            // the default file, when it does not exist
	vals    map[string]string // keys of [basic]
}

// profile reads the credentials file: the one named by
// HUAWEICLOUD_SDK_CREDENTIALS_FILE, which must exist, or the default one, if
// it exists.
func (e *envSource) profile() (profileFile, error) {
	path := e.getenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE")
	explicit := path != ""
	if !explicit {
		home, err := e.home()
		if err != nil || home == "" {
			return profileFile{missing: "~/.huaweicloud/credentials"}, nil
		}
		path = filepath.Join(home, ".huaweicloud", "credentials")
	}
	if reason := checkText(path); reason != "" { // errors below print path as it is
		return profileFile{}, fmt.Errorf("cbr: FromEnv: credentials file %q %s", path, reason)
	}
	data, err := e.readFile(path)
	switch {
	case err == nil:
	case !explicit && errors.Is(err, fs.ErrNotExist):
		return profileFile{missing: path}, nil
	default:
		return profileFile{}, fmt.Errorf("cbr: FromEnv: credentials file: %w", err)
	}
	vals, err := parseINISection(data, "basic")
	if err != nil {
		return profileFile{}, fmt.Errorf("cbr: FromEnv: credentials file %s: %w", path, err)
	}
	return profileFile{path: path, vals: vals}, nil
}

// parseINISection returns the key = value pairs of one section of an INI
// file, keys lowercased. Lines starting with ; or # are comments; a value may
// be quoted.
func parseINISection(data []byte, section string) (map[string]string, error) {
	vals := make(map[string]string)
	in := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == ';' || line[0] == '#':
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: unterminated section header", n)
			}
			in = strings.EqualFold(strings.TrimSpace(line[1:len(line)-1]), section)
			continue
		}
		if !in {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: no '=' in a key line", n)
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		vals[strings.ToLower(strings.TrimSpace(key))] = value
	}
	return vals, sc.Err()
}
