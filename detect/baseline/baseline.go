// Package baseline holds the building blocks detectors keep their memory in:
// a seasonal hourly profile (exponentially weighted mean and variance per hour
// of day) and a first-seen set. They are plain values that marshal to JSON, so
// a detector's State can embed them and still round-trip.
package baseline

import (
	"encoding/json"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// Profile is an hour-of-day seasonal baseline of one hourly quantity: for each
// of the 24 UTC hours, an exponentially weighted mean and variance. Updating a
// bucket once per day with Alpha=0.1 remembers roughly the last ten days.
//
// Buckets whose mean and variance are both zero — hours the integration has
// only ever been silent in, which is most of them for a quiet integration,
// since silent hours are folded in as zeros — are not stored: a zero
// observation leaves a zero bucket exactly zero, so the arithmetic is the
// float64 one it always was, bit for bit. The stored buckets sit in hour
// order in an array of exactly one per set bit of mask (its length is the
// mask's, so the profile keeps only its first element's address: a slice
// header would cost 16 bytes more, and append's spare capacity more still).
// The observation counts are bytes until one passes 255 (a bucket is
// observed once a day: 255 days), then all move to big, capped at 65,535.
// A profile costs 48 bytes plus 16 a non-zero hour (and 48 once counts pass
// 255), where 24 dense buckets cost 480. It marshals to, and reads from, the JSON the dense struct gave
// ({"mean":[24],"var":[24],"n":[24]}).
type Profile struct {
	n    [24]uint8   // observations per bucket, while every one is below 256
	big  *[24]uint16 // the counts once one passed 255 (n is then unused)
	mask uint32      // buckets with a non-zero mean or variance
	mv0  *moments    // those buckets' moments, in hour order (see mv)
}

// mv is the stored buckets' moments: popcount(mask) of them from mv0.
func (p *Profile) mv() []moments {
	if p.mv0 == nil {
		return nil
	}
	return unsafe.Slice(p.mv0, bits.OnesCount32(p.mask))
}

// count is bucket h's observations.
func (p *Profile) count(h int) uint32 {
	if p.big != nil {
		return uint32(p.big[h])
	}
	return uint32(p.n[h])
}

// setCount sets bucket h's observations (capped at 65,535), moving the
// counts to big when v needs it.
func (p *Profile) setCount(h int, v uint32) {
	if p.big == nil && v > math.MaxUint8 {
		p.big = new([24]uint16)
		for i, c := range p.n {
			p.big[i] = uint16(c)
		}
		p.n = [24]uint8{}
	}
	if p.big != nil {
		p.big[h] = uint16(min(v, math.MaxUint16))
		return
	}
	p.n[h] = uint8(v)
}

type moments struct{ mean, v float64 }

// Alpha is the weight of a new observation.
const Alpha = 0.1

// slot is bucket h's index in mv and whether it is stored.
func (p *Profile) slot(h int) (int, bool) {
	return bits.OnesCount32(p.mask & (1<<h - 1)), p.mask&(1<<h) != 0
}

// Add folds the value observed for the hour starting at hour.
func (p *Profile) Add(hour time.Time, v float64) { p.AddHour(hour.UTC().Hour(), v) }

// AddHour folds the value observed in hour of day h (0–23, UTC).
func (p *Profile) AddHour(h int, v float64) {
	i, ok := p.slot(h)
	var m moments
	if ok {
		m = p.mv()[i]
	}
	c := p.count(h)
	if c == 0 {
		m = moments{v, 0}
	} else {
		// West's incremental EWMA variance.
		d := v - m.mean
		incr := Alpha * d
		m.mean += incr
		m.v = (1 - Alpha) * (m.v + d*incr)
	}
	p.setCount(h, c+1)
	p.set(h, i, ok, m)
}

func (p *Profile) set(h, i int, ok bool, m moments) {
	switch {
	case ok:
		p.mv()[i] = m
	case math.Float64bits(m.mean) != 0 || math.Float64bits(m.v) != 0:
		// A bucket turns non-zero at most 24 times: copy to an exact array.
		old := p.mv()
		mv := make([]moments, len(old)+1)
		copy(mv, old[:i])
		mv[i] = m
		copy(mv[i+1:], old[i:])
		p.mask |= 1 << h
		p.mv0 = &mv[0]
	}
}

// At returns the mean and standard deviation for the hour of day of t.
func (p *Profile) At(t time.Time) (mean, std float64, n uint32) {
	h := t.UTC().Hour()
	if i, ok := p.slot(h); ok {
		m := p.mv()[i]
		return m.mean, math.Sqrt(m.v), p.count(h)
	}
	return 0, 0, p.count(h)
}

// profileJSON is the dense form a Profile is written and read as.
type profileJSON struct {
	Mean [24]float64 `json:"mean"`
	Var  [24]float64 `json:"var"`
	N    [24]uint32  `json:"n"`
}

// MarshalJSON writes the dense form.
func (p Profile) MarshalJSON() ([]byte, error) {
	var d profileJSON
	mv := p.mv()
	for h := range 24 {
		if i, ok := p.slot(h); ok {
			d.Mean[h], d.Var[h] = mv[i].mean, mv[i].v
		}
		d.N[h] = p.count(h)
	}
	return json.Marshal(d)
}

// UnmarshalJSON reads the dense form (counts above 65,535 read as 65,535).
func (p *Profile) UnmarshalJSON(b []byte) error {
	var d profileJSON
	if err := json.Unmarshal(b, &d); err != nil {
		return err
	}
	*p = Profile{}
	for h := range 24 {
		p.setCount(h, d.N[h])
		i, _ := p.slot(h)
		p.set(h, i, false, moments{d.Mean[h], d.Var[h]})
	}
	return nil
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

// find is a binary search written out: the generic one makes v escape,
// which costs callers looking up a converted []byte an allocation.
func (s Seen) find(v string) (int, bool) {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m].V < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(s) && s[lo].V == v
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

// SmallMap is a string-keyed map kept as a slice sorted by key, for the few
// entries a detector keeps per integration (credentials, target apps, AS
// names): a Go map costs a whole 8-slot group (often near 1 KB with struct
// values) from its first entry; this costs one element per entry. It
// marshals to, and reads from, the same JSON object a map[string]V does:
// keys sorted, null when nil, {} when empty.
type SmallMap[V any] []SmallEntry[V]

// SmallEntry is one key and value of a SmallMap.
type SmallEntry[V any] struct {
	K string
	V V
}

// Find is k's index, or where it would go, and whether it is there (a
// binary search written out: slices.BinarySearchFunc calls a comparison
// closure at every probe). Callers that read then write an entry search once.
func (m SmallMap[V]) Find(k string) (int, bool) {
	lo, hi := 0, len(m)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if m[h].K < k {
			lo = h + 1
		} else {
			hi = h
		}
	}
	return lo, lo < len(m) && m[lo].K == k
}

// Get returns k's value.
func (m SmallMap[V]) Get(k string) (V, bool) {
	if i, ok := m.Find(k); ok {
		return m[i].V, true
	}
	var zero V
	return zero, false
}

// Set sets k's value.
func (m *SmallMap[V]) Set(k string, v V) {
	i, ok := m.Find(k)
	if ok {
		(*m)[i].V = v
		return
	}
	*m = slices.Insert(*m, i, SmallEntry[V]{k, v})
}

// Delete removes k.
func (m *SmallMap[V]) Delete(k string) {
	if i, ok := m.Find(k); ok {
		*m = slices.Delete(*m, i, i+1)
	}
}

// MarshalJSON writes the JSON object a map[string]V gives.
func (m SmallMap[V]) MarshalJSON() ([]byte, error) {
	if m == nil {
		return []byte("null"), nil
	}
	b := []byte{'{'}
	for i, e := range m {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := json.Marshal(e.K)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(e.V)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads the JSON object MarshalJSON writes.
func (m *SmallMap[V]) UnmarshalJSON(b []byte) error {
	var in map[string]V
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	if in == nil {
		*m = nil
		return nil
	}
	out := make(SmallMap[V], 0, len(in))
	for k, v := range in {
		out = append(out, SmallEntry[V]{k, v})
	}
	slices.SortFunc(out, func(a, b SmallEntry[V]) int { return strings.Compare(a.K, b.K) })
	*m = out
	return nil
}
