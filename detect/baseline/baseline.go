// Package baseline holds the building blocks detectors keep their memory in:
// a seasonal hourly profile (exponentially weighted mean and variance per hour
// of day) and a first-seen set. They are plain values that marshal to JSON, so
// a detector's State can embed them and still round-trip.
package baseline

import (
	"math"
	"sort"
	"time"
)

// Profile is an hour-of-day seasonal baseline of one hourly quantity: for each
// of the 24 UTC hours, an exponentially weighted mean and variance. Updating a
// bucket once per day with Alpha=0.1 remembers roughly the last ten days.
type Profile struct {
	Mean [24]float64 `json:"mean"`
	Var  [24]float64 `json:"var"`
	N    [24]uint32  `json:"n"` // observations per bucket, capped
}

// Alpha is the weight of a new observation.
const Alpha = 0.1

// Add folds the value observed for the hour starting at hour.
func (p *Profile) Add(hour time.Time, v float64) {
	h := hour.UTC().Hour()
	if p.N[h] == 0 {
		p.Mean[h] = v
		p.Var[h] = 0
	} else {
		// West's incremental EWMA variance.
		d := v - p.Mean[h]
		incr := Alpha * d
		p.Mean[h] += incr
		p.Var[h] = (1 - Alpha) * (p.Var[h] + d*incr)
	}
	if p.N[h] < math.MaxUint32 {
		p.N[h]++
	}
}

// At returns the mean and standard deviation for the hour of day of t.
func (p *Profile) At(t time.Time) (mean, std float64, n uint32) {
	h := t.UTC().Hour()
	return p.Mean[h], math.Sqrt(p.Var[h]), p.N[h]
}

// Seen is a first-seen set: value → first time seen (Unix ms).
type Seen map[string]int64

// Add records v at t and reports whether it was new.
func (s Seen) Add(v string, t time.Time) bool {
	if _, ok := s[v]; ok {
		return false
	}
	s[v] = t.UnixMilli()
	return true
}

// Has reports whether v was seen.
func (s Seen) Has(v string) bool { _, ok := s[v]; return ok }

// Keys returns the values, sorted, for alert baselines.
func (s Seen) Keys() []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
