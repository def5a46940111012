// Package scopeexpansion implements lifecycle.scope_expansion: an integration
// granted or using an OAuth scope it never had during its learning period.
// Consent phishing and compromised apps escalate by re-consenting with broader
// scopes (mail, files, admin); a quiet integration suddenly holding
// gmail.readonly is worth a look even when nothing else changed.
package scopeexpansion

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "lifecycle.scope_expansion"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1098.003", "T1528"},
	Runbook:        "Confirm the new scope with the owner and the consent event; an unrequested scope is privilege escalation: revoke the grant.",
	FalsePositives: []string{"A legitimate app upgrade asking for a new scope"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "an OAuth scope granted or used that the integration never had while learning", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// LearningPeriod after an integration's first event during which scopes
	// are learned silently.
	LearningPeriod time.Duration `yaml:"learning_period"`
	// SensitiveScopes are case-insensitive substrings; a new scope containing
	// one alerts with SensitiveSeverity, any other with Severity.
	SensitiveScopes   []string         `yaml:"sensitive_scopes"`
	SensitiveSeverity schemas.Severity `yaml:"sensitive_severity"`
	Severity          schemas.Severity `yaml:"severity"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{
		LearningPeriod:    7 * 24 * time.Hour,
		SensitiveScopes:   append([]string(nil), baseline.DefaultSensitiveScopes...),
		SensitiveSeverity: schemas.SeverityHigh,
		Severity:          schemas.SeverityMedium,
	}
}

// Detector is lifecycle.scope_expansion.
type Detector struct {
	cfg       Config
	sensitive baseline.SensitiveScopes
}

var _ detect.Detector = (*Detector)(nil)

// New builds the detector from config.
func New(decode func(any) error) (detect.Detector, error) {
	cfg := DefaultConfig()
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.LearningPeriod < 0 {
		return nil, fmt.Errorf("learning_period %s: must not be negative", cfg.LearningPeriod)
	}
	for k, sev := range map[string]schemas.Severity{"severity": cfg.Severity, "sensitive_severity": cfg.SensitiveSeverity} {
		if _, err := schemas.ParseSeverity(string(sev)); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	sensitive, err := baseline.NewSensitiveScopes(cfg.SensitiveScopes)
	if err != nil {
		return nil, err
	}
	return &Detector{cfg: cfg, sensitive: sensitive}, nil
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// State is what the detector remembers per integration.
type State struct {
	FirstSeen int64         `json:"first_seen"` // Unix ms
	Scopes    baseline.Seen `json:"scopes"`
	// Unapproved are scopes already reported as outside the catalog's
	// approved scopes, so each is reported once.
	Unapproved baseline.Seen `json:"unapproved,omitempty"`
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{Scopes: baseline.Seen{}} }

// Observe implements detect.Detector. When the integration's catalog entry
// lists approved scopes, that list is the baseline: a scope outside it alerts
// (even while learning), a scope on it never does. Otherwise the learned
// scopes are.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	t := ev.Time.Time
	if s.FirstSeen == 0 {
		s.FirstSeen = t.UnixMilli()
	}
	if s.Scopes == nil {
		s.Scopes = baseline.Seen{}
	}
	var approved []string
	if ev.Inventory != nil {
		approved = ev.Inventory.ApprovedScopes
	}
	learning := detect.SinceMilli(t, s.FirstSeen) < d.cfg.LearningPeriod
	var known []string
	var out []detect.Finding
	for _, scope := range ev.Scopes {
		scope = strings.TrimSpace(scope)
		if scope == "" {
			continue
		}
		isNew := !s.Scopes.Has(scope)
		if isNew {
			if known == nil {
				known = s.Scopes.Keys() // the baseline before this event
			}
			s.Scopes.Add(scope, t)
		}
		switch {
		case len(approved) > 0:
			if slices.Contains(approved, scope) || s.Unapproved.Has(scope) {
				continue
			}
			if s.Unapproved == nil {
				s.Unapproved = baseline.Seen{}
			}
			s.Unapproved.Add(scope, t)
			out = append(out, d.finding(ev, scope, "not_approved", len(known),
				map[string]any{"approved_scopes": approved, "since": schemas.UnixMilli(s.FirstSeen)}))
		case isNew && !learning:
			out = append(out, d.finding(ev, scope, "new", len(known),
				map[string]any{"scopes": known, "since": schemas.UnixMilli(s.FirstSeen)}))
		}
	}
	return out
}

// finding builds the alert for scope; reason is "new" (outside the learned
// baseline) or "not_approved" (outside the catalog's approved scopes).
func (d *Detector) finding(ev *schemas.Event, scope, reason string, nKnown int, base map[string]any) detect.Finding {
	t := ev.Time.Time
	sev, match := d.cfg.Severity, d.sensitive.Match(scope)
	if match != "" {
		sev = d.cfg.SensitiveSeverity
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	how, verb := "used", "used"
	if ev.Action.Category == schemas.CategoryAuthorize {
		how, verb = "granted", "was granted"
	}
	title := fmt.Sprintf("%s %s new scope %s", name, verb, scope)
	summary := fmt.Sprintf("%s (%s) %s scope %s (%s by %s); its %d known scopes did not include it.", name, ev.Integration.ID, verb, scope, ev.Action.Name, principal(ev), nKnown)
	if reason == "not_approved" {
		title = fmt.Sprintf("%s %s scope %s outside its approved scopes", name, verb, scope)
		summary = fmt.Sprintf("%s (%s) %s scope %s (%s by %s), which is not among the %d scopes its catalog entry approves.", name, ev.Integration.ID, verb, scope, ev.Action.Name, principal(ev), len(base["approved_scopes"].([]string)))
	}
	return detect.Finding{
		Key:      scope,
		Title:    title,
		Summary:  summary,
		Severity: sev,
		Observed: map[string]any{"scope": scope, "how": how, "reason": reason, "sensitive_match": match, "action": ev.Action.Name, "principal": ev.Principal.ID, "credential": ev.Credential.ID},
		Baseline: base,
		EventIDs: []string{ev.EventID}, FirstSeen: t, LastSeen: t,
	}
}

func principal(ev *schemas.Event) string {
	if ev.Principal.ID == "" {
		return "an unknown principal"
	}
	return ev.Principal.ID
}
