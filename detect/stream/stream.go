// Package stream is the detect role's runtime: it runs the detect program
// (detect/program) over Kafka. Each stage of the program reads its input
// topic in its own consumer group; for each partition it is assigned it
// restores that partition's state from the stage's state topic, resumes at
// the offset the state covers, and per batch: runs every record through the
// program, produces the alerts and re-keyed records (acknowledged), and every
// checkpoint interval writes the changed states and a marker to the state
// topic before committing the input offset. A crash therefore replays at most
// one checkpoint interval, on restored state, yielding the same alert ids;
// ClickHouse collapses them and sinks dedup on id. Idle integrations are
// evicted to compressed snapshots after a checkpoint.
package stream

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

	"github.com/tokenwatch/tokenwatch/detect/correlate"
	"github.com/tokenwatch/tokenwatch/detect/engine"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Config bounds the detect consumers' batches and checkpoints (the `detect:`
// section, beside detect.detectors).
type Config struct {
	// BatchSize and FlushInterval bound the detect consumer's batches.
	BatchSize     int           `yaml:"batch_size"`
	FlushInterval time.Duration `yaml:"flush_interval"`
	// CheckpointInterval is how often detector state is written to the state
	// topic and offsets committed: the most a crash replays.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// EvictIdle: an integration without events for this long (event time) is
	// moved out of the live state into a compressed snapshot after a
	// checkpoint, and restored on its next event.
	EvictIdle time.Duration `yaml:"evict_idle"`
}

// DefaultConfig is the detect role's default tuning.
func DefaultConfig() Config {
	return Config{BatchSize: 2000, FlushInterval: 50 * time.Millisecond, CheckpointInterval: 5 * time.Second, EvictIdle: 6 * time.Hour}
}

// Validate names the field at fault.
func (c Config) Validate() error {
	var errs []error
	if c.BatchSize < 1 {
		errs = append(errs, errors.New("detect.batch_size: must be at least 1"))
	}
	if c.EvictIdle <= 0 {
		errs = append(errs, errors.New("detect.evict_idle: must be a positive duration like 6h"))
	}
	if c.CheckpointInterval <= 0 {
		errs = append(errs, errors.New("detect.checkpoint_interval: must be a positive duration like 5s"))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, errors.New("detect.flush_interval: must be a positive duration like 50ms"))
	}
	return errors.Join(errs...)
}

// Stats counts what went through, for the demo's progress and tests.
type Stats struct {
	EventsDetected    atomic.Int64 // events (not re-keyed records) run through the program
	Duplicates        atomic.Int64 // records skipped because their event id was already seen
	AlertsProduced    atomic.Int64
	IncidentsProduced atomic.Int64 // incident versions
	DeadLetters       atomic.Int64 // inputs that could not be decoded

	mu     sync.Mutex
	latest map[string]int // incident id → highest version produced
}

// Incidents returns each incident id produced with its highest version.
func (s *Stats) Incidents() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.latest))
	for k, v := range s.latest {
		out[k] = v
	}
	return out
}

func (s *Stats) produced(id string, version int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.latest == nil {
		s.latest = map[string]int{}
	}
	s.latest[id] = max(s.latest[id], version)
}

// Role runs the program's stages over Kafka.
type Role struct {
	prog  *program.Program
	cfg   Config
	kafka broker.Config
	log   *slog.Logger
	km    *broker.Metrics
	m     *Metrics
	// OnEvent, when set, sees every enriched event of the integration stage
	// (the catalog's discovery of integrations). It must be safe for
	// concurrent use: partitions run in parallel.
	OnEvent func(ev *schemas.Event)
	Stats   Stats

	mu      sync.Mutex
	engines map[string]*engine.Engine // "stage/partition" → its engine, for the integrations gauge
}

// New returns the role. m are its metrics (NewMetrics), km the shared Kafka
// metrics.
func New(prog *program.Program, cfg Config, kafkaCfg broker.Config, m *Metrics, km *broker.Metrics, log *slog.Logger) *Role {
	return &Role{prog: prog, cfg: cfg, kafka: kafkaCfg, log: log, km: km, m: m, engines: map[string]*engine.Engine{}}
}

