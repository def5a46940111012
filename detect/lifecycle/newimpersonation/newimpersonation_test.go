package newimpersonation

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

func as(id string, at time.Duration, user string, impersonation bool) schemas.Event {
	ev := detecttest.Event(id, at)
	ev.Principal = schemas.Principal{ID: user, Type: "user"}
	ev.Impersonation = impersonation
	return ev
}

func TestNewImpersonation(t *testing.T) {
	tests := []struct {
		name   string
		events []schemas.Event
		want   []string
	}{
		{"a new user after learning alerts once", []schemas.Event{
			as("e1", 0, "ops@acme.test", true),
			as("e2", 2*day, "hr@acme.test", true),
			as("e3", 8*day, "cfo@acme.test", true),
			as("e4", 8*day+time.Hour, "cfo@acme.test", true),
			as("e5", 9*day, "ops@acme.test", true),
		}, []string{"cfo@acme.test"}},
		{"users learned while learning are baseline, case-insensitively", []schemas.Event{
			as("e1", 0, "ops@acme.test", true),
			as("e2", 10*day, "OPS@acme.test", true),
		}, nil},
		{"acting as a user with the user's own grant is not impersonation", []schemas.Event{
			as("e1", 0, "ops@acme.test", true),
			as("e2", 10*day, "cfo@acme.test", false),
		}, nil},
		{"an account that never impersonated starting after learning alerts", []schemas.Event{
			as("e1", 0, "svc@acme.test", false),
			as("e2", 10*day, "ceo@acme.test", true),
		}, []string{"ceo@acme.test"}},
		{"no principal, no opinion", []schemas.Event{
			as("e1", 0, "ops@acme.test", true),
			as("e2", 10*day, "", true),
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			detecttest.ExpectKeys(t, newDetector(t), tc.events, tc.want, schemas.SeverityHigh)
		})
	}
}

func TestNewImpersonationStopsLearningAtMaxUsers(t *testing.T) {
	d, err := New(func(v any) error { c := v.(*Config); *c = DefaultConfig(); c.MaxUsers = 1; return nil })
	if err != nil {
		t.Fatal(err)
	}
	got := detecttest.Run(t, d, []schemas.Event{
		as("e1", 0, "a@acme.test", true),
		as("e2", 1*day, "b@acme.test", true),
		as("e3", 8*day, "b@acme.test", true),
	})
	if g := detecttest.Keys(got); !slices.Equal(g, []string{"b@acme.test"}) {
		t.Fatalf("keys = %v: b was seen while learning but past max_users, so it was never learned", g)
	}
}

func TestNewImpersonationRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"negative learning": func(c *Config) { c.LearningPeriod = -1 },
		"no users":          func(c *Config) { c.MaxUsers = 0 },
		"bad severity":      func(c *Config) { c.Severity = "hi" },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(func(v any) error { c := v.(*Config); *c = DefaultConfig(); mod(c); return nil }); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
