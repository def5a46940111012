package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/publish"
	"github.com/tokenwatch/tokenwatch/internal/app/corpus"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
	"github.com/tokenwatch/tokenwatch/schemas"

	_ "github.com/tokenwatch/tokenwatch/ingest/all"
)

// BenchmarkIngest is what one ingest core does per source, to size pollers:
// normalize the vendor's raw records (the evaluation corpus's generator,
// written from each vendor's documented record shape) and, in the second
// sub-benchmark, produce the events to tokenwatch.events on the in-process
// broker and wait for its acknowledgement, in batches of a poller's page
// (500 records). An op is one raw record; events/s and events/cpu-s count
// the events produced (a record may make none or several). CPU time is the
// whole process's: with produce it includes the kafka-go writer and the
// in-process broker, so it is a conservative per-core figure.
//
//	go test -run '^$' -bench BenchmarkIngest -benchmem ./internal/app/bench/
func BenchmarkIngest(b *testing.B) {
	files := ingestCorpus(b)
	for _, f := range files {
		b.Run(f.source+"/normalize", func(b *testing.B) {
			n := f.normalizer(b)
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			events := 0
			for i := 0; i < b.N; i++ {
				evs, err := n.Normalize(f.recs[i%len(f.recs)].Data)
				if err != nil {
					b.Fatal(err)
				}
				events += len(evs)
			}
			report(b, events, cpu0)
		})
		b.Run(f.source+"/normalize+produce", func(b *testing.B) {
			n := f.normalizer(b)
			brk, err := embedded.Start(4, "")
			if err != nil {
				b.Fatal(err)
			}
			defer brk.Close()
			cfg := broker.DefaultConfig()
			cfg.Brokers = brk.Addrs()
			pub := publish.New(cfg)
			defer pub.Close()
			ctx := context.Background()
			// The first produce creates connections and learns the topic's
			// partitions: not what a running poller pays per page.
			if err := pub.Events(ctx, normalizeAll(b, n, f.recs[:1])); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			events := 0
			for lo := 0; lo < b.N; lo += pageRecords {
				var page []ingest.RawRecord
				for i := lo; i < min(lo+pageRecords, b.N); i++ {
					page = append(page, f.recs[i%len(f.recs)])
				}
				evs := normalizeAll(b, n, page)
				if err := pub.Events(ctx, evs); err != nil {
					b.Fatal(err)
				}
				events += len(evs)
			}
			report(b, events, cpu0)
		})
	}
}

// pageRecords is a poller page: the documented maximum page size of most
// of the audit APIs read is 100–1,000 records.
const pageRecords = 500

type ingestFile struct {
	source, tenant string
	recs           []ingest.RawRecord
}

// normalizer is f's connector's normalizer, shown every record first as
// the pollers do for a batch (ingest.Learn: Salesforce learns app ids).
func (f ingestFile) normalizer(tb testing.TB) ingest.Normalizer {
	n, err := ingest.NewNormalizer(f.source, f.tenant)
	if err != nil {
		tb.Fatal(err)
	}
	ingest.Learn(n, f.recs)
	return n
}

func normalizeAll(tb testing.TB, n ingest.Normalizer, recs []ingest.RawRecord) []schemas.Event {
	var out []schemas.Event
	for _, r := range recs {
		evs, err := n.Normalize(r.Data)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, evs...)
	}
	return out
}

func report(b *testing.B, events int, cpu0 time.Duration) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(events)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration { return rusageCPU(syscall.RUSAGE_SELF) }

// rusageCPU is the CPU time (user + system) getrusage reports for who
// (RUSAGE_SELF, or RUSAGE_CHILDREN: the children waited for).
func rusageCPU(who int) time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var (
	ingestOnce  sync.Once
	ingestFiles []ingestFile
	ingestErr   error
)

// ingestCorpus is a small evaluation corpus (60 integrations, 40 days),
// generated once: every source's records in its vendor's shape.
func ingestCorpus(tb testing.TB) []ingestFile {
	ingestOnce.Do(func() {
		opt := corpus.DefaultOptions()
		opt.Days, opt.Integrations = 40, 60
		c, err := corpus.Generate(opt)
		if err != nil {
			ingestErr = err
			return
		}
		for _, f := range c.Manifest.Files {
			zr, err := gzip.NewReader(bytes.NewReader(c.Data[f.Path]))
			if err != nil {
				ingestErr = err
				return
			}
			raw, err := io.ReadAll(zr)
			if err != nil {
				ingestErr = err
				return
			}
			recs, err := ingest.ReadRecords(bytes.NewReader(raw))
			if err != nil {
				ingestErr = err
				return
			}
			ingestFiles = append(ingestFiles, ingestFile{source: f.Source, tenant: f.Tenant, recs: recs})
		}
	})
	if ingestErr != nil {
		tb.Fatal(ingestErr)
	}
	return ingestFiles
}