// Run runs every stage of the program until ctx ends.
func (r *Role) Run(ctx context.Context) error {
	// Analysts' decisions first, so a suppression holds from the first event.
	book := correlate.NewBook(nil)
	if err := loadDecisions(ctx, r.kafka, book); err != nil {
		return err
	}
	r.prog.SetDecisions(book)
	errc := make(chan error, len(r.prog.Stages))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.watchDecisions(ctx, book) }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.prog.WatchRules(ctx, r.log.With("component", "rules"), r.m.reloaded)
	}()
	for i := range r.prog.Stages {
		if i > 0 && len(r.prog.Stages[i].Detectors) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.runStage(ctx, i); err != nil {
				errc <- fmt.Errorf("%s: %w", r.prog.Stages[i].Name(), err)
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// markerKey is the state-topic key of a partition's checkpoint marker.
const markerKey = "\x00checkpoint"

// marker says which input offset the state in a state partition covers.
type marker struct {
	Offset    int64        `json:"offset"` // next input offset to process
	Watermark schemas.Time `json:"watermark"`
}

func (r *Role) runStage(ctx context.Context, si int) error {
	st := r.prog.Stages[si]
	group := r.kafka.Group(st.Name())
	n, err := broker.Partitions(ctx, r.kafka, st.Input())
	if err != nil {
		return err
	}
	if m, err := broker.Partitions(ctx, r.kafka, st.StateTopic()); err != nil || m < n {
		return fmt.Errorf("%s needs at least as many partitions as %s (%d): has %d (%v)", st.StateTopic(), st.Input(), n, m, err)
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: group, Brokers: r.kafka.Brokers, Topics: []string{st.Input()},
		HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
		JoinGroupBackoff: 500 * time.Millisecond, StartOffset: kafka.FirstOffset, WatchPartitionChanges: true,
	})
	if err != nil {
		return fmt.Errorf("consumer group: %w", err)
	}
	w := &writers{
		alerts:    broker.NewWriter(r.kafka, schemas.TopicAlerts),
		incidents: broker.NewWriter(r.kafka, schemas.TopicIncidents),
		state:     broker.NewWriter(r.kafka, st.StateTopic()),
		dead:      broker.NewWriter(r.kafka, schemas.TopicDeadLetter),
	}
	w.state.Balancer = broker.ExplicitPartition{}
	if si == 0 {
		for j := 1; j < len(r.prog.Stages); j++ {
			w.rekeyed = append(w.rekeyed, broker.NewWriter(r.kafka, r.prog.Stages[j].Input()))
		}
	}
	// Closing the group waits for the partition goroutines, which write
	// their last checkpoint: the writers must outlive them.
	defer func() { cg.Close(); w.close() }()
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			r.log.Warn(st.Name()+": join group", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		for _, a := range gen.Assignments[st.Input()] {
			part, committed := a.ID, a.Offset
			gen.Start(func(gctx context.Context) {
				// The generation's context ends at the next rebalance; ours at
				// shutdown. Either way the partition stops after a checkpoint.
				pctx, cancel := context.WithCancel(gctx)
				defer cancel()
				go func() {
					select {
					case <-ctx.Done():
						cancel()
					case <-pctx.Done():
					}
				}()
				pr := &partition{role: r, stage: si, st: st, gen: gen, part: part, w: w, group: group,
					log: r.log.With("component", st.Name(), "partition", part)}
				err := pr.run(pctx, committed)
				r.track(fmt.Sprintf("%d/%d", si, part), pr.runner)
				if err != nil && pctx.Err() == nil {
					pr.log.Error("partition stopped", "err", err)
				}
			})
		}
	}
}

// track records a partition's engine for the integrations gauge.
func (r *Role) track(key string, rn *program.Runner) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rn != nil {
		r.engines[key] = rn.Engine
	}
	total := 0
	for _, e := range r.engines {
		total += e.Integrations()
	}
	r.m.integrations.Set(float64(total))
}

type writers struct {
	alerts, incidents, state, dead *kafka.Writer
	rekeyed                        []*kafka.Writer // by stage index - 1
}

func (w *writers) close() {
	for _, x := range append([]*kafka.Writer{w.alerts, w.incidents, w.state, w.dead}, w.rekeyed...) {
		x.Close()
	}
}

