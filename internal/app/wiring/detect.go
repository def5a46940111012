package wiring

import (
	"context"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/chain/sharedip"
	"github.com/tokenwatch/tokenwatch/detect/engine"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// markerKey is the state-topic key of a partition's checkpoint marker.
const markerKey = "\x00checkpoint"

// stage is one keyed detection pass: the integration-keyed detectors over
// tokenwatch.events, or chain.shared_ip over the IP-keyed sightings the first
// stage re-keys onto tokenwatch.ip_sightings. Each has its own consumer group
// and state topic, so state follows partitions the same way for both.
type stage struct {
	name, group  string
	input, state string
	detectors    []detect.Detector
	// sightings: re-key each event by IP onto tokenwatch.ip_sightings.
	sightings bool
}

func (p *Pipeline) mainStage() stage {
	return stage{name: "detect", group: p.Cfg.Kafka.Group("detect"), input: schemas.TopicEvents, state: schemas.TopicState,
		detectors: p.Detectors, sightings: p.SharedIP != nil}
}

// RunDetectIP runs the chain.shared_ip stage over tokenwatch.ip_sightings.
func (p *Pipeline) RunDetectIP(ctx context.Context) error {
	return p.runStage(ctx, stage{name: "detect-ip", group: p.Cfg.Kafka.Group("detect-ip"), input: schemas.TopicIPSightings,
		state: schemas.TopicStateIP, detectors: []detect.Detector{p.SharedIP}})
}

// marker says which events offset the state in a state partition covers.
type marker struct {
	Offset    int64        `json:"offset"` // next events offset to process
	Watermark schemas.Time `json:"watermark"`
}

// RunDetect runs the detect role in its consumer group until ctx ends. For
// each events partition it is assigned it restores that partition's detector
// state from tokenwatch.state, resumes at the offset the state covers, and
// per batch: enriches and detects, produces the alerts (acknowledged), and
// every checkpoint interval writes the changed states and a marker to
// tokenwatch.state before committing the events offset. A crash therefore
// replays at most one checkpoint interval, on restored state, yielding the
// same alert ids; ClickHouse collapses them and sinks dedup on id.
func (p *Pipeline) RunDetect(ctx context.Context) error { return p.runStage(ctx, p.mainStage()) }

func (p *Pipeline) runStage(ctx context.Context, st stage) error {
	group := st.group
	n, err := broker.Partitions(ctx, p.Cfg.Kafka, st.input)
	if err != nil {
		return err
	}
	if m, err := broker.Partitions(ctx, p.Cfg.Kafka, st.state); err != nil || m < n {
		return fmt.Errorf("%s: %s needs at least as many partitions as %s (%d): has %d (%v)", st.name, st.state, st.input, n, m, err)
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: group, Brokers: p.Cfg.Kafka.Brokers, Topics: []string{st.input},
		HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
		JoinGroupBackoff: 500 * time.Millisecond, StartOffset: kafka.FirstOffset, WatchPartitionChanges: true,
	})
	if err != nil {
		return fmt.Errorf("detect: consumer group: %w", err)
	}
	alerts := broker.NewWriter(p.Cfg.Kafka, schemas.TopicAlerts)
	state := broker.NewWriter(p.Cfg.Kafka, st.state)
	state.Balancer = broker.ExplicitPartition{}
	dead := broker.NewWriter(p.Cfg.Kafka, schemas.TopicDeadLetter)
	sightings := broker.NewWriter(p.Cfg.Kafka, schemas.TopicIPSightings)
	defer func() {
		// Closing the group waits for the partition goroutines, which write
		// their last checkpoint: the writers must outlive them.
		cg.Close()
		alerts.Close()
		state.Close()
		dead.Close()
		sightings.Close()
	}()
	var (
		mu      sync.Mutex
		engines = map[int]*engine.Engine{}
	)
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			p.Log.Warn(st.name+": join group", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		for _, a := range gen.Assignments[st.input] {
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
				pr := &partitionRunner{p: p, st: st, gen: gen, part: part, alerts: alerts, state: state, dead: dead, sightings: sightings,
					group: group, log: p.Log.With("component", st.name, "partition", part)}
				e, err := pr.run(pctx, committed)
				mu.Lock()
				if e != nil {
					engines[part] = e
				}
				total := 0
				for _, e := range engines {
					total += e.Integrations()
				}
				mu.Unlock()
				p.Metrics.Integrations.Set(float64(total))
				if err != nil && pctx.Err() == nil {
					pr.log.Error("partition stopped", "err", err)
				}
			})
		}
	}
}

