package impossibletravel

import (
	_ "embed"
	"math"
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

type place struct {
	city, country string
	lat, lon      float64
}

var (
	london  = place{"London", "GB", 51.5074, -0.1278}
	paris   = place{"Paris", "FR", 48.8566, 2.3522}
	newYork = place{"New York", "US", 40.7128, -74.0060}
	// GeoLite2's answers for two Nigerian mobile networks: one resolved to
	// a city, the other only to the country (the centroid, a wide radius).
	alimosho  = place{"Alimosho", "NG", 6.6104, 3.2586}
	ibadan    = place{"Ibadan", "NG", 7.3776, 3.9470}
	nigeria   = place{"", "NG", 10, 8}
	usCountry = place{"", "US", 37.751, -97.822}
)

func use(id string, at time.Duration, cred string, p place, accKM uint16) schemas.Event {
	ev := detecttest.Event(id, at)
	ev.Credential.ID = cred
	ev.Network.IP = "192.0.2.1"
	ev.Geo = &schemas.Geo{Country: p.country, City: p.city, Lat: p.lat, Lon: p.lon, AccuracyKM: accKM}
	return ev
}

func TestImpossibleTravel(t *testing.T) {
	tests := []struct {
		name   string
		events []schemas.Event
		want   []string
	}{
		{"London then New York an hour later alerts", []schemas.Event{
			use("e1", 0, "c1", london, 20),
			use("e2", time.Hour, "c1", newYork, 20),
		}, []string{"c1:London, GB>New York, US:2026-10-05"}},
		{"London then New York eight hours later is a flight", []schemas.Event{
			use("e1", 0, "c1", london, 20),
			use("e2", 8*time.Hour, "c1", newYork, 20),
		}, nil},
		{"simultaneous use from two cities alerts", []schemas.Event{
			use("e1", 0, "c1", london, 20),
			use("e2", 0, "c1", paris, 20),
		}, []string{"c1:London, GB>Paris, FR:2026-10-05"}},
		{"Paris ten minutes after London alerts with tight accuracy", []schemas.Event{
			use("e1", 0, "c1", london, 10),
			use("e2", 10*time.Minute, "c1", paris, 10),
		}, []string{"c1:London, GB>Paris, FR:2026-10-05"}},
		{"accuracy radii are subtracted from the distance", []schemas.Event{
			use("e1", 0, "c1", london, 100),
			use("e2", 10*time.Minute, "c1", paris, 100),
		}, nil},
		{"vague fixes above max accuracy are ignored", []schemas.Event{
			use("e1", 0, "c1", london, 20),
			use("e2", time.Hour, "c1", newYork, 1000),
		}, nil},
		{"missing coordinates are ignored", []schemas.Event{
			use("e1", 0, "c1", london, 20),
			use("e2", time.Hour, "c1", place{"", "US", 0, 0}, 0),
			use("e3", 2*time.Hour, "c1", london, 20),
		}, nil},
		{"different credentials are tracked apart", []schemas.Event{
			use("e1", 0, "c1", london, 20),
			use("e2", time.Hour, "c2", newYork, 20),
		}, nil},
		{"without a credential id the integration is the credential", []schemas.Event{
			use("e1", 0, "", london, 20),
			use("e2", time.Hour, "", newYork, 20),
		}, []string{"integration:London, GB>New York, US:2026-10-05"}},
		{"late event is compared in time order", []schemas.Event{
			use("e1", 2*time.Hour, "c1", newYork, 20),
			use("e2", time.Hour, "c1", london, 20),
		}, []string{"c1:London, GB>New York, US:2026-10-05"}},
		{"bouncing between two places alerts once per route and day", []schemas.Event{
			use("e1", 0, "c1", london, 20),
			use("e2", time.Hour, "c1", newYork, 20),
			use("e3", 2*time.Hour, "c1", london, 20),
			use("e4", 3*time.Hour, "c1", newYork, 20),
		}, []string{"c1:London, GB>New York, US:2026-10-05", "c1:New York, US>London, GB:2026-10-05"}},
		{"a country-only fix is not travel (Alimosho, NG and NG 11 s apart)", []schemas.Event{
			use("e1", 0, "c1", alimosho, 20),
			use("e2", 11*time.Second, "c1", nigeria, 500),
			use("e3", 22*time.Second, "c1", alimosho, 20),
			use("e4", 30*time.Second, "c1", nigeria, 100),
		}, nil},
		{"a country-only fix first is not a reference either", []schemas.Event{
			use("e1", 0, "c1", nigeria, 200),
			use("e2", 11*time.Second, "c1", alimosho, 20),
		}, nil},
		{"a country-only fix does not replace the last city fix", []schemas.Event{
			use("e1", 0, "c1", london, 20),
			use("e2", 30*time.Minute, "c1", usCountry, 100),
			use("e3", time.Hour, "c1", newYork, 20),
		}, []string{"c1:London, GB>New York, US:2026-10-05"}},
		{"a radius covering the other point is not travel", []schemas.Event{
			use("e1", 0, "c1", alimosho, 20),
			use("e2", 11*time.Second, "c1", ibadan, 200), // ~110 km away, inside Ibadan's 200 km
		}, nil},
		{"a fix older than any possible trip is forgotten", []schemas.Event{
			use("e1", 0, "c1", london, 20),
			use("e2", 2*24*time.Hour, "c1", newYork, 20),
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := detecttest.Run(t, newDetector(t), tc.events)
			if g := detecttest.Keys(got); !slices.Equal(g, tc.want) {
				t.Fatalf("keys = %v, want %v", g, tc.want)
			}
			for _, f := range got {
				if f.Severity != schemas.SeverityHigh || len(f.EventIDs) != 2 || f.FirstSeen.After(f.LastSeen) {
					t.Errorf("finding %s: severity %s, evidence %v, %s..%s", f.Key, f.Severity, f.EventIDs, f.FirstSeen, f.LastSeen)
				}
			}
		})
	}
}

func TestImpossibleTravelReportsSpeed(t *testing.T) {
	got := detecttest.Run(t, newDetector(t), []schemas.Event{
		use("e1", 0, "c1", london, 0),
		use("e2", time.Hour, "c1", newYork, 0),
	})
	if len(got) != 1 {
		t.Fatalf("got %d findings, want 1", len(got))
	}
	obs := got[0].Observed.(map[string]any)
	// London–New York is about 5,570 km.
	if d := obs["distance_km"].(float64); math.Abs(d-5570) > 20 {
		t.Errorf("distance_km = %v, want ≈5570", d)
	}
	if v := obs["speed_kmh"].(float64); math.Abs(v-5570) > 20 {
		t.Errorf("speed_kmh = %v, want ≈5570", v)
	}
}

func TestImpossibleTravelStateRoundTrip(t *testing.T) {
	d := newDetector(t)
	st := d.NewState()
	ev := use("e1", 0, "c1", london, 20)
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
	next := use("e2", time.Hour, "c1", newYork, 20)
	if fs := d.Observe(&next, back); len(fs) != 1 {
		t.Errorf("restored state lost the London fix: %v", fs)
	}
}

func TestImpossibleTravelRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"zero speed":        func(c *Config) { c.MaxSpeedKMH = 0 },
		"zero accuracy":     func(c *Config) { c.MaxAccuracyKM = 0 },
		"negative distance": func(c *Config) { c.MinDistanceKM = -1 },
		"bad severity":      func(c *Config) { c.Severity = "x" },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(func(v any) error { mod(v.(*Config)); return nil }); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
