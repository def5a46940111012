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
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "chain.shared_ip"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1078.004", "T1550.001"},
	Runbook:        "List the integrations seen from the IP; distinct owners' identities from one address suggest one actor holding many stolen tokens: revoke them all and block the IP.",
	FalsePositives: []string{"A shared NAT egress of one company running several integrations"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "one source IP acting as several distinct integrations within a window",
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
	T     int64  `json:"t"` // Unix ms of its earliest record in the bucket
	Event string `json:"e"`
}

// bucket is the integrations seen at the IP within one window-wide slot of
// the clock.
type bucket struct {
	Start int64  `json:"h"` // Unix ms, a multiple of the window
	Seen  []seen `json:"s"`
}

// State is the integrations seen at one IP, in aligned window-wide buckets,
// and the days already alerted.
//
// Records reach this stage from every events partition in no fixed order, so
// nothing here depends on arrival order: an integration's place in a bucket
// is its earliest record there, and "several integrations within a window"
// is decided over a bucket and its neighbour, whichever record arrived last.
// A replay (time order) and the live stage (any interleaving within the
// retention) therefore raise the same alert ids.
type State struct {
	Buckets []bucket `json:"b,omitempty"`
	Max     int64    `json:"max,omitempty"`   // latest record time, Unix ms
	Fired   []int64  `json:"fired,omitempty"` // Unix days alerted, recent ones
}

// retention is how far behind the latest record a late one still counts.
const retention = 48 * time.Hour

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
	keep := max(retention.Milliseconds(), 2*w)
	if t > s.Max {
		s.Max = t
	}
	if t < s.Max-keep {
		return nil // too late to count
	}
	kept := s.Buckets[:0]
	for _, b := range s.Buckets {
		if b.Start+w >= s.Max-keep {
			kept = append(kept, b)
		}
	}
	s.Buckets = kept
	start := t - t%w
	b := s.bucket(start)
	b.add(seen{ID: ev.Principal.ID, T: t, Event: ev.EventID})
	// The new record may complete the window with the bucket before it or
	// the one after it (a late record).
	var out []detect.Finding
	for _, later := range []int64{start, start + w} {
		// Counted before the union is built: most records complete nothing.
		if s.distinct(later-w, later) < d.cfg.MinIntegrations {
			continue
		}
		day := later / (24 * time.Hour).Milliseconds()
		if slices.Contains(s.Fired, day) {
			continue
		}
		s.Fired = append(s.Fired, day)
		out = append(out, d.finding(ev, s.union(later-w, later), later))
	}
	s.pruneFired()
	return out
}

// bucket returns the bucket starting at start, adding it in order.
func (s *State) bucket(start int64) *bucket {
	i, found := slices.BinarySearchFunc(s.Buckets, start, func(b bucket, t int64) int { return cmp.Compare(b.Start, t) })
	if !found {
		s.Buckets = slices.Insert(s.Buckets, i, bucket{Start: start})
	}
	return &s.Buckets[i]
}

// add records x unless the bucket holds an earlier record of its integration.
func (b *bucket) add(x seen) {
	for i := range b.Seen {
		if b.Seen[i].ID == x.ID {
			if x.T < b.Seen[i].T || (x.T == b.Seen[i].T && x.Event < b.Seen[i].Event) {
				b.Seen[i] = x
			}
			return
		}
	}
	b.Seen = append(b.Seen, x)
}

// distinct is how many integrations the buckets starting at a and b hold
// (len of union), counted without building it.
func (s *State) distinct(a, b int64) int {
	ba, bb := s.seenAt(a), s.seenAt(b)
	all := [2][]seen{ba, bb}
	n := 0
	for k, list := range all {
		for i, x := range list {
			same := func(y seen) bool { return y.ID == x.ID }
			if !slices.ContainsFunc(list[:i], same) && (k == 0 || !slices.ContainsFunc(ba, same)) {
				n++
			}
		}
	}
	return n
}

// seenAt is the bucket starting at start's integrations (nil without one).
// The buckets are in order of start (bucket) and a record's are nearly
// always the newest, so it looks from the end and stops at an older one
// rather than scanning the retention's dozens of buckets.
func (s *State) seenAt(start int64) []seen {
	for i := len(s.Buckets) - 1; i >= 0; i-- {
		switch b := &s.Buckets[i]; {
		case b.Start == start:
			return b.Seen
		case b.Start < start:
			return nil
		}
	}
	return nil
}

// union is the integrations of the buckets starting at a and b, each at its
// earliest record, oldest first.
func (s *State) union(a, b int64) []seen {
	var out []seen
	for _, bk := range s.Buckets {
		if bk.Start != a && bk.Start != b {
			continue
		}
		for _, x := range bk.Seen {
			i := slices.IndexFunc(out, func(y seen) bool { return y.ID == x.ID })
			switch {
			case i < 0:
				out = append(out, x)
			case x.T < out[i].T:
				out[i] = x
			}
		}
	}
	slices.SortFunc(out, func(x, y seen) int {
		if c := cmp.Compare(x.T, y.T); c != 0 {
			return c
		}
		return cmp.Compare(x.ID, y.ID)
	})
	return out
}

// pruneFired forgets alerted days that no record within the retention can
// reach again.
func (s *State) pruneFired() {
	oldest := (s.Max - 2*retention.Milliseconds()) / (24 * time.Hour).Milliseconds()
	keep := s.Fired[:0]
	for _, d := range s.Fired {
		if d >= oldest {
			keep = append(keep, d)
		}
	}
	s.Fired = keep
}

func (d *Detector) finding(ev *schemas.Event, in []seen, later int64) detect.Finding {
	ids, evs := make([]string, len(in)), make([]string, len(in))
	for i, x := range in {
		ids[i], evs[i] = x.ID, x.Event
	}
	ip := ev.Network.IP
	where := ""
	if g := ev.Geo; g != nil {
		where = fmt.Sprintf(" (%s, AS%d %s)", g.Country, g.ASN, g.ASOrg)
	}
	return detect.Finding{
		// One alert per IP and day (the day of the later bucket of the pair):
		// stable whichever record completed the window.
		Key:      time.UnixMilli(later).UTC().Format(time.DateOnly),
		Title:    fmt.Sprintf("%d integrations used from one IP %s within %s", len(ids), ip, 2*d.cfg.Window),
		Summary:  fmt.Sprintf("IP %s%s acted as %s within %s: one host holding several integrations' tokens is how stolen tokens are replayed across a tenant.", ip, where, strings.Join(ids, ", "), 2*d.cfg.Window),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"ip": ip, "integrations": ids},
		Baseline: map[string]any{"min_integrations": d.cfg.MinIntegrations, "window": d.cfg.Window.String()},
		EventIDs: evs, FirstSeen: time.UnixMilli(in[0].T), LastSeen: time.UnixMilli(in[len(in)-1].T),
	}
}