type partitionRunner struct {
	p                   *Pipeline
	st                  stage
	sightings           *kafka.Writer
	sighter             sharedip.Sighter
	gen                 *kafka.Generation
	part                int
	alerts, state, dead *kafka.Writer
	group               string
	log                 *slog.Logger
	engine              *engine.Engine
	next                int64 // next events offset to process
	lastCheckpoint      time.Time
}

func (r *partitionRunner) run(ctx context.Context, committed int64) (*engine.Engine, error) {
	r.engine = engine.New(r.st.detectors)
	mk, n, err := r.restore(ctx)
	if err != nil {
		return nil, err
	}
	r.next = committed
	if mk != nil && mk.Offset > committed {
		// State was checkpointed after these events but the commit did not
		// land (crash or rebalance in between): the state already holds them.
		r.next = mk.Offset
	}
	if mk != nil {
		r.engine.SetWatermark(mk.Watermark.Time)
	}
	r.log.Info("partition assigned", "committed", committed, "resume", r.next, "restored_integrations", n)
	reader := kafka.NewReader(kafka.ReaderConfig{Brokers: r.p.Cfg.Kafka.Brokers, Topic: r.st.input, Partition: r.part,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
	defer reader.Close()
	start := r.next
	if start < 0 {
		start = kafka.FirstOffset
	}
	if err := reader.SetOffset(start); err != nil {
		return r.engine, err
	}
	r.lastCheckpoint = time.Now()
	err = broker.Batches(ctx, reader.FetchMessage, r.p.Cfg.Detect.BatchSize, r.p.Cfg.Detect.FlushInterval, r.log, func(hctx context.Context, batch []kafka.Message) error {
		if err := r.handle(hctx, batch); err != nil {
			return err
		}
		r.p.Metrics.ConsumerLag.WithLabelValues(r.group, r.st.input).Set(float64(reader.Lag()))
		if time.Since(r.lastCheckpoint) >= r.p.Cfg.Detect.CheckpointInterval {
			return r.checkpoint(hctx)
		}
		return nil
	})
	// Leaving the partition (shutdown or rebalance): checkpoint what was done.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if cerr := r.checkpoint(cctx); cerr != nil && err == nil {
		err = cerr
	}
	return r.engine, err
}

// handle detects one batch and produces its alerts; it leaves committing to
// checkpoint. Messages already covered by restored state are skipped.
func (r *partitionRunner) handle(ctx context.Context, batch []kafka.Message) error {
	p := r.p
	start := time.Now()
	var out, deadMsgs, sight []kafka.Message
	var raised []schemas.Alert
	for _, m := range batch {
		if m.Offset < r.next {
			continue
		}
		var ev schemas.Event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			deadMsgs = append(deadMsgs, deadLetterMessage("decode", "detect", fmt.Sprintf("%s[%d]@%d", m.Topic, m.Partition, m.Offset), err.Error(), m.Value))
			continue
		}
		if p.Enricher != nil {
			p.Enricher.Enrich(&ev)
		}
		if p.Discovery != nil && r.st.name == "detect" {
			p.Discovery.Observe(&ev)
		}
		if r.st.sightings {
			if sm, ok := r.sighting(&ev); ok {
				sight = append(sight, sm)
			}
		}
		for _, a := range r.engine.Observe(&ev) {
			v, _ := json.Marshal(&a)
			out = append(out, kafka.Message{Key: []byte(a.Tenant + "/" + a.IntegrationID), Value: v})
			raised = append(raised, a)
		}
		p.Metrics.DetectLag.Observe(time.Since(m.Time).Seconds())
	}
	p.Metrics.DetectBatch.Observe(time.Since(start).Seconds())
	if len(out) > 0 {
		t0 := time.Now()
		if err := r.alerts.WriteMessages(ctx, out...); err != nil {
			return fmt.Errorf("produce %d alerts: %w", len(out), broker.Condense(err))
		}
		p.Metrics.ProduceSeconds.WithLabelValues(schemas.TopicAlerts).Observe(time.Since(t0).Seconds())
	}
	if len(deadMsgs) > 0 {
		if err := r.dead.WriteMessages(ctx, deadMsgs...); err != nil {
			return fmt.Errorf("produce %d dead letters: %w", len(deadMsgs), broker.Condense(err))
		}
	}
	if len(sight) > 0 {
		if err := r.sightings.WriteMessages(ctx, sight...); err != nil {
			return fmt.Errorf("produce %d ip sightings: %w", len(sight), broker.Condense(err))
		}
	}
	r.next = batch[len(batch)-1].Offset + 1
	if r.st.sightings || r.st.name == "detect" {
		// Events, not the IP stage's sightings of them.
		p.Stats.EventsDetected.Add(int64(len(batch)))
		p.Metrics.DetectEvents.Add(float64(len(batch)))
	}
	p.Stats.AlertsProduced.Add(int64(len(out)))
	p.Stats.DeadLetters.Add(int64(len(deadMsgs)))
	p.Metrics.DeadLetters.WithLabelValues("decode", "detect").Add(float64(len(deadMsgs)))
	for _, a := range raised {
		p.Metrics.Alerts.WithLabelValues(a.Detector, string(a.Severity)).Inc()
	}
	return nil
}

