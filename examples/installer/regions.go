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

// closeRegions returns the regions of known that s may be a typo of, in the
// order of known: the nearest ones if they are at most two edits away,
// ignoring case and surrounding space; else those that start with s (at
// least two characters).
func closeRegions(s string, known []string) []string {
	s = strings.ToLower(strings.TrimSpace(s))
	var nearest, prefixed []string
	best := 3
	for _, r := range known {
		switch d := editDistance(s, r); {
		case d < best:
			best, nearest = d, []string{r}
		case d == best:
			nearest = append(nearest, r)
		}
		if len(s) >= 2 && strings.HasPrefix(r, s) {
			prefixed = append(prefixed, r)
		}
	}
	if len(nearest) > 0 {
		return nearest
	}
	return prefixed
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
