// Package tokenage implements lifecycle.token_age: a token used far beyond
// the time it was issued. Access tokens live about an hour (Entra issues them
// for 60-90 minutes; continuous-access-evaluation tokens up to 28 hours), so a
// request whose token was issued much longer before it (Graph activity logs'
// TokenIssuedAt) is a token kept and replayed, the shape of a stolen token
// used from elsewhere. Only event time counts: age is ev.Time minus
// ev.TokenIssuedAt.
package tokenage

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "lifecycle.token_age"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1550.001", "T1528"},
	Runbook:        "A token used long after issue was kept somewhere: find where, revoke it and shorten its lifetime.",
	FalsePositives: []string{"Long-lived tokens issued by design (check max_age)"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "a token used far beyond its issue time (token_issued_at older than max_age): a kept or stolen token replayed", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// MaxAge is the oldest a token may be at use before it alerts.
	MaxAge   time.Duration    `yaml:"max_age"`
	Severity schemas.Severity `yaml:"severity"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{MaxAge: 24 * time.Hour, Severity: schemas.SeverityHigh}
}

// Detector is lifecycle.token_age.
type Detector struct{ cfg Config }

var _ detect.Detector = (*Detector)(nil)

// New builds the detector from config.
func New(decode func(any) error) (detect.Detector, error) {
	cfg := DefaultConfig()
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.MaxAge <= 0 {
		return nil, fmt.Errorf("max_age %s: must be positive", cfg.MaxAge)
	}
	if _, err := schemas.ParseSeverity(string(cfg.Severity)); err != nil {
		return nil, fmt.Errorf("severity: %w", err)
	}
	return &Detector{cfg: cfg}, nil
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// State is empty: each event carries its token's issue time.
type State struct{}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) { return []byte("{}"), nil }

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, &struct{}{}) }

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{} }

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, _ detect.State) []detect.Finding {
	if ev.TokenIssuedAt == nil || ev.TokenIssuedAt.IsZero() {
		return nil
	}
	t, issued := ev.Time.Time, ev.TokenIssuedAt.Time
	age := t.Sub(issued)
	if age <= d.cfg.MaxAge {
		return nil
	}
	// One alert per token: the credential id names it where the source has
	// one (Graph: the sign-in that issued it), else its issue instant.
	key := ev.Credential.ID
	if key == "" {
		key = "issued:" + strconv.FormatInt(issued.UnixMilli(), 10)
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	hours := float64(int(age.Hours()*10)) / 10
	return []detect.Finding{{
		Key:      key,
		Title:    fmt.Sprintf("%s used a token %.1f hours after it was issued", name, hours),
		Summary:  fmt.Sprintf("%s (%s) performed %s from %s with a token issued %s, %s before the request (max %s): a token kept past its lifetime is usually a copied one being replayed.", name, ev.Integration.ID, ev.Action.Name, ev.Network.IP, issued.Format(time.RFC3339), age.Round(time.Second), d.cfg.MaxAge),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"credential": ev.Credential.ID, "token_issued_at": issued.Format(time.RFC3339), "age_hours": hours, "action": ev.Action.Name, "ip": ev.Network.IP, "user_agent": ev.Network.UserAgent, "principal": ev.Principal.ID},
		Baseline: map[string]any{"max_age": d.cfg.MaxAge.String()},
		EventIDs: []string{ev.EventID}, FirstSeen: t, LastSeen: t,
	}}
}
