// Package engine runs detectors: it keeps each integration's detector states,
// feeds them events in arrival order with event time as the only clock, ticks
// Ticker detectors as the event-time watermark crosses hour boundaries, and
// turns Findings into schemas.Alerts with deterministic ids. It owns no I/O;
// the pipeline feeds it from Kafka and replay feeds it from files.
package engine

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Engine holds per-integration state for a set of detectors. It is not safe
// for concurrent use: one engine serves one partition (or one replay).
type Engine struct {
	detectors []detect.Detector
	tickers   []int // indexes of detectors that implement detect.Ticker
	ints      map[integrationKey]*integration
	watermark time.Time
	// emitted remembers alert ids already returned, so a finding re-raised with
	// the same key (after a restore, say) is not a second alert.
	emitted map[string]struct{}
}

type integrationKey struct{ tenant, id string }

type integration struct {
	states []detect.State
}

// New builds an engine over detectors, in the order given.
func New(detectors []detect.Detector) *Engine {
	e := &Engine{detectors: detectors, ints: map[integrationKey]*integration{}, emitted: map[string]struct{}{}}
	for i, d := range detectors {
		if _, ok := d.(detect.Ticker); ok {
			e.tickers = append(e.tickers, i)
		}
	}
	return e
}

// Build constructs every registered detector, configured from cfg (detector id
// → YAML node). A detector whose node says `enabled: false` is left out.
// Unknown ids in cfg are an error.
func Build(cfg map[string]yaml.Node) ([]detect.Detector, error) {
	for id := range cfg {
		if _, err := detect.Lookup(id); err != nil {
			return nil, fmt.Errorf("detectors: %w", err)
		}
	}
	var out []detect.Detector
	for _, spec := range detect.Specs() {
		node, has := cfg[spec.ID]
		if has {
			var onOff struct {
				Enabled *bool `yaml:"enabled"`
			}
			if err := node.Decode(&onOff); err != nil {
				return nil, fmt.Errorf("detectors.%s: %w", spec.ID, err)
			}
			if onOff.Enabled != nil && !*onOff.Enabled {
				continue
			}
		}
		decode := func(v any) error {
			if !has {
				return nil
			}
			return node.Decode(v)
		}
		d, err := spec.New(decode)
		if err != nil {
			return nil, fmt.Errorf("detectors.%s: %w", spec.ID, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// Observe runs ev through every detector and returns the new alerts.
func (e *Engine) Observe(ev *schemas.Event) []schemas.Alert {
	var alerts []schemas.Alert
	t := ev.Time.Time
	if e.watermark.IsZero() {
		e.watermark = t
	} else if t.After(e.watermark) {
		if t.Truncate(time.Hour).After(e.watermark.Truncate(time.Hour)) {
			alerts = append(alerts, e.tick(t.Truncate(time.Hour))...)
		}
		e.watermark = t
	}
	k := integrationKey{ev.Tenant, ev.Integration.ID}
	in := e.ints[k]
	if in == nil {
		in = &integration{states: make([]detect.State, len(e.detectors))}
		for i, d := range e.detectors {
			in.states[i] = d.NewState()
		}
		e.ints[k] = in
	}
	for i, d := range e.detectors {
		for _, f := range d.Observe(ev, in.states[i]) {
			if a, ok := e.alert(d.ID(), k, f); ok {
				alerts = append(alerts, a)
			}
		}
	}
	return alerts
}

// Flush ticks every Ticker detector at watermark (end of input in a replay).
func (e *Engine) Flush(watermark time.Time) []schemas.Alert { return e.tick(watermark) }

// Watermark is the latest event time seen.
func (e *Engine) Watermark() time.Time { return e.watermark }

// Integrations is how many integrations the engine tracks.
func (e *Engine) Integrations() int { return len(e.ints) }

func (e *Engine) tick(wm time.Time) []schemas.Alert {
	if len(e.tickers) == 0 {
		return nil
	}
	keys := make([]integrationKey, 0, len(e.ints))
	for k := range e.ints {
		keys = append(keys, k)
	}
	// Map order is random; alerts must come out in a stable order.
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].tenant != keys[j].tenant {
			return keys[i].tenant < keys[j].tenant
		}
		return keys[i].id < keys[j].id
	})
	var alerts []schemas.Alert
	for _, k := range keys {
		in := e.ints[k]
		for _, i := range e.tickers {
			d := e.detectors[i]
			for _, f := range d.(detect.Ticker).Tick(wm, in.states[i]) {
				if a, ok := e.alert(d.ID(), k, f); ok {
					alerts = append(alerts, a)
				}
			}
		}
	}
	return alerts
}

func (e *Engine) alert(detector string, k integrationKey, f detect.Finding) (schemas.Alert, bool) {
	id := schemas.AlertID(detector, k.tenant, k.id, f.Key)
	if _, dup := e.emitted[id]; dup {
		return schemas.Alert{}, false
	}
	e.emitted[id] = struct{}{}
	a := schemas.Alert{
		ID:            id,
		Detector:      detector,
		Severity:      f.Severity,
		IntegrationID: k.id,
		Tenant:        k.tenant,
		Title:         f.Title,
		Summary:       f.Summary,
		FirstSeen:     schemas.NewTime(f.FirstSeen),
		LastSeen:      schemas.NewTime(f.LastSeen),
		EventIDs:      f.EventIDs,
		Observed:      mustJSON(f.Observed),
		Baseline:      mustJSON(f.Baseline),
	}
	if a.EventIDs == nil {
		a.EventIDs = []string{}
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
