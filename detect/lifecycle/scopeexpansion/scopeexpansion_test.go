package scopeexpansion

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

const (
	calendar = "https://www.googleapis.com/auth/calendar.readonly"
	gmail    = "https://www.googleapis.com/auth/gmail.readonly"
	contacts = "https://www.googleapis.com/auth/contacts.readonly"
)

func scoped(id string, at time.Duration, category string, scopes ...string) schemas.Event {
	ev := detecttest.Event(id, at)
	ev.Action.Category = category
	ev.Scopes = scopes
	return ev
}

// approving attaches a catalog entry that approves scopes.
func approving(ev schemas.Event, scopes ...string) schemas.Event {
	ev.Inventory = &schemas.Inventory{Catalogued: true, ApprovedScopes: scopes}
	return ev
}

func TestScopeExpansion(t *testing.T) {
	type want struct {
		key string
		sev schemas.Severity
	}
	tests := []struct {
		name   string
		events []schemas.Event
		want   []want
	}{
		{"sensitive scope granted after learning alerts high", []schemas.Event{
			scoped("e1", 0, schemas.CategoryAuthorize, calendar),
			scoped("e2", 8*day, schemas.CategoryAuthorize, calendar, gmail),
			scoped("e3", 9*day, schemas.CategoryAccess, gmail),
		}, []want{{gmail, schemas.SeverityHigh}}},
		{"ordinary new scope alerts medium", []schemas.Event{
			scoped("e1", 0, schemas.CategoryAuthorize, calendar),
			scoped("e2", 8*day, schemas.CategoryAccess, contacts),
		}, []want{{contacts, schemas.SeverityMedium}}},
		{"several new scopes in one grant alert each", []schemas.Event{
			scoped("e1", 0, schemas.CategoryAccess, calendar),
			scoped("e2", 8*day, schemas.CategoryAuthorize, contacts, "repo"),
		}, []want{{contacts, schemas.SeverityMedium}, {"repo", schemas.SeverityHigh}}},
		{"scopes seen while learning are baseline", []schemas.Event{
			scoped("e1", 0, schemas.CategoryAuthorize, calendar),
			scoped("e2", 6*day, schemas.CategoryAuthorize, gmail),
			scoped("e3", 10*day, schemas.CategoryAccess, gmail, calendar),
		}, nil},
		{"sensitive match ignores case", []schemas.Event{
			scoped("e1", 0, schemas.CategoryAccess, "read:user"),
			scoped("e2", 8*day, schemas.CategoryAuthorize, "Mail.ReadWrite"),
		}, []want{{"Mail.ReadWrite", schemas.SeverityHigh}}},
		{"catalog's approved scopes replace the learned baseline", []schemas.Event{
			approving(scoped("e1", 0, schemas.CategoryAuthorize, calendar, gmail), calendar),
			approving(scoped("e2", day, schemas.CategoryAccess, gmail), calendar),
			approving(scoped("e3", 8*day, schemas.CategoryAuthorize, contacts), calendar, contacts),
		}, []want{{gmail, schemas.SeverityHigh}}},
		{"unapproved scope learned before the catalog listed scopes alerts once listed", []schemas.Event{
			scoped("e1", 0, schemas.CategoryAuthorize, calendar, contacts),
			approving(scoped("e2", 2*day, schemas.CategoryAccess, contacts), calendar),
			approving(scoped("e3", 3*day, schemas.CategoryAccess, contacts), calendar),
		}, []want{{contacts, schemas.SeverityMedium}}},
		{"events without scopes change nothing", []schemas.Event{
			scoped("e1", 0, schemas.CategoryAccess),
			scoped("e2", 8*day, schemas.CategoryAccess),
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

func TestScopeExpansionBaselineListsPriorScopes(t *testing.T) {
	got := detecttest.Run(t, newDetector(t), []schemas.Event{
		scoped("e1", 0, schemas.CategoryAuthorize, calendar, contacts),
		scoped("e2", 8*day, schemas.CategoryAuthorize, gmail),
	})
	if len(got) != 1 {
		t.Fatalf("got %d findings, want 1", len(got))
	}
	if known := got[0].Baseline.(map[string]any)["scopes"].([]string); !slices.Equal(known, []string{calendar, contacts}) {
		t.Errorf("baseline scopes = %v", known)
	}
	if got[0].Title != "Acme Sync was granted new scope "+gmail {
		t.Errorf("title = %q", got[0].Title)
	}
}

func TestScopeExpansionNamesTheApprovedScopes(t *testing.T) {
	got := detecttest.Run(t, newDetector(t), []schemas.Event{
		approving(scoped("e1", 0, schemas.CategoryAuthorize, gmail), calendar),
	})
	if len(got) != 1 {
		t.Fatalf("got %d findings, want 1", len(got))
	}
	if r := got[0].Observed.(map[string]any)["reason"]; r != "not_approved" {
		t.Errorf("reason = %v", r)
	}
	if a := got[0].Baseline.(map[string]any)["approved_scopes"].([]string); !slices.Equal(a, []string{calendar}) {
		t.Errorf("baseline approved_scopes = %v", a)
	}
	if got[0].Title != "Acme Sync was granted scope "+gmail+" outside its approved scopes" {
		t.Errorf("title = %q", got[0].Title)
	}
}

func TestScopeExpansionStateRoundTrip(t *testing.T) {
	d := newDetector(t)
	st := d.NewState()
	e1 := scoped("e1", 0, schemas.CategoryAuthorize, gmail)
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
	e2 := scoped("e2", 30*day, schemas.CategoryAccess, gmail)
	if fs := d.Observe(&e2, back); len(fs) != 0 {
		t.Errorf("restored state forgot gmail scope: %v", fs)
	}
}

func TestScopeExpansionRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"empty sensitive entry": func(c *Config) { c.SensitiveScopes = []string{"mail", " "} },
		"bad severity":          func(c *Config) { c.SensitiveSeverity = "red" },
		"negative learning":     func(c *Config) { c.LearningPeriod = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(func(v any) error { mod(v.(*Config)); return nil }); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
