package correlate

import (
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

func TestBookKeepsTheLatestDecisionAndSuppressesByEventTime(t *testing.T) {
	at := func(s string) schemas.Time {
		p, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return schemas.NewTime(p)
	}
	until := at("2026-10-20T00:00:00Z")
	b := NewBook([]schemas.Decision{
		{IncidentID: "i1", Action: schemas.DecisionAcknowledge, DecidedAt: at("2026-10-02T10:00:00Z")},
		{IncidentID: "i1", Action: schemas.DecisionResolve, DecidedAt: at("2026-10-03T10:00:00Z")},
		// Older than the one above, though later in the input: not in force.
		{IncidentID: "i1", Action: schemas.DecisionAcknowledge, DecidedAt: at("2026-10-01T10:00:00Z")},
		{IncidentID: "i2", Tenant: "t", Key: "app", Action: schemas.DecisionSuppress, DecidedAt: at("2026-10-02T10:00:00Z"), Until: &until},
		{Action: schemas.DecisionResolve}, // no incident: ignored
	})
	if b.Len() != 2 {
		t.Fatalf("%d incidents with a decision, want 2", b.Len())
	}
	if d, ok := b.Decision("i1"); !ok || d.Action != schemas.DecisionResolve {
		t.Fatalf("i1: %+v %v, want the latest (resolve)", d, ok)
	}
	for _, tc := range []struct {
		tenant, key, at string
		want            bool
	}{
		{"t", "app", "2026-10-19T23:59:59Z", true},
		{"t", "app", "2026-10-20T00:00:00Z", false}, // until is exclusive
		{"other", "app", "2026-10-19T00:00:00Z", false},
		{"t", "other", "2026-10-19T00:00:00Z", false},
	} {
		if got := b.Suppressed(tc.tenant, tc.key, at(tc.at).Time); got != tc.want {
			t.Errorf("Suppressed(%s, %s, %s) = %v, want %v", tc.tenant, tc.key, tc.at, got, tc.want)
		}
	}
	b.Replace(nil)
	if _, ok := b.Decision("i1"); ok || b.Suppressed("t", "app", at("2026-10-19T00:00:00Z").Time) {
		t.Fatal("Replace(nil) kept decisions")
	}
}
