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
	"unicode"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "lifecycle.new_user_agent"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1550.001"},
	Runbook:        "A new client family for a machine identity is often a token replayed from an attacker's tooling: compare with the integration's release history.",
	FalsePositives: []string{"A library or SDK upgrade changing the user-agent"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "a user-agent family never seen for the integration after its learning period", New: New})
}

// Config is lifecycle.new_user_agent's YAML config: learning_period and severity
// (baseline.FirstSeenConfig), and the families that never alert.
type Config struct {
	baseline.FirstSeenConfig `yaml:",inline"`
	// IgnoreFamilies never alert (normalised: lowercase product token).
	IgnoreFamilies []string `yaml:"ignore_families"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{FirstSeenConfig: baseline.FirstSeenDefaults(schemas.SeverityMedium)}
}

// Detector is lifecycle.new_user_agent.
type Detector struct {
	cfg    Config
	ignore map[string]bool
}

var _ detect.Detector = (*Detector)(nil)

// New builds the detector from config.
func New(decode func(any) error) (detect.Detector, error) {
	return baseline.NewFirstSeen(decode, DefaultConfig(), func(cfg Config) detect.Detector {
		return &Detector{cfg: cfg, ignore: baseline.SetOf(cfg.IgnoreFamilies, Family)}
	})
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
	fam := Family(ev.Network.UserAgent)
	seen := d.cfg.Rule().Observe(&s.FirstSeen, &s.Families, fam, t)
	if !seen.News || d.ignore[fam] {
		return nil
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	return []detect.Finding{{
		Key:      fam,
		Title:    fmt.Sprintf("%s called with new client %s", name, fam),
		Summary:  fmt.Sprintf("%s (%s) performed %s from %s with user agent %q; before it had used only %s.", name, ev.Integration.ID, ev.Action.Name, ev.Network.IP, ev.Network.UserAgent, strings.Join(seen.Known, ", ")),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"family": fam, "user_agent": ev.Network.UserAgent, "ip": ev.Network.IP, "action": ev.Action.Name, "credential": ev.Credential.ID},
		Baseline: map[string]any{"families": seen.Known, "since": schemas.UnixMilli(s.FirstSeen)},
		EventIDs: []string{ev.EventID}, FirstSeen: t, LastSeen: t,
	}}
}
