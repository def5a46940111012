// Package newasn implements geo.new_asn: activity by an integration from a
// network (autonomous system) it was never seen on once its learning period is
// over. Integrations run from a handful of stable networks (the vendor's cloud,
// the customer's egress); a token replayed from attacker infrastructure
// usually arrives from a new ASN even when the country is the same, which is
// why this complements geo.new_country (Datadog's post-Drift Salesforce rule).
package newasn

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "geo.new_asn"

func init() {
	detect.Register(detect.Spec{ID: ID, Summary: "activity from a network (ASN) never seen for the integration after its learning period", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// LearningPeriod after an integration's first event during which new
	// ASNs are learned silently.
	LearningPeriod time.Duration `yaml:"learning_period"`
	// ApprovedASNs never alert, for every integration (the company's egress).
	ApprovedASNs []uint32         `yaml:"approved_asns"`
	Severity     schemas.Severity `yaml:"severity"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{LearningPeriod: 7 * 24 * time.Hour, Severity: schemas.SeverityMedium}
}

// Detector is geo.new_asn.
type Detector struct {
	cfg      Config
	approved map[uint32]bool
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
	d := &Detector{cfg: cfg, approved: map[uint32]bool{}}
	for _, a := range cfg.ApprovedASNs {
		d.approved[a] = true
	}
	return d, nil
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// State is what the detector remembers per integration.
type State struct {
	FirstSeen int64         `json:"first_seen"` // Unix ms of the first event
	ASNs      baseline.Seen `json:"asns"`       // "AS<n>" → first seen
	// Orgs names each ASN for the alert's baseline.
	Orgs baseline.SmallMap[string] `json:"orgs,omitempty"`
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State {
	return &State{ASNs: baseline.Seen{}} // Orgs is made on first use
}

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	t := ev.Time.Time
	if s.FirstSeen == 0 {
		s.FirstSeen = t.UnixMilli()
	}
	if ev.Geo == nil || ev.Geo.ASN == 0 {
		return nil
	}
	var buf [16]byte
	key := strconv.AppendUint(append(buf[:0], "AS"...), uint64(ev.Geo.ASN), 10)
	if s.ASNs.Has(string(key)) { // a short non-escaping conversion: no allocation
		return nil
	}
	asn := string(key)
	known := []string{}
	for _, k := range s.ASNs.Keys() {
		org, _ := s.Orgs.Get(k)
		known = append(known, label(k, org))
	}
	s.ASNs.Add(asn, t)
	if ev.Geo.ASOrg != "" {
		s.Orgs.Set(asn, ev.Geo.ASOrg)
	}
	learning := t.Sub(time.UnixMilli(s.FirstSeen)) < d.cfg.LearningPeriod
	if learning || d.approved[ev.Geo.ASN] {
		return nil
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	return []detect.Finding{{
		Key:      asn,
		Title:    fmt.Sprintf("%s used from new network %s", name, label(asn, ev.Geo.ASOrg)),
		Summary:  fmt.Sprintf("%s (%s) acted from %s (IP %s, %s); in %.0f days of history it had used only %d other networks.", name, ev.Integration.ID, label(asn, ev.Geo.ASOrg), ev.Network.IP, ev.Geo.Country, t.Sub(time.UnixMilli(s.FirstSeen)).Hours()/24, len(known)),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"asn": ev.Geo.ASN, "as_org": ev.Geo.ASOrg, "ip": ev.Network.IP, "country": ev.Geo.Country, "action": ev.Action.Name},
		Baseline: map[string]any{"asns": known, "since": schemas.UnixMilli(s.FirstSeen)},
		EventIDs: []string{ev.EventID}, FirstSeen: t, LastSeen: t,
	}}
}

func label(asn, org string) string {
	if org == "" {
		return asn
	}
	return asn + " " + org
}
