// Package failureburst implements auth.failure_burst: many failed calls by one
// integration in a short sliding window. A stolen or guessed credential being
// tried against many endpoints, an attacker enumerating what a token may do,
// or a revoked token still being pushed all look like this (Key Vault and
// Okta detections sell the same signal).
package failureburst

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "auth.failure_burst"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1110"},
	Runbook:        "Check which credential failed and from where: a burst from an unfamiliar IP is guessing or a stolen secret being tried; rotate the secret if any call then succeeded.",
	FalsePositives: []string{"A deploy with a wrong or rotated secret retrying in a loop"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "many auth failures or failed calls by an integration within a short window", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// Threshold failures within Window alert.
	Threshold int              `yaml:"threshold"`
	Window    time.Duration    `yaml:"window"`
	Severity  schemas.Severity `yaml:"severity"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{Threshold: 20, Window: 10 * time.Minute, Severity: schemas.SeverityMedium}
}

// Detector is auth.failure_burst.
type Detector struct{ cfg Config }

var _ detect.Detector = (*Detector)(nil)

// maxThreshold bounds the state (it keeps Threshold failures).
const maxThreshold = 10000

// New builds the detector from config.
func New(decode func(any) error) (detect.Detector, error) {
	cfg := DefaultConfig()
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	switch {
	case cfg.Threshold < 2 || cfg.Threshold > maxThreshold:
		return nil, fmt.Errorf("threshold %d: must be between 2 and %d", cfg.Threshold, maxThreshold)
	case cfg.Window <= 0:
		return nil, fmt.Errorf("window %s: must be positive", cfg.Window)
	}
	if _, err := schemas.ParseSeverity(string(cfg.Severity)); err != nil {
		return nil, fmt.Errorf("severity: %w", err)
	}
	return &Detector{cfg: cfg}, nil
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// Failure is one remembered failed event.
type Failure struct {
	Time    int64  `json:"t"` // Unix ms
	EventID string `json:"id"`
	IP      string `json:"ip,omitempty"`
}

// State keeps the latest Threshold failures, oldest first: Threshold of them
// within Window is exactly "at least Threshold in a sliding window".
type State struct {
	Recent []Failure `json:"recent"`
	// FiredBucket is the window bucket (Unix ms) last alerted on.
	FiredBucket int64 `json:"fired_bucket,omitempty"`
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{} }

func failed(ev *schemas.Event) bool {
	return ev.Action.Category == schemas.CategoryAuthFailure || ev.Outcome == "failure"
}

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	if !failed(ev) {
		return nil
	}
	t := ev.Time.Time
	f := Failure{Time: t.UnixMilli(), EventID: ev.EventID, IP: ev.Network.IP}
	// Keep time order even for late events; ties keep arrival order.
	i := sort.Search(len(s.Recent), func(i int) bool { return s.Recent[i].Time > f.Time })
	s.Recent = append(s.Recent, Failure{})
	copy(s.Recent[i+1:], s.Recent[i:])
	s.Recent[i] = f
	if n := len(s.Recent) - d.cfg.Threshold; n > 0 {
		s.Recent = append(s.Recent[:0], s.Recent[n:]...)
	}
	if len(s.Recent) < d.cfg.Threshold {
		return nil
	}
	first, last := time.UnixMilli(s.Recent[0].Time).UTC(), time.UnixMilli(s.Recent[len(s.Recent)-1].Time).UTC()
	span := last.Sub(first)
	if span >= d.cfg.Window {
		return nil
	}
	bucket := last.Truncate(d.cfg.Window)
	if s.FiredBucket == bucket.UnixMilli() {
		return nil
	}
	s.FiredBucket = bucket.UnixMilli()
	ids := make([]string, len(s.Recent))
	ips := map[string]bool{}
	for i, r := range s.Recent {
		ids[i] = r.EventID
		if r.IP != "" {
			ips[r.IP] = true
		}
	}
	ipList := make([]string, 0, len(ips))
	for ip := range ips {
		ipList = append(ipList, ip)
	}
	sort.Strings(ipList)
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	return []detect.Finding{{
		Key:      bucket.Format("2006-01-02T15:04:05Z"),
		Title:    fmt.Sprintf("%s failed %d times in %s", name, len(s.Recent), span.Round(time.Second)),
		Summary:  fmt.Sprintf("%s (%s) had %d failed or unauthorized calls between %s and %s from %d IPs (threshold %d within %s).", name, ev.Integration.ID, len(s.Recent), first.Format(time.RFC3339), last.Format(time.RFC3339), len(ipList), d.cfg.Threshold, d.cfg.Window),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"failures": len(s.Recent), "span": span.String(), "ips": ipList, "window_bucket": schemas.NewTime(bucket)},
		Baseline: map[string]any{"threshold": d.cfg.Threshold, "window": d.cfg.Window.String()},
		EventIDs: ids, FirstSeen: first, LastSeen: last,
	}}
}
