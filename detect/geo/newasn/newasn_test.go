package newasn

import (
	_ "embed"
	"slices"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/detect/detecttest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

//go:embed sample.yaml
var sample []byte

func newDetector(t *testing.T) detect.Detector {
	t.Helper()
	d, err := New(detecttest.Config(t, sample, ID))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

const day = 24 * time.Hour

func at(id string, when time.Duration, asn uint32, org string) schemas.Event {
	ev := detecttest.Event(id, when)
	ev.Network.IP = "203.0.113.7"
	if asn != 0 {
		ev.Geo = &schemas.Geo{Country: "US", ASN: asn, ASOrg: org}
	}
	return ev
}

func TestNewASN(t *testing.T) {
	tests := []struct {
		name   string
		events []schemas.Event
		want   []string
	}{
		{"new network after learning alerts once", []schemas.Event{
			at("e1", 0, 15169, "GOOGLE"),
			at("e2", 8*day, 14061, "DIGITALOCEAN-ASN"),
			at("e3", 8*day+time.Hour, 14061, "DIGITALOCEAN-ASN"),
		}, []string{"AS14061"}},
		{"networks first seen while learning are baseline", []schemas.Event{
			at("e1", 0, 15169, "GOOGLE"),
			at("e2", 6*day, 14061, "DIGITALOCEAN-ASN"),
			at("e3", 9*day, 14061, "DIGITALOCEAN-ASN"),
			at("e4", 9*day, 15169, "GOOGLE"),
		}, nil},
		{"approved network never alerts", []schemas.Event{
			at("e1", 0, 15169, "GOOGLE"),
			at("e2", 8*day, 64512, "ACME-EGRESS"),
		}, nil},
		{"learning starts at first event even without geo", []schemas.Event{
			at("e1", 0, 0, ""),
			at("e2", 7*day, 16509, "AMAZON-02"),
		}, []string{"AS16509"}},
		{"AWS us-east-1 to us-east-2 is one provider, not a new network", []schemas.Event{
			at("e1", 0, 14618, "AMAZON-AES"),
			at("e2", 8*day, 16509, "AMAZON-02"),
			at("e3", 9*day, 8987, "Amazon Data Services Ireland Ltd"),
		}, nil},
		{"Google's ASNs are one network", []schemas.Event{
			at("e1", 0, 15169, "GOOGLE"),
			at("e2", 8*day, 396982, "GOOGLE-CLOUD-PLATFORM"),
		}, nil},
		{"an unlisted ASN joins a provider by its normalised name", []schemas.Event{
			at("e1", 0, 16509, "AMAZON-02"),
			at("e2", 8*day, 62785, "AMAZON-AS"),
		}, nil},
		{"two ASNs of one organisation by name are one network", []schemas.Event{
			at("e1", 0, 7922, "COMCAST-7922"),
			at("e2", 8*day, 7015, "COMCAST-7015"),
		}, nil},
		{"another provider is still a new network", []schemas.Event{
			at("e1", 0, 16509, "AMAZON-02"),
			at("e2", 8*day, 8075, "MICROSOFT-CORP-MSN-AS-BLOCK"),
			at("e3", 9*day, 14061, "DIGITALOCEAN-ASN"),
		}, []string{"AS8075", "AS14061"}},
		{"a provider's ASN the integration never used after another provider's alerts", []schemas.Event{
			at("e1", 0, 7922, "COMCAST-7922"),
			at("e2", 8*day, 14618, "AMAZON-AES"),
			at("e3", 9*day, 16509, "AMAZON-02"), // joins AMAZON, learned at e2
		}, []string{"AS14618"}},
		{"unresolved network is ignored", []schemas.Event{
			at("e1", 0, 15169, "GOOGLE"),
			at("e2", 8*day, 0, ""),
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := detecttest.Run(t, newDetector(t), tc.events)
			if g, w := detecttest.Keys(got), tc.want; !slices.Equal(g, w) {
				t.Fatalf("keys = %v, want %v", g, w)
			}
			for _, f := range got {
				if f.Severity != schemas.SeverityMedium {
					t.Errorf("severity = %s, want medium", f.Severity)
				}
			}
		})
	}
}

func TestNetworkGroupsProvidersAndNormalisesOrgs(t *testing.T) {
	tests := []struct {
		asn       uint32
		org, want string
	}{
		{14618, "AMAZON-AES", "AMAZON"},
		{16509, "AMAZON-02", "AMAZON"},
		{8987, "Amazon Data Services Ireland Ltd", "AMAZON"},
		{7224, "", "AMAZON"}, // listed: no name needed
		{62785, "Amazon.com, Inc.", "AMAZON"},
		{15169, "GOOGLE", "GOOGLE"},
		{396982, "GOOGLE-CLOUD-PLATFORM", "GOOGLE"},
		{19527, "GOOGLE-2", "GOOGLE"},
		{8075, "MICROSOFT-CORP-MSN-AS-BLOCK", "MICROSOFT"},
		{8068, "MICROSOFT-CORP-AS", "MICROSOFT"},
		{13335, "CLOUDFLARENET", "CLOUDFLARE"},
		{209242, "Cloudflare London, LLC", "CLOUDFLARE"},
		{31898, "ORACLE-BMC-31898", "ORACLE"},
		{20940, "Akamai International B.V.", "AKAMAI"},
		{7922, "COMCAST-7922", "COMCAST"},
		{20473, "AS-CHOOPA", "CHOOPA"},
		{24940, "Hetzner Online GmbH", "HETZNER ONLINE"},
		{213230, "Hetzner Online GmbH", "HETZNER ONLINE"},
		{16276, "OVH SAS", "OVH"},
		{14061, "DIGITALOCEAN-ASN", "DIGITALOCEAN"},
		{29465, "MTN NIGERIA Communication limited", "MTN NIGERIA COMMUNICATION"},
		{64500, "Example Networks, L.L.C.", "EXAMPLE NETWORKS"},
		{64501, "AS", ""},    // nothing left
		{64502, "AT-1", ""},  // too short to group by
		{64503, "", ""},      // unnamed: only itself
		{64504, "12345", ""}, // a number is no name
	}
	for _, tc := range tests {
		if got := Network(tc.asn, tc.org); got != tc.want {
			t.Errorf("Network(%d, %q) = %q, want %q", tc.asn, tc.org, got, tc.want)
		}
	}
}

func TestNewASNSameProviderIsNewAlertsOnEveryASN(t *testing.T) {
	d, err := New(func(v any) error {
		if err := detecttest.Config(t, sample, ID)(v); err != nil {
			return err
		}
		v.(*Config).SameProviderIsNew = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := detecttest.Run(t, d, []schemas.Event{
		at("e1", 0, 14618, "AMAZON-AES"),
		at("e2", 8*day, 16509, "AMAZON-02"),
	})
	if g := detecttest.Keys(got); !slices.Equal(g, []string{"AS16509"}) {
		t.Fatalf("keys = %v, want [AS16509]", g)
	}
}

func TestNewASNBaselineNamesKnownNetworks(t *testing.T) {
	got := detecttest.Run(t, newDetector(t), []schemas.Event{
		at("e1", 0, 15169, "GOOGLE"),
		at("e2", 8*day, 14061, "DIGITALOCEAN-ASN"),
	})
	if len(got) != 1 {
		t.Fatalf("got %d findings, want 1", len(got))
	}
	known := got[0].Baseline.(map[string]any)["asns"].([]string)
	if len(known) != 1 || known[0] != "AS15169 GOOGLE" {
		t.Errorf("baseline asns = %v, want [AS15169 GOOGLE]", known)
	}
	if got[0].EventIDs[0] != "e2" {
		t.Errorf("evidence = %v, want [e2]", got[0].EventIDs)
	}
}

func TestNewASNStateRoundTrip(t *testing.T) {
	d := newDetector(t)
	st := d.NewState()
	ev := at("e1", 0, 15169, "GOOGLE")
	d.Observe(&ev, st)
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back := d.NewState()
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	b2, _ := back.MarshalBinary()
	if string(b) != string(b2) {
		t.Fatalf("round trip changed state:\n%s\n%s", b, b2)
	}
	// The restored state still knows AS15169 after learning.
	late := at("e2", 30*day, 15169, "GOOGLE")
	if fs := d.Observe(&late, back); len(fs) != 0 {
		t.Errorf("restored state forgot its baseline: %v", fs)
	}
}

func TestNewASNRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]baseline.FirstSeenConfig{
		"negative learning": {LearningPeriod: -time.Hour, Severity: schemas.SeverityLow},
		"bad severity":      {LearningPeriod: time.Hour, Severity: "urgent"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(func(v any) error { v.(*Config).FirstSeenConfig = cfg; return nil })
			if err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
