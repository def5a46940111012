// Package gen builds small GeoIP2-City and GeoLite2-ASN layout databases with
// mmdbwriter from a fixed table of networks, so tests, the demo and the
// scenario generator share answers they know. The committed files under
// testdata/geoip are its output (go run ./enrich/geoip/gen/mmdbgen).
package gen

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Network is one entry of the test databases.
type Network struct {
	CIDR     string
	Country  string
	City     string
	Lat, Lon float64
	ASN      uint32
	ASOrg    string
	// Hosting marks cloud/VPS address space (for detectors that care).
	Hosting bool
}

// CountryOnlyAccuracyKM is the accuracy radius of a network without a City:
// like GeoLite2's country-only records (a country's centroid and a radius of
// hundreds of kilometres), not a place anyone is at.
const CountryOnlyAccuracyKM = 500

// cityAccuracyKM is the accuracy radius of every network with a City.
const cityAccuracyKM = 20

// Networks is the fixed table. Addresses are real allocations of the named
// organisations, placed in a plausible city; the data is for tests only. A
// network with no City is country-only: it resolves, like GeoLite2's
// country-level records, to the country's centroid with a radius of
// CountryOnlyAccuracyKM and no city.
var Networks = []Network{
	{"52.0.0.0/11", "US", "Ashburn", 39.0437, -77.4875, 16509, "AMAZON-02", true},
	{"35.190.0.0/16", "US", "Council Bluffs", 41.2619, -95.8608, 15169, "GOOGLE-CLOUD-PLATFORM", true},
	{"20.0.0.0/11", "US", "Boydton", 36.6676, -78.3875, 8075, "MICROSOFT-CORP-MSN-AS-BLOCK", true},
	{"45.76.0.0/16", "US", "Piscataway", 40.5549, -74.4643, 20473, "AS-CHOOPA", true},
	{"73.0.0.0/8", "US", "Chicago", 41.8781, -87.6298, 7922, "COMCAST-7922", false},
	{"81.2.69.0/24", "GB", "London", 51.5142, -0.0931, 20712, "Andrews & Arnold Ltd", false},
	{"18.130.0.0/16", "GB", "London", 51.5074, -0.1278, 16509, "AMAZON-02", true},
	{"91.64.0.0/14", "DE", "Berlin", 52.5200, 13.4050, 3209, "Vodafone GmbH", false},
	{"3.120.0.0/14", "DE", "Frankfurt am Main", 50.1109, 8.6821, 16509, "AMAZON-02", true},
	{"185.220.100.0/22", "DE", "Brandenburg", 52.4125, 12.5316, 60729, "Stiftung Erneuerbare Freiheit", true},
	{"90.0.0.0/9", "FR", "Paris", 48.8566, 2.3522, 3215, "Orange", false},
	{"126.0.0.0/8", "JP", "Tokyo", 35.6762, 139.6503, 17676, "SoftBank Corp.", false},
	{"49.32.0.0/12", "IN", "Mumbai", 19.0760, 72.8777, 55836, "Reliance Jio Infocomm Limited", false},
	{"102.89.0.0/16", "NG", "Lagos", 6.5244, 3.3792, 29465, "MTN NIGERIA Communication limited", false},
	{"105.112.0.0/12", "NG", "", 10, 8, 36873, "Airtel Networks Limited", false},     // country-only: GeoLite2's centroid of Nigeria
	{"34.192.0.0/12", "US", "Ashburn", 39.0437, -77.4875, 14618, "AMAZON-AES", true}, // AWS us-east-1
	{"18.216.0.0/14", "US", "Columbus", 39.9612, -82.9988, 16509, "AMAZON-02", true}, // AWS us-east-2
	{"89.160.20.0/24", "SE", "Linköping", 58.4167, 15.6167, 29518, "Bredband2 AB", false},
	{"176.123.0.0/19", "MD", "Chișinău", 47.0105, 28.8638, 200019, "ALEXHOST SRL", true}, // VPS named in Mandiant's UNC5537 (Snowflake) report
}

// Write builds City and ASN databases into dir as test-city.mmdb and test-asn.mmdb.
func Write(dir string) (cityPath, asnPath string, err error) {
	city, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoIP2-City", RecordSize: 24, BuildEpoch: 1761955200,
		Description: map[string]string{"en": "tokenwatch test City database"}, Languages: []string{"en"}})
	if err != nil {
		return "", "", err
	}
	asn, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-ASN", RecordSize: 24, BuildEpoch: 1761955200,
		Description: map[string]string{"en": "tokenwatch test ASN database"}})
	if err != nil {
		return "", "", err
	}
	for _, n := range Networks {
		_, ipnet, err := net.ParseCIDR(n.CIDR)
		if err != nil {
			return "", "", fmt.Errorf("network %s: %w", n.CIDR, err)
		}
		accuracy := uint16(cityAccuracyKM)
		if n.City == "" {
			accuracy = CountryOnlyAccuracyKM
		}
		rec := mmdbtype.Map{
			"country":  mmdbtype.Map{"iso_code": mmdbtype.String(n.Country)},
			"location": mmdbtype.Map{"latitude": mmdbtype.Float64(n.Lat), "longitude": mmdbtype.Float64(n.Lon), "accuracy_radius": mmdbtype.Uint16(accuracy)},
		}
		if n.City != "" {
			rec["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(n.City)}}
		}
		if err := city.Insert(ipnet, rec); err != nil {
			return "", "", fmt.Errorf("city %s: %w", n.CIDR, err)
		}
		if err := asn.Insert(ipnet, mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(n.ASN),
			"autonomous_system_organization": mmdbtype.String(n.ASOrg),
		}); err != nil {
			return "", "", fmt.Errorf("asn %s: %w", n.CIDR, err)
		}
	}
	cityPath, asnPath = filepath.Join(dir, "test-city.mmdb"), filepath.Join(dir, "test-asn.mmdb")
	for path, tree := range map[string]*mmdbwriter.Tree{cityPath: city, asnPath: asn} {
		f, err := os.Create(path)
		if err != nil {
			return "", "", err
		}
		if _, err := tree.WriteTo(f); err != nil {
			f.Close()
			return "", "", fmt.Errorf("write %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return "", "", err
		}
	}
	return cityPath, asnPath, nil
}
