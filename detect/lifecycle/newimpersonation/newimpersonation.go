// Package newimpersonation implements lifecycle.new_impersonation: a service
// account acting as a user it never impersonated before, after its learning
// period. Domain-wide delegation (Google applicationInfo.impersonation) lets a
// service account act as any user of the domain; a backup or archiving robot
// works through the same users day after day, so its first use against a new
// one (the CFO's mailbox, an admin) is how a stolen service-account key shows.
package newimpersonation

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "lifecycle.new_impersonation"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1550.001", "T1078.004"},
	Runbook:        "Check why the service account now acts as this user (domain-wide delegation); an unexpected subject is abuse of delegation: remove the delegation or the key.",
	FalsePositives: []string{"A new user added to a legitimate delegated workflow"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "a service account impersonating a user it never impersonated before, after its learning period", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// LearningPeriod after an integration's first event during which
	// impersonated users are learned silently.
	LearningPeriod time.Duration `yaml:"learning_period"`
	// MaxUsers bounds the users remembered per integration; past it new users
	// are still alerted on but no longer learned (a robot impersonating the
	// whole domain would otherwise grow its state without bound).
	MaxUsers int              `yaml:"max_users"`
	Severity schemas.Severity `yaml:"severity"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{LearningPeriod: 7 * 24 * time.Hour, MaxUsers: 5000, Severity: schemas.SeverityHigh}
}

// Detector is lifecycle.new_impersonation.
type Detector struct{ cfg Config }

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
	if cfg.MaxUsers <= 0 {
		return nil, fmt.Errorf("max_users %d: must be positive", cfg.MaxUsers)
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
	FirstSeen int64         `json:"first_seen"` // Unix ms of the integration's first event
	Users     baseline.Seen `json:"users"`      // impersonated users, lowercased
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{Users: baseline.Seen{}} }

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	t := ev.Time.Time
	if s.FirstSeen == 0 {
		s.FirstSeen = t.UnixMilli()
	}
	if s.Users == nil {
		s.Users = baseline.Seen{}
	}
	if !ev.Impersonation {
		return nil // most events: no need to normalise the user
	}
	user := strings.ToLower(strings.TrimSpace(ev.Principal.ID))
	if user == "" || s.Users.Has(user) {
		return nil
	}
	known := s.Users.Keys()
	if len(s.Users) < d.cfg.MaxUsers {
		s.Users.Add(user, t)
	}
	if detect.SinceMilli(t, s.FirstSeen) < d.cfg.LearningPeriod {
		return nil
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	before := "no user"
	if len(known) > 0 {
		before = fmt.Sprintf("%d users", len(known))
	}
	return []detect.Finding{{
		Key:      user,
		Title:    fmt.Sprintf("%s impersonated %s for the first time", name, ev.Principal.ID),
		Summary:  fmt.Sprintf("%s (%s) acted as %s (%s) from %s; until now it had impersonated %s.", name, ev.Integration.ID, ev.Principal.ID, ev.Action.Name, ev.Network.IP, before),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"user": ev.Principal.ID, "action": ev.Action.Name, "target_app": ev.TargetApp, "ip": ev.Network.IP, "credential": ev.Credential.ID},
		Baseline: map[string]any{"users": known, "since": schemas.UnixMilli(s.FirstSeen)},
		EventIDs: []string{ev.EventID}, FirstSeen: t, LastSeen: t,
	}}
}
