package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/cbrsdk/cbr"
)

// checkRegion returns nil for a region that cbr.Regions lists, or whose
// endpoint HUAWEICLOUD_SDK_REGION_CBR_{REGION} gives (FromEnv uses it), and
// otherwise an error that names the close matches; from says where the
// region came from, for the message.
func checkRegion(region, from string) error {
	known := cbr.Regions()
	if slices.Contains(known, region) {
		return nil
	}
	if isRegionID(region) && os.Getenv(endpointVariable(region)) != "" {
		return nil
	}
	msg := fmt.Sprintf("unknown region %q (from %s)", region, from)
	if near := closeRegions(region, known); len(near) > 0 {
		return fmt.Errorf("%s; did you mean %s?", msg, strings.Join(near, " or "))
	}
	return fmt.Errorf("%s; the known regions are %s (or give the endpoint of another region in %s)",
		msg, strings.Join(known, ", "), endpointVariable("{region}"))
}

// isRegionID reports whether s has the form of a region ID: lower-case
// letters, digits and "-".
func isRegionID(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
	})
}

// endpointVariable is the variable that gives the CBR endpoint of region.
func endpointVariable(region string) string {
	return "HUAWEICLOUD_SDK_REGION_CBR_" + strings.ToUpper(strings.ReplaceAll(region, "-", "_"))
}

// closeRegions returns the regions that s may be a typo of: the nearest
// ones (cbr.NearestRegions), else those that start with s (at least two
// characters).
func closeRegions(s string, known []string) []string {
	if near := cbr.NearestRegions(s); len(near) > 0 {
		return near
	}
	s = strings.ToLower(strings.TrimSpace(s))
	var prefixed []string
	for _, r := range known {
		if len(s) >= 2 && strings.HasPrefix(r, s) {
			prefixed = append(prefixed, r)
		}
	}
	return prefixed
}
