package engine_test

import (
	"bytes"
	"reflect"
	"runtime"
	"sync"
	"syscall"
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

func TestBuildHonoursEnabledFalseAndRejectsUnknownIDs(t *testing.T) {
	all, err := buildDetectors(nil)
	if err != nil {
		t.Fatal(err)
	}
	var off yaml.Node
	yaml.Unmarshal([]byte("enabled: false"), &off)
	some, err := buildDetectors(map[string]yaml.Node{"volume.spike": *off.Content[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(some) != len(all)-1 {
		t.Fatalf("disabling one detector: %d of %d left", len(some), len(all))
	}
	for _, d := range some {
		if d.ID() == "volume.spike" {
			t.Fatal("volume.spike still built")
		}
	}
	if _, err := buildDetectors(map[string]yaml.Node{"geo.nope": {}}); err == nil {
		t.Fatal("unknown detector id accepted")
	}
}

// BenchmarkEnrichDetect measures the detection core: GeoIP enrichment plus
// every registered detector, per event, over the bundled scenario.
// The scenario is generated once per process (not once per b.N round, whose
// garbage would be collected inside the timed loop), and each event is copied
// into one reused variable (Enrich sets Geo; the input stays pristine) rather
// than a fresh heap copy per iteration, which measured the benchmark itself.
func BenchmarkEnrichDetect(b *testing.B) {
	evs := cachedScenarioEvents(b)
	g := enricher(b)
	dets, err := buildDetectors(nil)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	var e *engine.Engine
	var ev schemas.Event
	for i := 0; i < b.N; i++ {
		if i%len(evs) == 0 {
			e = engine.New(dets)
		}
		ev = evs[i%len(evs)]
		g.Enrich(&ev)
		e.Observe(&ev)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// On a shared machine wall time includes waiting for a core; CPU time
	// (every thread of the process, so GC included) is the per-core figure.
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var (
	scenarioOnce   sync.Once
	scenarioCached []schemas.Event
)

func cachedScenarioEvents(tb testing.TB) []schemas.Event {
	scenarioOnce.Do(func() { scenarioCached = scenarioEvents(tb) })
	if scenarioCached == nil {
		tb.Fatal("no scenario events")
	}
	return scenarioCached
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
