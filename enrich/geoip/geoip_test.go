package geoip_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/enrich/geoip/gen"
	"github.com/tokenwatch/tokenwatch/schemas"
)

const city, asn = "../../testdata/geoip/test-city.mmdb", "../../testdata/geoip/test-asn.mmdb"

func TestLookupResolvesCityAndASN(t *testing.T) {
	e, err := geoip.Open(city, asn, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	tests := []struct {
		ip          string
		country, ct string
		asn         uint32
	}{
		{"102.89.0.1", "NG", "Lagos", 29465},
		{"52.4.1.2", "US", "Ashburn", 16509},
		{"81.2.69.142", "GB", "London", 20712},
	}
	for _, tc := range tests {
		for i := 0; i < 2; i++ { // the second lookup comes from the cache
			g := e.Lookup(tc.ip)
			if g == nil || g.Country != tc.country || g.City != tc.ct || g.ASN != tc.asn || g.Lat == 0 {
				t.Fatalf("%s: %+v", tc.ip, g)
			}
		}
	}
	if g := e.Lookup("10.0.0.1"); g != nil {
		t.Errorf("private address resolved: %+v", g)
	}
	if g := e.Lookup("not-an-ip"); g != nil {
		t.Errorf("garbage resolved: %+v", g)
	}
	ev := schemas.Event{Network: schemas.Network{IP: "102.89.0.1"}}
	e.Enrich(&ev)
	if ev.Geo == nil || ev.Geo.ASOrg == "" {
		t.Errorf("Enrich: %+v", ev.Geo)
	}
}

// A country-only network (GeoLite2 knows the country, not the city) resolves
// to the country's centroid with a large radius and no city: what
// geo.impossible_travel must not mistake for a place.
func TestLookupCountryOnlyHasNoCityAndAWideRadius(t *testing.T) {
	e, err := geoip.Open(city, asn, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	g := e.Lookup("105.112.4.9")
	if g == nil || g.Country != "NG" || g.City != "" || g.AccuracyKM != gen.CountryOnlyAccuracyKM || g.Lat != 10 || g.Lon != 8 || g.ASN != 36873 {
		t.Fatalf("country-only lookup: %+v", g)
	}
}

func TestOpenMissingDatabaseFails(t *testing.T) {
	if _, err := geoip.Open("nope.mmdb", "", 0); err == nil {
		t.Fatal("opened a missing file")
	}
}

func TestCommittedDatabasesMatchTheGenerator(t *testing.T) {
	dir := t.TempDir()
	c, a, err := gen.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	for gotPath, committed := range map[string]string{c: city, a: asn} {
		got, _ := os.ReadFile(gotPath)
		want, err := os.ReadFile(committed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go run ./enrich/geoip/gen/mmdbgen", filepath.Base(committed))
		}
	}
}

func BenchmarkLookupCached(b *testing.B) {
	e, err := geoip.Open(city, asn, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e.Lookup("102.89.0.1")
	}
}
