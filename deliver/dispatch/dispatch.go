// Package dispatch is the deliver role's runtime: one consumer group per sink
// on tokenwatch.alerts (a broken sink only lags itself), routing, the
// delivered-id memory that survives restarts (tokenwatch.delivered), retries
// then dead letters (tokenwatch.alerts.deadletter) and redrive; and the
// ClickHouse writers of events and discovered integrations. Every consumer
// commits offsets only after its output is durable, so a crash re-reads
// rather than loses.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"
	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// ClickHouseAlertSink is the name of the built-in sink that writes every alert
// to the ClickHouse alerts table (routing never filters it: it is the record).
const ClickHouseAlertSink = "clickhouse-alerts"

// Enricher adds context to an event before it is written (the detect
// program's GeoIP and catalog).
type Enricher interface{ Enrich(ev *schemas.Event) }

// Stats counts what went through, for the demo's progress and tests.
type Stats struct {
	EventsWritten atomic.Int64
	mu            sync.Mutex
	delivered     map[string]int64
	deadAlerts    map[string]int64
	incidents     map[string]int64
	deadIncidents map[string]int64
}

// Incidents returns how many incident versions sink has delivered (for
// clickhouse-incidents: written).
func (s *Stats) Incidents(sink string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.incidents[sink]
}

