package bench

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/googleworkspace"
	"github.com/tokenwatch/tokenwatch/ingest/publish"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
	"github.com/tokenwatch/tokenwatch/internal/platform/chtest"
)

// envInt reads a positive integer knob from the environment.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// stack is one benchmark run's infrastructure: an in-process Kafka broker
// (franz-go kfake, 4 partitions) with tokenwatch's topics and a config for
// it and a ClickHouse database of its own on srv.
type stack struct {
	cfg    config.Config
	broker *embedded.Broker
}

func newStack(tb testing.TB, ctx context.Context, srv *chtest.Server, database string) *stack {
	tb.Helper()
	b, err := embedded.Start(4, "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	cfg := config.Default()
	cfg.Kafka.Brokers = b.Addrs()
	cfg.HTTP.Listen = ""
	cfg.GeoIP.City, cfg.GeoIP.ASN = GeoIP()
	cfg.ClickHouse.Addr = []string{srv.TCPAddr}
	cfg.ClickHouse.Database = database
	cfg.Deliver.EventsToClickHouse = true
	if err := broker.EnsureTopics(ctx, cfg.Kafka, broker.AllTopics...); err != nil {
		tb.Fatal(err)
	}
	if _, err := clickhouse.Migrate(ctx, cfg.ClickHouse); err != nil {
		tb.Fatal(err)
	}
	return &stack{cfg: cfg, broker: b}
}

// start builds a pipeline on s and runs roles until the returned stop is called.
func (s *stack) start(tb testing.TB, ctx context.Context, roles ...string) (*wiring.Pipeline, func()) {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	p, closeFn, err := wiring.Build(ctx, s.cfg, log)
	if err != nil {
		tb.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx, roles) }()
	return p, func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
		closeFn()
	}
}

// e2eResult is one end-to-end run.
type e2eResult struct {
	events, alerts          int
	ingested, detected, all time.Duration   // from the first record to: all published, all detected, all events and alerts in ClickHouse
	latencies               []time.Duration // event → alert in ClickHouse, sorted
	incidents               []time.Duration // event → incident (first version) in ClickHouse, sorted
}

func (r e2eResult) rate() float64 { return float64(r.events) / r.all.Seconds() }

func (r e2eResult) pct(p float64) time.Duration { return pct(r.latencies, p) }

func pct(ls []time.Duration, p float64) time.Duration {
	if len(ls) == 0 {
		return 0
	}
	return ls[min(len(ls)-1, int(p*float64(len(ls))))]
}

// runE2E pushes w's raw records through ingest (normalize → publish to
// tokenwatch.events, as the ingest role does) at perSecond records/s (0: as
// fast as publishing goes) into a pipeline running the detect and deliver
// roles with the default config, and waits until ClickHouse holds every
// event and every alert the workload raises offline. Each alert's latency
// runs from its triggering record's arrival (its slot in the schedule; the
// batch's start when unpaced) to the moment it is first visible in the
// ClickHouse alerts table (polled every 25 ms).
func runE2E(b *testing.B, ctx context.Context, w *Workload, srv *chtest.Server, database string, perSecond float64) e2eResult {
	s := newStack(b, ctx, srv, database)
	p, stop := s.start(b, ctx, wiring.RoleDetect, wiring.RoleDeliver)
	defer stop()
	c, err := clickhouse.Open(ctx, s.cfg.ClickHouse)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	n := len(w.Records)
	arrival := make([]time.Time, n)
	var mu sync.Mutex
	seen := map[string]time.Time{}    // alert id → first seen in ClickHouse
	seenInc := map[string]time.Time{} // incident id → first seen
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		t := time.NewTicker(25 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-watchCtx.Done():
				return
			case <-t.C:
			}
			for _, q := range []struct {
				sql  string
				seen map[string]time.Time
			}{{"SELECT id FROM alerts", seen}, {"SELECT DISTINCT id FROM incidents", seenInc}} {
				rows, err := c.Conn().Query(watchCtx, q.sql)
				if err != nil {
					continue
				}
				now := time.Now()
				mu.Lock()
				for rows.Next() {
					var id string
					if rows.Scan(&id) == nil {
						if _, ok := q.seen[id]; !ok {
							q.seen[id] = now
						}
					}
				}
				mu.Unlock()
				rows.Close()
			}
		}
	}()

	pub := publish.New(s.cfg.Kafka)
	defer pub.Close()
	norm := googleworkspace.NewNormalizer("")
	start := time.Now()
	var res e2eResult
	ingested := make(chan time.Duration, 1)
	go func() {
		const maxBatch = 5000
		for sent := 0; sent < n; {
			due := n
			if perSecond > 0 {
				due = min(n, int(perSecond*time.Since(start).Seconds())+1)
				if due <= sent {
					time.Sleep(time.Millisecond)
					continue
				}
			}
			due = min(due, sent+maxBatch)
			now := time.Now()
			for i := sent; i < due; i++ {
				arrival[i] = now
				if perSecond > 0 {
					arrival[i] = start.Add(time.Duration(float64(i) / perSecond * float64(time.Second)))
				}
			}
			batch := ingest.NormalizeRecords(norm, "bench", w.Records[sent:due])
			if len(batch.Dead) > 0 {
				b.Errorf("dead letters: %s", batch.Dead[0].Reason)
			}
			if err := pub.Events(ctx, batch.Events); err != nil {
				b.Error(err)
				break
			}
			p.Stats.EventsPublished.Add(int64(len(batch.Events)))
			sent = due
		}
		ingested <- time.Since(start)
	}()
	deadline := time.Now().Add(15 * time.Minute)
	for {
		if res.detected == 0 && p.Stats.EventsDetected.Load() >= int64(n) {
			res.detected = time.Since(start)
		}
		mu.Lock()
		alerts, incidents := len(seen), len(seenInc)
		mu.Unlock()
		if p.Stats.EventsWritten.Load() >= int64(n) && alerts >= len(w.Trigger) && incidents >= len(w.IncidentTrigger) {
			res.all = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("after 15 min: %d of %d events written, %d detected, %d of %d alerts and %d of %d incidents in ClickHouse",
				p.Stats.EventsWritten.Load(), n, p.Stats.EventsDetected.Load(), alerts, len(w.Trigger), incidents, len(w.IncidentTrigger))
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.ingested = <-ingested
	stopWatch()
	<-watched
	var rows uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count() FROM events FINAL").Scan(&rows); err != nil || rows != uint64(n) {
		b.Fatalf("events table holds %d rows (%v), want %d", rows, err, n)
	}
	res.events, res.alerts = n, len(seen)
	// Each row's latency from the arrival of the record that raised it.
	latencies := func(what, verb string, seen map[string]time.Time, trigger map[string]int) []time.Duration {
		var out []time.Duration
		for id, at := range seen {
			i, ok := trigger[id]
			if !ok {
				b.Errorf("%s %s was not %s offline", what, id, verb)
				continue
			}
			out = append(out, at.Sub(arrival[i]))
		}
		slices.Sort(out)
		return out
	}
	res.latencies = latencies("alert", "raised", seen, w.Trigger)
	res.incidents = latencies("incident", "opened", seenInc, w.IncidentTrigger)
	return res
}

