// Package pagerduty triggers PagerDuty incidents through the Events API v2:
// one POST {base_url}/v2/enqueue per alert, with event_action "trigger" and
// dedup_key = the alert id. Alert ids are deterministic, so a retried or
// replayed alert folds into the open incident instead of paging twice.
package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Kind is the sink kind in config.
const Kind = "pagerduty"

// DefaultBaseURL is PagerDuty's public events endpoint (EU accounts use
// https://events.eu.pagerduty.com).
const DefaultBaseURL = "https://events.pagerduty.com"

func init() {
	deliver.Register(Kind, func(name string, decode func(any) error) (deliver.Sink, error) {
		cfg := DefaultConfig()
		if err := decode(&cfg); err != nil {
			return nil, fmt.Errorf("pagerduty %s: %w", name, err)
		}
		return New(name, cfg)
	})
}

// Config is the sink's YAML config.
type Config struct {
	// RoutingKey is the Events API v2 integration key of the service.
	RoutingKey secret.Secret `yaml:"routing_key"`
	BaseURL    string        `yaml:"base_url"`
	Timeout    time.Duration `yaml:"timeout"`
	// EventsTable is the ClickHouse table named in custom_details.evidence_query.
	EventsTable string `yaml:"events_table"`
}

// DefaultConfig: public endpoint, 10 s, table "events".
func DefaultConfig() Config {
	return Config{BaseURL: DefaultBaseURL, Timeout: 10 * time.Second, EventsTable: deliver.DefaultEventsTable}
}

// Validate checks cfg.
func (c Config) Validate() error {
	if c.RoutingKey.IsZero() {
		return errors.New("routing_key: required")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("base_url %s: not an http(s) URL", deliver.SafeURL(c.BaseURL))
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("timeout %s: must be positive", c.Timeout)
	}
	return deliver.ValidateTable(c.EventsTable)
}

// Sink triggers incidents on one PagerDuty service.
type Sink struct {
	name     string
	cfg      Config
	endpoint string
	client   *http.Client
}

var _ deliver.IncidentSink = (*Sink)(nil)
var _ deliver.Pager = (*Sink)(nil)

// New validates cfg and builds the sink; no network.
func New(name string, cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pagerduty %s: %w", name, err)
	}
	return &Sink{
		name:     name,
		cfg:      cfg,
		endpoint: strings.TrimRight(cfg.BaseURL, "/") + "/v2/enqueue",
		client:   &http.Client{Timeout: cfg.Timeout},
	}, nil
}

// Name implements deliver.Sink.
func (s *Sink) Name() string { return s.name }

// Send enqueues one event per alert, stopping at the first failure; a retry
// resends the earlier ones, which PagerDuty deduplicates by dedup_key.
func (s *Sink) Send(ctx context.Context, alerts []schemas.Alert) error {
	for i := range alerts {
		if err := s.post(ctx, &alerts[i]); err != nil {
			return fmt.Errorf("pagerduty %s: alert %s: %w", s.name, alerts[i].ID, err)
		}
	}
	return nil
}

// Pages implements deliver.Pager: PagerDuty gets incidents, and alerts only
// where config asks for them.
func (s *Sink) Pages() bool { return true }

// SendIncident implements deliver.IncidentSink: one Events API v2 event per
// incident version with dedup_key = the incident id, "trigger" while it is
// open or acknowledged (PagerDuty folds each version into the same
// PagerDuty incident and updates its details), "resolve" once it is resolved
// or suppressed.
func (s *Sink) SendIncident(ctx context.Context, inc schemas.Incident, _ deliver.Receipt) (deliver.Receipt, error) {
	body, err := json.Marshal(BuildIncidentEvent(&inc, s.cfg.RoutingKey, s.cfg.EventsTable))
	if err != nil {
		return "", &deliver.PermanentError{Err: fmt.Errorf("pagerduty %s: incident %s: encode: %w", s.name, inc.ID, err)}
	}
	if err := s.postBody(ctx, body); err != nil {
		return "", fmt.Errorf("pagerduty %s: incident %s v%d: %w", s.name, inc.ID, inc.Version, err)
	}
	return "", nil
}

