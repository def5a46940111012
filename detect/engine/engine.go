// Package engine runs detectors: it keeps each integration's detector states,
// feeds them events in arrival order with event time as the only clock, ticks
// Ticker detectors as the event-time watermark crosses hour boundaries, and
// turns Findings into schemas.Alerts with deterministic ids. It owns no I/O;
// the detect program (detect/program) builds its detectors and drives it.
package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
	"unique"

	"github.com/klauspost/compress/zstd"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Engine holds per-integration state for a set of detectors. It is not safe
// for concurrent use: one engine serves one partition (or one replay).
type Engine struct {
	detectors []detect.Detector
	meta      map[string]detect.Meta // by detector id, copied onto alerts
	shadow    map[string]bool        // detector ids in shadow mode (SetShadow)
	tickers   []int                  // indexes of detectors that implement detect.Ticker
	ints      map[Key]*integration
	// order is ints sorted by key, for the hourly tick (alerts come out in
	// a stable order); rebuilt only after ints gained, lost or replaced an
	// entry (orderStale), not sorted every hour.
	order      []keyed
	orderStale bool
	// lastK and lastIn are the latest event's integration (nil after ints
	// changed), so a run of one integration's events looks it up once.
	lastK     Key
	lastIn    *integration
	watermark time.Time
	// restoredUpTo: the newest event (Unix ms) of a restored integration.
	restoredUpTo int64
	// dirty lists the integrations changed since the last ClearDirty; each
	// integration's own flag keeps it listed once (cheaper than a set).
	dirty []Key
	// cold holds evicted integrations as compressed snapshots: an idle
	// integration costs a few hundred bytes instead of its live baselines,
	// and comes back on its next event.
	cold coldStore
	// corr, when set, correlates each key's alerts into incidents; its
	// state lives beside the detectors' and moves with it.
	corr      Correlator
	incidents []schemas.Incident
	dups      int64 // repeated events skipped (seen.go)
}

// Correlator is the optional step after the detectors (detect/correlate):
// it sees each key's alerts, and every event of a key it is Active for, in
// event-time order, and returns incident versions.
type Correlator interface {
	NewState() detect.State
	Active(st detect.State) bool
	Observe(tenant, key string, ev *schemas.Event, raised []schemas.Alert, watermark time.Time, st detect.State) []schemas.Incident
	Tick(tenant, key string, watermark time.Time, st detect.State) []schemas.Incident
}

// correlateID names the correlator's state in snapshots.
const correlateID = "correlate"

// SetCorrelator turns correlation on. Call it before the first event.
func (e *Engine) SetCorrelator(c Correlator) { e.corr = c }

// SetShadow puts the detectors with these ids in shadow mode: their alerts
// carry Shadow and are never handed to the correlator, so a detector on
// trial cannot open or grow an incident. Call it before the first event.
func (e *Engine) SetShadow(ids map[string]bool) { e.shadow = ids }

// live is as without its shadow alerts (as itself when it has none).
func live(as []schemas.Alert) []schemas.Alert {
	shadow := func(a schemas.Alert) bool { return a.Shadow }
	if !slices.ContainsFunc(as, shadow) {
		return as
	}
	return slices.DeleteFunc(slices.Clone(as), shadow)
}

// IncidentsWaiting reports whether TakeIncidents has any to return.
func (e *Engine) IncidentsWaiting() bool { return len(e.incidents) > 0 }

// TakeIncidents returns the incident versions produced since the last call.
func (e *Engine) TakeIncidents() []schemas.Incident {
	out := e.incidents
	e.incidents = nil
	return out
}

// Key names one integration's state.
type Key struct{ Tenant, ID string }

type keyed struct {
	k  Key
	in *integration
}

// changed notes that ints gained, lost or replaced an entry.
func (e *Engine) changed() { e.orderStale, e.order, e.lastIn = true, e.order[:0], nil }

