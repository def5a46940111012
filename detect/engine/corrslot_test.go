package engine_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/tokenwatch/tokenwatch/detect/correlate"
	"github.com/tokenwatch/tokenwatch/detect/engine"
)

// The correlator's state rides after the detectors' in each integration's
// states: a rule reload halfway (SetDetectors with the same detectors in
// the reverse order, then back) keeps it, and the incidents and snapshots come out as in
// the run without the reload.
func TestCorrelatorStateSurvivesSetDetectors(t *testing.T) {
	evs := scenarioEvents(t)
	dets, err := buildDetectors(nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(dets))
	for _, d := range dets {
		ids = append(ids, d.ID())
	}
	run := func(reload bool) (string, map[engine.Key]string) {
		cfg := correlate.DefaultConfig()
		cfg.Threshold = 40 // low, so the scenario's alerts open incidents and grow them
		c, err := correlate.New(cfg, ids)
		if err != nil {
			t.Fatal(err)
		}
		e := engine.New(dets)
		e.SetCorrelator(c)
		for i := range evs {
			if reload && i == len(evs)/2 {
				rev := slices.Clone(dets)
				slices.Reverse(rev)
				e.SetDetectors(rev)
			}
			e.Observe(&evs[i])
		}
		e.Flush(e.Watermark())
		if reload {
			e.SetDetectors(dets) // snapshots list states in detector order
		}
		incs, _ := json.Marshal(e.TakeIncidents())
		snaps := map[engine.Key]string{}
		for _, k := range e.Dirty() {
			b, err := e.Snapshot(k)
			if err != nil {
				t.Fatal(err)
			}
			snaps[k] = string(b)
		}
		return string(incs), snaps
	}
	wantInc, wantSnaps := run(false)
	gotInc, gotSnaps := run(true)
	if len(wantInc) < 10 {
		t.Fatalf("the scenario opened no incident: %s", wantInc)
	}
	if gotInc != wantInc {
		t.Errorf("incidents after a reload differ:\n%s\nwant\n%s", gotInc, wantInc)
	}
	if len(gotSnaps) != len(wantSnaps) {
		t.Fatalf("%d snapshots after a reload, want %d", len(gotSnaps), len(wantSnaps))
	}
	for k, want := range wantSnaps {
		if gotSnaps[k] != want {
			t.Errorf("%v: snapshot after a reload differs", k)
		}
	}
}
