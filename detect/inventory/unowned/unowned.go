// Package unowned implements inventory.unowned: an integration acting while
// nobody owns it in the catalog, either because it is not catalogued at all or
// because its entry names no owner. Unowned integrations are where abuse hides:
// nobody notices their tokens leaking, nobody rotates or revokes them, and
// shadow-IT apps consented by one user land here first. It reads only
// ev.Inventory (set by enrich/inventory); without a catalog configured events
// carry no Inventory and the detector stays silent.
package unowned

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "inventory.unowned"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1078.004"},
	Runbook:        "Find an owner and catalog the integration; an integration nobody claims is a candidate for revocation.",
	FalsePositives: []string{"A new integration not yet catalogued"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "an active integration with no owner in the catalog (uncatalogued, or catalogued without owner)", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// SensitiveScopes are case-insensitive substrings; an unowned integration
	// holding a matching scope (on the event or approved in the catalog)
	// alerts with SensitiveSeverity.
	SensitiveScopes   []string         `yaml:"sensitive_scopes"`
	SensitiveSeverity schemas.Severity `yaml:"sensitive_severity"`
	Severity          schemas.Severity `yaml:"severity"`
}

// DefaultConfig is used for fields the YAML leaves out. The sensitive scopes
// match lifecycle.scope_expansion's.
func DefaultConfig() Config {
	return Config{
		SensitiveScopes:   append([]string(nil), baseline.DefaultSensitiveScopes...),
		SensitiveSeverity: schemas.SeverityHigh,
		Severity:          schemas.SeverityMedium,
	}
}

// Detector is inventory.unowned.
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

// State remembers whether the integration was reported: once is enough, the
// fix is an owner in the catalog, not more alerts.
type State struct {
	Reported bool `json:"reported,omitempty"`
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{} }

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	inv := ev.Inventory
	if s.Reported || inv == nil || (inv.Catalogued && strings.TrimSpace(inv.Owner) != "") || !detect.Active(ev) {
		return nil
	}
	s.Reported = true
	sev, scope, match := d.cfg.Severity, "", ""
	for _, list := range [][]string{ev.Scopes, inv.ApprovedScopes} {
		if scope, match = d.sensitive.First(list); match != "" {
			sev = d.cfg.SensitiveSeverity
			break
		}
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	why, reason := "is not in the integration catalog", "uncatalogued"
	if inv.Catalogued {
		why, reason = "has no owner in the integration catalog", "no_owner"
	}
	summary := fmt.Sprintf("%s (%s, %s app %s) %s but performed %s (%s) as %s from %s.", name, ev.Integration.ID, ev.Source, ev.Integration.SourceAppID, why, ev.Action.Name, ev.Action.Category, principal(ev), ev.Network.IP)
	if match != "" {
		summary += fmt.Sprintf(" It holds the sensitive scope %s.", scope)
	}
	return []detect.Finding{{
		Key:      "unowned",
		Title:    fmt.Sprintf("%s is active but %s", name, why),
		Summary:  summary,
		Severity: sev,
		Observed: map[string]any{"reason": reason, "source": ev.Source, "source_app_id": ev.Integration.SourceAppID,
			"action": ev.Action.Name, "principal": ev.Principal.ID, "ip": ev.Network.IP, "scopes": ev.Scopes, "sensitive_scope": scope},
		Baseline: map[string]any{"catalogued": inv.Catalogued, "owner": inv.Owner, "criticality": inv.Criticality},
		EventIDs: []string{ev.EventID}, FirstSeen: ev.Time.Time, LastSeen: ev.Time.Time,
	}}
}

func principal(ev *schemas.Event) string {
	if ev.Principal.ID == "" {
		return "an unknown principal"
	}
	return ev.Principal.ID
}
