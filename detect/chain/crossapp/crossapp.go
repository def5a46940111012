// Package crossapp implements chain.cross_app: an integration acting across
// more target apps within a short window than it ever did. Attackers holding a
// broad token pivot: consent in one app, then read mail, files and chat in a
// burst. A normal integration touches the same few apps; breadth beyond its
// own maximum is the chain showing.
package crossapp

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/baseline"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ID is the detector id.
const ID = "chain.cross_app"

// meta: status test until a false-positive rate is measured on live data.
var meta = detect.Meta{
	Status:         detect.StatusTest,
	Techniques:     []string{"T1550.001", "T1021.007"},
	Runbook:        "Check the target apps the integration reached beyond its usual set; an unexpected app is lateral movement with the token: revoke it.",
	FalsePositives: []string{"A new feature of the integration touching another app"},
}

func init() {
	detect.Register(detect.Spec{ID: ID, Meta: meta, Summary: "an integration active across more target apps within a window than its baseline maximum", New: New})
}

// Config is the detector's YAML config.
type Config struct {
	// LearningPeriod after an integration's first event during which the
	// baseline maximum is learned silently.
	LearningPeriod time.Duration `yaml:"learning_period"`
	// Window is the sliding window distinct target apps are counted in.
	Window time.Duration `yaml:"window"`
	// MinApps is the least breadth that may alert, whatever the baseline.
	MinApps  int              `yaml:"min_apps"`
	Severity schemas.Severity `yaml:"severity"`
}

// DefaultConfig is used for fields the YAML leaves out.
func DefaultConfig() Config {
	return Config{LearningPeriod: 7 * 24 * time.Hour, Window: time.Hour, MinApps: 3, Severity: schemas.SeverityHigh}
}

// Detector is chain.cross_app.
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
	case cfg.Window <= 0:
		return nil, fmt.Errorf("window %s: must be positive", cfg.Window)
	case cfg.MinApps < 2:
		return nil, fmt.Errorf("min_apps %d: must be at least 2", cfg.MinApps)
	}
	if _, err := schemas.ParseSeverity(string(cfg.Severity)); err != nil {
		return nil, fmt.Errorf("severity: %w", err)
	}
	return &Detector{cfg: cfg}, nil
}

// ID implements detect.Detector.
func (d *Detector) ID() string { return ID }

// Use is an app's latest use within the window.
type Use struct {
	Time    int64  `json:"t"` // Unix ms
	EventID string `json:"id"`
}

// State is what the detector remembers per integration.
type State struct {
	FirstSeen int64 `json:"first_seen"` // Unix ms
	Latest    int64 `json:"latest"`     // Unix ms of the newest event
	// Apps holds each target app's latest use within the window.
	Apps baseline.SmallMap[Use] `json:"apps"`
	// Max is the most apps ever seen within one window: the baseline.
	Max int `json:"max"`
	// oldest is a lower bound of the Apps times (0: unknown), so the window
	// is swept only when an entry can have left it, not on every event.
	oldest int64
}

// MarshalBinary implements detect.State.
func (s *State) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary implements detect.State.
func (s *State) UnmarshalBinary(b []byte) error { s.oldest = 0; return json.Unmarshal(b, s) }

// NewState implements detect.Detector.
func (d *Detector) NewState() detect.State { return &State{Apps: baseline.SmallMap[Use]{}} }

// Observe implements detect.Detector.
func (d *Detector) Observe(ev *schemas.Event, st detect.State) []detect.Finding {
	s := st.(*State)
	t := ev.Time.Time
	ms := t.UnixMilli()
	if s.FirstSeen == 0 {
		s.FirstSeen = ms
	}
	if s.Apps == nil {
		s.Apps = baseline.SmallMap[Use]{}
	}
	s.Latest = max(s.Latest, ms)
	if ev.TargetApp == "" {
		return nil
	}
	// One search for the get and the set: the same as SmallMap's Get then Set.
	i, ok := s.Apps.Find(ev.TargetApp)
	if !ok || ms >= s.Apps[i].V.Time {
		if u := (Use{Time: ms, EventID: ev.EventID}); ok {
			s.Apps[i].V = u
		} else {
			s.Apps = slices.Insert(s.Apps, i, baseline.SmallEntry[Use]{K: ev.TargetApp, V: u})
		}
		if s.oldest != 0 && ms < s.oldest {
			s.oldest = ms
		}
	}
	// The window ends at the newest event, so late events cannot stretch it.
	cutoff := s.Latest - d.cfg.Window.Milliseconds()
	if s.oldest == 0 || s.oldest <= cutoff {
		s.oldest = 0
		s.Apps = slices.DeleteFunc(s.Apps, func(e baseline.SmallEntry[Use]) bool {
			if e.V.Time <= cutoff {
				return true
			}
			if s.oldest == 0 || e.V.Time < s.oldest {
				s.oldest = e.V.Time
			}
			return false
		})
	}
	n, prevMax := len(s.Apps), s.Max
	s.Max = max(s.Max, n)
	if detect.SinceMilli(t, s.FirstSeen) < d.cfg.LearningPeriod || n <= prevMax || n < d.cfg.MinApps {
		return nil
	}
	type appUse struct {
		app string
		Use
	}
	uses := make([]appUse, 0, n)
	for _, e := range s.Apps {
		uses = append(uses, appUse{e.K, e.V})
	}
	sort.Slice(uses, func(i, j int) bool {
		if uses[i].Time != uses[j].Time {
			return uses[i].Time < uses[j].Time
		}
		return uses[i].app < uses[j].app
	})
	apps, ids := make([]string, n), make([]string, n)
	for i, u := range uses {
		apps[i], ids[i] = u.app, u.EventID
	}
	name := ev.Integration.Name
	if name == "" {
		name = ev.Integration.ID
	}
	latest := time.UnixMilli(s.Latest).UTC()
	bucket := latest.Truncate(d.cfg.Window)
	return []detect.Finding{{
		// One alert per breadth reached in a window bucket: a wider spread
		// later in the bucket is new evidence (the correlator adds it to the
		// same incident, a repeat at a quarter), and the analyst sees the
		// whole spread, not only the first apps beyond the baseline.
		Key:      fmt.Sprintf("%s/%d", bucket.Format("2006-01-02T15:04:05Z"), n),
		Title:    fmt.Sprintf("%s active across %d apps within %s", name, n, d.cfg.Window),
		Summary:  fmt.Sprintf("%s (%s) acted in %d target apps within %s (%v); its most before was %d.", name, ev.Integration.ID, n, d.cfg.Window, apps, prevMax),
		Severity: d.cfg.Severity,
		Observed: map[string]any{"apps": apps, "count": n, "window_bucket": schemas.NewTime(bucket)},
		Baseline: map[string]any{"max_apps": prevMax, "min_apps": d.cfg.MinApps, "window": d.cfg.Window.String(), "since": schemas.UnixMilli(s.FirstSeen)},
		EventIDs: ids, FirstSeen: time.UnixMilli(uses[0].Time).UTC(), LastSeen: time.UnixMilli(uses[n-1].Time).UTC(),
	}}
}
