package newuseragent

import (
	_ "embed"
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

func TestFamily(t *testing.T) {
	for ua, want := range map[string]string{
		"python-requests/2.31.0": "python-requests",
		"Go-http-client/1.1":     "go-http-client",
		"curl/8.4.0":             "curl",
		"google-api-java-client/2.2.0 Google-HTTP-Java-Client/1.43.3 (gzip)": "google-api-java-client",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64)":                          "mozilla",
		"  Salesforce Integration":                                           "salesforce",
		"okhttp":                                                             "okhttp",
		"":                                                                   "",
		"   ":                                                                "",
	} {
		if got := Family(ua); got != want {
			t.Errorf("Family(%q) = %q, want %q", ua, got, want)
		}
	}
}

func ua(id string, at time.Duration, agent string) schemas.Event {
	ev := detecttest.Event(id, at)
	ev.Network.UserAgent = agent
	return ev
}

func TestNewUserAgent(t *testing.T) {
	tests := []struct {
		name   string
		events []schemas.Event
		want   []string
	}{
		{"attacker tooling after learning alerts once", []schemas.Event{
			ua("e1", 0, "google-api-java-client/2.2.0 Google-HTTP-Java-Client/1.43.3 (gzip)"),
			ua("e2", 8*day, "python-requests/2.31.0"),
			ua("e3", 8*day+time.Minute, "python-requests/2.31.0"),
		}, []string{"python-requests"}},
		{"a library upgrade is the same family", []schemas.Event{
			ua("e1", 0, "Go-http-client/1.1"),
			ua("e2", 8*day, "Go-http-client/2.0"),
		}, nil},
		{"family match ignores case", []schemas.Event{
			ua("e1", 0, "curl/7.0"),
			ua("e2", 8*day, "CURL/8.4.0"),
		}, nil},
		{"families first seen while learning are baseline", []schemas.Event{
			ua("e1", 0, "curl/7.0"),
			ua("e2", 5*day, "python-requests/2.31.0"),
			ua("e3", 9*day, "python-requests/2.32.0"),
		}, nil},
		{"ignored families never alert", []schemas.Event{
			ua("e1", 0, "curl/7.0"),
			ua("e2", 8*day, "Mozilla/5.0 (X11; Linux x86_64)"),
		}, nil},
		{"missing user agent is ignored", []schemas.Event{
			ua("e1", 0, "curl/7.0"),
			ua("e2", 8*day, ""),
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			detecttest.ExpectKeys(t, newDetector(t), tc.events, tc.want, schemas.SeverityMedium)
		})
	}
}

func TestNewUserAgentStateRoundTrip(t *testing.T) {
	d := newDetector(t)
	st := d.NewState()
	e1 := ua("e1", 0, "curl/8.0")
	d.Observe(&e1, st)
	back := detecttest.RoundTrip(t, d, st)
	e2 := ua("e2", 30*day, "curl/8.5")
	if fs := d.Observe(&e2, back); len(fs) != 0 {
		t.Errorf("restored state forgot curl: %v", fs)
	}
	e3 := ua("e3", 30*day, "Wget/1.21")
	if fs := d.Observe(&e3, back); len(fs) != 1 || fs[0].Key != "wget" {
		t.Errorf("restored state missed new family wget: %v", fs)
	}
}

func TestNewUserAgentRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"negative learning": func(c *Config) { c.LearningPeriod = -1 },
		"bad severity":      func(c *Config) { c.Severity = "hi" },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(func(v any) error { mod(v.(*Config)); return nil }); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
