// Package dormant implements lifecycle.dormant_reactivation: the first
// activity of an integration after a long silence. Forgotten integrations keep
// valid tokens; an attacker who finds one (in an old repo, a departed
// employee's laptop) wakes it up. Microsoft's app governance pairs dormancy
// with first use as one signal for the same reason.
package dormant

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "lifecycle.dormant_reactivation"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1078.004"},
	Runbook:        "A silent integration waking up may be a forgotten credential found by someone else: confirm with the owner or revoke it.",
	FalsePositives: []string{"A seasonal job (quarterly, yearly)"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "first activity of an integration after a long silence", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// DormantAfter is the silence that makes an integration dormant.
	DormantAfter time.Duration    `yaml:"dormant_after"`
	Severity     schemas.Severity `yaml:"severity"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{DormantAfter: 30 * 24 * time.Hour, Severity: schemas.SeverityMedium}
}

// Detector is lifecycle.dormant_reactivation.
type Detector struct{ cfg Config }

var _ detect.Detector = (*Detector)(nil)

// New builds the detector from config.
func New(decode func(any) error) (detect.Detector, error) {
	cfg := DefaultConfig()
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.DormantAfter <= 0 {
		return nil, fmt.Errorf("dormant_after %s: must be positive", cfg.DormantAfter)
	}
	if _, err := schemas.ParseSeverity(string(cfg.Severity)); err != nil {
		return nil, fmt.Errorf("severity: %w", err)
	}
	return &Detector{cfg: cfg}, nil
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// State is what the detector remembers per integration.
type State struct {
	FirstSeen   int64  `json:"first_seen"` // Unix ms
	LastSeen    int64  `json:"last_seen"`  // Unix ms of the latest event
	LastEventID string `json:"last_event_id,omitempty"`
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
	t := ev.Time.Time
	if s.FirstSeen == 0 {
		s.FirstSeen, s.LastSeen, s.LastEventID = t.UnixMilli(), t.UnixMilli(), ev.EventID
		return nil
	}
	// A late event is not news: only time moving past the latest event counts.
	if t.UnixMilli() <= s.LastSeen {
		return nil
	}
	last, prevID := s.LastSeen, s.LastEventID
	s.LastSeen, s.LastEventID = t.UnixMilli(), ev.EventID
	silence := detect.SinceMilli(t, last)
	if silence < d.cfg.DormantAfter {
		return nil
	}
	prev := time.UnixMilli(last).UTC()
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	days := silence.Hours() / 24
	return []detect.Finding{{
		// The wake-up event's time: each reactivation is its own alert.
		Key:      t.UTC().Format("2006-01-02T15:04:05.000Z"),
		Title:    fmt.Sprintf("%s active again after %.0f days dormant", name, days),
		Summary:  fmt.Sprintf("%s (%s) performed %s (%s) from %s after %.0f days without activity (last seen %s).", name, ev.Integration.ID, ev.Action.Name, ev.Action.Category, ev.Network.IP, days, prev.Format(time.RFC3339)),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"action": ev.Action.Name, "category": ev.Action.Category, "ip": ev.Network.IP, "credential": ev.Credential.ID, "principal": ev.Principal.ID, "silent_days": float64(int(days*10)) / 10},
		Baseline: map[string]any{"last_seen": schemas.NewTime(prev), "last_event_id": prevID, "first_seen": schemas.UnixMilli(s.FirstSeen), "dormant_after": d.cfg.DormantAfter.String()},
		EventIDs: []string{ev.EventID}, FirstSeen: t, LastSeen: t,
	}}
}
