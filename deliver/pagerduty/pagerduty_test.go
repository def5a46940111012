package pagerduty

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/delivertest"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

//go:embed sample.yaml
var sample []byte

const key = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY01"

func newSink(t *testing.T, base string) *Sink {
	t.Helper()
	cfg := DefaultConfig()
	cfg.BaseURL, cfg.RoutingKey = base, secret.New(key)
	s, err := New("pagerduty-oncall", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSampleConfigBuildsThroughTheRegistry(t *testing.T) {
	t.Setenv("TOKENWATCH_PAGERDUTY_ROUTING_KEY", key)
	kind, name, decode := delivertest.Sample(t, sample)
	s, err := deliver.New(kind, name, decode)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.(*Sink).endpoint; got != "https://events.pagerduty.com/v2/enqueue" {
		t.Fatalf("endpoint %s", got)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, edit := range map[string]func(*Config){
		"no routing key": func(c *Config) { c.RoutingKey = secret.Secret{} },
		"bad base url":   func(c *Config) { c.BaseURL = "events.pagerduty.com" },
		"zero timeout":   func(c *Config) { c.Timeout = 0 },
		"bad table":      func(c *Config) { c.EventsTable = "x y" },
	} {
		cfg := DefaultConfig()
		cfg.RoutingKey = secret.New(key)
		edit(&cfg)
		if _, err := New("x", cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestHTTPContract(t *testing.T) {
	delivertest.HTTPContract(t, func(t *testing.T, base string) deliver.Sink { return newSink(t, base) }, key)
}

func TestSendTriggersWithDedupKeyEqualToAlertID(t *testing.T) {
	srv := delivertest.NewServer(t, delivertest.Response{Status: 202, Body: `{"status":"success","message":"Event processed","dedup_key":"x"}`})
	a, b := delivertest.Alert(), delivertest.Alert()
	b.ID = "0123456789abcdef0123456789abcdef"
	if err := newSink(t, srv.URL).Send(context.Background(), []schemas.Alert{a, b}); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want one per alert", len(reqs))
	}
	for i, want := range []string{a.ID, b.ID} {
		r := reqs[i]
		if r.Method != "POST" || r.Path != "/v2/enqueue" {
			t.Fatalf("%s %s", r.Method, r.Path)
		}
		var ev struct {
			RoutingKey  string `json:"routing_key"`
			EventAction string `json:"event_action"`
			DedupKey    string `json:"dedup_key"`
			Payload     struct {
				Summary, Source, Severity, Timestamp, Component, Group string
				CustomDetails                                          struct {
					EventIDs      []string        `json:"event_ids"`
					Observed      json.RawMessage `json:"observed"`
					Baseline      json.RawMessage `json:"baseline"`
					EvidenceQuery string          `json:"evidence_query"`
				} `json:"custom_details"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.DedupKey != want {
			t.Errorf("dedup_key %q, want alert id %q", ev.DedupKey, want)
		}
		if ev.RoutingKey != key || ev.EventAction != "trigger" {
			t.Errorf("routing_key %q event_action %q", ev.RoutingKey, ev.EventAction)
		}
		p := ev.Payload
		if p.Severity != "error" || p.Component != "geo.new_country" || p.Group != "acme" ||
			p.Source != a.IntegrationID || p.Timestamp != "2025-10-27T02:13:07.412Z" {
			t.Errorf("payload %+v", p)
		}
		if strings.Join(p.CustomDetails.EventIDs, ",") != "evt-001,evt-002,evt-003" ||
			string(p.CustomDetails.Observed) != string(a.Observed) || string(p.CustomDetails.Baseline) != string(a.Baseline) ||
			!strings.HasPrefix(p.CustomDetails.EvidenceQuery, "SELECT * FROM events WHERE event_id IN ('evt-001'") {
			t.Errorf("custom_details %+v", p.CustomDetails)
		}
	}
}

func TestSeverityMapping(t *testing.T) {
	for sev, want := range map[schemas.Severity]string{
		"critical": "critical", "high": "error", "medium": "warning", "low": "info", "info": "info", "bogus": "error",
	} {
		if got := Severity(sev); got != want {
			t.Errorf("%s → %s, want %s", sev, got, want)
		}
	}
}

func TestBuildEventSummaryFitsPagerDutyLimit(t *testing.T) {
	tests := []struct {
		name  string
		title string
	}{
		{"ascii", strings.Repeat("a", 3000)},
		{"multibyte cut on a rune boundary", strings.Repeat("ü", 1500)},
		{"short stays whole", "short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := delivertest.Alert()
			a.Title = tt.title
			s := BuildEvent(&a, secret.New(key), "events").Payload.Summary
			if utf8.RuneCountInString(s) > 1024 || !utf8.ValidString(s) {
				t.Fatalf("summary of %d runes, valid=%v", utf8.RuneCountInString(s), utf8.ValidString(s))
			}
			if len(tt.title) < 100 && !strings.Contains(s, tt.title) {
				t.Errorf("summary %q", s)
			}
		})
	}
}

func TestEventNeverPrintsTheKeyOutsideTheWire(t *testing.T) {
	ev := BuildEvent(&[]schemas.Alert{delivertest.Alert()}[0], secret.New(key), "events")
	for _, s := range []string{ev.RoutingKey.String(), strings.TrimSpace(strings.ReplaceAll(fmtV(ev), "\n", ""))} {
		if strings.Contains(s, key) {
			t.Fatalf("key printed: %s", s)
		}
	}
}

func fmtV(v any) string { return fmt.Sprintf("%v %+v", v, v) }

func TestIncidentTriggersThenResolvesOnOneDedupKey(t *testing.T) {
	var got []IncidentEvent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev IncidentEvent
		var raw map[string]any
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &ev)
		json.Unmarshal(body, &raw)
		if r.URL.Path != "/v2/enqueue" || raw["routing_key"] != key {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		got = append(got, ev)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	s := newSink(t, srv.URL)
	if !deliver.Pages(s) || !deliver.TakesIncidents(s) {
		t.Fatal("pagerduty should page and take incidents")
	}
	inc := schemas.Incident{ID: "inc-1", Version: 1, Status: schemas.IncidentOpen, Severity: schemas.SeverityHigh,
		IntegrationID: "crm", Title: "crm compromised", RiskScore: 70, AlertIDs: []string{"a1"}}
	for _, step := range []struct {
		version int
		status  string
	}{{1, schemas.IncidentOpen}, {2, schemas.IncidentAcknowledged}, {3, schemas.IncidentResolved}} {
		inc.Version, inc.Status = step.version, step.status
		if _, err := s.SendIncident(context.Background(), inc, ""); err != nil {
			t.Fatal(err)
		}
	}
	var actions []string
	for _, ev := range got {
		if ev.DedupKey != "inc-1" {
			t.Fatalf("dedup_key %q", ev.DedupKey)
		}
		actions = append(actions, ev.EventAction)
	}
	if strings.Join(actions, ",") != "trigger,trigger,resolve" {
		t.Fatalf("actions %v", actions)
	}
	if p := got[1].Payload; p == nil || p.CustomDetails.Version != 2 || p.Severity != "error" || !strings.Contains(p.CustomDetails.IncidentQuery, "'inc-1'") {
		t.Fatalf("acknowledged trigger payload %+v", p)
	}
	if got[2].Payload != nil {
		t.Fatalf("resolve carries a payload: %+v", got[2].Payload)
	}
}
