// Package newuseragent implements lifecycle.new_user_agent: an integration
// calling with a user-agent family (python-requests, curl, Go-http-client…)
// it never used during its learning period. An integration's client library
// rarely changes; a stolen token is usually replayed with the attacker's own
// tooling. Only the family counts, not the version, so library upgrades stay
// quiet (Elastic's GitHub PAT rules key on first user agent the same way).
package newuseragent

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "lifecycle.new_user_agent"

func init() {
	detect.Register(detect.Spec{ID: ID, Summary: "a user-agent family never seen for the integration after its learning period", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// LearningPeriod after an integration's first event during which
	// families are learned silently.
	LearningPeriod time.Duration `yaml:"learning_period"`
	// IgnoreFamilies never alert (normalised: lowercase product token).
	IgnoreFamilies []string         `yaml:"ignore_families"`
	Severity       schemas.Severity `yaml:"severity"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{LearningPeriod: 7 * 24 * time.Hour, Severity: schemas.SeverityMedium}
}

// Detector is lifecycle.new_user_agent.
type Detector struct {
	cfg    Config
	ignore map[string]bool
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
	if _, err := schemas.ParseSeverity(string(cfg.Severity)); err != nil {
		return nil, fmt.Errorf("severity: %w", err)
	}
	d := &Detector{cfg: cfg, ignore: map[string]bool{}}
	for _, f := range cfg.IgnoreFamilies {
		d.ignore[Family(f)] = true
	}
	return d, nil
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// maxFamilyLen bounds a family so junk user agents cannot bloat the state.
const maxFamilyLen = 64

// Family normalises a user agent to its first product token, lowercased:
// "python-requests/2.31.0" → "python-requests",
// "google-api-java-client/2.2.0 Google-HTTP-Java-Client/1.43.3 (gzip)" →
// "google-api-java-client". "" when there is none.
func Family(ua string) string {
	// The first whitespace-separated field, as strings.Fields would split
	// it, without building the slice of every field.
	i := strings.IndexFunc(ua, func(r rune) bool { return !unicode.IsSpace(r) })
	if i < 0 {
		return ""
	}
	first := ua[i:]
	if j := strings.IndexFunc(first, unicode.IsSpace); j >= 0 {
		first = first[:j]
	}
	p, _, _ := strings.Cut(first, "/")
	p = strings.ToLower(strings.Trim(p, `"';,()`))
	if len(p) > maxFamilyLen {
		p = p[:maxFamilyLen]
	}
	return p
}

// State is what the detector remembers per integration.
type State struct {
	FirstSeen int64         `json:"first_seen"` // Unix ms
	Families  baseline.Seen `json:"families"`
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{Families: baseline.Seen{}} }

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	t := ev.Time.Time
	if s.FirstSeen == 0 {
		s.FirstSeen = t.UnixMilli()
	}
	if s.Families == nil {
		s.Families = baseline.Seen{}
	}
	fam := Family(ev.Network.UserAgent)
	if fam == "" || s.Families.Has(fam) {
		return nil
	}
	known := s.Families.Keys()
	s.Families.Add(fam, t)
	if t.Sub(time.UnixMilli(s.FirstSeen)) < d.cfg.LearningPeriod || d.ignore[fam] {
		return nil
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	return []detect.Finding{{
		Key:      fam,
		Title:    fmt.Sprintf("%s called with new client %s", name, fam),
		Summary:  fmt.Sprintf("%s (%s) performed %s from %s with user agent %q; before it had used only %s.", name, ev.Integration.ID, ev.Action.Name, ev.Network.IP, ev.Network.UserAgent, strings.Join(known, ", ")),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"family": fam, "user_agent": ev.Network.UserAgent, "ip": ev.Network.IP, "action": ev.Action.Name, "credential": ev.Credential.ID},
		Baseline: map[string]any{"families": known, "since": schemas.UnixMilli(s.FirstSeen)},
		EventIDs: []string{ev.EventID}, FirstSeen: t, LastSeen: t,
	}}
}