// sighting is the message re-keying ev by IP for the IP stage, if any.
func (r *partitionRunner) sighting(ev *schemas.Event) (kafka.Message, bool) {
	s, ok := r.sighter.Sight(ev)
	if !ok {
		return kafka.Message{}, false
	}
	v, err := json.Marshal(&s)
	if err != nil {
		return kafka.Message{}, false
	}
	return kafka.Message{Key: []byte(s.Tenant + "/" + s.Integration.ID), Value: v}, true
}

// checkpoint writes every changed integration's state and the partition's
// marker to tokenwatch.state (acknowledged), then commits the events offset.
// A failed commit is not an error: the marker already records the offset.
func (r *partitionRunner) checkpoint(ctx context.Context) error {
	dirty := r.engine.Dirty()
	msgs := make([]kafka.Message, 0, len(dirty)+1)
	for _, k := range dirty {
		b, err := r.engine.Snapshot(k)
		if err != nil {
			return err
		}
		msgs = append(msgs, kafka.Message{Partition: r.part, Key: []byte(k.Tenant + "/" + k.ID), Value: b})
	}
	mk, _ := json.Marshal(marker{Offset: r.next, Watermark: schemas.NewTime(r.engine.Watermark())})
	msgs = append(msgs, kafka.Message{Partition: r.part, Key: []byte(markerKey), Value: mk})
	if err := r.state.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("checkpoint partition %d: %w", r.part, broker.Condense(err))
	}
	r.engine.ClearDirty()
	r.engine.Evict(r.engine.Watermark().Add(-r.p.Cfg.Detect.EvictIdle))
	r.lastCheckpoint = time.Now()
	if r.next >= 0 {
		if err := r.gen.CommitOffsets(map[string]map[int]int64{r.st.input: {r.part: r.next}}); err != nil {
			r.log.Warn("commit offset (state marker holds it)", "offset", r.next, "err", err)
		}
	}
	return nil
}

// restore reads the partition's state to its end: the latest snapshot per
// integration and the latest marker.
func (r *partitionRunner) restore(ctx context.Context) (*marker, int, error) {
	latest := map[string][]byte{}
	var mk *marker
	err := broker.ReadPartition(ctx, r.p.Cfg.Kafka, r.st.state, r.part, func(m kafka.Message) {
		switch {
		case string(m.Key) == markerKey:
			var v marker
			if err := json.Unmarshal(m.Value, &v); err == nil {
				mk = &v
			}
		case m.Value == nil:
			delete(latest, string(m.Key))
		default:
			latest[string(m.Key)] = m.Value
		}
	})
	if err != nil {
		return nil, 0, fmt.Errorf("restore partition %d: %w", r.part, err)
	}
	for k, b := range latest {
		if _, err := r.engine.Restore(b); err != nil {
			r.log.Warn("skipping unreadable state", "key", k, "err", err)
		}
	}
	r.engine.ClearDirty()
	return mk, len(latest), nil
}
