package program_test

import (
	"bytes"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/ingest"
	_ "github.com/tokenwatch/tokenwatch/ingest/all"
	"github.com/tokenwatch/tokenwatch/internal/app/scenario"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// BenchmarkEnrichDetect measures the detection core as every path runs it:
// the detect program (GeoIP and catalog enrichment, every enabled detector,
// the re-keyed source-IP stage) per event, in one goroutine, over the bundled
// scenario. The scenario is normalized once per process (not per b.N round,
// whose garbage would be collected inside the timed loop), and each event is
// copied into one reused variable (enrichment sets Geo; the input stays
// pristine) rather than a fresh heap copy per iteration.
func BenchmarkEnrichDetect(b *testing.B) {
	evs := cachedScenarioEvents(b)
	p, err := program.Build(program.Config{GeoIP: geoip.Config{City: "../../testdata/geoip/test-city.mmdb", ASN: "../../testdata/geoip/test-asn.mmdb"}}, program.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	runtime.GC()
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	var r *program.Replay
	var ev schemas.Event
	for i := 0; i < b.N; i++ {
		if i%len(evs) == 0 {
			r = p.NewReplay()
		}
		ev = evs[i%len(evs)]
		r.Observe(&ev)
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
	scenarioOnce.Do(func() {
		s, err := scenario.Generate(scenario.DefaultOptions())
		if err != nil {
			tb.Fatal(err)
		}
		recs, err := ingest.ReadRecords(bytes.NewReader(s.Pages))
		if err != nil {
			tb.Fatal(err)
		}
		n, err := ingest.NewNormalizer("google_workspace", "")
		if err != nil {
			tb.Fatal(err)
		}
		scenarioCached = ingest.NormalizeRecords(n, "scenario", recs).Events
	})
	if scenarioCached == nil {
		tb.Fatal("no scenario events")
	}
	return scenarioCached
}
