// Package sharedip implements chain.shared_ip: one source IP used by several
// distinct integrations within a window — an attacker holding several stolen
// tokens (the Salesloft-Drift campaign replayed many tenants' tokens from a
// handful of hosts) moving laterally across integrations.
//
// Integration-keyed partitions cannot see this: each integration's events
// live on their own partition. The detector therefore declares itself keyed
// by source IP (detect.BySourceIP): the detect program re-keys a compact
// record of each event by IP (once per integration, IP and hour) and runs
// this detector in a stage of its own, with state checkpointed and moved with
// partitions like every other detector.
package sharedip

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "chain.shared_ip"

func init() {
	detect.Register(detect.Spec{ID: ID, Summary: "one source IP acting as several distinct integrations within a window",
		New: func(decode func(any) error) (detect.Detector, error) { return New(decode) }, KeyedBy: detect.BySourceIP})
}

// Config is the detector's YAML config (detect.detectors."chain.shared_ip").
type Config struct {
	Window          time.Duration    `yaml:"window"`
	MinIntegrations int              `yaml:"min_integrations"`
	Severity        schemas.Severity `yaml:"severity"`
}

// DefaultConfig: three integrations from one IP within an hour.
func DefaultConfig() Config {
	return Config{Window: time.Hour, MinIntegrations: 3, Severity: schemas.SeverityHigh}
}

// Detector is chain.shared_ip.
type Detector struct{ cfg Config }

var _ detect.Detector = (*Detector)(nil)

// New builds the detector from config.
func New(decode func(any) error) (*Detector, error) {
	cfg := DefaultConfig()
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.Window <= 0 || cfg.MinIntegrations < 2 {
		return nil, fmt.Errorf("window must be positive and min_integrations at least 2 (got %s, %d)", cfg.Window, cfg.MinIntegrations)
	}
	if _, err := schemas.ParseSeverity(string(cfg.Severity)); err != nil {
		return nil, fmt.Errorf("severity: %w", err)
	}
	return &Detector{cfg: cfg}, nil
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

type seen struct {
	ID    string `json:"id"`
	Last  int64  `json:"t"` // Unix ms
	Event string `json:"e"`
}

// State is the integrations seen at one IP within the window.
type State struct {
	Seen  []seen `json:"seen,omitempty"`
	Fired int64  `json:"fired,omitempty"` // day (Unix days) of the last alert: one a day
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{} }

// Observe implements detect.Detector over records keyed by source IP: the
// record's Principal is the integration seen at the IP.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	t := ev.Time.UnixMilli()
	w := d.cfg.Window.Milliseconds()
	kept := s.Seen[:0]
	found := false
	for _, x := range s.Seen {
		if x.ID == ev.Principal.ID {
			if t > x.Last {
				x.Last, x.Event = t, ev.EventID
			}
			found = true
		}
		if t-x.Last <= w {
			kept = append(kept, x)
		}
	}
	s.Seen = kept
	if !found {
		s.Seen = append(s.Seen, seen{ID: ev.Principal.ID, Last: t, Event: ev.EventID})
	}
	day := t / (24 * time.Hour).Milliseconds()
	if len(s.Seen) < d.cfg.MinIntegrations || (s.Fired != 0 && s.Fired == day) {
		return nil
	}
	s.Fired = day
	sort.Slice(s.Seen, func(i, j int) bool { return s.Seen[i].Last < s.Seen[j].Last })
	ids, evs := make([]string, len(s.Seen)), make([]string, len(s.Seen))
	for i, x := range s.Seen {
		ids[i], evs[i] = x.ID, x.Event
	}
	ip := ev.Network.IP
	where := ""
	if g := ev.Geo; g != nil {
		where = fmt.Sprintf(" (%s, AS%d %s)", g.Country, g.ASN, g.ASOrg)
	}
	return []detect.Finding{{
		// One alert per IP and day: sightings reach this stage from every
		// events partition in no fixed order, so the triggering sighting's
		// exact time is not stable across runs, but its day is.
		Key:      time.UnixMilli(t).UTC().Format(time.DateOnly),
		Title:    fmt.Sprintf("%d integrations used from one IP %s within %s", len(ids), ip, d.cfg.Window),
		Summary:  fmt.Sprintf("IP %s%s acted as %s within %s: one host holding several integrations' tokens is how stolen tokens are replayed across a tenant.", ip, where, strings.Join(ids, ", "), d.cfg.Window),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"ip": ip, "integrations": ids},
		Baseline: map[string]any{"min_integrations": d.cfg.MinIntegrations, "window": d.cfg.Window.String()},
		EventIDs: evs, FirstSeen: time.UnixMilli(s.Seen[0].Last), LastSeen: time.UnixMilli(t),
	}}
}
