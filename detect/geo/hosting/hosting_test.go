package hosting

import (
	_ "embed"
	"slices"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
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

func from(id string, when time.Duration, ip string, asn uint32, org string) schemas.Event {
	ev := detecttest.Event(id, when)
	ev.Network.IP = ip
	ev.Geo = &schemas.Geo{Country: "DE", ASN: asn, ASOrg: org}
	return ev
}

func TestHostingOrAnonymizer(t *testing.T) {
	office := func(id string, when time.Duration) schemas.Event {
		return from(id, when, "198.51.100.10", 3320, "Deutsche Telekom AG")
	}
	tests := []struct {
		name     string
		events   []schemas.Event
		want     []string
		severity []schemas.Severity
	}{
		{"new hosting ASN after learning alerts once", []schemas.Event{
			office("e1", 0),
			from("e2", 8*day, "45.77.1.2", 20473, "AS-CHOOPA"),
			from("e3", 8*day+time.Minute, "45.77.1.3", 20473, "AS-CHOOPA"),
		}, []string{"AS20473"}, []schemas.Severity{schemas.SeverityMedium}},
		{"hosting matched by org pattern when AS number is not listed", []schemas.Event{
			office("e1", 0),
			from("e2", 8*day, "193.32.1.1", 39351, "31173 Services AB (Mullvad VPN)"),
		}, []string{"AS39351"}, []schemas.Severity{schemas.SeverityMedium}},
		{"hosting org without AS number keys on the org", []schemas.Event{
			office("e1", 0),
			from("e2", 8*day, "5.9.1.1", 0, "Hetzner Online GmbH"),
		}, []string{"org:hetzner online gmbh"}, []schemas.Severity{schemas.SeverityMedium}},
		{"cloud the integration ran in while learning is its baseline", []schemas.Event{
			from("e1", 0, "3.5.1.1", 16509, "AMAZON-02"),
			from("e2", 20*day, "3.5.9.9", 16509, "AMAZON-02"),
		}, nil, nil},
		{"another ASN of the cloud it ran in is the same provider", []schemas.Event{
			from("e1", 0, "34.195.1.1", 14618, "AMAZON-AES"),    // us-east-1
			from("e2", 8*day, "18.218.1.1", 16509, "AMAZON-02"), // us-east-2
		}, nil, nil},
		{"a provider's ASNs group by name when the table does not list them", []schemas.Event{
			from("e1", 0, "5.9.1.1", 24940, "Hetzner Online GmbH"),
			from("e2", 8*day, "5.75.1.1", 213230, "Hetzner Online GmbH"),
		}, nil, nil},
		{"a network known only by its AS org groups by name", []schemas.Event{
			from("e1", 0, "5.9.1.1", 0, "Hetzner Online GmbH"), // org:hetzner online gmbh
			from("e2", 8*day, "5.75.1.1", 213230, "Hetzner Online GmbH"),
		}, nil, nil},
		{"another provider is a new hosting network", []schemas.Event{
			from("e1", 0, "34.195.1.1", 14618, "AMAZON-AES"),
			from("e2", 8*day, "45.77.1.2", 20473, "AS-CHOOPA"),
		}, []string{"AS20473"}, []schemas.Severity{schemas.SeverityMedium}},
		{"hosting use during learning is silent", []schemas.Event{
			office("e1", 0),
			from("e2", 6*day, "45.77.1.2", 20473, "AS-CHOOPA"),
		}, nil, nil},
		{"residential network never alerts", []schemas.Event{
			office("e1", 0),
			from("e2", 9*day, "198.51.100.77", 7922, "COMCAST-7922"),
		}, nil, nil},
		{"tor exit alerts high, IPv6 included", []schemas.Event{
			office("e1", 0),
			from("e2", 8*day, "185.220.101.1", 60729, "ZWIEBELFREUNDE"),
			from("e3", 9*day, "2001:db8::dead:beef", 60729, "ZWIEBELFREUNDE"),
		}, []string{"tor"}, []schemas.Severity{schemas.SeverityHigh}},
		{"tor wins over a hosting ASN", []schemas.Event{
			office("e1", 0),
			from("e2", 8*day, "185.220.101.1", 24940, "Hetzner Online GmbH"),
			from("e3", 8*day+time.Hour, "5.9.1.2", 24940, "Hetzner Online GmbH"),
		}, []string{"tor", "AS24940"}, []schemas.Severity{schemas.SeverityHigh, schemas.SeverityMedium}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := detecttest.Run(t, newDetector(t), tc.events)
			if g := detecttest.Keys(got); !slices.Equal(g, tc.want) {
				t.Fatalf("keys = %v, want %v", g, tc.want)
			}
			for i, f := range got {
				if f.Severity != tc.severity[i] {
					t.Errorf("%s severity = %s, want %s", f.Key, f.Severity, tc.severity[i])
				}
			}
		})
	}
}

func TestHostingStateRoundTrip(t *testing.T) {
	d := newDetector(t)
	st := d.NewState()
	ev := from("e1", 0, "3.5.1.1", 16509, "AMAZON-02")
	d.Observe(&ev, st)
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back := d.NewState()
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if b2, _ := back.MarshalBinary(); string(b) != string(b2) {
		t.Fatalf("round trip changed state:\n%s\n%s", b, b2)
	}
	again := from("e2", 30*day, "3.5.1.9", 16509, "AMAZON-02")
	if fs := d.Observe(&again, back); len(fs) != 0 {
		t.Errorf("restored state forgot AS16509: %v", fs)
	}
}

func TestHostingRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"bad pattern":       func(c *Config) { c.HostingOrgPatterns = []string{"("} },
		"missing tor list":  func(c *Config) { c.TorExitList = "testdata/nope.txt" },
		"bad tor severity":  func(c *Config) { c.TorSeverity = "loud" },
		"negative learning": func(c *Config) { c.LearningPeriod = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(func(v any) error { mod(v.(*Config)); return nil })
			if err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
