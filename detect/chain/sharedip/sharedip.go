// Package sharedip implements chain.shared_ip: one source IP used by several
// distinct integrations within a window — an attacker holding several stolen
// tokens (the Salesloft-Drift campaign replayed many tenants' tokens from a
// handful of hosts) moving laterally across integrations.
//
// Integration-keyed partitions cannot see this: each integration's events
// live on their own partition. The detect role therefore re-keys a compact
// sighting of each event by IP onto tokenwatch.ip_sightings (Sighting), and a
// second detect stage runs this detector over that topic, with state
// checkpointed and moved with partitions like every other detector. It is not
// in the registry, because it reads sightings, not events.
package sharedip

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "chain.shared_ip"

// KeyPrefix marks a sighting's Integration.ID: the partition key is the IP.
const KeyPrefix = "ip:"

// Config is the detector's YAML config (detect.detectors."chain.shared_ip").
type Config struct {
	Window          time.Duration    `yaml:"window"`
	MinIntegrations int              `yaml:"min_integrations"`
	Severity        schemas.Severity `yaml:"severity"`
	Enabled         *bool            `yaml:"enabled"`
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

// Enabled reports whether the config leaves the detector on.
func (d *Detector) Enabled() bool { return d.cfg.Enabled == nil || *d.cfg.Enabled }

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// Sighting is the re-keyed copy of ev that the IP stage reads: Integration.ID
// is the IP (so the IP is the partition key and the state key), Principal is
// the integration seen there. ok is false for events without an IP.
func Sighting(ev *schemas.Event) (schemas.Event, bool) {
	if ev.Network.IP == "" || ev.Integration.ID == "" {
		return schemas.Event{}, false
	}
	return schemas.Event{
		EventID: ev.EventID, Source: ev.Source, Tenant: ev.Tenant, Time: ev.Time,
		Integration: schemas.Integration{ID: KeyPrefix + ev.Network.IP},
		Principal:   schemas.Principal{ID: ev.Integration.ID, Type: "integration"},
		Action:      ev.Action, Network: schemas.Network{IP: ev.Network.IP}, Geo: ev.Geo,
	}, true
}

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

// Observe implements detect.Detector over sightings.
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

// FromConfig builds the detector from the detect.detectors map (its entry is
// optional) and returns the map without it, for engine.Build.
func FromConfig(all map[string]yaml.Node) (*Detector, map[string]yaml.Node, error) {
	node, has := all[ID]
	rest := make(map[string]yaml.Node, len(all))
	for k, v := range all {
		if k != ID {
			rest[k] = v
		}
	}
	d, err := New(func(v any) error {
		if !has {
			return nil
		}
		return node.Decode(v)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("detectors.%s: %w", ID, err)
	}
	return d, rest, nil
}

// Sighter re-keys events by IP once per integration, IP and hour: the IP
// stage only needs to know an integration was there, not every call it made.
// Its memory is bounded; after a reset or a restart a sighting may come again,
// which the detector's set of integrations absorbs.
type Sighter struct{ seen map[string]struct{} }

// Sight returns the sighting to publish for ev, if any.
func (s *Sighter) Sight(ev *schemas.Event) (schemas.Event, bool) {
	sg, ok := Sighting(ev)
	if !ok {
		return sg, false
	}
	k := ev.Integration.ID + "|" + ev.Network.IP + "|" + ev.Time.UTC().Format("2006010215")
	if s.seen == nil || len(s.seen) > 100_000 {
		s.seen = map[string]struct{}{}
	}
	if _, dup := s.seen[k]; dup {
		return sg, false
	}
	s.seen[k] = struct{}{}
	return sg, true
}
