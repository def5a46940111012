// Package detecttest is the conformance suite every detector's test runs: a
// detector must be deterministic on replay, read no wall clock, leave events
// untouched, and keep everything it learns in a State that round-trips. It
// also holds small helpers to build test events and load a sample.yaml, and
// the scenario harness (RunScenarios).
//
// Unlike detect and its detectors, detecttest imports ingest: scenarios are
// written as the vendor records a detection engineer has in hand (an Okta
// System Log export, a GitHub audit log page), so the harness normalizes them
// with the source's own connector, as replay does. It is a test-only helper,
// linked into test binaries and never into tokenwatch, so data still flows
// one way in the product.
package detecttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"testing"
	"testing/synctest"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/engine"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Run replays events through d and fails t when d breaks the contract:
//   - two fresh engines over the same events give identical alerts and ids;
//   - the alerts do not depend on the wall clock (replays inside a
//     testing/synctest bubble, whose clock reads 2000-01-01 and then a year
//     later, match the real-clock replay);
//   - every state round-trips: a replay that marshals and unmarshals each
//     state before every event and tick raises the same findings as one that
//     never does;
//   - Observe does not modify the event.
//
// It returns the findings that became the engine's alerts, one per alert and
// in the same order, so the caller can assert keys and severities.
func Run(t *testing.T, d detect.Detector, events []schemas.Event) []detect.Finding {
	t.Helper()
	first := replay(d, events)
	if second := replay(d, events); !same(first, second) {
		t.Errorf("%s: second replay differs:\nfirst:  %s\nsecond: %s", d.ID(), dump(first), dump(second))
	}
	synctest.Test(t, func(t *testing.T) {
		early := replay(d, events)
		time.Sleep(366 * 24 * time.Hour) // advances only the bubble's fake clock
		late := replay(d, events)
		if !same(first, early) || !same(first, late) {
			t.Errorf("%s: alerts depend on the wall clock:\nreal clock: %s\nyear 2000:  %s\nyear 2001:  %s", d.ID(), dump(first), dump(early), dump(late))
		}
	})

	plain := runFindings(t, d, events, false)
	tripped := runFindings(t, d, events, true)
	if a, b := dump(plain), dump(tripped); a != b {
		t.Errorf("%s: findings change when state round-trips through MarshalBinary/UnmarshalBinary:\nkept:        %s\nround-trip: %s", d.ID(), a, b)
	}
	// The mirror runner below must agree with the engine, or the round-trip
	// check above proves nothing about real runs.
	var ids []string
	for _, a := range first {
		ids = append(ids, a.ID)
	}
	var mirror []string
	var raised []detect.Finding
	seen := map[string]bool{}
	for _, f := range plain {
		id := schemas.AlertID(d.ID(), f.tenant, f.integration, f.Key)
		if !seen[id] {
			seen[id] = true
			mirror = append(mirror, id)
			raised = append(raised, f.Finding)
		}
	}
	if fmt.Sprint(ids) != fmt.Sprint(mirror) {
		t.Errorf("%s: detecttest runner disagrees with engine: engine ids %v, runner ids %v", d.ID(), ids, mirror)
	}
	return raised
}

// replay runs events through a fresh engine, flushing at the last watermark as
// a file replay does.
func replay(d detect.Detector, events []schemas.Event) []schemas.Alert {
	e := engine.New([]detect.Detector{d})
	var out []schemas.Alert
	for i := range events {
		ev := events[i]
		out = append(out, e.Observe(&ev)...)
	}
	return append(out, e.Flush(e.Watermark())...)
}

type finding struct {
	tenant, integration string
	detect.Finding
}