// IncidentEvent is an Events API v2 trigger or resolve for an incident; a
// resolve carries no payload.
type IncidentEvent struct {
	RoutingKey  routingKey       `json:"routing_key"`
	EventAction string           `json:"event_action"`
	DedupKey    string           `json:"dedup_key"`
	Payload     *IncidentPayload `json:"payload,omitempty"`
	Client      string           `json:"client,omitempty"`
}

// IncidentPayload is a trigger's body for an incident.
type IncidentPayload struct {
	Summary       string                `json:"summary"`
	Source        string                `json:"source"`
	Severity      string                `json:"severity"`
	Timestamp     string                `json:"timestamp,omitempty"`
	Component     string                `json:"component,omitempty"`
	Group         string                `json:"group,omitempty"`
	Class         string                `json:"class,omitempty"`
	CustomDetails IncidentCustomDetails `json:"custom_details"`
}

// IncidentCustomDetails is what the responder sees under "Details".
type IncidentCustomDetails struct {
	IncidentID     string              `json:"incident_id"`
	Version        int                 `json:"version"`
	Status         string              `json:"status"`
	RiskScore      float64             `json:"risk_score"`
	Tenant         string              `json:"tenant"`
	IntegrationIDs []string            `json:"integration_ids"`
	Owner          string              `json:"owner,omitempty"`
	Summary        string              `json:"summary,omitempty"`
	FirstSeen      schemas.Time        `json:"first_seen"`
	LastSeen       schemas.Time        `json:"last_seen"`
	Detectors      []string            `json:"detectors"`
	AlertIDs       []string            `json:"alert_ids"`
	Blast          schemas.BlastRadius `json:"blast_radius"`
	Next           []string            `json:"next,omitempty"`
	IncidentQuery  string              `json:"incident_query,omitempty"`
}

