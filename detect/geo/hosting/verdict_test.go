package hosting

import (
	"testing"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// The verdict cache answers what classify works out: one IP seen with no
// GeoIP answer, then with networks that classify differently, and back.
func TestVerdictCacheAnswersAsClassifyWould(t *testing.T) {
	d := newDetector(t).(*Detector)
	geos := []*schemas.Geo{nil, {ASN: 16509, ASOrg: "Amazon.com, Inc."}, {ASN: 3320, ASOrg: "Deutsche Telekom AG"},
		{ASN: 3320, ASOrg: "Hetzner Online GmbH"}, {}, nil, {ASN: 16509, ASOrg: "Amazon.com, Inc."}}
	kinds := map[string]bool{}
	for _, ip := range []string{"198.51.100.10", "5.9.1.1", "", "not-an-ip"} {
		for round := range 2 { // the second round answers from the cache
			for i, g := range geos {
				ev := schemas.Event{Network: schemas.Network{IP: ip}, Geo: g}
				k1, c1, s1, p1 := d.classify(&ev)
				k2, c2, s2, p2 := d.classifyOnce(&ev, d.ranges.current())
				kinds[c2] = true
				if k1 != k2 || c1 != c2 || s1 != s2 || p1 != p2 {
					t.Errorf("%s, geo %d, round %d: cached %q %q %q %q, classify %q %q %q %q", ip, i, round, k1, c1, s1, p1, k2, c2, s2, p2)
				}
			}
		}
	}
	if len(kinds) < 2 {
		t.Errorf("every event classified alike (%v): the test shows nothing", kinds)
	}
}