type integration struct {
	dirty bool
	// states are the detectors' states, in the engine's order, then the
	// correlator's when there is one (see corrState): its own field would
	// take the struct past a size class.
	states []detect.State
	// extra is nil until the integration raises an alert or an event
	// carries its catalog entry: most quiet ones never do, and a field
	// less keeps the struct a size class smaller.
	extra *extra
	last  int64 // event time (Unix ms) of the latest event, for eviction
	seen  seenIDs
}

type extra struct {
	// emitted remembers alert ids already raised for this integration (with
	// the event time they were raised at), so a finding re-raised with the
	// same key after a restore or a reprocessed offset is not a second
	// alert. Bounded by DedupWindow of event time.
	emitted map[string]int64
	// catalog is the catalog's entry, from the latest event that carried one
	// (not checkpointed: the next event restores it). Alerts carry its
	// owner, purpose and criticality.
	catalog *schemas.Inventory
}

// more is in's extra, made if need be.
func (in *integration) more() *extra {
	if in.extra == nil {
		in.extra = &extra{}
	}
	return in.extra
}

// emitted is in's raised alert ids (nil when none).
func (in *integration) emitted() map[string]int64 {
	if in.extra == nil {
		return nil
	}
	return in.extra.emitted
}

// corrState is in's correlator state, nil without one.
func (e *Engine) corrState(in *integration) detect.State {
	if len(in.states) > len(e.detectors) {
		return in.states[len(e.detectors)]
	}
	return nil
}

// DedupWindow is how long (in event time) an alert id is remembered.
const DedupWindow = 30 * 24 * time.Hour

// New builds an engine over detectors, in the order given.
func New(detectors []detect.Detector) *Engine {
	e := &Engine{ints: map[Key]*integration{}}
	e.setDetectors(detectors)
	return e
}

func (e *Engine) setDetectors(ds []detect.Detector) {
	e.detectors, e.meta, e.tickers = ds, make(map[string]detect.Meta, len(ds)), nil
	for i, d := range ds {
		e.meta[d.ID()] = detect.MetaOf(d)
		if _, ok := d.(detect.Ticker); ok {
			e.tickers = append(e.tickers, i)
		}
	}
}

// SetDetectors replaces the detector set (a rule reload). Each live
// integration keeps its state of every detector that stays (matched by id,
// so a Go detector's baseline survives a rule change) and gets an empty one
// for a new detector; evicted integrations are snapshots by id already.
// Call it between events, right after a checkpoint, so a crash replays the
// records since that checkpoint with one set only.
func (e *Engine) SetDetectors(ds []detect.Detector) {
	old := make(map[string]int, len(e.detectors))
	for i, d := range e.detectors {
		old[d.ID()] = i
	}
	for _, in := range e.ints {
		var states []detect.State
		if corr := e.corrState(in); corr != nil {
			states = make([]detect.State, len(ds)+1)
			states[len(ds)] = corr
		} else {
			states = make([]detect.State, len(ds))
		}
		for j, d := range ds {
			if i, ok := old[d.ID()]; ok {
				states[j] = in.states[i]
			} else {
				states[j] = d.NewState()
			}
		}
		in.states = states
	}
	e.setDetectors(ds)
}