// runFindings mirrors the engine's feeding and ticking (which keeps its
// states private) so states can be swapped for round-tripped copies.
func runFindings(t *testing.T, d detect.Detector, events []schemas.Event, roundTrip bool) []finding {
	t.Helper()
	type key struct{ tenant, id string }
	states := map[key]detect.State{}
	ticker, _ := d.(detect.Ticker)
	var out []finding
	trip := func(k key) {
		if !roundTrip {
			return
		}
		b, err := states[k].MarshalBinary()
		if err != nil {
			t.Fatalf("%s: MarshalBinary: %v", d.ID(), err)
		}
		fresh := d.NewState()
		if err := fresh.UnmarshalBinary(b); err != nil {
			t.Fatalf("%s: UnmarshalBinary(%s): %v", d.ID(), b, err)
		}
		states[k] = fresh
	}
	tick := func(wm time.Time) {
		if ticker == nil {
			return
		}
		keys := make([]key, 0, len(states))
		for k := range states {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if keys[i].tenant != keys[j].tenant {
				return keys[i].tenant < keys[j].tenant
			}
			return keys[i].id < keys[j].id
		})
		for _, k := range keys {
			trip(k)
			for _, f := range ticker.Tick(wm, states[k]) {
				out = append(out, finding{k.tenant, k.id, f})
			}
		}
	}
	var wm time.Time
	for i := range events {
		ev := events[i]
		before, _ := json.Marshal(ev)
		t0 := ev.Time.Time
		if wm.IsZero() {
			wm = t0
		} else if t0.After(wm) {
			if t0.Truncate(time.Hour).After(wm.Truncate(time.Hour)) {
				tick(t0.Truncate(time.Hour))
			}
			wm = t0
		}
		k := key{ev.Tenant, ev.Integration.ID}
		if states[k] == nil {
			states[k] = d.NewState()
		}
		trip(k)
		for _, f := range d.Observe(&ev, states[k]) {
			out = append(out, finding{k.tenant, k.id, f})
		}
		if after, _ := json.Marshal(ev); !bytes.Equal(before, after) {
			t.Fatalf("%s: Observe modified event %s:\nbefore: %s\nafter:  %s", d.ID(), ev.EventID, before, after)
		}
	}
	tick(wm)
	return out
}

func same(a, b []schemas.Alert) bool { return dump(a) == dump(b) }

func dump(v any) string {
	if fs, ok := v.([]finding); ok {
		type row struct {
			Tenant, Integration string
			detect.Finding
		}
		rows := make([]row, len(fs))
		for i, f := range fs {
			rows[i] = row{f.tenant, f.integration, f.Finding}
		}
		v = rows
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "marshal error: " + err.Error()
	}
	return string(b)
}

// Config returns a decode function for detector id's section of a sample.yaml
// (a map from detector id to its config), failing t when it is missing.
func Config(t testing.TB, sample []byte, id string) func(any) error {
	t.Helper()
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(sample, &doc); err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	node, ok := doc[id]
	if !ok {
		t.Fatalf("sample.yaml has no %q section", id)
	}
	return func(v any) error {
		// Strict decoding, so a typo in sample.yaml fails the test instead of
		// silently testing defaults.
		var buf bytes.Buffer
		if err := yaml.NewEncoder(&buf).Encode(&node); err != nil {
			return err
		}
		dec := yaml.NewDecoder(&buf)
		dec.KnownFields(true)
		return dec.Decode(v)
	}
}

// T0 is the start of every test timeline: a Monday, 00:00 UTC.
var T0 = time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)

// Event builds a successful access event by credential cred-1 of integration
// app-1 in tenant acme at T0+at; tests adjust the fields they care about.
func Event(id string, at time.Duration) schemas.Event {
	return schemas.Event{
		EventID:     id,
		Source:      "test",
		Tenant:      "acme",
		Time:        schemas.NewTime(T0.Add(at)),
		Integration: schemas.Integration{ID: "app-1", SourceAppID: "app-1", Name: "Acme Sync"},
		Credential:  schemas.Credential{Type: "oauth_token", ID: "cred-1"},
		Principal:   schemas.Principal{ID: "svc@acme.test", Type: "service_account"},
		Action:      schemas.Action{Name: "files.get", Category: schemas.CategoryAccess},
		Outcome:     "success",
	}
}

// Keys lists the findings' keys, for compact assertions.
func Keys(fs []detect.Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Key
	}
	return out
}

// ExpectKeys runs events through d (as Run does) and fails unless the
// findings' keys are want, in order, each at severity.
func ExpectKeys(t *testing.T, d detect.Detector, events []schemas.Event, want []string, severity schemas.Severity) {
	t.Helper()
	got := Run(t, d, events)
	if g := Keys(got); !slices.Equal(g, want) {
		t.Fatalf("keys = %v, want %v", g, want)
	}
	for _, f := range got {
		if f.Severity != severity {
			t.Errorf("severity = %s, want %s", f.Severity, severity)
		}
	}
}

// RoundTrip marshals st, restores it into a fresh state of d, checks that
// the restored state marshals to the same bytes, and returns it.
func RoundTrip(t *testing.T, d detect.Detector, st detect.State) detect.State {
	t.Helper()
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back := d.NewState()
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if b2, _ := back.MarshalBinary(); string(b) != string(b2) {
		t.Fatalf("round trip changed state:\n%s\n%s", b, b2)
	}
	return back
}