// BenchmarkEndToEnd measures the whole pipeline on this machine: raw Google
// Workspace records → normalize → tokenwatch.events (in-process broker) →
// detect role (enrich, every detector) → tokenwatch.alerts → deliver role →
// ClickHouse events and alerts tables (a throwaway clickhouse-server). First
// as fast as it goes (events/s: every event and alert in ClickHouse), then
// at half that rate for the event-to-alert and event-to-incident latency
// (from the record whose event raised the alert or opened the incident to
// the row's first sight in ClickHouse). TOKENWATCH_BENCH_REPLICAS
// (default 12, ~17.6k events each) sizes the input. Needs clickhouse-server.
//
//	go test -run '^$' -bench BenchmarkEndToEnd -benchtime 1x -timeout 60m ./internal/app/bench/
func BenchmarkEndToEnd(b *testing.B) {
	ctx := context.Background()
	srv := chtest.New(b)
	w, err := NewWorkload(envInt("TOKENWATCH_BENCH_REPLICAS", 12))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	full := runE2E(b, ctx, w, srv, "bench_max", 0)
	half := runE2E(b, ctx, w, srv, "bench_half", full.rate()/2)
	b.StopTimer()
	b.Logf("input: %d raw records, %d alerts", full.events, full.alerts)
	for _, r := range []struct {
		name string
		e2eResult
	}{{"max rate", full}, {"half rate", half}} {
		b.Logf("%-9s: %8.0f events/s end to end (ingest done %.1fs, detect done %.1fs, ClickHouse complete %.1fs); alert latency p50 %v p99 %v max %v over %d alerts; incident latency p50 %v p99 %v max %v over %d incidents",
			r.name, r.rate(), r.ingested.Seconds(), r.detected.Seconds(), r.all.Seconds(),
			r.pct(0.50).Round(time.Millisecond), r.pct(0.99).Round(time.Millisecond), r.pct(1).Round(time.Millisecond), len(r.latencies),
			pct(r.incidents, 0.50).Round(time.Millisecond), pct(r.incidents, 0.99).Round(time.Millisecond), pct(r.incidents, 1).Round(time.Millisecond), len(r.incidents))
	}
	b.ReportMetric(full.rate(), "events/s")
	b.ReportMetric(float64(half.pct(0.50).Milliseconds()), "p50-ms@half")
	b.ReportMetric(float64(half.pct(0.99).Milliseconds()), "p99-ms@half")
	b.ReportMetric(half.rate(), "events/s@half")
	b.ReportMetric(float64(pct(half.incidents, 0.99).Milliseconds()), "incident-p99-ms@half")
}