// Observe runs ev through every detector and returns the new alerts.
func (e *Engine) Observe(ev *schemas.Event) []schemas.Alert {
	var alerts []schemas.Alert
	t := ev.Time.Time
	if e.watermark.IsZero() {
		e.watermark = t
	} else if t.After(e.watermark) {
		// A later hour than the watermark's: Truncate(time.Hour) counts
		// from year 1, a whole number of hours before the Unix epoch, so
		// comparing Unix hours decides the same without two truncations
		// per event.
		if unixHour(t) > unixHour(e.watermark) {
			alerts = append(alerts, e.tick(t.Truncate(time.Hour))...)
		}
		e.watermark = t
	}
	k := Key{ev.Tenant, ev.Integration.ID}
	var in *integration
	if e.lastIn != nil && k == e.lastK {
		in = e.lastIn // a run of one integration's events skips the hash
	} else {
		in = e.ints[k]
	}
	if in == nil {
		k.Tenant = unique.Make(k.Tenant).Value() // one copy for all its keys
		in = e.thaw(k)
		if in == nil {
			in = e.newIntegration()
		}
		e.ints[k] = in
		e.changed()
	}
	e.lastK, e.lastIn = k, in
	if ev.EventID != "" {
		h, at := hashID(ev.EventID), t.UnixMilli()
		if in.seen.has(h) {
			e.dups++
			return alerts
		}
		in.seen.add(h, at, max(in.last, at))
	}
	in.last = t.UnixMilli()
	e.markDirty(k, in)
	if ev.Inventory != nil {
		in.more().catalog = ev.Inventory
	}
	own := len(alerts)
	for i, d := range e.detectors {
		for _, f := range d.Observe(ev, in.states[i]) {
			if a, ok := e.alert(d.ID(), k, in, f); ok {
				a.Backfill = ev.Backfill // raised by old news arriving late (ingest marks it)
				alerts = append(alerts, a)
			}
		}
	}
	// Shadow alerts stay out of correlation altogether: with only those
	// raised, the correlator sees the event exactly as if nothing fired.
	if raised := live(alerts[own:]); e.corr != nil && (len(raised) > 0 || e.corr.Active(e.corrState(in))) {
		e.incidents = append(e.incidents, e.corr.Observe(k.Tenant, k.ID, ev, raised, e.watermark, e.corrState(in))...)
	}
	return alerts
}

// unixHour is the hour t falls in, in whole hours since the Unix epoch
// (floor, so times before it count down).
func unixHour(t time.Time) int64 {
	s := t.Unix()
	h := s / 3600
	if s%3600 < 0 {
		h--
	}
	return h
}

// Duplicates is how many repeated events (an event id the key was already
// fed) Observe skipped.
func (e *Engine) Duplicates() int64 { return e.dups }

// Flush ticks every Ticker detector at watermark (end of input in a replay).
func (e *Engine) Flush(watermark time.Time) []schemas.Alert { return e.tick(watermark) }

// Watermark is the latest event time seen.
func (e *Engine) Watermark() time.Time { return e.watermark }

// Integrations is how many integrations the engine tracks.
func (e *Engine) Integrations() int { return len(e.ints) }

func (e *Engine) tick(wm time.Time) []schemas.Alert {
	if len(e.tickers) == 0 && e.corr == nil {
		return nil
	}
	if e.orderStale || len(e.order) != len(e.ints) {
		e.order = e.order[:0]
		for k, in := range e.ints {
			e.order = append(e.order, keyed{k, in})
		}
		// Map order is random; alerts must come out in a stable order.
		slices.SortFunc(e.order, func(a, b keyed) int {
			if c := strings.Compare(a.k.Tenant, b.k.Tenant); c != 0 {
				return c
			}
			return strings.Compare(a.k.ID, b.k.ID)
		})
		e.orderStale = false
	}
	var alerts []schemas.Alert
	for _, o := range e.order {
		k, in := o.k, o.in
		own := len(alerts)
		for _, i := range e.tickers {
			d := e.detectors[i]
			fs := d.(detect.Ticker).Tick(wm, in.states[i])
			if len(fs) > 0 {
				e.markDirty(k, in)
			}
			for _, f := range fs {
				if a, ok := e.alert(d.ID(), k, in, f); ok {
					alerts = append(alerts, a)
				}
			}
		}
		if raised := live(alerts[own:]); e.corr != nil && (len(raised) > 0 || e.corr.Active(e.corrState(in))) {
			e.markDirty(k, in)
			cs := e.corrState(in)
			e.incidents = append(e.incidents, e.corr.Observe(k.Tenant, k.ID, nil, raised, wm, cs)...)
			e.incidents = append(e.incidents, e.corr.Tick(k.Tenant, k.ID, wm, cs)...)
		}
	}
	return alerts
}

