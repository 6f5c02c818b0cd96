// Package testenv keeps the developer's environment out of the tests of the
// example programs.
package testenv

import "testing"

// Isolate clears every variable cbr.FromEnv reads, and those named in extra,
// and points HOME at an empty directory, so that neither the developer's
// environment nor their ~/.huaweicloud/credentials reaches the test.
func Isolate(t *testing.T, extra ...string) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	for _, name := range append([]string{
		"HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN", "HUAWEICLOUD_SDK_PROJECT_ID",
		"HUAWEICLOUD_SDK_IAM_ENDPOINT", "HUAWEICLOUD_SDK_CREDENTIALS_FILE", "HUAWEICLOUD_SDK_REGION",
		"HUAWEICLOUD_SDK_REGION_CBR_AP_SOUTHEAST_1",
	}, extra...) {
		t.Setenv(name, "")
	}
}