// sqlQuote escapes a string for a single-quoted ClickHouse literal.
var sqlQuote = strings.NewReplacer(`\`, `\\`, `'`, `\'`)

// BuildIncidentEvent maps an incident version to a trigger or resolve. Pure.
func BuildIncidentEvent(inc *schemas.Incident, key secret.Secret, table string) IncidentEvent {
	ev := IncidentEvent{RoutingKey: routingKey{key}, DedupKey: inc.ID, Client: "tokenwatch"}
	if inc.Status == schemas.IncidentResolved || inc.Status == schemas.IncidentSuppressed {
		ev.EventAction = "resolve"
		return ev
	}
	ev.EventAction = "trigger"
	source := inc.IntegrationID
	if source == "" {
		source = "tokenwatch"
	}
	strs := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	p := &IncidentPayload{
		Summary:   truncate(fmt.Sprintf("[%s] %s (%s, risk %.0f)", strings.ToUpper(string(inc.Severity)), inc.Title, source, inc.RiskScore), maxSummary),
		Source:    source,
		Severity:  Severity(inc.Severity),
		Component: "incident",
		Group:     inc.Tenant,
		Class:     "incident",
		CustomDetails: IncidentCustomDetails{
			IncidentID: inc.ID, Version: inc.Version, Status: inc.Status, RiskScore: inc.RiskScore, Tenant: inc.Tenant,
			IntegrationIDs: strs(inc.IntegrationIDs), Owner: inc.Owner, Summary: inc.Summary,
			FirstSeen: inc.FirstSeen, LastSeen: inc.LastSeen, Detectors: strs(inc.Detectors), AlertIDs: strs(inc.AlertIDs),
			Blast: inc.Blast, Next: inc.Next,
			IncidentQuery: "SELECT * FROM incident_events WHERE incident_id = '" + sqlQuote.Replace(inc.ID) + "' ORDER BY time",
		},
	}
	if !inc.FirstSeen.IsZero() {
		p.Timestamp = inc.FirstSeen.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	ev.Payload = p
	return ev
}

func (s *Sink) post(ctx context.Context, a *schemas.Alert) error {
	body, err := json.Marshal(BuildEvent(a, s.cfg.RoutingKey, s.cfg.EventsTable))
	if err != nil {
		return &deliver.PermanentError{Err: fmt.Errorf("encode: %w", err)}
	}
	return s.postBody(ctx, body)
}

func (s *Sink) postBody(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return &deliver.PermanentError{Err: deliver.TransportError(err, s.cfg.RoutingKey)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tokenwatch")
	resp, err := s.client.Do(req)
	if err != nil {
		return deliver.TransportError(err, s.cfg.RoutingKey)
	}
	return deliver.CheckResponse(resp, s.cfg.RoutingKey)
}

// Event is an Events API v2 trigger.
type Event struct {
	// RoutingKey marshals as itself here only: Event is the wire format.
	RoutingKey  routingKey `json:"routing_key"`
	EventAction string     `json:"event_action"`
	DedupKey    string     `json:"dedup_key"`
	Payload     Payload    `json:"payload"`
	Client      string     `json:"client,omitempty"`
}

// routingKey reveals the secret when the event is marshalled for sending
// and nowhere else (a Secret marshals as "[REDACTED]").
type routingKey struct{ secret.Secret }

func (k routingKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.Reveal()) }

// Payload is the incident body.
type Payload struct {
	Summary       string        `json:"summary"`
	Source        string        `json:"source"`
	Severity      string        `json:"severity"`
	Timestamp     string        `json:"timestamp,omitempty"`
	Component     string        `json:"component,omitempty"`
	Group         string        `json:"group,omitempty"`
	Class         string        `json:"class,omitempty"`
	CustomDetails CustomDetails `json:"custom_details"`
}

// CustomDetails is what the responder sees under "Details".
type CustomDetails struct {
	AlertID       string          `json:"alert_id"`
	IntegrationID string          `json:"integration_id"`
	Tenant        string          `json:"tenant"`
	Summary       string          `json:"summary,omitempty"`
	FirstSeen     schemas.Time    `json:"first_seen"`
	LastSeen      schemas.Time    `json:"last_seen"`
	Observed      json.RawMessage `json:"observed,omitempty"`
	Baseline      json.RawMessage `json:"baseline,omitempty"`
	EventIDs      []string        `json:"event_ids"`
	EvidenceQuery string          `json:"evidence_query,omitempty"`
}

// maxSummary is PagerDuty's limit on payload.summary.
const maxSummary = 1024

// BuildEvent maps an alert to a trigger event. Pure.
//
// source is the integration id (PagerDuty's "affected system"), or
// "tokenwatch" if the alert has none; component is the detector; group the
// tenant; class the detector family ("geo" of "geo.new_country").
func BuildEvent(a *schemas.Alert, key secret.Secret, table string) Event {
	source := a.IntegrationID
	if source == "" {
		source = "tokenwatch"
	}
	class, _, _ := strings.Cut(a.Detector, ".")
	q, _ := deliver.EvidenceQuery(table, a.EventIDs, 0)
	ids := a.EventIDs
	if ids == nil {
		ids = []string{}
	}
	p := Payload{
		Summary:   truncate(fmt.Sprintf("[%s] %s (%s)", strings.ToUpper(string(a.Severity)), a.Title, source), maxSummary),
		Source:    source,
		Severity:  Severity(a.Severity),
		Component: a.Detector,
		Group:     a.Tenant,
		Class:     class,
		CustomDetails: CustomDetails{
			AlertID: a.ID, IntegrationID: a.IntegrationID, Tenant: a.Tenant, Summary: a.Summary,
			FirstSeen: a.FirstSeen, LastSeen: a.LastSeen,
			Observed: a.Observed, Baseline: a.Baseline, EventIDs: ids, EvidenceQuery: q,
		},
	}
	if !a.FirstSeen.IsZero() {
		p.Timestamp = a.FirstSeen.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	return Event{RoutingKey: routingKey{key}, EventAction: "trigger", DedupKey: a.ID, Payload: p, Client: "tokenwatch"}
}

// Severity maps tokenwatch's five levels onto PagerDuty's four: critical →
// critical, high → error, medium → warning, low and info → info. An unknown
// severity pages as "error" rather than being downgraded.
func Severity(s schemas.Severity) string {
	switch s {
	case schemas.SeverityCritical:
		return "critical"
	case schemas.SeverityHigh:
		return "error"
	case schemas.SeverityMedium:
		return "warning"
	case schemas.SeverityLow, schemas.SeverityInfo:
		return "info"
	}
	return "error"
}

// truncate cuts s to at most n bytes (so at most n characters) on a rune
// boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