func (e *Engine) alert(detector string, k Key, in *integration, f detect.Finding) (schemas.Alert, bool) {
	id := schemas.AlertID(detector, k.Tenant, k.ID, f.Key)
	if _, dup := in.emitted()[id]; dup {
		return schemas.Alert{}, false
	}
	x := in.more()
	now := e.watermark.UnixMilli()
	if len(x.emitted) >= 64 {
		for old, at := range x.emitted {
			if now-at > DedupWindow.Milliseconds() {
				delete(x.emitted, old)
			}
		}
	}
	if x.emitted == nil {
		x.emitted = map[string]int64{}
	}
	x.emitted[id] = now
	a := schemas.Alert{
		ID:            id,
		Detector:      detector,
		Severity:      f.Severity,
		IntegrationID: k.ID,
		Tenant:        k.Tenant,
		Title:         f.Title,
		Summary:       f.Summary,
		FirstSeen:     schemas.NewTime(f.FirstSeen),
		LastSeen:      schemas.NewTime(f.LastSeen),
		EventIDs:      f.EventIDs,
		Observed:      mustJSON(f.Observed),
		Baseline:      mustJSON(f.Baseline),
		Techniques:    e.meta[detector].Techniques,
		Status:        e.meta[detector].Status,
		Runbook:       e.meta[detector].Runbook,
		Shadow:        e.shadow[detector],
	}
	if a.EventIDs == nil {
		a.EventIDs = []string{}
	}
	a.Query, _ = schemas.EvidenceQuery("events", a.EventIDs, 0)
	if c := x.catalog; c != nil {
		a.Severity = schemas.AdjustSeverity(f.Severity, c.Criticality)
		a.Criticality, a.Owner, a.Purpose = c.Criticality, c.Owner, c.Purpose
	}
	return a, true
}

func mustJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Observed/Baseline are detector-built plain values; a failure is a bug
		// worth seeing in the alert rather than a lost alert.
		b, _ = json.Marshal(map[string]string{"marshal_error": err.Error()})
	}
	return b
}

func (e *Engine) newIntegration() *integration {
	// extra stays nil until the integration's first alert or catalog entry.
	n := len(e.detectors)
	if e.corr != nil {
		n++
	}
	in := &integration{states: make([]detect.State, n)}
	for i, d := range e.detectors {
		in.states[i] = d.NewState()
	}
	if e.corr != nil {
		in.states[len(e.detectors)] = e.corr.NewState()
	}
	return in
}

func (e *Engine) markDirty(k Key, in *integration) {
	if !in.dirty {
		in.dirty = true
		e.dirty = append(e.dirty, k)
	}
}

