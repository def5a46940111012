package engine_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/engine"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// quietIntegrations is how many integrations the memory benchmark tracks.
const quietIntegrations = 100_000

// quietOffsets are the event times of one quiet integration, from its first
// event: five calls over two hours, so the hourly detectors close an hour.
var quietOffsets = []time.Duration{0, 10 * time.Minute, 40 * time.Minute, 70 * time.Minute, 100 * time.Minute}

// quietIPs is a pool of addresses the test GeoIP databases resolve (the
// scenario's home networks), looked up before measuring so the enricher's
// cache is not counted.
func quietIPs() []string {
	prefixes := []string{"52.4.", "35.190.", "20.1.", "73.12.", "18.130.", "91.64.", "3.120.", "126.10.", "90.10."}
	var out []string
	for i := 0; i < 1024; i++ {
		out = append(out, prefixes[i%len(prefixes)]+strconv.Itoa(i/len(prefixes)%250+1)+"."+strconv.Itoa(i%200+10))
	}
	return out
}

// quietEvent is event k of integration i: an ordinary successful API call.
func quietEvent(ev *schemas.Event, g *geoip.Enricher, ips []string, start time.Time, i, k int) {
	id := fmt.Sprintf("%012d-q%06d.apps.googleusercontent.com", 100000000000+i, i)
	*ev = schemas.Event{
		EventID:     fmt.Sprintf("ev-%d-%d", i, k),
		Source:      "google_workspace",
		Tenant:      "C0bench",
		Time:        schemas.NewTime(start.Add(quietOffsets[k] + time.Duration(i%3600)*time.Second)),
		Integration: schemas.Integration{ID: id, SourceAppID: id, Name: "Quiet App " + strconv.Itoa(i%97)},
		Credential:  schemas.Credential{Type: "oauth_token", ID: "tok-" + strconv.Itoa(i)},
		Principal:   schemas.Principal{ID: "user" + strconv.Itoa(i%50) + "@example.com", Type: "user"},
		Action:      schemas.Action{Name: "drive.files.get", Category: schemas.CategoryAccess},
		TargetApp:   "drive",
		Resource:    schemas.Resource{Type: "file", ID: "file-" + strconv.Itoa(k)},
		Network:     schemas.Network{IP: ips[i%len(ips)], UserAgent: "google-api-go-client/0.5"},
		Outcome:     "success",
		Bytes:       4096,
	}
	g.Enrich(ev)
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// feedQuiet builds an engine over dets and feeds it quietIntegrations
// integrations of len(quietOffsets) events each, interleaved in time order,
// and returns it and the live heap it added (bytes).
func feedQuiet(tb testing.TB, dets []detect.Detector, g *geoip.Enricher, ips []string) (*engine.Engine, uint64) {
	start := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	before := heapInUse()
	e := engine.New(dets)
	var ev schemas.Event
	for k := range quietOffsets {
		for i := 0; i < quietIntegrations; i++ {
			quietEvent(&ev, g, ips, start, i, k)
			if a := e.Observe(&ev); len(a) > 0 {
				tb.Fatalf("a quiet integration raised %s: %s", a[0].Detector, a[0].Title)
			}
		}
	}
	// A checkpoint clears the dirty list; measure the state it leaves.
	e.ClearDirty()
	ev = schemas.Event{}
	after := heapInUse()
	if e.Integrations() != quietIntegrations {
		tb.Fatalf("tracking %d integrations, want %d", e.Integrations(), quietIntegrations)
	}
	if after < before {
		return e, 0
	}
	return e, after - before
}

// BenchmarkMemoryPerIntegration reports the live heap per tracked quiet
// integration (B/integration) with 100,000 integrations, five events each,
// through every detector; sub-benchmarks measure the engine alone (no
// detectors) and each detector's state alone. Run with -benchtime 1x.
func BenchmarkMemoryPerIntegration(b *testing.B) {
	g := enricher(b)
	ips := quietIPs()
	for _, ip := range ips {
		if g.Lookup(ip) == nil {
			b.Fatalf("test GeoIP does not resolve %s", ip)
		}
	}
	all, err := buildDetectors(nil)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, dets []detect.Detector) {
		var per float64
		for i := 0; i < b.N; i++ {
			e, bytes := feedQuiet(b, dets, g, ips)
			per = float64(bytes) / quietIntegrations
			runtime.KeepAlive(e)
		}
		b.ReportMetric(per, "B/integration")
	}
	b.Run("all", func(b *testing.B) { run(b, all) })
	// The same integrations once idle: evicted to compressed snapshots.
	b.Run("all_evicted", func(b *testing.B) {
		var per, z float64
		for i := 0; i < b.N; i++ {
			before := heapInUse()
			e, _ := feedQuiet(b, all, g, ips)
			if n := e.Evict(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)); n != quietIntegrations {
				b.Fatalf("evicted %d of %d", n, quietIntegrations)
			}
			after := heapInUse()
			per = float64(after-before) / quietIntegrations
			z = float64(e.ColdBytes()) / quietIntegrations
			runtime.KeepAlive(e)
		}
		b.ReportMetric(per, "B/integration")
		b.ReportMetric(z, "compressed-B/integration")
	})
	b.Run("engine_only", func(b *testing.B) { run(b, nil) })
	for _, d := range all {
		b.Run(d.ID(), func(b *testing.B) { run(b, []detect.Detector{d}) })
	}
}

