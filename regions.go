package cbr

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// regions lists the region IDs that WithRegion knows, in the order of the
// official SDK's table. Each has the endpoint https://cbr.{region}.myhuaweicloud.com.
var regions = []string{
	"ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
	"cn-north-1", "cn-north-2", "cn-north-4", "cn-north-9", "cn-north-11", "cn-north-12",
	"cn-east-2", "cn-east-3", "cn-east-4", "cn-east-5",
	"cn-south-1", "cn-south-2", "cn-south-4", "cn-southwest-2", "cn-southwest-3",
	"af-south-1", "af-north-1", "sa-brazil-1", "la-north-2", "la-south-2", "na-mexico-1",
	"tr-west-1", "me-east-1", "ae-ad-1", "eu-west-0", "eu-west-101",
	"my-kualalumpur-1", "ru-moscow-1", "ru-northwest-2",
}

// Regions returns the IDs of the regions [WithRegion] knows.
func Regions() []string { return slices.Clone(regions) }

// NearestRegions returns the regions of [Regions] nearest to region, for a
// "did you mean" message about a mistyped region ID: those that are the
// fewest single-character edits (insertions, deletions, substitutions) away,
// in the order of Regions, if that is at most 2 edits; nil otherwise. Case
// and surrounding spaces are ignored, so a known region, or one that differs
// only in case, is its own nearest. "ap-southeast1" gives ap-southeast-1;
// "cn-north-3" gives cn-north-1, cn-north-2, cn-north-4 and cn-north-9.
func NearestRegions(region string) []string {
	const maxEdits = 2
	region = strings.ToLower(strings.TrimSpace(region))
	var nearest []string
	best := maxEdits + 1
	for _, r := range regions {
		switch d := editDistance(region, r); {
		case d < best:
			best, nearest = d, []string{r}
		case d == best:
			nearest = append(nearest, r)
		}
	}
	return nearest
}

// editDistance is the Levenshtein distance between a and b, counted in bytes
// (region IDs are ASCII).
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

// unknownRegionError says that region is not one of Regions, naming the
// nearest ones, and how to use it anyway.
func unknownRegionError(region string) error {
	msg := fmt.Sprintf("cbr: unknown region %q", region)
	switch near := NearestRegions(region); len(near) {
	case 0:
	case 1:
		msg += " (did you mean " + near[0] + "?)"
	default:
		msg += " (did you mean one of " + strings.Join(near, ", ") + "?)"
	}
	return errors.New(msg + ": give its endpoint with WithEndpoint")
}

// regionEndpoint returns the CBR endpoint of a known region.
func regionEndpoint(region string) (string, bool) {
	if !slices.Contains(regions, region) {
		return "", false
	}
	return "https://cbr." + region + ".myhuaweicloud.com", true
}

// iamRegions lists the regions that have an IAM endpoint of their own,
// https://iam.{region}.myhuaweicloud.com, as the official SDKs' table does.
var iamRegions = []string{
	"ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
	"cn-north-1", "cn-north-2", "cn-north-4", "cn-north-9", "cn-north-12",
	"cn-east-2", "cn-east-3", "cn-east-4", "cn-east-5", "cn-south-1", "cn-south-2", "cn-southwest-2",
	"af-south-1", "sa-brazil-1", "la-north-2", "la-south-2", "na-mexico-1",
	"tr-west-1", "me-east-1", "ae-ad-1", "eu-west-0", "my-kualalumpur-1", "ru-moscow-1",
}

// iamHost returns the host of region's IAM endpoint: its own where it has
// one, else the global iam.myhuaweicloud.com.
func iamHost(region string) string {
	if slices.Contains(iamRegions, region) {
		return "iam." + region + ".myhuaweicloud.com"
	}
	return "iam.myhuaweicloud.com"
}