// Dirty returns the integrations changed since the last ClearDirty, sorted.
func (e *Engine) Dirty() []Key {
	out := append(make([]Key, 0, len(e.dirty)), e.dirty...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Tenant != out[j].Tenant {
			return out[i].Tenant < out[j].Tenant
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// ClearDirty forgets which integrations changed (after a checkpoint).
func (e *Engine) ClearDirty() {
	for _, k := range e.dirty {
		if in := e.ints[k]; in != nil {
			in.dirty = false
			in.seen.trim()
		}
	}
	// A big batch's list is let go rather than held (32 bytes a key) until
	// the next checkpoint; appends make it again as fast.
	if cap(e.dirty) > 4096 {
		e.dirty = nil
	} else {
		e.dirty = e.dirty[:0]
	}
}

// Evict moves integrations whose latest event is older than before, and that
// have no unsaved change, out of the live map into compressed snapshots. Call
// it after a checkpoint. Ticker detectors do not tick evicted integrations.
func (e *Engine) Evict(before time.Time) (n int) {
	cut := before.UnixMilli()
	for k, in := range e.ints {
		if in.dirty || in.last >= cut || (e.corr != nil && e.corr.Active(e.corrState(in))) {
			continue // an incident in progress stays live: it must tick
		}
		b, err := e.Snapshot(k)
		if err != nil {
			continue // stays live; the next checkpoint reports the error
		}
		if err := e.cold.put(k, b); err != nil {
			continue
		}
		delete(e.ints, k)
		n++
	}
	if err := e.cold.flush(); err != nil {
		// The dictionary could not be made: the held snapshots go back.
		for _, p := range e.cold.pending {
			if _, err := e.Restore(p.b); err == nil {
				n--
			}
		}
		e.cold.pending = nil
	}
	if n > 0 {
		e.changed()
		// A Go map never shrinks: after evicting most of it, copy what
		// stays so the emptied slots are freed; likewise the tick order.
		if n > len(e.ints) {
			ints := make(map[Key]*integration, len(e.ints))
			maps.Copy(ints, e.ints)
			e.ints, e.order = ints, nil
		}
	}
	return n
}

// Cold is how many integrations are evicted.
func (e *Engine) Cold() int { return len(e.cold.m) + len(e.cold.pending) }

// ColdBytes is the size of the evicted integrations' compressed snapshots.
func (e *Engine) ColdBytes() (n int) {
	for _, z := range e.cold.m {
		n += len(z)
	}
	return n
}

// thaw restores an evicted integration, or returns nil.
func (e *Engine) thaw(k Key) *integration {
	z, ok := e.cold.m[k]
	if !ok {
		return nil
	}
	delete(e.cold.m, k)
	b, err := e.cold.dec.DecodeAll([]byte(z), nil)
	if err != nil {
		return nil
	}
	if _, err := e.Restore(b); err != nil {
		return nil
	}
	return e.ints[k]
}

// coldStore holds evicted integrations' snapshots compressed with zstd and
// a dictionary made of the first snapshots this engine evicted. Snapshots
// of one detector set share most of their bytes (detector ids, state field
// names, a quiet profile's zeros, the tenant, id prefixes), which the
// dictionary makes nearly free: a quiet integration's snapshot (~2.5 KB)
// compressed to ~890 bytes alone and ~300 with the dictionary. The store
// never leaves the process, so the dictionary need not be stable across
// runs. Values are strings: 8 bytes less a map slot than a slice.
type coldStore struct {
	m       map[Key]string
	enc     *zstd.Encoder
	dec     *zstd.Decoder
	scratch []byte
	// pending holds the first evicted snapshots, uncompressed, until there
	// are enough of them to make the dictionary (or the Evict call ends).
	pending []coldEntry
	dict    int // bytes in pending
}

type coldEntry struct {
	k Key
	b []byte
}

// The dictionary is up to coldDictSamples snapshots, the first
// coldSampleMax bytes of each (a busy integration's snapshot can be large),
// coldDictMax in all. Measured on quiet integrations: one sample 334 B a
// snapshot, 16 samples 288 B.
const (
	coldDictSamples = 16
	coldSampleMax   = 4 << 10
	coldDictMax     = 32 << 10
)

func (c *coldStore) put(k Key, b []byte) error {
	if c.enc == nil && len(c.pending) < coldDictSamples && c.dict < coldDictMax {
		c.pending = append(c.pending, coldEntry{k, b})
		c.dict += min(len(b), coldSampleMax)
		return nil
	}
	if err := c.flush(); err != nil {
		return err
	}
	if c.m == nil {
		c.m = map[Key]string{}
	}
	c.scratch = c.enc.EncodeAll(b, c.scratch[:0])
	c.m[k] = string(c.scratch)
	return nil
}

// flush makes the dictionary from the pending snapshots, and stores them.
func (c *coldStore) flush() error {
	if c.enc != nil || len(c.pending) == 0 {
		return nil
	}
	dict := make([]byte, 0, c.dict)
	for _, p := range c.pending {
		dict = append(dict, p.b[:min(len(p.b), coldSampleMax, coldDictMax-len(dict))]...)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithEncoderDictRaw(1, dict))
	if err != nil {
		return fmt.Errorf("engine: cold store encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderDictRaw(1, dict))
	if err != nil {
		return fmt.Errorf("engine: cold store decoder: %w", err)
	}
	c.enc, c.dec = enc, dec
	pending := c.pending
	c.pending, c.dict = nil, 0
	for _, p := range pending {
		if err := c.put(p.k, p.b); err != nil {
			return err
		}
	}
	return nil
}

// Snapshot serialises one integration's state for a checkpoint: every
// detector's state by detector id (so adding or removing a detector keeps
// the others' state), the alert ids it already raised and its recent event
// ids, in the binary form of codec.go.
func (e *Engine) Snapshot(k Key) ([]byte, error) {
	in := e.ints[k]
	if in == nil {
		return nil, fmt.Errorf("engine: no state for %s/%s", k.Tenant, k.ID)
	}
	states := make([]stateBytes, 0, len(e.detectors)+1)
	for i, d := range e.detectors {
		b, err := in.states[i].MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("engine: snapshot %s of %s/%s: %w", d.ID(), k.Tenant, k.ID, err)
		}
		states = append(states, stateBytes{d.ID(), b})
	}
	if e.corr != nil {
		b, err := e.corrState(in).MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("engine: snapshot correlation of %s/%s: %w", k.Tenant, k.ID, err)
		}
		if string(b) != "{}" {
			states = append(states, stateBytes{correlateID, b})
		}
	}
	return encodeSnapshot(k.Tenant, k.ID, in.seen.marshal(), in.emitted(), states), nil
}

// Restore loads an integration's checkpoint (the binary form, or the JSON
// one checkpoints were written in before it), replacing any state held for
// it. A detector missing from the snapshot starts empty.
func (e *Engine) Restore(b []byte) (Key, error) {
	s, err := decodeSnapshot(b)
	if err != nil {
		return Key{}, fmt.Errorf("engine: restore: %w", err)
	}
	k := Key{unique.Make(s.tenant).Value(), s.id}
	in := e.newIntegration()
	for i, d := range e.detectors {
		if raw, ok := s.states[d.ID()]; ok {
			if err := in.states[i].UnmarshalBinary(raw); err != nil {
				return k, fmt.Errorf("engine: restore %s of %s/%s: %w", d.ID(), k.Tenant, k.ID, err)
			}
		}
	}
	if raw, ok := s.states[correlateID]; ok && e.corr != nil {
		if err := e.corrState(in).UnmarshalBinary(raw); err != nil {
			return k, fmt.Errorf("engine: restore correlation of %s/%s: %w", k.Tenant, k.ID, err)
		}
	}
	if s.emitted != nil {
		in.extra = &extra{emitted: s.emitted}
	}
	if err := in.seen.unmarshal(s.seen); err != nil {
		return k, fmt.Errorf("engine: restore %s/%s: %w", k.Tenant, k.ID, err)
	}
	// Its latest event, for eviction: without it a restored integration
	// looks idle since 1970 and the next Evict takes it whatever its use.
	in.last = in.seen.latest()
	e.restoredUpTo = max(e.restoredUpTo, in.last)
	if old := e.ints[k]; old != nil && old.dirty {
		in.dirty = true // still listed in e.dirty
	}
	delete(e.cold.m, k) // an evicted copy is older: this one replaces it
	e.ints[k] = in
	e.changed()
	return k, nil
}

// RestoredUpTo is the newest event of any integration restored so far: a
// restore that evicts as it reads (detect/stream) has no marker yet while it
// reads a partition's first checkpoint, and the marker, read later, is never
// behind it. Zero before any restore.
func (e *Engine) RestoredUpTo() time.Time {
	if e.restoredUpTo == 0 {
		return time.Time{}
	}
	return time.UnixMilli(e.restoredUpTo).UTC()
}

// SetWatermark restores the event-time watermark from a checkpoint.
func (e *Engine) SetWatermark(t time.Time) {
	if t.After(e.watermark) {
		e.watermark = t
	}
}