// BenchmarkMillionIntegrations holds 1,000,000 quiet integrations (five
// events each, through every detector) the way the detect role does: fed
// in ten waves of 100,000, four hours of event time apart, each wave
// followed by a checkpoint (every changed integration snapshotted, to a
// file standing in for the state topic) and an eviction of the
// integrations idle for an hour. It reports the live heap holding them
// all (and the most held after any checkpoint, before its eviction), how long the checkpoints took, and how long a fresh engine takes to
// restore all 1,000,000 snapshots (evicting after each 100,000, so the
// restore also stays in bounds). Run with -benchtime 1x; it needs ~3 GB of
// disk for the snapshots and a few minutes.
func BenchmarkMillionIntegrations(b *testing.B) {
	const total, wave = 1_000_000, 100_000
	g := enricher(b)
	ips := quietIPs()
	dets, err := buildDetectors(nil)
	if err != nil {
		b.Fatal(err)
	}
	for n := 0; n < b.N; n++ {
		path := filepath.Join(b.TempDir(), "state")
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		base := heapInUse()
		e := engine.New(dets)
		var ev schemas.Event
		var checkpoint, evict time.Duration
		var written, peak uint64
		start := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
		for first := 0; first < total; first += wave {
			at := start.Add(time.Duration(first/wave) * 4 * time.Hour)
			for k := range quietOffsets {
				for i := first; i < first+wave; i++ {
					quietEvent(&ev, g, ips, at, i, k)
					if a := e.Observe(&ev); len(a) > 0 {
						b.Fatalf("a quiet integration raised %s: %s", a[0].Detector, a[0].Title)
					}
				}
			}
			t0 := time.Now()
			for _, k := range e.Dirty() {
				s, err := e.Snapshot(k)
				if err != nil {
					b.Fatal(err)
				}
				w.Write(binary.AppendUvarint(nil, uint64(len(s))))
				w.Write(s)
				written += uint64(len(s))
			}
			e.ClearDirty()
			checkpoint += time.Since(t0)
			// The most held at once: two waves live, the earlier ones cold.
			peak = max(peak, heapInUse()-base)
			t0 = time.Now()
			e.Evict(e.Watermark().Add(-time.Hour))
			evict += time.Since(t0)
		}
		ev = schemas.Event{}
		held := heapInUse() - base
		if got := e.Integrations() + e.Cold(); got != total {
			b.Fatalf("holding %d integrations, want %d", got, total)
		}
		live := e.Integrations()
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		runtime.KeepAlive(e)
		e = nil

		// Restore: a fresh engine reads every snapshot back.
		base = heapInUse()
		f, err = os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		r := bufio.NewReaderSize(f, 1<<20)
		re := engine.New(dets)
		var restore, revict time.Duration
		var buf []byte
		for i := 0; ; i++ {
			l, err := binary.ReadUvarint(r)
			if err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			buf = slices.Grow(buf[:0], int(l))[:l]
			if _, err := io.ReadFull(r, buf); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			if _, err := re.Restore(buf); err != nil {
				b.Fatal(err)
			}
			restore += time.Since(t0)
			if i%wave == wave-1 {
				t0 = time.Now()
				// As the detect role's restore does (detect/stream): what was
				// idle an hour at the newest restored event goes back cold, so
				// at most two waves are live, as before the restart.
				re.Evict(re.RestoredUpTo().Add(-time.Hour))
				revict += time.Since(t0)
			}
		}
		f.Close()
		restoredHeap := heapInUse() - base
		if got := re.Integrations() + re.Cold(); got != total {
			b.Fatalf("restored %d integrations, want %d", got, total)
		}
		runtime.KeepAlive(re)
		b.ReportMetric(float64(held)/(1<<20), "MiB-held")
		b.ReportMetric(float64(peak)/(1<<20), "MiB-peak")
		b.ReportMetric(float64(live), "live")
		b.ReportMetric(checkpoint.Seconds(), "s-checkpoint")
		b.ReportMetric(float64(written)/(1<<20), "MiB-checkpointed")
		b.ReportMetric(evict.Seconds(), "s-evict")
		b.ReportMetric(restore.Seconds(), "s-restore")
		b.ReportMetric(revict.Seconds(), "s-restore-evict")
		b.ReportMetric(float64(restoredHeap)/(1<<20), "MiB-restored")
		if held > 2<<30 || peak > 2<<30 {
			b.Errorf("1,000,000 integrations took %d MiB (peak %d MiB), over 2 GiB", held>>20, peak>>20)
		}
	}
}
