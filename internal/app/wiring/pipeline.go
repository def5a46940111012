// Package pipeline wires the stages into tokenwatch's long-running roles over
// Kafka: ingest (raw records → tokenwatch.events / tokenwatch.deadletter),
// detect (events → enrich → detectors → tokenwatch.alerts) and deliver (one
// consumer group per sink on tokenwatch.alerts, plus the ClickHouse events
// writer on tokenwatch.events). Each role commits offsets only after its
// output is durable, so a crash re-reads rather than loses.
package wiring

import (
	"context"
	"fmt"
	json "github.com/goccy/go-json"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/chain/sharedip"
	"github.com/tokenwatch/tokenwatch/enrich"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/enrich/inventory"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/cursor"
	"github.com/tokenwatch/tokenwatch/ingest/publish"
	"github.com/tokenwatch/tokenwatch/ingest/push"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Stats counts what went through, for the demo's progress and tests.
type Stats struct {
	EventsPublished atomic.Int64
	DeadLetters     atomic.Int64
	EventsDetected  atomic.Int64
	AlertsProduced  atomic.Int64
	EventsWritten   atomic.Int64
	mu              sync.Mutex
	delivered       map[string]int64
	deadAlerts      map[string]int64
}

// Delivered returns how many alerts sink has delivered.
func (s *Stats) Delivered(sink string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered[sink]
}

// DeadAlerts returns how many alerts sink dead-lettered.
func (s *Stats) DeadAlerts(sink string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadAlerts[sink]
}

func (s *Stats) add(m *map[string]int64, sink string, n int) {
	s.mu.Lock()
	if *m == nil {
		*m = map[string]int64{}
	}
	(*m)[sink] += int64(n)
	s.mu.Unlock()
}

// Pipeline holds what the roles share.
type Pipeline struct {
	Cfg      config.Config
	Log      *slog.Logger
	Enricher enrich.Enricher
	// Inventory maps source app ids to catalog integrations; the ingest role
	// applies it before keying events so one catalog integration is one
	// partition whatever SaaS app reported it. Nil without a catalog.
	Inventory *inventory.Enricher
	// SharedIP is the IP-keyed stage's detector; nil when disabled.
	SharedIP  *sharedip.Detector
	Discovery *inventory.Discovery
	Detectors []detect.Detector
	CH        *clickhouse.Client // nil without ClickHouse
	Stats     Stats
	Metrics   *Metrics
	Registry  *prometheus.Registry
	push      *push.Handler // set by Run when push sources are configured
	geo       *geoip.Reloading
	pollOK    sync.Map // "source/tenant" → time.Time of the last completed poll
}

// ingestPublisher is what pollers and the push receiver publish through: the
// catalog mapping, counters, then Kafka (acknowledged before returning).
type ingestPublisher struct {
	p   *Pipeline
	pub *publish.Publisher
}

func (ip *ingestPublisher) Events(ctx context.Context, evs []schemas.Event) error {
	ip.p.MapInventory(evs)
	if err := ip.pub.Events(ctx, evs); err != nil {
		return err
	}
	ip.p.Stats.EventsPublished.Add(int64(len(evs)))
	for i := range evs {
		ip.p.Metrics.IngestEvents.WithLabelValues(evs[i].Source, evs[i].Tenant).Inc()
	}
	return nil
}

func (ip *ingestPublisher) DeadLetters(ctx context.Context, dls []schemas.DeadLetter) error {
	if err := ip.pub.DeadLetters(ctx, dls); err != nil {
		return err
	}
	ip.p.Stats.DeadLetters.Add(int64(len(dls)))
	for _, d := range dls {
		ip.p.Metrics.DeadLetters.WithLabelValues(d.Stage, d.Source).Inc()
	}
	return nil
}

// watchCursors publishes each poller's cursor age every 15 s: a stalled
// poller shows as a growing age.
func (p *Pipeline) watchCursors(ctx context.Context, store cursor.Store) {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		for _, pc := range p.Cfg.Ingest.Pollers {
			if c, ok, err := store.Load(ctx, pc.Source, pc.Tenant); err == nil && ok && !c.Time.IsZero() {
				p.Metrics.PollLag.WithLabelValues(pc.Source, pc.Tenant).Set(time.Since(c.Time).Seconds())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// IngestFile reads a raw file, normalizes it with the named source's
// normalizer and publishes events and dead letters. It returns once Kafka
// acknowledged both.
func (p *Pipeline) IngestFile(ctx context.Context, pub *publish.Publisher, n ingest.Normalizer, path string) error {
	recs, err := ingest.ReadFile(path)
	if err != nil {
		return err
	}
	b := ingest.NormalizeRecords(n, path, recs)
	ip := &ingestPublisher{p: p, pub: pub}
	if err := ip.Events(ctx, b.Events); err != nil {
		return err
	}
	if err := ip.DeadLetters(ctx, b.Dead); err != nil {
		return err
	}
	p.Log.Info("ingested file", "path", path, "source", n.Name(), "events", len(b.Events), "dead_letters", len(b.Dead))
	for _, d := range b.Dead {
		p.Log.Warn("dead-lettered record", "source", d.Source, "reason", d.Reason)
	}
	return nil
}

// RunSink consumes tokenwatch.alerts in the sink's own consumer group, so a
// broken sink only lags itself. Alerts the routing table does not send to
// this sink, and alerts it already delivered within deliver.dedup_window
// (remembered in tokenwatch.delivered across restarts), are skipped. Sinks
// that are not idempotent get one alert per send, so a retry never repeats an
// alert that went through. When retries are exhausted the alert goes to
// tokenwatch.alerts.deadletter with the error and the offsets move on.
func (p *Pipeline) RunSink(ctx context.Context, s deliver.Sink) error {
	group := p.Cfg.Kafka.Group("sink-" + s.Name())
	delivered, err := loadDelivered(ctx, p.Cfg, s.Name())
	if err != nil {
		return err
	}
	r := broker.NewReader(p.Cfg.Kafka, schemas.TopicAlerts, group)
	defer r.Close()
	dead := broker.NewWriter(p.Cfg.Kafka, schemas.TopicAlertDeadLetter)
	defer dead.Close()
	marks := broker.NewWriter(p.Cfg.Kafka, schemas.TopicDelivered)
	defer marks.Close()
	log := p.Log.With("component", "deliver", "sink", s.Name())
	routed := len(p.Cfg.Deliver.Routes) > 0 && s.Name() != ClickHouseAlertSink
	idem, _ := s.(deliver.Idempotent)
	batchSends := idem != nil && idem.Idempotent()
	return broker.Consume(ctx, r, 500, p.Cfg.Deliver.FlushInterval, log, func(ctx context.Context, batch []kafka.Message) error {
		alerts := make([]schemas.Alert, 0, len(batch))
		var deadMsgs []kafka.Message
		for _, m := range batch {
			var a schemas.Alert
			if err := json.Unmarshal(m.Value, &a); err != nil {
				deadMsgs = append(deadMsgs, deadLetterMessage("decode", s.Name(), fmt.Sprintf("%s[%d]@%d", m.Topic, m.Partition, m.Offset), err.Error(), m.Value))
				continue
			}
			if routed && !slices.Contains(p.Cfg.Deliver.Routes.SinksFor(a, a.Criticality), s.Name()) {
				continue
			}
			if delivered.has(a.ID) {
				continue
			}
			alerts = append(alerts, a)
		}
		groups := [][]schemas.Alert{alerts}
		if !batchSends {
			groups = groups[:0]
			for i := range alerts {
				groups = append(groups, alerts[i:i+1])
			}
		}
		for _, g := range groups {
			if len(g) == 0 {
				continue
			}
			attempts, err := deliver.SendWithRetry(ctx, s, g, p.Cfg.Deliver.Retry)
			p.Metrics.SinkRetries.WithLabelValues(s.Name()).Add(float64(attempts - 1))
			if err != nil {
				log.Error("sink failed, dead-lettering", "alerts", len(g), "attempts", attempts, "err", err)
				for _, a := range g {
					v, _ := json.Marshal(&a)
					deadMsgs = append(deadMsgs, deadLetterMessage("deliver", s.Name(), schemas.TopicAlerts, fmt.Sprintf("after %d attempts: %v", attempts, err), v))
				}
				p.Stats.add(&p.Stats.deadAlerts, s.Name(), len(g))
				p.Metrics.SinkFailures.WithLabelValues(s.Name()).Inc()
				p.Metrics.SinkDeadLetters.WithLabelValues(s.Name()).Add(float64(len(g)))
				continue
			}
			if err := delivered.mark(ctx, marks, g); err != nil {
				return err
			}
			p.Stats.add(&p.Stats.delivered, s.Name(), len(g))
			p.Metrics.SinkSent.WithLabelValues(s.Name()).Add(float64(len(g)))
		}
		if len(deadMsgs) > 0 {
			if err := dead.WriteMessages(ctx, deadMsgs...); err != nil {
				return fmt.Errorf("produce %d alert dead letters: %w", len(deadMsgs), broker.Condense(err))
			}
		}
		p.Metrics.ConsumerLag.WithLabelValues(group, schemas.TopicAlerts).Set(float64(r.Stats().Lag))
		return nil
	})
}

// RunEventWriter consumes tokenwatch.events in its own group and writes them,
// enriched, to the ClickHouse events table in batches.
func (p *Pipeline) RunEventWriter(ctx context.Context) error {
	if p.CH == nil {
		return fmt.Errorf("events writer: no ClickHouse configured")
	}
	r := broker.NewReader(p.Cfg.Kafka, schemas.TopicEvents, p.Cfg.Kafka.Group("sink-clickhouse-events"))
	defer r.Close()
	dead := broker.NewWriter(p.Cfg.Kafka, schemas.TopicDeadLetter)
	defer dead.Close()
	log := p.Log.With("component", "deliver", "sink", "clickhouse-events")
	return broker.Consume(ctx, r, p.Cfg.Deliver.BatchSize, p.Cfg.Deliver.FlushInterval, log, func(ctx context.Context, batch []kafka.Message) error {
		evs := make([]schemas.Event, 0, len(batch))
		var deadMsgs []kafka.Message
		for _, m := range batch {
			var ev schemas.Event
			if err := json.Unmarshal(m.Value, &ev); err != nil {
				deadMsgs = append(deadMsgs, deadLetterMessage("decode", "clickhouse-events", fmt.Sprintf("%s[%d]@%d", m.Topic, m.Partition, m.Offset), err.Error(), m.Value))
				continue
			}
			if p.Enricher != nil {
				p.Enricher.Enrich(&ev)
			}
			evs = append(evs, ev)
		}
		// ClickHouse down: this errors, Consume retries the same batch, and the
		// bounded fetch channel stops reading: backpressure, not loss.
		if err := p.CH.WriteEvents(ctx, evs); err != nil {
			return err
		}
		if len(deadMsgs) > 0 {
			if err := dead.WriteMessages(ctx, deadMsgs...); err != nil {
				return err
			}
		}
		p.Stats.EventsWritten.Add(int64(len(evs)))
		p.Metrics.EventsWritten.Add(float64(len(evs)))
		p.Metrics.ConsumerLag.WithLabelValues(p.Cfg.Kafka.Group("sink-clickhouse-events"), schemas.TopicEvents).Set(float64(r.Stats().Lag))
		return nil
	})
}

func deadLetterMessage(stage, source, input, reason string, record []byte) kafka.Message {
	d := schemas.NewDeadLetter(stage, source, input, reason, record)
	v, _ := json.Marshal(&d)
	return kafka.Message{Key: []byte(source), Value: v, Headers: []kafka.Header{
		broker.Header(broker.HeaderSource, source), broker.Header(broker.HeaderReason, reason)}}
}

// MapInventory applies the catalog to events before they are keyed.
func (p *Pipeline) MapInventory(evs []schemas.Event) {
	if p.Inventory == nil {
		return
	}
	for i := range evs {
		p.Inventory.Enrich(&evs[i])
	}
}

// RunDiscovery writes integrations seen by this process's detect role to the
// ClickHouse integrations table every interval (and once more at shutdown).
func (p *Pipeline) RunDiscovery(ctx context.Context) error {
	t := time.NewTicker(p.Cfg.Inventory.DiscoveryInterval)
	defer t.Stop()
	flush := func(ctx context.Context) error {
		rows := p.Discovery.Drain()
		if len(rows) == 0 {
			return nil
		}
		out := make([]clickhouse.IntegrationRow, len(rows))
		for i, r := range rows {
			out[i] = clickhouse.IntegrationRow(r)
		}
		// A failed write is not retried here: the next event of each
		// integration marks its row changed again.
		return p.CH.WriteIntegrations(ctx, out)
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return flush(fctx)
		case <-t.C:
			if err := flush(ctx); err != nil {
				p.Log.Warn("write discovered integrations", "err", err)
			}
		}
	}
}

// ClickHouseAlertSink is the name of the built-in sink that writes every alert
// to the ClickHouse alerts table (routing never filters it: it is the record).
const ClickHouseAlertSink = "clickhouse-alerts"

// WaitFor polls cond every 50 ms until it holds or timeout passes.
func WaitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
