// Package expired implements inventory.expired: an integration still acting
// after the expires_at its catalog entry gives. Approvals are granted for a
// time (a pilot, a contract, a project); a token that outlives its approval is
// an integration nobody re-reviewed, and a favourite of attackers because
// nobody watches it any more. It reads only ev.Inventory (set by
// enrich/inventory).
package expired

import (
	"fmt"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "inventory.expired"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1078.004"},
	Runbook:        "Either extend the catalog entry's expires_at with the owner, or revoke the credential it was meant to retire.",
	FalsePositives: []string{"An expiry date not updated after a renewal"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "an integration used after the expires_at of its catalog entry", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// Grace after expires_at during which use is tolerated (a renewal being
	// filed, clocks a little apart).
	Grace time.Duration `yaml:"grace"`
	// Severity of the alert; CriticalSeverity instead when the catalog rates
	// the integration high or critical.
	Severity         schemas.Severity `yaml:"severity"`
	CriticalSeverity schemas.Severity `yaml:"critical_severity"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{Severity: schemas.SeverityMedium, CriticalSeverity: schemas.SeverityHigh}
}

// Detector is inventory.expired.
type Detector struct{ cfg Config }

var _ detect.Detector = (*Detector)(nil)

// New builds the detector from config.
func New(decode func(any) error) (detect.Detector, error) {
	cfg := DefaultConfig()
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.Grace < 0 {
		return nil, fmt.Errorf("grace %s: must not be negative", cfg.Grace)
	}
	for k, sev := range map[string]schemas.Severity{"severity": cfg.Severity, "critical_severity": cfg.CriticalSeverity} {
		if _, err := schemas.ParseSeverity(string(sev)); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	return &Detector{cfg: cfg}, nil
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// State is the expiry last reported: each expiry alerts once, a renewed and
// again lapsed entry again.
type State = baseline.Lapse

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{} }

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	inv := ev.Inventory
	if inv == nil || !inv.Catalogued || inv.ExpiresAt == nil || !detect.Active(ev) {
		return nil
	}
	exp := inv.ExpiresAt.Time.UTC()
	t := ev.Time.Time
	if !s.Passed(exp, t, d.cfg.Grace) {
		return nil
	}
	sev := d.cfg.Severity
	if inv.Criticality == "high" || inv.Criticality == "critical" {
		sev = d.cfg.CriticalSeverity
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	owner := inv.Owner
	if owner == "" {
		owner = "nobody"
	}
	after := t.Sub(exp).Round(time.Minute)
	return []detect.Finding{{
		// One alert per integration and expiry.
		Key:      exp.Format("2006-01-02T15:04:05.000Z"),
		Title:    fmt.Sprintf("%s used after its approval expired on %s", name, exp.Format(time.DateOnly)),
		Summary:  fmt.Sprintf("%s (%s) performed %s (%s) via %s %s after the catalog's expires_at %s; owner %s should renew or revoke it.", name, ev.Integration.ID, ev.Action.Name, ev.Action.Category, ev.Source, after, exp.Format(time.RFC3339), owner),
		Severity: sev,
		Observed: map[string]any{"action": ev.Action.Name, "source": ev.Source, "credential": ev.Credential.ID, "principal": ev.Principal.ID, "ip": ev.Network.IP, "after": after.String()},
		Baseline: map[string]any{"expires_at": schemas.NewTime(exp), "owner": inv.Owner, "criticality": inv.Criticality, "grace": d.cfg.Grace.String()},
		EventIDs: []string{ev.EventID}, FirstSeen: t, LastSeen: t,
	}}
}
