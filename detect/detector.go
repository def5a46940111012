// Package detect owns detection: the Detector contract and its registry, the
// Finding a detector returns, and (in sub-packages) the engine that runs
// detectors per integration on event time, shared baseline building blocks,
// and one folder per detector (detect/<family>/<name>). It must not import
// ingest or deliver.
package detect

import (
	"encoding"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// A Detector watches one integration's events in event-time order. It keeps
// nothing between calls: all it learns lives in the State it made, which the
// engine owns, snapshots and moves with the partition.
type Detector interface {
	// ID is stable ("geo.new_country") and part of every alert id.
	ID() string
	// NewState returns an empty baseline for a newly seen integration.
	NewState() State
	// Observe folds ev into st and returns what ev reveals. ev.Time is the only
	// clock: no time.Now, so replays are deterministic. ev is enriched (Geo set
	// when the IP resolved) and must not be modified.
	Observe(ev *schemas.Event, st State) []Finding
}

// Ticker is an optional power for detectors that fire on silence (dormancy,
// a closed window): the engine calls Tick as the event-time watermark advances.
type Ticker interface {
	Tick(watermark time.Time, st State) []Finding
}

// State is a detector's per-integration memory. It must round-trip through
// MarshalBinary/UnmarshalBinary exactly: the engine checkpoints it.
type State interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// Finding is what a detector reports; the engine turns it into a schemas.Alert
// with ID = schemas.AlertID(detector, tenant, integration, Key).
type Finding struct {
	// Key distinguishes findings of one detector for one integration (the new
	// country, the hour of the spike). Same key, same alert.
	Key      string
	Title    string
	Summary  string
	Severity schemas.Severity
	// Observed and Baseline explain the alert: what happened vs what is normal.
	Observed any
	Baseline any
	// EventIDs are the evidence, oldest first; FirstSeen/LastSeen span them.
	EventIDs  []string
	FirstSeen time.Time
	LastSeen  time.Time
}

// Meta describes a detection for the analyst and the engineer: what it maps
// to in MITRE ATT&CK, how to answer it, when it is benign, and how far it is
// trusted. Go detectors fill it in their Spec; a Sigma rule's comes from its
// tags, falsepositives, references and status.
type Meta struct {
	// Status is experimental, test or stable (Sigma's vocabulary).
	Status string
	// Techniques are ATT&CK technique ids ("T1078.004"), upper case.
	Techniques []string
	// Runbook: what to check, how to contain.
	Runbook        string
	FalsePositives []string
	References     []string
}

// Statuses a Meta may carry.
const (
	StatusExperimental = "experimental"
	StatusTest         = "test"
	StatusStable       = "stable"
)

// Described is implemented by detectors that carry their own Meta (a Sigma
// rule); the others' is their Spec's.
type Described interface {
	Meta() Meta
}

// MetaOf returns d's metadata: its own, else its registered Spec's (the
// zero Meta for an unregistered detector).
func MetaOf(d Detector) Meta {
	if m, ok := d.(Described); ok {
		return m.Meta()
	}
	s, err := Lookup(d.ID())
	if err != nil {
		return Meta{}
	}
	return s.Meta
}

// Spec registers a detector: its id, a one-line summary for the catalogue, and
// a constructor from its YAML config (decode fills the detector's config
// struct, already holding its defaults).
type Spec struct {
	ID      string
	Summary string
	New     func(decode func(any) error) (Detector, error)
	// KeyedBy is what the detector's state is keyed by; the zero value is
	// the integration (see Keying).
	KeyedBy Keying
	Meta    Meta
}

var (
	mu       sync.RWMutex
	registry = map[string]Spec{}
)

// Register adds a detector to the catalogue. Call it from init(); it panics on
// a duplicate or empty id.
func Register(s Spec) {
	mu.Lock()
	defer mu.Unlock()
	if s.ID == "" || s.New == nil {
		panic("detect: Register needs an ID and a constructor")
	}
	if _, dup := registry[s.ID]; dup {
		panic("detect: duplicate detector " + s.ID)
	}
	registry[s.ID] = s
}

// Specs lists registered detectors sorted by id.
func Specs() []Spec {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Spec, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Lookup returns the spec registered under id.
func Lookup(id string) (Spec, error) {
	mu.RLock()
	defer mu.RUnlock()
	s, ok := registry[id]
	if !ok {
		ids := make([]string, 0, len(registry))
		for k := range registry {
			ids = append(ids, k)
		}
		sort.Strings(ids)
		return Spec{}, fmt.Errorf("unknown detector %q (known: %v)", id, ids)
	}
	return s, nil
}
