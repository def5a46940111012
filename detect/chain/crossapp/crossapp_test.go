package crossapp

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

func in(id string, at time.Duration, app string) schemas.Event {
	ev := detecttest.Event(id, at)
	ev.TargetApp = app
	return ev
}

// routine is daily use of apps a few minutes apart for the learning week.
func routine(apps ...string) []schemas.Event {
	var out []schemas.Event
	for d := 0; d < 7; d++ {
		for i, app := range apps {
			// Distinct ids: the engine counts one event id once.
			out = append(out, in(fmt.Sprintf("r%d.%d", d, i), time.Duration(d)*day+9*time.Hour+time.Duration(i)*time.Minute, app))
		}
	}
	return out
}

func then(base []schemas.Event, more ...schemas.Event) []schemas.Event {
	return append(append([]schemas.Event(nil), base...), more...)
}

func TestCrossApp(t *testing.T) {
	m := time.Minute
	at := 8*day + 14*time.Hour
	tests := []struct {
		name   string
		events []schemas.Event
		want   []string
	}{
		{"spreading past the baseline maximum alerts once per breadth reached", then(routine("gmail", "drive"),
			in("a1", at, "gmail"), in("a2", at+5*m, "drive"), in("a3", at+10*m, "slack"), in("a4", at+15*m, "github"),
			in("a5", at+20*m, "slack"), in("a6", at+25*m, "gmail"), // no wider: no more alerts
		), []string{"2026-10-13T14:00:00Z/3", "2026-10-13T14:00:00Z/4"}},
		{"breadth seen while learning is normal", then(routine("gmail", "drive", "slack", "github"),
			in("a1", at, "gmail"), in("a2", at+5*m, "drive"), in("a3", at+10*m, "slack"), in("a4", at+15*m, "github"),
		), nil},
		{"one app more than a broad baseline alerts", then(routine("gmail", "drive", "slack", "github"),
			in("a1", at, "gmail"), in("a2", at+1*m, "drive"), in("a3", at+2*m, "slack"), in("a4", at+3*m, "github"), in("a5", at+4*m, "salesforce"),
		), []string{"2026-10-13T14:00:00Z/5"}},
		{"below min_apps stays quiet", then(routine("gmail"),
			in("a1", at, "gmail"), in("a2", at+5*m, "drive"),
		), nil},
		{"apps spread wider than the window stay quiet", then(routine("gmail"),
			in("a1", at, "gmail"), in("a2", at+40*m, "drive"), in("a3", at+80*m, "slack"), in("a4", at+120*m, "github"),
		), nil},
		{"late events cannot stretch the window", then(routine("gmail"),
			in("a1", at+2*time.Hour, "gmail"), in("a2", at+2*time.Hour+m, "drive"), in("a3", at, "slack"),
		), nil},
		{"during learning stays quiet", []schemas.Event{
			in("a1", 0, "gmail"), in("a2", m, "drive"), in("a3", 2*m, "slack"), in("a4", 3*m, "github"),
		}, nil},
		{"events without a target app are ignored", then(routine("gmail"),
			in("a1", at, "gmail"), in("a2", at+m, ""), in("a3", at+2*m, ""),
		), nil},
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

func TestCrossAppExplainsSpread(t *testing.T) {
	at := 8*day + 14*time.Hour
	got := detecttest.Run(t, newDetector(t), then(routine("gmail", "drive"),
		in("a1", at, "gmail"), in("a2", at+time.Minute, "drive"), in("a3", at+2*time.Minute, "slack")))
	if len(got) != 1 {
		t.Fatalf("got %d findings, want 1", len(got))
	}
	f := got[0]
	if apps := f.Observed.(map[string]any)["apps"].([]string); !slices.Equal(apps, []string{"gmail", "drive", "slack"}) {
		t.Errorf("apps = %v", apps)
	}
	if !slices.Equal(f.EventIDs, []string{"a1", "a2", "a3"}) || f.Severity != schemas.SeverityHigh {
		t.Errorf("evidence %v severity %s", f.EventIDs, f.Severity)
	}
	if mx := f.Baseline.(map[string]any)["max_apps"]; mx != 2 {
		t.Errorf("baseline max_apps = %v, want 2", mx)
	}
}

func TestCrossAppStateRoundTrip(t *testing.T) {
	d := newDetector(t)
	st := d.NewState()
	for _, ev := range routine("gmail", "drive") {
		d.Observe(&ev, st)
	}
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
	if back.(*State).Max != 2 {
		t.Fatalf("restored max = %d, want 2", back.(*State).Max)
	}
}

func TestCrossAppRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"zero window":  func(c *Config) { c.Window = 0 },
		"min apps one": func(c *Config) { c.MinApps = 1 },
		"bad severity": func(c *Config) { c.Severity = "x" },
		"negative":     func(c *Config) { c.LearningPeriod = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(func(v any) error { mod(v.(*Config)); return nil }); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