type partition struct {
	role           *Role
	stage          int
	st             program.Stage
	gen            *kafka.Generation
	part           int
	w              *writers
	group          string
	log            *slog.Logger
	runner         *program.Runner
	next           int64 // next input offset to process
	lastCheckpoint time.Time
	// pending is what the batch in hand produced, kept until every record
	// of it is acknowledged: a retry sends it again instead of running the
	// batch again, which the engine would take for repeats (its event ids
	// are already in the state) and answer with nothing, losing the alerts
	// and re-keyed records of a batch whose produce failed.
	pending *output
	// ev is the record being decoded and run, reused from event to event:
	// nothing keeps the *Event past Process (detectors copy what they keep),
	// and a 600-byte heap event a record was a tenth of the collector's work.
	ev schemas.Event
}

// output is one batch's records for the topics after detect.
type output struct {
	end                int64 // offset after the batch's last record
	alerts, incs, dead []kafka.Message
	rekeyed            [][]kafka.Message
	raised             []schemas.Alert
	incIDs             []producedIncident
	events, dups       int64
}

type producedIncident struct {
	id      string
	version int
	status  string
}

func (p *partition) run(ctx context.Context, committed int64) error {
	r := p.role
	p.runner = r.prog.NewRunner(p.stage)
	mk, n, err := p.restore(ctx)
	if err != nil {
		return err
	}
	p.next = committed
	if mk != nil && mk.Offset > committed {
		// State was checkpointed after these records but the commit did not
		// land (crash or rebalance in between): the state already holds them.
		p.next = mk.Offset
	}
	if mk != nil {
		p.runner.Engine.SetWatermark(mk.Watermark.Time)
	}
	p.log.Info("partition assigned", "committed", committed, "resume", p.next, "restored_integrations", n)
	reader := broker.NewPartitionReader(r.kafka, p.st.Input(), p.part,
		kafka.LoggerFunc(func(msg string, args ...any) { p.log.Warn("partition reader: " + fmt.Sprintf(msg, args...)) }))
	defer reader.Close()
	start := p.next
	if start < 0 {
		start = kafka.FirstOffset
	}
	if err := reader.SetOffset(start); err != nil {
		return err
	}
	p.lastCheckpoint = time.Now()
	err = broker.Batches(ctx, reader.FetchMessage, r.cfg.BatchSize, r.cfg.FlushInterval, p.log, func(hctx context.Context, batch []kafka.Message) error {
		if err := p.handle(hctx, batch); err != nil {
			return err
		}
		r.km.ConsumerLag.WithLabelValues(p.group, p.st.Input()).Set(float64(reader.Lag()))
		if time.Since(p.lastCheckpoint) >= r.cfg.CheckpointInterval {
			if err := p.checkpoint(hctx); err != nil {
				return err
			}
			// Checkpoint-safe: state and offsets agree, nothing in flight, so
			// a crash from here replays with the new rules only.
			if p.runner.Refresh() {
				p.log.Info("rules reloaded", "offset", p.next)
			}
		}
		return nil
	})
	// Leaving the partition (shutdown or rebalance): checkpoint what was done.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if cerr := p.checkpoint(cctx); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// handle runs one batch through the program and produces its alerts and
// re-keyed records; it leaves committing to checkpoint. Records already
// covered by restored state are skipped. A retry of the same batch after a
// failed produce sends the output it computed the first time.
func (p *partition) handle(ctx context.Context, batch []kafka.Message) error {
	end := batch[len(batch)-1].Offset + 1
	if p.pending == nil || p.pending.end != end {
		p.pending = p.compute(batch)
	}
	if err := p.produce(ctx, p.pending); err != nil {
		return err
	}
	p.account(p.pending)
	p.pending = nil
	p.next = end
	return nil
}

// compute runs the batch's records through the runner.
func (p *partition) compute(batch []kafka.Message) *output {
	r := p.role
	start := time.Now()
	dups := p.runner.Engine.Duplicates()
	o := &output{end: batch[len(batch)-1].Offset + 1, events: int64(len(batch)), rekeyed: make([][]kafka.Message, len(p.w.rekeyed))}
	emit := func(j int, rec *schemas.Event) {
		m, err := broker.EventMessage(r.kafka.Encoding, []byte(rec.Tenant+"/"+rec.Integration.ID), rec)
		if err != nil {
			return
		}
		o.rekeyed[j-1] = append(o.rekeyed[j-1], m)
	}
	for _, m := range batch {
		if m.Offset < p.next {
			continue
		}
		ev := &p.ev
		*ev = schemas.Event{}
		if err := broker.DecodeEvent(m, ev); err != nil {
			o.dead = append(o.dead, broker.DeadLetterMessage("decode", p.st.Name(), broker.Where(m), err.Error(), m.Value))
			continue
		}
		as := p.runner.Process(ev, emit)
		if p.stage == 0 && r.OnEvent != nil {
			r.OnEvent(ev)
		}
		for _, a := range as {
			v, _ := json.Marshal(&a)
			o.alerts = append(o.alerts, kafka.Message{Key: []byte(a.Tenant + "/" + a.IntegrationID), Value: v})
		}
		o.raised = append(o.raised, as...)
		for _, inc := range p.runner.Engine.TakeIncidents() {
			v, _ := json.Marshal(&inc)
			o.incs = append(o.incs, kafka.Message{Key: []byte(inc.ID), Value: v})
			o.incIDs = append(o.incIDs, producedIncident{inc.ID, inc.Version, inc.Status})
		}
		r.m.lag.Observe(time.Since(m.Time).Seconds())
	}
	o.dups = p.runner.Engine.Duplicates() - dups
	r.m.batch.Observe(time.Since(start).Seconds())
	return o
}

// produce sends a batch's output and waits for the acknowledgements.
func (p *partition) produce(ctx context.Context, o *output) error {
	r := p.role
	if len(o.alerts) > 0 {
		t0 := time.Now()
		if err := p.w.alerts.WriteMessages(ctx, o.alerts...); err != nil {
			return fmt.Errorf("produce %d alerts: %w", len(o.alerts), broker.Condense(err))
		}
		r.km.ProduceSeconds.WithLabelValues(schemas.TopicAlerts).Observe(time.Since(t0).Seconds())
	}
	if len(o.incs) > 0 {
		// Incidents after the alerts they cite: a consumer can look them up.
		if err := p.w.incidents.WriteMessages(ctx, o.incs...); err != nil {
			return fmt.Errorf("produce %d incident versions: %w", len(o.incs), broker.Condense(err))
		}
	}
	if len(o.dead) > 0 {
		if err := p.w.dead.WriteMessages(ctx, o.dead...); err != nil {
			return fmt.Errorf("produce %d dead letters: %w", len(o.dead), broker.Condense(err))
		}
	}
	for j, msgs := range o.rekeyed {
		if len(msgs) > 0 {
			if err := p.w.rekeyed[j].WriteMessages(ctx, msgs...); err != nil {
				return fmt.Errorf("produce %d records to %s: %w", len(msgs), p.w.rekeyed[j].Topic, broker.Condense(err))
			}
		}
	}
	return nil
}

// account counts a batch once its output is acknowledged.
func (p *partition) account(o *output) {
	r := p.role
	if p.stage == 0 {
		// Events, not the re-keyed stages' records of them.
		r.Stats.EventsDetected.Add(o.events)
		r.m.events.Add(float64(o.events))
	}
	if o.dups > 0 {
		r.Stats.Duplicates.Add(o.dups)
		r.m.duplicates.Add(float64(o.dups))
	}
	r.Stats.AlertsProduced.Add(int64(len(o.alerts)))
	r.Stats.IncidentsProduced.Add(int64(len(o.incs)))
	for _, id := range o.incIDs {
		r.Stats.produced(id.id, id.version)
		r.m.incidents.WithLabelValues(id.status).Inc()
	}
	r.Stats.DeadLetters.Add(int64(len(o.dead)))
	r.km.DeadLetters.WithLabelValues("decode", p.st.Name()).Add(float64(len(o.dead)))
	for _, a := range o.raised {
		r.m.alerts.WithLabelValues(a.Detector, string(a.Severity)).Inc()
	}
}

// checkpoint writes every changed state and the partition's marker to the
// state topic (acknowledged), then commits the input offset. A failed commit
// is not an error: the marker already records the offset.
func (p *partition) checkpoint(ctx context.Context) error {
	if p.pending != nil {
		// Leaving with a batch whose output was not acknowledged: its
		// effects are in the state but not on the topics. No checkpoint: the
		// next owner restores the last one and runs the batch again.
		p.log.Warn("leaving without a checkpoint: the batch in hand was not produced", "from", p.next, "to", p.pending.end)
		return nil
	}
	e := p.runner.Engine
	dirty := e.Dirty()
	msgs := make([]kafka.Message, 0, len(dirty)+1)
	for _, k := range dirty {
		b, err := e.Snapshot(k)
		if err != nil {
			return err
		}
		msgs = append(msgs, kafka.Message{Partition: p.part, Key: []byte(k.Tenant + "/" + k.ID), Value: b})
	}
	mk, _ := json.Marshal(marker{Offset: p.next, Watermark: schemas.NewTime(e.Watermark())})
	msgs = append(msgs, kafka.Message{Partition: p.part, Key: []byte(markerKey), Value: mk})
	if err := p.w.state.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("checkpoint partition %d: %w", p.part, broker.Condense(err))
	}
	e.ClearDirty()
	e.Evict(e.Watermark().Add(-p.role.cfg.EvictIdle))
	p.lastCheckpoint = time.Now()
	if p.next >= 0 {
		if err := p.gen.CommitOffsets(map[string]map[int]int64{p.st.Input(): {p.part: p.next}}); err != nil {
			p.log.Warn("commit offset (state marker holds it)", "offset", p.next, "err", err)
		}
	}
	return nil
}

