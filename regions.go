package cbr

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
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
// "did you mean" message about a mistyped region ID: those one typo away,
// in the order of Regions, or nil when none is. Case and the separators
// "-", "_", "." and " " are ignored; a typo is one character added, dropped
// or replaced, or two neighbours swapped. So "ap-southeast1", "AP_SOUTHEAST_1"
// and "ap-southaest-1" give ap-southeast-1; "cn-north-3" gives cn-north-1,
// cn-north-2, cn-north-4 and cn-north-9; a known region is its own nearest.
func NearestRegions(region string) []string {
	key := regionKey(region)
	var nearest []string
	for _, r := range regions {
		if key != "" && typos(key, regionKey(r)) <= 1 {
			nearest = append(nearest, r)
		}
	}
	if i := slices.IndexFunc(nearest, func(r string) bool { return regionKey(r) == key }); i >= 0 {
		return nearest[i : i+1] // an exact match is the only answer
	}
	return nearest
}

// regionKey is region lowercased, without separators.
func regionKey(region string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.', ' ':
			return -1
		}
		return unicode.ToLower(r)
	}, region)
}

// typos is the number of edits between a and b, each edit a byte inserted,
// deleted or replaced, or two adjacent bytes swapped (the optimal string
// alignment distance).
func typos(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
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
