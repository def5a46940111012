package tokenage

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

// used builds an event at T0+at with a token issued at T0+issued.
func used(id string, at, issued time.Duration, cred string) schemas.Event {
	ev := detecttest.Event(id, at)
	if issued != -1 {
		iat := schemas.NewTime(detecttest.T0.Add(issued))
		ev.TokenIssuedAt = &iat
	}
	ev.Credential.ID = cred
	return ev
}

func TestTokenAge(t *testing.T) {
	const h = time.Hour
	tests := []struct {
		name   string
		events []schemas.Event
		want   []string
	}{
		{"fresh tokens are quiet", []schemas.Event{
			used("e1", 30*time.Minute, 0, "sia-1"),
			used("e2", 25*h, 24*h+30*time.Minute, "sia-2"),
		}, nil},
		{"a token replayed two days after issue alerts once per token", []schemas.Event{
			used("e1", 10*time.Minute, 0, "sia-1"),
			used("e2", 50*h, 0, "sia-1"),
			used("e3", 51*h, 0, "sia-1"),
			used("e4", 52*h, time.Hour, "sia-2"),
		}, []string{"sia-1", "sia-2"}},
		{"exactly max_age is allowed", []schemas.Event{used("e1", 24*h, 0, "sia-1")}, nil},
		{"no issue time, no opinion", []schemas.Event{used("e1", 100*h, -1, "sia-1")}, nil},
		{"a token without a credential id is keyed by its issue time", []schemas.Event{used("e1", 30*h, time.Hour, "")},
			[]string{"issued:" + "1791162000000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := detecttest.Run(t, newDetector(t), tc.events)
			if g := detecttest.Keys(got); !slices.Equal(g, tc.want) {
				t.Fatalf("keys = %v, want %v", g, tc.want)
			}
			for _, f := range got {
				if f.Severity != schemas.SeverityHigh {
					t.Errorf("severity = %s", f.Severity)
				}
			}
		})
	}
}

func TestTokenAgeRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"zero max age": func(c *Config) { c.MaxAge = 0 },
		"bad severity": func(c *Config) { c.Severity = "hi" },
		"negative age": func(c *Config) { c.MaxAge = -time.Hour },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(func(v any) error { mod(v.(*Config)); return nil }); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