// DeadIncidents returns how many incident versions sink dead-lettered.
func (s *Stats) DeadIncidents(sink string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadIncidents[sink]
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

// Role delivers alerts to sinks and events to ClickHouse.
type Role struct {
	cfg   Config
	kafka broker.Config
	ch    *clickhouse.Client // nil without ClickHouse
	enr   Enricher           // nil: events are written as consumed
	log   *slog.Logger
	km    *broker.Metrics
	m     *Metrics
	Stats Stats
	// OnSink, when set, is told of each configured sink as Sinks builds it,
	// before the rate limit and breaker wrap it: the wiring links a sink
	// to what else uses it (respond.slack's approval buttons).
	OnSink func(name string, s deliver.Sink)
}

// New returns the role. ch may be nil (no ClickHouse), enr too.
func New(cfg Config, kafkaCfg broker.Config, ch *clickhouse.Client, enr Enricher, m *Metrics, km *broker.Metrics, log *slog.Logger) *Role {
	return &Role{cfg: cfg, kafka: kafkaCfg, ch: ch, enr: enr, log: log, km: km, m: m}
}

// Sinks builds the configured sinks (each inside its rate limit and circuit
// breaker), plus the ClickHouse alerts table when ClickHouse is configured.
func (d *Role) Sinks() ([]deliver.Sink, error) {
	var out []deliver.Sink
	if d.ch != nil {
		out = append(out, clickhouse.NewAlertSink(ClickHouseAlertSink, d.ch))
	}
	for i, s := range d.cfg.Sinks {
		sink, err := deliver.New(s.Kind, s.Name, s.Decode)
		if err != nil {
			return nil, fmt.Errorf("deliver.sinks[%d] (%s): %w", i, s.Name, err)
		}
		if d.OnSink != nil {
			d.OnSink(s.Name, sink)
		}
		// Rate limit inside the breaker: waiting for a token is not a failure.
		if s.RateLimit.PerSecond > 0 {
			if sink, err = deliver.NewRateLimited(sink, s.RateLimit); err != nil {
				return nil, fmt.Errorf("deliver.sinks[%d].rate_limit: %w", i, err)
			}
		}
		open := d.m.breakerOpen
		if sink, err = deliver.NewBreaker(sink, s.Breaker, func(name, _, to string) {
			v := 0.0
			if to == "open" {
				v = 1
			}
			open.WithLabelValues(name).Set(v)
		}); err != nil {
			return nil, fmt.Errorf("deliver.sinks[%d].breaker: %w", i, err)
		}
		if s.Incidents != nil && *s.Incidents && !deliver.TakesIncidents(sink) {
			return nil, fmt.Errorf("deliver.sinks[%d].incidents: sink %s (kind %s) cannot deliver incidents as configured (see its README)", i, s.Name, s.Kind)
		}
		out = append(out, sink)
	}
	return out, nil
}

// sinkConfig returns the configured entry of the sink named name, nil for
// built-in and extra sinks.
func (d *Role) sinkConfig(name string) *SinkConfig {
	for i := range d.cfg.Sinks {
		if d.cfg.Sinks[i].Name == name {
			return &d.cfg.Sinks[i]
		}
	}
	return nil
}

// AlertsDefault is whether sink s gets alerts where routing leaves it to
// the sink: its deliver.sinks[].alerts, else true unless the sink pages a
// person (deliver.Pager: PagerDuty, Slack in bot mode), which gets
// incidents instead.
func (d *Role) AlertsDefault(s deliver.Sink) bool {
	if sc := d.sinkConfig(s.Name()); sc != nil && sc.Alerts != nil {
		return *sc.Alerts
	}
	return !deliver.Pages(s)
}

// IncidentsOn is whether sink s gets incidents: when it can deliver them
// (deliver.TakesIncidents) and deliver.sinks[].incidents is not false.
func (d *Role) IncidentsOn(s deliver.Sink) bool {
	if sc := d.sinkConfig(s.Name()); sc != nil && sc.Incidents != nil && !*sc.Incidents {
		return false
	}
	return deliver.TakesIncidents(s)
}

// Run delivers to the configured sinks and extra ones (the demo's console),
// and writes events to ClickHouse when configured, until ctx ends.
func (d *Role) Run(ctx context.Context, extra ...deliver.Sink) error {
	sinks, err := d.Sinks()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	start := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	for _, s := range append(sinks, extra...) {
		start("sink "+s.Name(), func(ctx context.Context) error { return d.RunSink(ctx, s) })
		if d.IncidentsOn(s) {
			start("incident sink "+s.Name(), func(ctx context.Context) error { return d.RunIncidentSink(ctx, s) })
		}
		if c, ok := s.(deliver.Closer); ok {
			defer c.Close()
		}
	}
	if d.ch != nil && d.cfg.EventsToClickHouse {
		start("clickhouse events", d.RunEventWriter)
	}
	if d.ch != nil {
		start(ClickHouseIncidentSink, d.RunIncidentWriter)
	}
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// AlertFilter is which alerts of tokenwatch.alerts sink s gets: the
// ClickHouse alerts table every one (it is the record); any other sink
// what routing sends it (deliver.Routes.AlertTo with the sink's
// AlertsDefault), and a shadow alert only if the sink is an archive
// (deliver.Archives): a detector on trial never reaches a person.
func (d *Role) AlertFilter(s deliver.Sink) func(schemas.Alert) bool {
	if s.Name() == ClickHouseAlertSink {
		return func(schemas.Alert) bool { return true }
	}
	alertsOn, archive := d.AlertsDefault(s), deliver.Archives(s)
	return func(a schemas.Alert) bool {
		if a.Shadow && !archive {
			return false
		}
		return d.cfg.Routes.AlertTo(s.Name(), a, alertsOn)
	}
}

// RunSink consumes tokenwatch.alerts in the sink's own consumer group, so a
// broken sink only lags itself. Alerts the routing table does not send to
// this sink (AlertFilter: routing, with the sink's AlertsDefault a paging
// sink gets alerts only where config asks for them; shadow alerts only
// to archives), and alerts it already delivered within deliver.dedup_window
// (remembered in tokenwatch.delivered across restarts), are skipped. Sinks
// that are not idempotent get one alert per send, so a retry never repeats an
// alert that went through. When retries are exhausted the alert goes to
// tokenwatch.alerts.deadletter with the error and the offsets move on.
func (d *Role) RunSink(ctx context.Context, s deliver.Sink) error {
	group := d.kafka.Group("sink-" + s.Name())
	delivered, err := loadDelivered(ctx, d.kafka, d.cfg.DedupWindow, s.Name())
	if err != nil {
		return err
	}
	r := broker.NewReader(d.kafka, schemas.TopicAlerts, group)
	defer r.Close()
	dead := broker.NewWriter(d.kafka, schemas.TopicAlertDeadLetter)
	defer dead.Close()
	marks := broker.NewWriter(d.kafka, schemas.TopicDelivered)
	defer marks.Close()
	log := d.log.With("component", "deliver", "sink", s.Name())
	wants := d.AlertFilter(s)
	idem, _ := s.(deliver.Idempotent)
	batchSends := idem != nil && idem.Idempotent()
	return broker.Consume(ctx, r, 500, d.cfg.FlushInterval, log, func(ctx context.Context, batch []kafka.Message) error {
		alerts := make([]schemas.Alert, 0, len(batch))
		var deadMsgs []kafka.Message
		for _, m := range batch {
			var a schemas.Alert
			if err := json.Unmarshal(m.Value, &a); err != nil {
				deadMsgs = append(deadMsgs, broker.DeadLetterMessage("decode", s.Name(), broker.Where(m), err.Error(), m.Value))
				continue
			}
			if !wants(a) {
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
		// Failures and dead letters are counted once the dead letters are
		// acknowledged: a batch whose dead-letter write fails (or whose
		// process dies first) is retried and may yet be delivered, and a
		// counted dead letter that never landed fires the loss alerts.
		failed, deadAlerts := 0, 0
		for _, g := range groups {
			if len(g) == 0 {
				continue
			}
			attempts, err := deliver.SendWithRetry(ctx, s, g, d.cfg.Retry)
			d.m.retries.WithLabelValues(s.Name()).Add(float64(attempts - 1))
			if err != nil {
				log.Error("sink failed, dead-lettering", "alerts", len(g), "attempts", attempts, "err", err)
				for _, a := range g {
					v, _ := json.Marshal(&a)
					deadMsgs = append(deadMsgs, broker.DeadLetterMessage("deliver", s.Name(), schemas.TopicAlerts, fmt.Sprintf("after %d attempts: %v", attempts, err), v))
				}
				failed++
				deadAlerts += len(g)
				continue
			}
			if err := delivered.mark(ctx, marks, g); err != nil {
				return err
			}
			d.Stats.add(&d.Stats.delivered, s.Name(), len(g))
			d.m.sent.WithLabelValues(s.Name()).Add(float64(len(g)))
		}
		if len(deadMsgs) > 0 {
			if err := dead.WriteMessages(ctx, deadMsgs...); err != nil {
				return fmt.Errorf("produce %d alert dead letters: %w", len(deadMsgs), broker.Condense(err))
			}
		}
		if deadAlerts > 0 {
			d.Stats.add(&d.Stats.deadAlerts, s.Name(), deadAlerts)
			d.m.failures.WithLabelValues(s.Name()).Add(float64(failed))
			d.m.deadLetters.WithLabelValues(s.Name()).Add(float64(deadAlerts))
		}
		d.km.ConsumerLag.WithLabelValues(group, schemas.TopicAlerts).Set(float64(r.Stats().Lag))
		return nil
	})
}

// RunEventWriter consumes tokenwatch.events in its own group and writes them,
// enriched, to the ClickHouse events table in batches. Decoding a batch
// overlaps the INSERT of the one before (broker.ConsumePipelined).
func (d *Role) RunEventWriter(ctx context.Context) error {
	if d.ch == nil {
		return fmt.Errorf("events writer: no ClickHouse configured")
	}
	group := d.kafka.Group("sink-clickhouse-events")
	r := broker.NewReader(d.kafka, schemas.TopicEvents, group)
	defer r.Close()
	dead := broker.NewWriter(d.kafka, schemas.TopicDeadLetter)
	defer dead.Close()
	log := d.log.With("component", "deliver", "sink", "clickhouse-events")
	lag := &committedLag{kafka: d.kafka, group: group, gauge: d.km.ConsumerLag.WithLabelValues(group, schemas.TopicEvents), every: 5 * time.Second}
	type decoded struct {
		evs  []schemas.Event
		dead []kafka.Message
	}
	// Batches' event slices (some 600 bytes an event) are reused once
	// written: the one being prepared and the two in flight.
	free := make(chan []schemas.Event, 3)
	prepare := func(batch []kafka.Message) decoded {
		var evs []schemas.Event
		select {
		case evs = <-free:
		default:
		}
		if cap(evs) < len(batch) {
			evs = make([]schemas.Event, 0, len(batch))
		}
		p := decoded{evs: evs[:0]}
		for _, m := range batch {
			p.evs = append(p.evs, schemas.Event{}) // decoded in place: no copy of the struct
			ev := &p.evs[len(p.evs)-1]
			if err := broker.DecodeEvent(m, ev); err != nil {
				p.evs = p.evs[:len(p.evs)-1]
				p.dead = append(p.dead, broker.DeadLetterMessage("decode", "clickhouse-events", broker.Where(m), err.Error(), m.Value))
				continue
			}
			if d.enr != nil {
				d.enr.Enrich(ev)
			}
		}
		return p
	}
	recycle := func(evs []schemas.Event) {
		clear(evs[:min(len(evs)+1, cap(evs))]) // and a failed decode's leftovers past the end
		select {
		case free <- evs[:0]:
		default:
		}
	}
	retrying := false // the previous attempt at this batch failed
	return broker.ConsumePipelined(ctx, r, d.cfg.BatchSize, d.cfg.FlushInterval, log, prepare, func(ctx context.Context, p decoded) error {
		if retrying {
			d.m.eventsRetries.Inc()
		}
		retrying = true // until this attempt succeeds
		// ClickHouse down: this errors and is retried, the bounded channels
		// stop the reading: backpressure, not loss.
		lag.measure(ctx) // before the write too, so an outage shows as lag
		skipped, err := d.ch.WriteNewEvents(ctx, p.evs)
		if err != nil {
			d.m.eventsFailures.Inc()
			return err
		}
		d.m.eventsDuplicates.Add(float64(skipped))
		if len(p.dead) > 0 {
			if err := dead.WriteMessages(ctx, p.dead...); err != nil {
				return err
			}
		}
		d.Stats.EventsWritten.Add(int64(len(p.evs))) // handled: written, or already stored
		d.m.eventsWritten.Add(float64(len(p.evs) - skipped))
		d.km.ConsumerLag.WithLabelValues(group, schemas.TopicEvents).Set(float64(r.Stats().Lag))
		retrying = false
		recycle(p.evs) // written: nothing holds it now (a retry would have reused it)
		return nil
	})
}

// RunIntegrations writes the integrations drain returns (those seen since
// the last call) to the ClickHouse integrations table every interval, and
// once more at shutdown.
func (d *Role) RunIntegrations(ctx context.Context, interval time.Duration, drain func() []clickhouse.IntegrationRow) error {
	if d.ch == nil {
		return fmt.Errorf("integrations writer: no ClickHouse configured")
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	flush := func(ctx context.Context) error {
		rows := drain()
		if len(rows) == 0 {
			return nil
		}
		// A failed write is not retried here: the next event of each
		// integration marks its row changed again.
		return d.ch.WriteIntegrations(ctx, rows)
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return flush(fctx)
		case <-t.C:
			if err := flush(ctx); err != nil {
				d.log.Warn("write discovered integrations", "err", err)
			}
		}
	}
}
