package cbr

import "slices"

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

// Regions returns the IDs of the regions WithRegion knows.
func Regions() []string { return slices.Clone(regions) }

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
