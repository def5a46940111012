// Package spike implements volume.spike: an integration's events or response
// bytes in one hour far above its own baseline for that hour of day. Bulk
// export with a stolen token (mail, drive, CRM records) looks like this.
package spike

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "volume.spike"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1530", "T1567"},
	Runbook:        "Look at what the integration read or wrote in the spiking hour; bulk export is exfiltration with a stolen token: revoke it and scope the data.",
	FalsePositives: []string{"A backfill, migration or first full sync"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "hourly events or bytes far above the integration's own hour-of-day baseline", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// LearningPeriod of history before the detector may fire.
	LearningPeriod time.Duration `yaml:"learning_period"`
	// Sigmas above the hour's mean, and Ratio times the mean, must both be exceeded…
	Sigmas float64 `yaml:"sigmas"`
	Ratio  float64 `yaml:"ratio"`
	// …and the absolute floors, so quiet integrations do not alert on noise.
	MinEvents int64            `yaml:"min_events"`
	MinBytes  int64            `yaml:"min_bytes"`
	Severity  schemas.Severity `yaml:"severity"`
	// MaxEvidence caps the event ids carried in an alert.
	MaxEvidence int `yaml:"max_evidence"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{LearningPeriod: 7 * 24 * time.Hour, Sigmas: 6, Ratio: 5, MinEvents: 100, MinBytes: 50 << 20,
		Severity: schemas.SeverityHigh, MaxEvidence: 20}
}

// Detector is volume.spike.
type Detector struct{ cfg Config }

var _ detect.Detector = (*Detector)(nil)

// New builds the detector from config.
func New(decode func(any) error) (detect.Detector, error) {
	cfg := DefaultConfig()
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	switch {
	case cfg.Sigmas <= 0 || cfg.Ratio <= 0:
		return nil, fmt.Errorf("sigmas and ratio must be positive (got %g, %g)", cfg.Sigmas, cfg.Ratio)
	case cfg.MinEvents < 1 || cfg.MinBytes < 1:
		return nil, fmt.Errorf("min_events and min_bytes must be at least 1")
	case cfg.MaxEvidence < 1:
		return nil, fmt.Errorf("max_evidence must be at least 1")
	}
	if _, err := schemas.ParseSeverity(string(cfg.Severity)); err != nil {
		return nil, fmt.Errorf("severity: %w", err)
	}
	return &Detector{cfg: cfg}, nil
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// State is the per-integration memory: the open hour and the seasonal
// profiles. Its JSON is wireState's.
type State struct {
	FirstSeen int64    `json:"first_seen"` // Unix ms
	Events    int64    `json:"events"`
	Bytes     int64    `json:"bytes"`
	Evidence  []string `json:"evidence,omitempty"`
	First     int64    `json:"first,omitempty"` // Unix ms of the open hour's first event
	// Hour is the open hour in Unix hours (32 bits reach 245,000 years),
	// beside Fired: 8 bytes less, a size class less for the state.
	Hour    int32            `json:"hour"`
	Fired   bool             `json:"fired,omitempty"`
	EventsP baseline.Profile `json:"events_profile"`
	BytesP  baseline.Profile `json:"bytes_profile"`
}

// wireState is the state's JSON, its fields in the order they were always
// written (State orders them for size).
type wireState struct {
	FirstSeen int64            `json:"first_seen"`
	Hour      int64            `json:"hour"`
	Events    int64            `json:"events"`
	Bytes     int64            `json:"bytes"`
	Evidence  []string         `json:"evidence,omitempty"`
	First     int64            `json:"first,omitempty"`
	Fired     bool             `json:"fired,omitempty"`
	EventsP   baseline.Profile `json:"events_profile"`
	BytesP    baseline.Profile `json:"bytes_profile"`
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) {
	return json.Marshal(wireState{s.FirstSeen, int64(s.Hour), s.Events, s.Bytes, s.Evidence, s.First, s.Fired, s.EventsP, s.BytesP})
}

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error {
	var w wireState
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.Hour != int64(int32(w.Hour)) {
		return fmt.Errorf("hour %d out of range", w.Hour)
	}
	*s = State{FirstSeen: w.FirstSeen, Events: w.Events, Bytes: w.Bytes, Evidence: w.Evidence, First: w.First,
		Hour: int32(w.Hour), Fired: w.Fired, EventsP: w.EventsP, BytesP: w.BytesP}
	return nil
}

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{} }

// maxGapHours bounds the zero-filling after a silence: a week of zeros already
// fills every hour-of-day bucket several times.
const maxGapHours = 7 * 24

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	t := ev.Time.Time
	h := t.Unix() / 3600
	if s.FirstSeen == 0 {
		s.FirstSeen = t.UnixMilli()
		s.Hour = int32(h)
	}
	if h > int64(s.Hour) {
		s.close(h)
	}
	// A late event from an hour already closed counts toward the open hour: the
	// burst it belongs to is over, and the baseline still learns its volume.
	s.Events++
	s.Bytes += ev.Bytes
	if s.First == 0 {
		s.First = t.UnixMilli()
	}
	if len(s.Evidence) < d.cfg.MaxEvidence {
		s.Evidence = append(s.Evidence, ev.EventID)
	}
	if s.Fired || detect.SinceMilli(t, s.FirstSeen) < d.cfg.LearningPeriod {
		return nil
	}
	// Each threshold is at least its floor (threshold): an hour under both
	// floors cannot fire and needs no look at the profiles (most hours).
	if float64(s.Events) <= float64(d.cfg.MinEvents) && float64(s.Bytes) <= float64(d.cfg.MinBytes) {
		return nil
	}
	hourStart := time.Unix(int64(s.Hour)*3600, 0).UTC()
	em, es, _ := s.EventsP.At(hourStart)
	bm, bs, _ := s.BytesP.At(hourStart)
	et := threshold(em, es, d.cfg.Sigmas, d.cfg.Ratio, float64(d.cfg.MinEvents))
	bt := threshold(bm, bs, d.cfg.Sigmas, d.cfg.Ratio, float64(d.cfg.MinBytes))
	overEvents, overBytes := float64(s.Events) > et, float64(s.Bytes) > bt
	if !overEvents && !overBytes {
		return nil
	}
	s.Fired = true
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	what := fmt.Sprintf("%d events in the hour (baseline %.1f ± %.1f, threshold %.0f)", s.Events, em, es, et)
	if !overEvents {
		what = fmt.Sprintf("%d response bytes in the hour (baseline %.0f ± %.0f, threshold %.0f)", s.Bytes, bm, bs, bt)
	}
	return []detect.Finding{{
		Key:      hourStart.Format("2006-01-02T15Z"),
		Title:    fmt.Sprintf("%s activity spike at %s", name, hourStart.Format("2006-01-02 15:00Z")),
		Summary:  fmt.Sprintf("%s (%s): %s for %02d:00 UTC.", name, ev.Integration.ID, what, hourStart.Hour()),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"hour": schemas.NewTime(hourStart), "events": s.Events, "bytes": s.Bytes},
		Baseline: map[string]any{"events_mean": round(em), "events_std": round(es), "events_threshold": round(et),
			"bytes_mean": round(bm), "bytes_std": round(bs), "bytes_threshold": round(bt)},
		EventIDs:  append([]string(nil), s.Evidence...),
		FirstSeen: time.UnixMilli(s.First), LastSeen: t,
	}}
}

// close folds the open hour and the silent hours after it into the profiles
// and opens hour next.
func (s *State) close(next int64) {
	s.EventsP.AddHour(baseline.HourOfDay(int64(s.Hour)), float64(s.Events))
	s.BytesP.AddHour(baseline.HourOfDay(int64(s.Hour)), float64(s.Bytes))
	from := int64(s.Hour) + 1
	if next-from > maxGapHours {
		from = next - maxGapHours
	}
	for h := from; h < next; h++ {
		s.EventsP.AddHour(baseline.HourOfDay(h), 0)
		s.BytesP.AddHour(baseline.HourOfDay(h), 0)
	}
	s.Hour, s.Events, s.Bytes, s.Evidence, s.First, s.Fired = int32(next), 0, 0, baseline.NextEvidence(s.Evidence), 0, false
}

func threshold(mean, std, sigmas, ratio, floor float64) float64 {
	return math.Max(floor, math.Max(mean+sigmas*std, ratio*mean))
}

func round(v float64) float64 { return math.Round(v*10) / 10 }
