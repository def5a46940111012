package baseline

import (
	"fmt"
	"time"
	"unique"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// FirstSeenConfig is the config every "first seen after the learning period"
// detector has (geo.new_country, geo.new_asn, lifecycle.new_user_agent).
// Embed it in the detector's Config with `yaml:",inline"`.
type FirstSeenConfig struct {
	// LearningPeriod after an integration's first event during which new
	// values are learned silently.
	LearningPeriod time.Duration    `yaml:"learning_period"`
	Severity       schemas.Severity `yaml:"severity"`
}

// FirstSeenDefaults is a week of learning, and sev.
func FirstSeenDefaults(sev schemas.Severity) FirstSeenConfig {
	return FirstSeenConfig{LearningPeriod: 7 * 24 * time.Hour, Severity: sev}
}

// Learning returns c, so NewFirstSeen reaches the FirstSeenConfig a
// detector's Config embeds.
func (c *FirstSeenConfig) Learning() *FirstSeenConfig { return c }

// NewFirstSeen is a first-seen detector's constructor: it fills cfg (the
// detector's Config, holding its defaults and embedding FirstSeenConfig)
// from decode, validates the first-seen part and builds the detector.
func NewFirstSeen[C interface {
	*T
	Learning() *FirstSeenConfig
}, T any](decode func(any) error, cfg T, build func(T) detect.Detector) (detect.Detector, error) {
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	if err := C(&cfg).Learning().Validate(); err != nil {
		return nil, err
	}
	return build(cfg), nil
}

// Rule is the FirstSeen rule c configures.
func (c FirstSeenConfig) Rule() FirstSeen { return FirstSeen{LearningPeriod: c.LearningPeriod} }

// SetOf is the set of list's values, each through norm when it is not nil
// (the approved or ignored values of a detector's config).
func SetOf[T comparable](list []T, norm func(T) T) map[T]bool {
	out := make(map[T]bool, len(list))
	for _, v := range list {
		if norm != nil {
			v = norm(v)
		}
		out[v] = true
	}
	return out
}

// Validate names the field at fault.
func (c FirstSeenConfig) Validate() error {
	if c.LearningPeriod < 0 {
		return fmt.Errorf("learning_period %s: must not be negative", c.LearningPeriod)
	}
	if _, err := schemas.ParseSeverity(string(c.Severity)); err != nil {
		return fmt.Errorf("severity: %w", err)
	}
	return nil
}

// DefaultFirstSeenLimit bounds a FirstSeen set: far more countries, networks
// or clients than one integration has, so only a pathological one reaches it.
const DefaultFirstSeenLimit = 1024

// FirstSeen is the rule of a "first seen after the learning period"
// detector, applied to the integration's clock (the Unix ms of its first
// event, 0 before it) and its Seen set, which the detector's State keeps
// under its own JSON names. A value not in the set joins it; it is news when
// the learning period, counted from the integration's first event, is over.
// The set is bounded by Limit: once full, a new value is still news but is
// not remembered (the engine raises one alert per key, so it is not repeated),
// and the values learned first, the baseline, are never evicted.
type FirstSeen struct {
	LearningPeriod time.Duration
	// Limit is the most values the set keeps; 0 means DefaultFirstSeenLimit.
	Limit int
}

// Sighting is what FirstSeen.Observe made of one event.
type Sighting struct {
	// New is true when the value was not in the set.
	New bool
	// News is true when it is new and the learning period is over: the
	// detector reports it, unless its own approvals say otherwise.
	News bool
	// Known lists the values seen before this one, sorted; set with News.
	Known []string
	// Since is the integration's first event.
	Since time.Time
}

// Observe folds one event at t carrying value v ("" when it carries none)
// into the integration's clock *start and set *seen. Call it for every
// event: the clock starts at the first, with a value or not. v does not
// escape: the set keeps its own copy, so a caller may pass a string
// converted from a buffer, or a slice of a longer string, for free.
func (f FirstSeen) Observe(start *int64, seen *Seen, v string, t time.Time) Sighting {
	if *start == 0 {
		*start = t.UnixMilli()
	}
	if *seen == nil {
		*seen = Seen{}
	}
	if v == "" || seen.Has(v) {
		return Sighting{}
	}
	since := time.UnixMilli(*start)
	s := Sighting{New: true, Since: since}
	s.News = t.Sub(since) >= f.LearningPeriod
	if s.News {
		s.Known = seen.Keys()
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultFirstSeenLimit
	}
	if len(*seen) < limit {
		seen.Add(unique.Make(v).Value(), t)
	}
	return s
}
