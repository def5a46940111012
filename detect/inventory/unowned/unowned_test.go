package unowned

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

var (
	owned      = &schemas.Inventory{Catalogued: true, Name: "Acme Sync", Owner: "alice@acme.test"}
	ownerless  = &schemas.Inventory{Catalogued: true, Name: "Acme Sync"}
	stranger   = &schemas.Inventory{Catalogued: false}
	mailRobot  = &schemas.Inventory{Catalogued: true, ApprovedScopes: []string{"https://mail.google.com/"}}
	gmailScope = "https://www.googleapis.com/auth/gmail.readonly"
)

func ev(id string, at time.Duration, inv *schemas.Inventory, mod ...func(*schemas.Event)) schemas.Event {
	e := detecttest.Event(id, at)
	e.Inventory = inv
	for _, m := range mod {
		m(&e)
	}
	return e
}

func failed(e *schemas.Event) { e.Outcome = "failure" }
func revoke(e *schemas.Event) { e.Action.Category = schemas.CategoryRevoke }
func gmail(e *schemas.Event)  { e.Scopes = []string{gmailScope} }
func app2(e *schemas.Event)   { e.Integration.ID = "app-2" }

func TestUnowned(t *testing.T) {
	type want struct {
		integration string
		sev         schemas.Severity
		reason      string
	}
	tests := []struct {
		name   string
		events []schemas.Event
		want   []want
	}{
		{"uncatalogued integration alerts once", []schemas.Event{
			ev("e1", 0, stranger), ev("e2", time.Hour, stranger), ev("e3", 48*time.Hour, stranger),
		}, []want{{"app-1", schemas.SeverityMedium, "uncatalogued"}}},
		{"catalogued without owner alerts", []schemas.Event{ev("e1", 0, ownerless)},
			[]want{{"app-1", schemas.SeverityMedium, "no_owner"}}},
		{"owned integration is quiet", []schemas.Event{ev("e1", 0, owned), ev("e2", time.Hour, owned, gmail)}, nil},
		{"no catalog configured is quiet", []schemas.Event{ev("e1", 0, nil)}, nil},
		{"sensitive scope on the event raises severity", []schemas.Event{ev("e1", 0, stranger, gmail)},
			[]want{{"app-1", schemas.SeverityHigh, "uncatalogued"}}},
		{"sensitive approved scope raises severity", []schemas.Event{ev("e1", 0, mailRobot)},
			[]want{{"app-1", schemas.SeverityHigh, "no_owner"}}},
		{"failures and revokes are not activity", []schemas.Event{
			ev("e1", 0, stranger, failed), ev("e2", time.Minute, stranger, revoke), ev("e3", time.Hour, stranger),
		}, []want{{"app-1", schemas.SeverityMedium, "uncatalogued"}}},
		{"owner removed later alerts then", []schemas.Event{ev("e1", 0, owned), ev("e2", time.Hour, ownerless)},
			[]want{{"app-1", schemas.SeverityMedium, "no_owner"}}},
		{"each integration alerts on its own", []schemas.Event{ev("e1", 0, stranger), ev("e2", time.Minute, stranger, app2)},
			[]want{{"app-1", schemas.SeverityMedium, "uncatalogued"}, {"app-2", schemas.SeverityMedium, "uncatalogued"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := detecttest.Run(t, newDetector(t), tc.events)
			var g []want
			for _, f := range got {
				if f.Key != "unowned" {
					t.Errorf("key = %q", f.Key)
				}
				ids := f.EventIDs
				var integ string
				for _, e := range tc.events {
					if e.EventID == ids[0] {
						integ = e.Integration.ID
					}
				}
				g = append(g, want{integ, f.Severity, f.Observed.(map[string]any)["reason"].(string)})
			}
			if !slices.Equal(g, tc.want) {
				t.Fatalf("findings = %v, want %v", g, tc.want)
			}
		})
	}
}

func TestUnownedRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"empty sensitive entry": func(c *Config) { c.SensitiveScopes = []string{""} },
		"bad severity":          func(c *Config) { c.Severity = "urgent" },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(func(v any) error { mod(v.(*Config)); return nil }); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
