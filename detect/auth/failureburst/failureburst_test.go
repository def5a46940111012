package failureburst

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

// series is n events from start, every step apart, built by mk.
func series(prefix string, n int, start, step time.Duration, mk func(schemas.Event) schemas.Event) []schemas.Event {
	var out []schemas.Event
	for i := 0; i < n; i++ {
		ev := detecttest.Event(fmt.Sprintf("%s%d", prefix, i), start+time.Duration(i)*step)
		ev.Network.IP = fmt.Sprintf("192.0.2.%d", i%3)
		out = append(out, mk(ev))
	}
	return out
}

func authFailure(ev schemas.Event) schemas.Event {
	ev.Action = schemas.Action{Name: "login.failed", Category: schemas.CategoryAuthFailure}
	ev.Outcome = "failure"
	return ev
}

func deniedAccess(ev schemas.Event) schemas.Event { ev.Outcome = "failure"; return ev }

func success(ev schemas.Event) schemas.Event { return ev }

func interleave(a, b []schemas.Event) []schemas.Event {
	var out []schemas.Event
	for i := range a {
		out = append(out, a[i])
		if i < len(b) {
			out = append(out, b[i])
		}
	}
	return out
}

func TestFailureBurst(t *testing.T) {
	s, m := time.Second, time.Minute
	tests := []struct {
		name   string
		events []schemas.Event
		want   []string
	}{
		{"twenty auth failures in five minutes alert",
			series("f", 20, time.Minute, 15*s, authFailure), []string{"2026-10-05T00:00:00Z"}},
		{"nineteen failures stay quiet",
			series("f", 19, 0, 15*s, authFailure), nil},
		{"failures spread thinner than the window stay quiet",
			series("f", 40, 0, m, authFailure), nil},
		{"failed calls of any category count",
			series("f", 20, 0, 10*s, deniedAccess), []string{"2026-10-05T00:00:00Z"}},
		{"a long burst in one bucket alerts once",
			series("f", 45, 0, 10*s, authFailure), []string{"2026-10-05T00:00:00Z"}},
		{"a burst across buckets alerts once per bucket",
			series("f", 60, 0, 20*s, authFailure), []string{"2026-10-05T00:00:00Z", "2026-10-05T00:10:00Z"}},
		{"successes between failures neither count nor reset",
			interleave(series("f", 20, 0, 10*s, authFailure), series("ok", 20, 5*s, 10*s, success)), []string{"2026-10-05T00:00:00Z"}},
		{"late failures count in time order",
			append(series("f", 10, 5*m, 10*s, authFailure), series("late", 10, 3*m, 10*s, authFailure)...), []string{"2026-10-05T00:00:00Z"}},
		{"old late failures do not make a burst",
			append(series("f", 10, 60*m, 10*s, authFailure), series("late", 10, 0, 10*s, authFailure)...), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := detecttest.Run(t, newDetector(t), tc.events)
			if g := detecttest.Keys(got); !slices.Equal(g, tc.want) {
				t.Fatalf("keys = %v, want %v", g, tc.want)
			}
			for _, f := range got {
				if len(f.EventIDs) != 20 || f.LastSeen.Sub(f.FirstSeen) >= 10*m || f.Severity != schemas.SeverityMedium {
					t.Errorf("finding %s: %d ids spanning %s, severity %s", f.Key, len(f.EventIDs), f.LastSeen.Sub(f.FirstSeen), f.Severity)
				}
			}
		})
	}
}

func TestFailureBurstReportsSourceIPs(t *testing.T) {
	got := detecttest.Run(t, newDetector(t), series("f", 20, 0, 10*time.Second, authFailure))
	if len(got) != 1 {
		t.Fatalf("got %d findings, want 1", len(got))
	}
	ips := got[0].Observed.(map[string]any)["ips"].([]string)
	if !slices.Equal(ips, []string{"192.0.2.0", "192.0.2.1", "192.0.2.2"}) {
		t.Errorf("ips = %v", ips)
	}
}

func TestFailureBurstStateRoundTrip(t *testing.T) {
	d := newDetector(t)
	st := d.NewState()
	evs := series("f", 20, 0, 10*time.Second, authFailure)
	for i := range evs[:19] {
		d.Observe(&evs[i], st)
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
	if fs := d.Observe(&evs[19], back); len(fs) != 1 {
		t.Errorf("restored state lost its 19 failures: %v", fs)
	}
}

func TestFailureBurstRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"threshold one":  func(c *Config) { c.Threshold = 1 },
		"huge threshold": func(c *Config) { c.Threshold = maxThreshold + 1 },
		"zero window":    func(c *Config) { c.Window = 0 },
		"bad severity":   func(c *Config) { c.Severity = "" },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(func(v any) error { mod(v.(*Config)); return nil }); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
