package cbr_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cbrsdk/cbr"
)

func TestNearestRegions(t *testing.T) {
	for region, want := range map[string][]string{
		"ap-southeast1":    {"ap-southeast-1"},
		"apsoutheast1":     {"ap-southeast-1"},
		"ap-southeast-1":   {"ap-southeast-1"}, // a known region is its own nearest
		" AP-SOUTHEAST-1 ": {"ap-southeast-1"},
		"ap_southeast_1":   {"ap-southeast-1"},
		"ap-southaest-1":   {"ap-southeast-1"}, // two letters swapped
		"ap-sotheast-1":    {"ap-southeast-1"},
		"ap-southeast-11":  {"ap-southeast-1"},
		"cn-north-3":       {"cn-north-1", "cn-north-2", "cn-north-4", "cn-north-9"},
		"cn-north-1":       {"cn-north-1"}, // not its neighbours
		"eu-west-1":        {"eu-west-0"},
		"cn-southwest-1":   {"cn-southwest-2", "cn-southwest-3"},
		"xx-nowhere-9":     nil,
		"us-east-1":        nil, // two typos from me-east-1
		"us-west-2":        nil,
		"southeast-1":      nil,
		"":                 nil,
		"-":                nil,
	} {
		assert.Equal(t, want, cbr.NearestRegions(region), "%q", region)
	}
}

func TestUnknownRegionNamesTheNearest(t *testing.T) {
	creds := cbr.WithCredentials(cbr.Token("t"))
	project := cbr.WithProjectID("p")
	for region, want := range map[string]string{
		"ap-southeast1": `cbr: unknown region "ap-southeast1" (did you mean ap-southeast-1?): give its endpoint with WithEndpoint`,
		"cn-north-3":    `cbr: unknown region "cn-north-3" (did you mean one of cn-north-1, cn-north-2, cn-north-4, cn-north-9?): give its endpoint with WithEndpoint`,
		"xx-nowhere-9":  `cbr: unknown region "xx-nowhere-9": give its endpoint with WithEndpoint`,
	} {
		_, err := cbr.NewClient(cbr.WithRegion(region), project, creds)
		assert.EqualError(t, err, want)
	}
}

// TestEndpointWithAPIVersionIsRefused checks that an endpoint whose path
// names an API version is refused, rather than calling /v3/v3/..., while a
// path prefix that does not is kept (see TestEndpointPathPrefix).
func TestEndpointWithAPIVersionIsRefused(t *testing.T) {
	creds := cbr.WithCredentials(cbr.Token("t"))
	project := cbr.WithProjectID("p")
	for endpoint, version := range map[string]string{
		"https://cbr.ap-southeast-1.myhuaweicloud.com/v3":                            "v3",
		"https://cbr.ap-southeast-1.myhuaweicloud.com/v3/":                           "v3",
		"https://cbr.ap-southeast-1.myhuaweicloud.com/v3/" + testProject:             "v3",
		"cbr.ap-southeast-1.myhuaweicloud.com/V3":                                    "V3",
		"https://gateway.example.com/cbr/v3":                                         "v3",
		"https://gateway.example.com/v3.0":                                           "v3.0",
		"https://cbr.ap-southeast-1.myhuaweicloud.com/v3/" + testProject + "/agents": "v3",
	} {
		_, err := cbr.NewClient(cbr.WithEndpoint(endpoint), project, creds)
		if assert.Error(t, err, endpoint) {
			assert.Contains(t, err.Error(), "cbr: invalid endpoint: path ", endpoint)
			assert.Contains(t, err.Error(), "has the API version \""+version+"\": give the URL without it", endpoint)
		}
	}
	_, err := cbr.NewClient(cbr.WithEndpoint("https://cbr.ap-southeast-1.myhuaweicloud.com/v3"), project, creds)
	assert.EqualError(t, err, `cbr: invalid endpoint: path "/v3" has the API version "v3": give the URL without it, such as https://cbr.ap-southeast-1.myhuaweicloud.com; the client adds the version`)

	_, err = cbr.NewClient(cbr.WithEndpoint(testEndpoint), project, creds, cbr.WithIAMEndpoint("https://iam.myhuaweicloud.com/v3"))
	assert.ErrorContains(t, err, `cbr: invalid IAM endpoint: path "/v3" has the API version "v3"`)

	for _, endpoint := range []string{testEndpoint + "/", "https://gateway.example.com/cbr", "https://gateway.example.com/v3x/", "https://gateway.example.com/cbr-v3", "https://gateway.example.com/v"} {
		_, err := cbr.NewClient(cbr.WithEndpoint(endpoint), project, creds)
		assert.NoError(t, err, endpoint)
	}
}

// TestEndpointRootSlash checks that an endpoint given with a trailing "/"
// calls the same URLs as one without.
func TestEndpointRootSlash(t *testing.T) {
	st := answering(200, `{"agent":{"agent_id":"a1"}}`)
	c, mt := newMockClient(t, cbr.WithEndpoint(testEndpoint+"/"))
	mt.RegisterNoResponder(st.respond)
	_, err := c.ShowAgent(context.Background(), "a1")
	require.NoError(t, err)
	require.Equal(t, 1, st.count())
	assert.Equal(t, agentsURL+"/a1", st.reqs[0].URL.String())
}
