package reviewoverdue

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

// scheduled returns an inventory whose review is due at T0+due.
func scheduled(due time.Duration, criticality string) *schemas.Inventory {
	t := schemas.NewTime(detecttest.T0.Add(due))
	return &schemas.Inventory{Catalogued: true, Owner: "alice@acme.test", Criticality: criticality, ReviewDueAt: &t}
}

func ev(id string, at time.Duration, inv *schemas.Inventory, outcome, category string) schemas.Event {
	e := detecttest.Event(id, at)
	e.Inventory = inv
	if outcome != "" {
		e.Outcome = outcome
	}
	if category != "" {
		e.Action.Category = category
	}
	return e
}

func TestReviewOverdue(t *testing.T) {
	type want struct {
		key string
		sev schemas.Severity
	}
	lapsed := scheduled(2*day, "low")
	reviewed := scheduled(30*day, "low")
	tests := []struct {
		name   string
		events []schemas.Event
		want   []want
	}{
		{"use after the due date alerts once per period", []schemas.Event{
			ev("e1", day, lapsed, "", ""), ev("e2", 3*day, lapsed, "", ""), ev("e3", 4*day, lapsed, "", ""),
		}, []want{{"2026-10-07T00:00:00.000Z", schemas.SeverityLow}}},
		{"use before the due date is quiet", []schemas.Event{ev("e1", day, reviewed, "", ""), ev("e2", 20*day, reviewed, "", "")}, nil},
		{"use exactly at the due date is quiet", []schemas.Event{ev("e1", 2*day, lapsed, "", "")}, nil},
		{"failed calls and revokes are not use", []schemas.Event{
			ev("e1", 3*day, lapsed, "failure", ""), ev("e2", 3*day, lapsed, "", schemas.CategoryRevoke),
		}, nil},
		{"a critical integration is weighed by the engine, not here", []schemas.Event{ev("e1", 3*day, scheduled(2*day, "critical"), "", "")},
			[]want{{"2026-10-07T00:00:00.000Z", schemas.SeverityLow}}},
		{"reviewed, then overdue again alerts again", []schemas.Event{
			ev("e1", 3*day, lapsed, "", ""), ev("e2", 10*day, reviewed, "", ""), ev("e3", 31*day, reviewed, "", ""),
		}, []want{{"2026-10-07T00:00:00.000Z", schemas.SeverityLow}, {"2026-11-04T00:00:00.000Z", schemas.SeverityLow}}},
		{"no schedule or no catalog is quiet", []schemas.Event{
			ev("e1", 0, nil, "", ""), ev("e2", 400*day, &schemas.Inventory{Catalogued: true}, "", ""),
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

func TestReviewOverdueGrace(t *testing.T) {
	d, err := New(func(v any) error { v.(*Config).Grace = 7 * day; return nil })
	if err != nil {
		t.Fatal(err)
	}
	lapsed := scheduled(2*day, "")
	got := detecttest.Run(t, d, []schemas.Event{ev("e1", 8*day, lapsed, "", ""), ev("e2", 10*day, lapsed, "", "")})
	if len(got) != 1 || got[0].EventIDs[0] != "e2" {
		t.Fatalf("grace: findings %v, want one on e2", got)
	}
}

func TestReviewOverdueRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"negative grace": func(c *Config) { c.Grace = -time.Second },
		"bad severity":   func(c *Config) { c.Severity = "loud" },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(func(v any) error { mod(v.(*Config)); return nil }); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
