package engine_test

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/engine"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/internal/app/scenario"
	"github.com/tokenwatch/tokenwatch/schemas"
	"gopkg.in/yaml.v3"

	_ "github.com/tokenwatch/tokenwatch/detect/all"
	"github.com/tokenwatch/tokenwatch/ingest/googleworkspace"
)

func scenarioEvents(tb testing.TB) []schemas.Event {
	tb.Helper()
	s, err := scenario.Generate(scenario.DefaultOptions())
	if err != nil {
		tb.Fatal(err)
	}
	recs, err := ingest.ReadRecords(bytesReader(s.Pages))
	if err != nil {
		tb.Fatal(err)
	}
	b := ingest.NormalizeRecords(googleworkspace.NewNormalizer(""), "scenario", recs)
	if len(b.Dead) > 0 {
		tb.Fatalf("dead letters: %v", b.Dead[0].Reason)
	}
	return b.Events
}

func enricher(tb testing.TB) *geoip.Enricher {
	g, err := geoip.Open("../../testdata/geoip/test-city.mmdb", "../../testdata/geoip/test-asn.mmdb", 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { g.Close() })
	return g
}

func TestSameInputSameAlertsAndIDs(t *testing.T) {
	evs := scenarioEvents(t)
	g := enricher(t)
	run := func() []schemas.Alert {
		dets, err := buildDetectors(nil)
		if err != nil {
			t.Fatal(err)
		}
		e := engine.New(dets)
		var out []schemas.Alert
		for i := range evs {
			ev := evs[i]
			g.Enrich(&ev)
			out = append(out, e.Observe(&ev)...)
		}
		return out
	}
	a, b := run(), run()
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatalf("runs differ or found nothing: %d vs %d alerts", len(a), len(b))
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func TestSnapshotRestoreMidStreamGivesTheSameAlerts(t *testing.T) {
	evs := scenarioEvents(t)
	g := enricher(t)
	for i := range evs {
		g.Enrich(&evs[i])
	}
	dets, _ := buildDetectors(nil)
	whole := engine.New(dets)
	var want []schemas.Alert
	for i := range evs {
		want = append(want, whole.Observe(&evs[i])...)
	}

	first := engine.New(dets)
	var got []schemas.Alert
	half := len(evs) * 9 / 10 // after the learning period, before the attack ends
	for i := range evs[:half] {
		got = append(got, first.Observe(&evs[i])...)
	}
	// Checkpoint, then a fresh engine (another instance, after a rebalance or
	// a crash) restores and goes on from the checkpoint's offset.
	second := engine.New(dets)
	for _, k := range first.Dirty() {
		b, err := first.Snapshot(k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := second.Restore(b); err != nil {
			t.Fatal(err)
		}
	}
	second.SetWatermark(first.Watermark())
	if second.Integrations() != first.Integrations() {
		t.Fatalf("restored %d of %d integrations", second.Integrations(), first.Integrations())
	}
	for i := range evs[half:] {
		got = append(got, second.Observe(&evs[half+i])...)
	}
	if len(got) != len(want) {
		t.Fatalf("restored run raised %d alerts, single run %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID {
			t.Fatalf("alert %d: %s vs %s", i, got[i].ID, want[i].ID)
		}
	}
}

func TestEvictedIntegrationsComeBackWithTheirBaselines(t *testing.T) {
	evs := scenarioEvents(t)
	g := enricher(t)
	for i := range evs {
		g.Enrich(&evs[i])
	}
	dets, _ := buildDetectors(nil)
	whole := engine.New(dets)
	var want []schemas.Alert
	for i := range evs {
		want = append(want, whole.Observe(&evs[i])...)
	}
	// Evict every integration idle for an hour after each "checkpoint" (every
	// 500 events): the attacked app is evicted many times over its 19 quiet
	// nights and must still carry its learned countries, networks and volumes.
	e := engine.New(dets)
	var got []schemas.Alert
	evicted := 0
	for i := range evs {
		got = append(got, e.Observe(&evs[i])...)
		if i%500 == 499 {
			e.ClearDirty()
			evicted += e.Evict(e.Watermark().Add(-time.Hour))
		}
	}
	if evicted < 100 || e.Cold() == 0 {
		t.Fatalf("evicted %d times, %d cold now: the test did not exercise eviction", evicted, e.Cold())
	}
	if len(got) != len(want) {
		t.Fatalf("with eviction %d alerts, without %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID {
			t.Fatalf("alert %d: %s vs %s", i, got[i].ID, want[i].ID)
		}
	}
}

// buildDetectors is the integration stage's detectors as the detect program
// builds them from cfg (the engine runs one stage).
func buildDetectors(cfg map[string]yaml.Node) ([]detect.Detector, error) {
	p, err := program.Build(program.Config{Detectors: cfg}, program.Options{})
	if err != nil {
		return nil, err
	}
	return p.Stages[0].Detectors, nil
}

// A restored integration keeps the time of its latest event, so eviction
// after a restart takes the idle ones only (as the process that wrote the
// checkpoint would have), and a restore of an evicted key replaces the
// evicted copy rather than holding both.
func TestRestoreKeepsLastEventForEviction(t *testing.T) {
	evs := scenarioEvents(t)
	dets, _ := buildDetectors(nil)
	e := engine.New(dets)
	last := map[engine.Key]time.Time{}
	for i := range evs {
		e.Observe(&evs[i])
		last[engine.Key{Tenant: evs[i].Tenant, ID: evs[i].Integration.ID}] = evs[i].Time.Time
	}
	wm := e.Watermark()
	cut := wm.Add(-time.Hour)
	var snaps [][]byte
	wantLive := 0
	for k, t0 := range last {
		b, err := e.Snapshot(k)
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, b)
		if !t0.Before(cut) {
			wantLive++
		}
	}
	if wantLive == 0 || wantLive == len(last) {
		t.Fatalf("%d of %d integrations active in the last hour: the test needs both kinds", wantLive, len(last))
	}
	r := engine.New(dets)
	for _, b := range snaps {
		if _, err := r.Restore(b); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.RestoredUpTo(); !got.Equal(wm.Truncate(time.Millisecond)) {
		t.Errorf("RestoredUpTo %v, want the newest event %v", got, wm)
	}
	r.Evict(cut)
	if r.Integrations() != wantLive || r.Cold() != len(last)-wantLive {
		t.Fatalf("after restore and evict: %d live, %d cold; want %d live (active in the last hour), %d cold",
			r.Integrations(), r.Cold(), wantLive, len(last)-wantLive)
	}
	// The same snapshots again (a key listed twice in the state topic):
	// each replaces what is held, live or evicted.
	for _, b := range snaps {
		if _, err := r.Restore(b); err != nil {
			t.Fatal(err)
		}
	}
	if r.Integrations() != len(last) || r.Cold() != 0 {
		t.Fatalf("after restoring again: %d live, %d cold; want %d live, 0 cold", r.Integrations(), r.Cold(), len(last))
	}
}
