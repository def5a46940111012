// Package distinctspike implements volume.distinct_spike: an integration
// touching far more distinct resources, principals or source IPs in one hour
// than its own baseline for that hour of day. Bulk exfiltration with a stolen
// token walks many objects (mailboxes, repos, tables) at a normal event rate,
// which volume.spike misses; distinct counts catch it. Counts are HyperLogLog
// sketches (exact small sets while an hour has few distinct values) so the
// state stays small however busy the integration is.
package distinctspike

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/axiomhq/hyperloglog"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "volume.distinct_spike"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1530", "T1087.004", "T1619"},
	Runbook:        "Many distinct resources, principals or IPs in an hour is enumeration or scraping: check the listed resources, revoke the token if it is not a planned job.",
	FalsePositives: []string{"A planned re-index or a directory sync"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "distinct resources, principals or IPs in an hour far above the integration's hour-of-day baseline", New: New})
}

// Dimensions the detector can count.
const (
	DimResource  = "resource"
	DimPrincipal = "principal"
	DimIP        = "ip"
)

// Config is the detector's YAML config.
type Config struct {
	// LearningPeriod of history before the detector may fire.
	LearningPeriod time.Duration `yaml:"learning_period"`
	// Dimensions to count: resource, principal, ip.
	Dimensions []string `yaml:"dimensions"`
	// Sigmas above the hour's mean, and Ratio times the mean, must both be
	// exceeded, and MinDistinct too, so quiet integrations do not alert on noise.
	Sigmas      float64          `yaml:"sigmas"`
	Ratio       float64          `yaml:"ratio"`
	MinDistinct uint64           `yaml:"min_distinct"`
	Severity    schemas.Severity `yaml:"severity"`
	// MaxEvidence caps the event ids carried in an alert.
	MaxEvidence int `yaml:"max_evidence"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{LearningPeriod: 7 * 24 * time.Hour, Dimensions: []string{DimResource, DimPrincipal, DimIP},
		Sigmas: 4, Ratio: 4, MinDistinct: 50, Severity: schemas.SeverityHigh, MaxEvidence: 20}
}

// Detector is volume.distinct_spike.
type Detector struct{ cfg Config }

var _ detect.Detector = (*Detector)(nil)

// New builds the detector from config.
func New(decode func(any) error) (detect.Detector, error) {
	cfg := DefaultConfig()
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	switch {
	case cfg.LearningPeriod < 0:
		return nil, fmt.Errorf("learning_period %s: must not be negative", cfg.LearningPeriod)
	case len(cfg.Dimensions) == 0:
		return nil, fmt.Errorf("dimensions: need at least one of %s, %s, %s", DimResource, DimPrincipal, DimIP)
	case cfg.Sigmas <= 0 || cfg.Ratio <= 0:
		return nil, fmt.Errorf("sigmas and ratio must be positive (got %g, %g)", cfg.Sigmas, cfg.Ratio)
	case cfg.MinDistinct < 1:
		return nil, fmt.Errorf("min_distinct must be at least 1")
	case cfg.MaxEvidence < 1:
		return nil, fmt.Errorf("max_evidence must be at least 1")
	}
	seen := map[string]bool{}
	for _, dim := range cfg.Dimensions {
		if dim != DimResource && dim != DimPrincipal && dim != DimIP {
			return nil, fmt.Errorf("dimensions: unknown %q (want %s, %s or %s)", dim, DimResource, DimPrincipal, DimIP)
		}
		if seen[dim] {
			return nil, fmt.Errorf("dimensions: %q listed twice", dim)
		}
		seen[dim] = true
	}
	if _, err := schemas.ParseSeverity(string(cfg.Severity)); err != nil {
		return nil, fmt.Errorf("severity: %w", err)
	}
	return &Detector{cfg: cfg}, nil
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// State is the per-integration memory: the open hour's counters and the
// seasonal profile of each dimension's hourly distinct count.
type State struct {
	FirstSeen int64           `json:"first_seen"` // Unix ms
	Hour      int64           `json:"hour"`       // open hour, Unix hours
	Events    int64           `json:"events"`     // in the open hour
	First     int64           `json:"first,omitempty"`
	Evidence  []string        `json:"evidence,omitempty"`
	Fired     map[string]bool `json:"fired,omitempty"`
	Profiles  Profiles        `json:"profiles"`
	// Counts count the open hour's distinct values per dimension, indexed
	// by dimIndex; they marshal through their own form (see MarshalBinary).
	Counts [3]counter `json:"-"`
}

// Estimate is the open hour's distinct count of dim.
func (s *State) Estimate(dim string) uint64 { return s.Counts[dimIndex(dim)].estimate() }

var dimNames = [3]string{DimResource, DimPrincipal, DimIP}

func dimIndex(dim string) int {
	switch dim {
	case DimResource:
		return 0
	case DimPrincipal:
		return 1
	}
	return 2
}

// wire is the state's JSON: dimensions counted by a sketch under sketches
// (the sketch's binary form, the only form before the small counters), those
// still counted exactly under small.
type wire struct {
	*State
	Sketches map[string][]byte          `json:"sketches"`
	Small    map[string]json.RawMessage `json:"small,omitempty"`
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) {
	w := wire{State: s, Sketches: map[string][]byte{}}
	for i := range s.Counts {
		c := &s.Counts[i]
		dim := dimNames[i]
		switch {
		case c.sk != nil:
			b, err := c.sk.MarshalBinary()
			if err != nil {
				return nil, fmt.Errorf("sketch %s: %w", dim, err)
			}
			w.Sketches[dim] = b
		case c.n > 0:
			b, err := c.marshalSmall()
			if err != nil {
				return nil, fmt.Errorf("counter %s: %w", dim, err)
			}
			if w.Small == nil {
				w.Small = map[string]json.RawMessage{}
			}
			w.Small[dim] = b
		}
	}
	return json.Marshal(w)
}

// UnmarshalBinary implements detect.State. It reads states written before
// the small counters too (sketches only).
func (s *State) UnmarshalBinary(b []byte) error {
	w := wire{State: s}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	s.Counts = [3]counter{}
	for dim, raw := range w.Sketches {
		if dim != DimResource && dim != DimPrincipal && dim != DimIP {
			continue // not a dimension this detector counts
		}
		sk := hyperloglog.New()
		if err := sk.UnmarshalBinary(raw); err != nil {
			return fmt.Errorf("sketch %s: %w", dim, err)
		}
		s.Counts[dimIndex(dim)].sk = sk
	}
	for dim, raw := range w.Small {
		if dim != DimResource && dim != DimPrincipal && dim != DimIP {
			continue
		}
		c := &s.Counts[dimIndex(dim)]
		if c.sk != nil {
			return fmt.Errorf("counter %s: both a sketch and a small counter", dim)
		}
		if err := c.unmarshalSmall(raw); err != nil {
			return fmt.Errorf("counter %s: %w", dim, err)
		}
	}
	return nil
}

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State {
	// Fired is made on first use: a quiet hour needs none.
	return &State{}
}

// maxGapHours bounds the zero-filling after a silence, as in volume.spike.
const maxGapHours = 7 * 24

// value is ev's value of dim (empty when it has none), built in buf only
// when it joins two fields; otherwise the field's own bytes, which are only
// hashed, never kept or written.
func value(buf []byte, ev *schemas.Event, dim string) []byte {
	switch dim {
	case DimResource:
		if ev.Resource.ID == "" {
			return nil
		}
		buf = append(buf, ev.Resource.Type...)
		buf = append(buf, 0)
		return append(buf, ev.Resource.ID...)
	case DimPrincipal:
		return bytesOf(ev.Principal.ID)
	default:
		return bytesOf(ev.Network.IP)
	}
}

// bytesOf views s as bytes without a copy; the caller must not write them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	t := ev.Time.Time
	h := t.Unix() / 3600
	if s.FirstSeen == 0 {
		s.FirstSeen = t.UnixMilli()
		s.Hour = h
	}
	if h > s.Hour {
		s.close(h, d.cfg.Dimensions)
	}
	// A late event counts toward the open hour, as in volume.spike.
	s.Events++
	if s.First == 0 {
		s.First = t.UnixMilli()
	}
	if len(s.Evidence) < d.cfg.MaxEvidence {
		s.Evidence = append(s.Evidence, ev.EventID)
	}
	var buf [128]byte // values are hashed, not kept: no allocation per event
	for _, dim := range d.cfg.Dimensions {
		if v := value(buf[:0], ev, dim); len(v) > 0 {
			s.Counts[dimIndex(dim)].insert(v)
		}
	}
	if detect.SinceMilli(t, s.FirstSeen) < d.cfg.LearningPeriod {
		return nil
	}
	// Estimate merges the sketch's sparse buffer, so on a busy hour check only
	// every 32nd event: an alert comes at most 31 events late.
	if s.Events > 128 && s.Events%32 != 0 {
		return nil
	}
	// Every threshold is at least MinDistinct, and no dimension holds more
	// distinct values than the hour has events (see below): a quiet hour
	// needs no look at the profiles.
	if float64(s.Events)*2 <= float64(d.cfg.MinDistinct) {
		return nil
	}

	hourStart := time.Unix(s.Hour*3600, 0).UTC()
	var out []detect.Finding
	for _, dim := range d.cfg.Dimensions {
		if s.Fired[dim] {
			continue
		}
		p := s.profile(dim)
		mean, std, _ := p.At(hourStart)
		th := math.Max(float64(d.cfg.MinDistinct), math.Max(mean+d.cfg.Sigmas*std, d.cfg.Ratio*mean))
		// No dimension holds more distinct values than the hour has events:
		// with at most half the threshold in events no estimate can cross it
		// (a sketch that small is sparse and counts exactly), so skip the
		// estimate, which merges the sketch's buffer and allocates.
		if float64(s.Events)*2 <= th {
			continue
		}
		n := s.Counts[dimIndex(dim)].estimate()
		if float64(n) <= th {
			continue
		}
		if s.Fired == nil {
			s.Fired = map[string]bool{}
		}
		s.Fired[dim] = true
		name := ev.Integration.Name
		if name == "" {
			name = ev.Integration.ID
		}
		out = append(out, detect.Finding{
			Key:      dim + ":" + hourStart.Format("2006-01-02T15Z"),
			Title:    fmt.Sprintf("%s touched %d distinct %ss at %s", name, n, dim, hourStart.Format("2006-01-02 15:00Z")),
			Summary:  fmt.Sprintf("%s (%s): about %d distinct %ss in the hour (%d events) vs a baseline of %.1f ± %.1f for %02d:00 UTC (threshold %.0f).", name, ev.Integration.ID, n, dim, s.Events, mean, std, hourStart.Hour(), th),
			Severity: d.cfg.Severity,
			Observed: map[string]any{"dimension": dim, "hour": schemas.NewTime(hourStart), "distinct": n, "events": s.Events},
			Baseline: map[string]any{"mean": round(mean), "std": round(std), "threshold": round(th)},
			EventIDs: append([]string(nil), s.Evidence...), FirstSeen: time.UnixMilli(s.First), LastSeen: t,
		})
	}
	return out
}

func (s *State) profile(dim string) *baseline.Profile {
	i := dimIndex(dim)
	s.Profiles.has |= 1 << i
	return &s.Profiles.p[i]
}

// Profiles are the dimensions' hourly profiles, held in the state (indexed by
// dimIndex) rather than as a map of pointers. They marshal to, and read from,
// the JSON object keyed by dimension name the map gave.
type Profiles struct {
	has uint8 // bit dimIndex: the dimension has a profile
	p   [3]baseline.Profile
}

// jsonOrder is dimNames sorted, the order a map's JSON object lists them.
var jsonOrder = [3]string{DimIP, DimPrincipal, DimResource}

// MarshalJSON writes {"dim": profile, ...}, keys sorted.
func (ps Profiles) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for _, dim := range jsonOrder {
		i := dimIndex(dim)
		if ps.has&(1<<i) == 0 {
			continue
		}
		v, err := json.Marshal(ps.p[i])
		if err != nil {
			return nil, err
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(append(append(append(b, '"'), dim...), '"', ':'), v...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads the object MarshalJSON writes (a null profile is an
// empty one, as the detector treated it; dimensions it never counts are
// dropped).
func (ps *Profiles) UnmarshalJSON(b []byte) error {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*ps = Profiles{}
	for dim, raw := range in {
		if dim != DimResource && dim != DimPrincipal && dim != DimIP {
			continue
		}
		i := dimIndex(dim)
		ps.has |= 1 << i
		if err := json.Unmarshal(raw, &ps.p[i]); err != nil {
			return fmt.Errorf("profile %s: %w", dim, err)
		}
	}
	return nil
}

// close folds the open hour and the silent hours after it into the profiles
// and opens hour next with empty counters.
func (s *State) close(next int64, dims []string) {
	for _, dim := range dims {
		n := s.Counts[dimIndex(dim)].estimate()
		p := s.profile(dim)
		p.AddHour(baseline.HourOfDay(s.Hour), float64(n))
		from := s.Hour + 1
		if next-from > maxGapHours {
			from = next - maxGapHours
		}
		for h := from; h < next; h++ {
			p.AddHour(baseline.HourOfDay(h), 0)
		}
	}
	// Every hour starts with empty counters (see counter.reset).
	for i := range s.Counts {
		s.Counts[i].reset(s.Events)
	}
	clear(s.Fired)
	s.Hour, s.Events, s.First, s.Evidence = next, 0, 0, baseline.NextEvidence(s.Evidence)
}

func round(v float64) float64 { return math.Round(v*10) / 10 }
