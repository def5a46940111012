package distinctspike

import (
	_ "embed"
	"fmt"
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

// spikeAt is the hour bursts land in, after the 7-day learning.
var spikeAt = 8*day + 10*time.Hour

func access(id string, at time.Duration, resource, principal string) schemas.Event {
	ev := detecttest.Event(id, at)
	ev.Resource = schemas.Resource{Type: "file", ID: resource}
	ev.Principal.ID = principal
	ev.Network.IP = "198.51.100.1"
	return ev
}

// history has perHour events over perHour distinct files every hour for days.
func history(days, perHour int) []schemas.Event {
	var out []schemas.Event
	for h := 0; h < days*24; h++ {
		for i := 0; i < perHour; i++ {
			at := time.Duration(h)*time.Hour + time.Duration(i)*time.Second
			out = append(out, access(fmt.Sprintf("h%d-%d", h, i), at, fmt.Sprintf("f%d", i), "svc"))
		}
	}
	return out
}

// burst is n events from at on; file and principal name each event's values.
func burst(at time.Duration, n int, file, principal func(i int) string) []schemas.Event {
	var out []schemas.Event
	for i := 0; i < n; i++ {
		out = append(out, access(fmt.Sprintf("b%d", i), at+time.Duration(i)*time.Second, file(i), principal(i)))
	}
	return out
}

func TestDistinctSpike(t *testing.T) {
	distinct := func(i int) string { return fmt.Sprintf("x%d", i) }
	same := func(int) string { return "x" }
	svc := func(int) string { return "svc" }
	tests := []struct {
		name   string
		events []schemas.Event
		want   []string
	}{
		{"many distinct files in one hour alerts once",
			append(history(8, 3), burst(spikeAt, 200, distinct, svc)...), []string{"resource:2026-10-13T10Z"}},
		{"many events on one file is volume, not breadth",
			append(history(8, 3), burst(spikeAt, 200, same, svc)...), nil},
		{"distinct principals alert on their own dimension",
			append(history(8, 3), burst(spikeAt, 80, same, distinct)...), []string{"principal:2026-10-13T10Z"}},
		{"below the absolute floor stays quiet",
			append(history(8, 3), burst(spikeAt, 40, distinct, svc)...), nil},
		{"during learning stays quiet",
			append(history(2, 3), burst(2*day+10*time.Hour, 200, distinct, svc)...), nil},
		{"a broad integration's usual breadth stays quiet",
			append(history(8, 60), burst(spikeAt, 150, distinct, svc)...), nil},
		{"a broad integration far above its breadth alerts",
			append(history(8, 60), burst(spikeAt, 400, distinct, svc)...), []string{"resource:2026-10-13T10Z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := detecttest.Run(t, newDetector(t), tc.events)
			if g := detecttest.Keys(got); !slices.Equal(g, tc.want) {
				t.Fatalf("keys = %v, want %v", g, tc.want)
			}
			for _, f := range got {
				if f.Severity != schemas.SeverityHigh || len(f.EventIDs) == 0 || len(f.EventIDs) > 20 {
					t.Errorf("finding %s: severity %s, %d evidence ids", f.Key, f.Severity, len(f.EventIDs))
				}
			}
		})
	}
}

func TestDistinctSpikeStateRoundTripKeepsSketches(t *testing.T) {
	d := newDetector(t)
	st := d.NewState()
	for i := 0; i < 30; i++ {
		ev := access(fmt.Sprintf("e%d", i), time.Duration(i)*time.Second, fmt.Sprintf("f%d", i), "svc")
		d.Observe(&ev, st)
	}
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back := d.NewState().(*State)
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for dim, want := range map[string]uint64{DimResource: 30, DimPrincipal: 1, DimIP: 1} {
		if got := back.Estimate(dim); got != want {
			t.Errorf("restored %s sketch estimates %d, want %d", dim, got, want)
		}
	}
	if back.Events != 30 || back.FirstSeen != st.(*State).FirstSeen {
		t.Errorf("restored counters: events %d first_seen %d", back.Events, back.FirstSeen)
	}
	if err := back.UnmarshalBinary([]byte(`{"sketches":{"ip":"AAAA"}}`)); err == nil {
		t.Error("a corrupt sketch was accepted")
	}
}

func TestDistinctSpikeRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"unknown dimension": func(c *Config) { c.Dimensions = []string{"table"} },
		"duplicate":         func(c *Config) { c.Dimensions = []string{"ip", "ip"} },
		"no dimensions":     func(c *Config) { c.Dimensions = nil },
		"zero floor":        func(c *Config) { c.MinDistinct = 0 },
		"negative sigmas":   func(c *Config) { c.Sigmas = -1 },
		"no evidence":       func(c *Config) { c.MaxEvidence = 0 },
		"bad severity":      func(c *Config) { c.Severity = "" },
		"negative learning": func(c *Config) { c.LearningPeriod = -time.Hour },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(func(v any) error { mod(v.(*Config)); return nil }); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
