// Package baseline holds the building blocks detectors keep their memory in:
// a seasonal hourly profile (exponentially weighted mean and variance per hour
// of day) and a first-seen set. They are plain values that marshal to JSON, so
// a detector's State can embed them and still round-trip.
package baseline

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
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

// Seen is a first-seen set: value → first time seen (Unix ms). It is a
// slice sorted by value rather than a map: most integrations see one to a few
// countries, networks or clients, and a Go map holding one entry costs a few
// hundred bytes where this costs 24 per value. It marshals to, and reads
// from, the same JSON object the map did ({"value": unix_ms, ...}).
type Seen []SeenValue

// SeenValue is one member of a Seen set.
type SeenValue struct {
	V string
	T int64 // Unix ms
}

func (s Seen) find(v string) (int, bool) {
	return slices.BinarySearchFunc(s, v, func(e SeenValue, v string) int { return strings.Compare(e.V, v) })
}

// Add records v at t and reports whether it was new.
func (s *Seen) Add(v string, t time.Time) bool {
	i, ok := s.find(v)
	if ok {
		return false
	}
	*s = slices.Insert(*s, i, SeenValue{v, t.UnixMilli()})
	return true
}

// Has reports whether v was seen.
func (s Seen) Has(v string) bool { _, ok := s.find(v); return ok }

// Keys returns the values, sorted, for alert baselines.
func (s Seen) Keys() []string {
	out := make([]string, 0, len(s))
	for _, e := range s {
		out = append(out, e.V)
	}
	return out
}

// MarshalJSON writes the set as the JSON object a map[string]int64 gives:
// keys sorted, null when nil.
func (s Seen) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("null"), nil
	}
	b := make([]byte, 0, 2+len(s)*24)
	b = append(b, '{')
	for i, e := range s {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := json.Marshal(e.V)
		if err != nil {
			return nil, err
		}
		b = append(b, k...)
		b = append(b, ':')
		b = strconv.AppendInt(b, e.T, 10)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads the JSON object MarshalJSON writes.
func (s *Seen) UnmarshalJSON(b []byte) error {
	var m map[string]int64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if m == nil {
		*s = nil
		return nil
	}
	out := make(Seen, 0, len(m))
	for v, t := range m {
		out = append(out, SeenValue{v, t})
	}
	slices.SortFunc(out, func(a, b SeenValue) int { return strings.Compare(a.V, b.V) })
	*s = out
	return nil
}
