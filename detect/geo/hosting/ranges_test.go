package hosting

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/detecttest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// A ranges file as `tokenwatch hosting refresh` writes it.
const rangesFixture = "# test ranges\n" +
	"3.5.140.0/22\tcloud\tAWS\n" +
	"2600:1f18::/33\tcloud\tAWS\n" +
	"185.220.101.9/32\ttor\tTor exit\n" +
	"AS9009\tvpn\tM247 Europe SRL\n"

// rangesDetector builds the detector with no hand-written lists, so every
// verdict comes from the ranges file and the seed; interval 0 checks the
// file on every event.
func rangesDetector(t *testing.T, path string) *Detector {
	t.Helper()
	d, err := New(func(v any) error {
		c := v.(*Config)
		c.HostingASNs, c.HostingOrgPatterns = nil, nil
		c.RangesFile, c.RangesReloadInterval = path, 0
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return d.(*Detector)
}

func writeRanges(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestHostingRangesFileClassifies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ranges.tsv")
	writeRanges(t, path, rangesFixture)
	office := func(id string, when time.Duration) schemas.Event {
		return from(id, when, "198.51.100.10", 3320, "Deutsche Telekom AG")
	}
	tests := []struct {
		name     string
		ev       schemas.Event
		key      string // "" : quiet
		kind     string
		severity schemas.Severity
	}{
		{"an IP in an AWS range, its ASN not listed anywhere", from("e2", 8*day, "3.5.141.7", 16509, "AMAZON-02"), "AS16509", "cloud", schemas.SeverityMedium},
		{"AWS IPv6 without GeoIP keys on the provider", func() schemas.Event {
			ev := detecttest.Event("e2", 8*day)
			ev.Network.IP = "2600:1f18:4000::1"
			return ev
		}(), "range:aws", "cloud", schemas.SeverityMedium},
		{"a Tor exit from the ranges file", from("e2", 8*day, "185.220.101.9", 60729, "Stiftung Erneuerbare Freiheit"), "tor", "tor", schemas.SeverityHigh},
		{"ALEXHOST AS200019 from the seed", from("e2", 8*day, "176.123.1.1", 200019, "ALEXHOST SRL"), "AS200019", "hosting", schemas.SeverityMedium},
		{"a Tor exit network from the seed, the address not in the exit list", from("e2", 8*day, "185.220.102.8", 60729, "Stiftung Erneuerbare Freiheit"), "tor", "tor", schemas.SeverityHigh},
		{"Voxility AS3223 from the seed", from("e2", 8*day, "5.254.1.1", 3223, "Voxility LLP"), "AS3223", "hosting", schemas.SeverityMedium},
		{"a VPN ASN from the ranges file", from("e2", 8*day, "193.27.1.1", 9009, "M247 Europe SRL"), "AS9009", "vpn", schemas.SeverityMedium},
		{"a residential ASN stays quiet", from("e2", 9*day, "73.118.4.20", 7922, "COMCAST-7922"), "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := detecttest.Run(t, rangesDetector(t, path), []schemas.Event{office("e1", 0), tc.ev})
			if tc.key == "" {
				if len(got) != 0 {
					t.Fatalf("alerted: %v", detecttest.Keys(got))
				}
				return
			}
			if len(got) != 1 || got[0].Key != tc.key {
				t.Fatalf("keys = %v, want [%s]", detecttest.Keys(got), tc.key)
			}
			obs := got[0].Observed.(map[string]any)
			if obs["kind"] != tc.kind || got[0].Severity != tc.severity {
				t.Errorf("kind %v severity %s, want %s %s", obs["kind"], got[0].Severity, tc.kind, tc.severity)
			}
			if src, _ := obs["source"].(string); !strings.HasPrefix(src, "ranges_") {
				t.Errorf("source = %v, want the ranges file", obs["source"])
			}
		})
	}
}

func TestHostingRangesFileWinsOverPatterns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ranges.tsv")
	writeRanges(t, path, rangesFixture)
	d, err := New(func(v any) error { v.(*Config).RangesFile = path; return nil }) // default patterns kept
	if err != nil {
		t.Fatal(err)
	}
	ev := from("e2", 8*day, "193.27.1.1", 9009, "M247 Europe SRL")
	_, kind, src, _ := d.(*Detector).classify(&ev)
	if kind != "vpn" || src != "ranges_asn" {
		t.Errorf("AS9009 = %s from %s, want vpn from the ranges file", kind, src)
	}
	// The patterns remain the fallback for what the file does not cover.
	ev = from("e3", 8*day, "45.77.1.2", 20473, "AS-CHOOPA")
	if key, kind, src, _ := d.(*Detector).classify(&ev); key != "AS20473" || kind != "hosting" || src != "patterns" {
		t.Errorf("AS20473 = %s %s %s, want the hand-written fallback", key, kind, src)
	}
}

func TestHostingRangesFileReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ranges.tsv")
	writeRanges(t, path, rangesFixture)
	d := rangesDetector(t, path)
	wall := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	d.ranges.now = func() time.Time { return wall }
	d.ranges.interval = time.Minute

	run := func(evs ...schemas.Event) []string {
		st := d.NewState()
		var keys []string
		for i := range evs {
			for _, f := range d.Observe(&evs[i], st) {
				keys = append(keys, f.Key)
			}
		}
		return keys
	}
	hetzner := func() []string {
		return run(from("e1", 0, "198.51.100.10", 3320, "Deutsche Telekom AG"), from("e2", 8*day, "5.9.1.1", 24940, "Hetzner Online GmbH"))
	}
	if k := hetzner(); len(k) != 0 {
		t.Fatalf("Hetzner alerted before the file listed it: %v", k)
	}
	writeRanges(t, path, rangesFixture+"5.9.0.0/16\thosting\tHetzner\n")
	if k := hetzner(); len(k) != 0 {
		t.Fatalf("reloaded before the check interval passed: %v", k)
	}
	wall = wall.Add(time.Minute)
	if k := hetzner(); !slices.Equal(k, []string{"AS24940"}) {
		t.Fatalf("after the file changed: keys %v, want [AS24940]", k)
	}
	// A broken file keeps the ranges in use.
	writeRanges(t, path, "5.9.0.0/16\thosted\n")
	wall = wall.Add(time.Minute)
	if k := hetzner(); !slices.Equal(k, []string{"AS24940"}) {
		t.Fatalf("a malformed file dropped the ranges: %v", k)
	}
	if d.ranges.lastErr == nil || !strings.Contains(d.ranges.lastErr.Error(), `class "hosted"`) {
		t.Errorf("lastErr = %v", d.ranges.lastErr)
	}
	// Removing the line takes effect on the next check.
	writeRanges(t, path, rangesFixture)
	wall = wall.Add(time.Minute)
	if k := hetzner(); len(k) != 0 {
		t.Fatalf("the removed range still alerts: %v", k)
	}
}

func TestParseRanges(t *testing.T) {
	r, err := ParseRanges(strings.NewReader("10.0.0.0/8\thosting\tA\n10.1.0.0/16\tvpn\tB\n10.1.2.3\ttor\n::ffff:192.0.2.0/120\tcloud\tC\nas64500\tcloud\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]string{"10.9.9.9": "hosting", "10.1.9.9": "vpn", "10.1.2.3": "tor", "::ffff:10.1.2.3": "tor", "192.0.2.7": "cloud"} {
		if l, ok := r.LookupIP(netip.MustParseAddr(ip)); !ok || l.Class != want {
			t.Errorf("%s = %+v, want %s", ip, l, want)
		}
	}
	if _, ok := r.LookupIP(netip.MustParseAddr("11.0.0.1")); ok {
		t.Error("11.0.0.1 matched")
	}
	if l, ok := r.LookupASN(64500); !ok || l.Class != "cloud" {
		t.Errorf("AS64500 = %+v", l)
	}
	for _, bad := range []string{"10.0.0.0/8 hosting\n", "10.0.0.0/33\thosting\n", "AS0\thosting\n", "ASx\thosting\n", "10.0.0.0/8\tresidential\n"} {
		if _, err := ParseRanges(strings.NewReader(bad), "bad"); err == nil || !strings.Contains(err.Error(), "bad line 1") {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
	if _, err := ParseRanges(strings.NewReader(string(Seed)), "seed"); err != nil {
		t.Errorf("the committed seed does not parse: %v", err)
	}
}

func TestHostingRejectsMissingRangesFile(t *testing.T) {
	_, err := New(func(v any) error { v.(*Config).RangesFile = "testdata/nope.tsv"; return nil })
	if err == nil || !strings.Contains(err.Error(), "ranges_file") {
		t.Fatalf("err = %v", err)
	}
}

var _ detect.Detector = (*Detector)(nil)

// BenchmarkRangesLookup: an AWS-sized file (about 10k IPv4 prefixes of
// lengths /12 to /32) and a lookup that misses, the common case.
func BenchmarkRangesLookup(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 10000; i++ {
		bits := 12 + i%21
		a := netip.AddrFrom4([4]byte{byte(i >> 8), byte(i), byte(i * 7), 0})
		sb.WriteString(netip.PrefixFrom(a, bits).Masked().String() + "\tcloud\tAWS\n")
	}
	r, err := ParseRanges(strings.NewReader(sb.String()), "bench")
	if err != nil {
		b.Fatal(err)
	}
	miss := netip.MustParseAddr("198.51.100.77")
	b.ReportAllocs()
	for b.Loop() {
		r.LookupIP(miss)
	}
}
