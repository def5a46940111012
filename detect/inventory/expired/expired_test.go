package expired

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

// catalogued returns an inventory expiring at T0+exp.
func catalogued(exp time.Duration, criticality string) *schemas.Inventory {
	t := schemas.NewTime(detecttest.T0.Add(exp))
	return &schemas.Inventory{Catalogued: true, Owner: "alice@acme.test", Criticality: criticality, ExpiresAt: &t}
}

func ev(id string, at time.Duration, inv *schemas.Inventory, outcome string) schemas.Event {
	e := detecttest.Event(id, at)
	e.Inventory = inv
	if outcome != "" {
		e.Outcome = outcome
	}
	return e
}

func TestExpired(t *testing.T) {
	type want struct {
		key string
		sev schemas.Severity
	}
	lapsed := catalogued(2*day, "low")
	renewed := catalogued(30*day, "low")
	tests := []struct {
		name   string
		events []schemas.Event
		want   []want
	}{
		{"use after expiry alerts once", []schemas.Event{
			ev("e1", day, lapsed, ""), ev("e2", 3*day, lapsed, ""), ev("e3", 4*day, lapsed, ""),
		}, []want{{"2026-10-07T00:00:00.000Z", schemas.SeverityMedium}}},
		{"use before expiry is quiet", []schemas.Event{ev("e1", day, renewed, ""), ev("e2", 20*day, renewed, "")}, nil},
		{"use exactly at expiry is within grace", []schemas.Event{ev("e1", 2*day, lapsed, "")}, nil},
		{"failed calls after expiry are quiet", []schemas.Event{ev("e1", 3*day, lapsed, "failure")}, nil},
		{"critical integration alerts high", []schemas.Event{ev("e1", 3*day, catalogued(2*day, "critical"), "")},
			[]want{{"2026-10-07T00:00:00.000Z", schemas.SeverityHigh}}},
		{"renewed then lapsed again alerts again", []schemas.Event{
			ev("e1", 3*day, lapsed, ""), ev("e2", 10*day, renewed, ""), ev("e3", 31*day, renewed, ""),
		}, []want{{"2026-10-07T00:00:00.000Z", schemas.SeverityMedium}, {"2026-11-04T00:00:00.000Z", schemas.SeverityMedium}}},
		{"no expiry or no catalog is quiet", []schemas.Event{
			ev("e1", 0, nil, ""), ev("e2", day, &schemas.Inventory{Catalogued: true}, ""),
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := detecttest.Run(t, newDetector(t), tc.events)
			var g []want
			for _, f := range got {
				g = append(g, want{f.Key, f.Severity})
			}
			if !slices.Equal(g, tc.want) {
				t.Fatalf("findings = %v, want %v", g, tc.want)
			}
		})
	}
}

func TestExpiredGrace(t *testing.T) {
	d, err := New(func(v any) error { v.(*Config).Grace = 12 * time.Hour; return nil })
	if err != nil {
		t.Fatal(err)
	}
	lapsed := catalogued(2*day, "")
	got := detecttest.Run(t, d, []schemas.Event{ev("e1", 2*day+6*time.Hour, lapsed, ""), ev("e2", 2*day+13*time.Hour, lapsed, "")})
	if len(got) != 1 || got[0].EventIDs[0] != "e2" {
		t.Fatalf("grace: findings %v, want one on e2", got)
	}
}

func TestExpiredRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"negative grace": func(c *Config) { c.Grace = -time.Second },
		"bad severity":   func(c *Config) { c.CriticalSeverity = "loud" },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(func(v any) error { mod(v.(*Config)); return nil }); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
