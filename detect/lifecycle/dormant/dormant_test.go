package dormant

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

func TestDormantReactivation(t *testing.T) {
	ev := detecttest.Event
	tests := []struct {
		name   string
		events []schemas.Event
		want   []string
	}{
		{"first activity after 30 days of silence alerts", []schemas.Event{
			ev("e1", 0), ev("e2", day), ev("e3", 31*day), ev("e4", 31*day+time.Minute),
		}, []string{"2026-11-05T00:00:00.000Z"}},
		{"29 days of silence is not dormancy", []schemas.Event{
			ev("e1", 0), ev("e2", 29*day),
		}, nil},
		{"the very first event is not a reactivation", []schemas.Event{
			ev("e1", 0),
		}, nil},
		{"each reactivation is its own alert", []schemas.Event{
			ev("e1", 0), ev("e2", 40*day), ev("e3", 80*day),
		}, []string{"2026-11-14T00:00:00.000Z", "2026-12-24T00:00:00.000Z"}},
		{"a late event does not reset the silence clock", []schemas.Event{
			ev("e1", 0), ev("e2", 40*day), ev("e3", day), ev("e4", 41*day),
		}, []string{"2026-11-14T00:00:00.000Z"}},
		{"steady use never alerts", func() []schemas.Event {
			var out []schemas.Event
			for i := 0; i < 12; i++ {
				out = append(out, ev("e", time.Duration(i)*20*day))
			}
			return out
		}(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := detecttest.Run(t, newDetector(t), tc.events)
			if g := detecttest.Keys(got); !slices.Equal(g, tc.want) {
				t.Fatalf("keys = %v, want %v", g, tc.want)
			}
		})
	}
}

func TestDormantReactivationExplainsSilence(t *testing.T) {
	got := detecttest.Run(t, newDetector(t), []schemas.Event{detecttest.Event("e1", 0), detecttest.Event("e2", 45*day)})
	if len(got) != 1 {
		t.Fatalf("got %d findings, want 1", len(got))
	}
	f := got[0]
	if f.Severity != schemas.SeverityMedium || f.EventIDs[0] != "e2" {
		t.Errorf("severity %s evidence %v", f.Severity, f.EventIDs)
	}
	if d := f.Observed.(map[string]any)["silent_days"]; d != 45.0 {
		t.Errorf("silent_days = %v, want 45", d)
	}
	if id := f.Baseline.(map[string]any)["last_event_id"]; id != "e1" {
		t.Errorf("baseline last_event_id = %v, want e1", id)
	}
}

func TestDormantStateRoundTrip(t *testing.T) {
	d := newDetector(t)
	st := d.NewState()
	e1 := detecttest.Event("e1", 0)
	d.Observe(&e1, st)
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
	e2 := detecttest.Event("e2", 31*day)
	if fs := d.Observe(&e2, back); len(fs) != 1 {
		t.Errorf("restored state lost the last-seen time: %v", fs)
	}
}

func TestDormantRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"zero dormancy": func(c *Config) { c.DormantAfter = 0 },
		"bad severity":  func(c *Config) { c.Severity = "meh" },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(func(v any) error { mod(v.(*Config)); return nil }); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
