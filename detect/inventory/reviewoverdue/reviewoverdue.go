// Package reviewoverdue implements inventory.review_overdue: an integration
// still in use while the periodic review its catalog entry asks for
// (reviewed_at + review_every) is overdue. It is hygiene, not compromise: the
// finding tells the owner to re-review access, once per review period, and
// weighs little in correlation. It reads only ev.Inventory (set by
// enrich/inventory) and judges by event time, so replays are deterministic.
package reviewoverdue

import (
	"fmt"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "inventory.review_overdue"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1078.004"}, // what an unreviewed grant leaves open: valid cloud accounts
	Runbook:        "Have the owner review the integration (who uses it, which scopes it holds against those it uses: tokenwatch inventory --scopes), then move the catalog entry's reviewed_at.",
	FalsePositives: []string{"A review done but reviewed_at not updated in the catalog"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "an integration used while its catalog entry's periodic review is overdue", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// Grace after the due date during which use is tolerated (the review
	// being done, the catalog change under way).
	Grace time.Duration `yaml:"grace"`
	// Severity of the alert. The engine then weighs it by the catalog's
	// criticality (schemas.AdjustSeverity): low stays low for a high
	// integration and becomes medium for a critical one, so hygiene stays
	// below the severities that page.
	Severity schemas.Severity `yaml:"severity"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{Severity: schemas.SeverityLow}
}

// Detector is inventory.review_overdue.
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
	if _, err := schemas.ParseSeverity(string(cfg.Severity)); err != nil {
		return nil, fmt.Errorf("severity: %w", err)
	}
	return &Detector{cfg: cfg}, nil
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// State is the review due date last reported: each review period alerts once.
type State = baseline.Lapse

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{} }

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	inv := ev.Inventory
	if inv == nil || !inv.Catalogued || inv.ReviewDueAt == nil || !detect.Active(ev) {
		return nil
	}
	due := inv.ReviewDueAt.Time.UTC()
	t := ev.Time.Time
	if !s.Passed(due, t, d.cfg.Grace) {
		return nil
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	owner := inv.Owner
	if owner == "" {
		owner = "nobody"
	}
	days := int(t.Sub(due).Hours() / 24)
	return []detect.Finding{{
		// One alert per integration and review period.
		Key:      due.Format("2006-01-02T15:04:05.000Z"),
		Title:    fmt.Sprintf("%s in use with its access review overdue since %s", name, due.Format(time.DateOnly)),
		Summary:  fmt.Sprintf("%s (%s) performed %s (%s) via %s %d day(s) after its catalog review was due (%s); owner %s should review its access and update reviewed_at.", name, ev.Integration.ID, ev.Action.Name, ev.Action.Category, ev.Source, days, due.Format(time.RFC3339), owner),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"action": ev.Action.Name, "source": ev.Source, "principal": ev.Principal.ID, "overdue_days": days},
		Baseline: map[string]any{"review_due_at": schemas.NewTime(due), "owner": inv.Owner, "criticality": inv.Criticality, "grace": d.cfg.Grace.String()},
		EventIDs: []string{ev.EventID}, FirstSeen: t, LastSeen: t,
	}}
}