// restore reads the partition's state to its end and loads each
// integration's latest snapshot, and the latest marker. Snapshots are loaded
// as they are read (a later one for the same key replaces the earlier), not
// gathered first, and every restoreEvictEvery of them the restored
// integrations idle for evict_idle at the latest marker's watermark are
// evicted to the compressed store, as the checkpoint that wrote them did, so
// a partition of a million mostly idle integrations restores in the memory
// of their evicted form, not in their raw snapshots plus their live form
// (BENCHMARKS.md, 1,000,000 integrations). An
// unreadable snapshot is skipped; the key keeps an earlier one if it had one.
func (p *partition) restore(ctx context.Context) (*marker, int, error) {
	e := p.runner.Engine
	var mk *marker
	since := 0
	err := broker.ReadPartition(ctx, p.role.kafka, p.st.StateTopic(), p.part, func(m kafka.Message) {
		switch {
		case string(m.Key) == markerKey:
			var v marker
			if err := json.Unmarshal(m.Value, &v); err == nil {
				mk = &v
			}
		case m.Value == nil:
			// No writer deletes state today; a tombstone would drop the key.
			p.log.Warn("ignoring a state tombstone", "key", string(m.Key))
		default:
			if _, err := e.Restore(m.Value); err != nil {
				p.log.Warn("skipping unreadable state", "key", string(m.Key), "err", err)
				return
			}
			if since++; since == restoreEvictEvery {
				e.ClearDirty()
				e.Evict(restoredWatermark(e, mk).Add(-p.role.cfg.EvictIdle))
				since = 0
			}
		}
	})
	if err != nil {
		return nil, 0, fmt.Errorf("restore partition %d: %w", p.part, err)
	}
	e.ClearDirty()
	// What the last checkpoint before the restart left evicted is evicted
	// again: idle as long as evict_idle at its watermark.
	e.Evict(restoredWatermark(e, mk).Add(-p.role.cfg.EvictIdle))
	return mk, e.Integrations() + e.Cold(), nil
}

// restoredWatermark is the event time a restore has reached: the latest
// marker's watermark, or the newest restored event when that is later or no
// marker was read yet.
func restoredWatermark(e *engine.Engine, mk *marker) time.Time {
	if w := e.RestoredUpTo(); mk == nil || w.After(mk.Watermark.Time) {
		return w
	}
	return mk.Watermark.Time
}

// restoreEvictEvery bounds how many restored integrations are held live
// before they are evicted.
const restoreEvictEvery = 10_000
