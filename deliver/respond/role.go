package respond

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/enrich/inventory"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Role is the respond stage in `run`: it reads every incident version from
// tokenwatch.incidents in its own consumer group (<prefix>-respond), plans
// with the policy and executes, recording each step before committing the
// offsets. After a crash the uncommitted versions are read again; the store
// (ClickHouse responses) keeps an executed action from being sent twice,
// and without ClickHouse the vendor's 404 makes a repeat already_done.
type Role struct {
	planner  *Planner
	executor *Executor
	catalog  func() *inventory.Catalog
	kafka    broker.Config
	log      *slog.Logger
	// pending is the plan of the batch in hand: a batch retried after a
	// recording failure executes the same plan, not a fresh one (the
	// planner remembers what it planned and would plan nothing).
	pending []Planned
	signals []Signaler
	// decider answers approvals through executor, once started is closed
	// (Run has added tokenwatch.responses to the trail); nil when the store
	// cannot look actions up.
	decider *Decider
	started chan struct{}
	// Incidents counts the incident versions handled (planned and
	// executed), for tests and readiness.
	Incidents atomic.Int64
}

// Signaler is told what the stage sees and does, to tell others (the SSF
// transmitter): every incident version as it is planned, and every audit
// record as a Recorder. It must not block: it queues.
type Signaler interface {
	Incident(inc schemas.Incident)
	Recorder
}

// Signal adds s; call it before Run.
func (r *Role) Signal(s Signaler) {
	r.signals = append(r.signals, s)
	r.executor.Audit = append(r.executor.Audit, s)
}

// NewRole builds the stage. store may be nil (no ClickHouse); recorders
// get every record in addition to tokenwatch.responses; catalog (nil for
// none) is read at each batch, so catalog reloads apply.
func NewRole(cfg Config, revokers map[string]Revoker, catalog func() *inventory.Catalog, store Store, recorders []Recorder,
	kc broker.Config, m *Metrics, log *slog.Logger) *Role {
	log = log.With("component", "respond")
	var cat *inventory.Catalog
	if catalog != nil {
		cat = catalog()
	}
	r := &Role{
		planner: NewPlanner(cfg, revokers, cat),
		executor: &Executor{Revokers: revokers, Sender: NewHTTPSender(cfg.Timeout), Store: store,
			Audit: recorders, Log: log, Metrics: m},
		catalog: catalog, kafka: kc, log: log, started: make(chan struct{}),
	}
	if l, ok := store.(Lookup); ok {
		r.decider = &Decider{Lookup: l, Executor: r.executor}
	}
	return r
}

// Decide answers a pending approval (Decider.Decide) through the stage's
// own executor, so the decision and the revoke reach the whole trail:
// ClickHouse, tokenwatch.responses and every Signaler. It waits for Run to
// have started.
func (r *Role) Decide(ctx context.Context, id string, approve bool, actor, reason string) ([]schemas.Response, error) {
	if r.decider == nil {
		return nil, errors.New("respond: approvals need a store that keeps the pending actions (configure clickhouse)")
	}
	select {
	case <-r.started:
	case <-ctx.Done():
		return nil, fmt.Errorf("respond: the stage is not running: %w", ctx.Err())
	}
	return r.decider.Decide(ctx, id, approve, actor, reason)
}

// Run consumes incidents until ctx ends.
func (r *Role) Run(ctx context.Context) error {
	if err := broker.EnsureTopics(ctx, r.kafka, schemas.TopicResponses); err != nil {
		return err
	}
	out := NewKafkaRecorder(r.kafka)
	defer out.Close()
	r.executor.Audit = append(r.executor.Audit, out)
	close(r.started)
	rd := broker.NewReader(r.kafka, schemas.TopicIncidents, r.kafka.Group("respond"))
	defer rd.Close()
	r.log.Info("respond stage running", "vendors", len(r.executor.Revokers))
	return broker.Consume(ctx, rd, 100, time.Second, r.log, r.handle)
}

func (r *Role) handle(ctx context.Context, batch []kafka.Message) error {
	if r.pending == nil {
		if r.catalog != nil {
			r.planner.catalog = r.catalog()
		}
		for _, m := range batch {
			var inc schemas.Incident
			if err := json.Unmarshal(m.Value, &inc); err != nil {
				// Not an incident: nothing to act on. The incident writers
				// dead-letter it; here it is only noted.
				r.log.Warn("undecodable incident skipped", "where", broker.Where(m), "err", err)
				continue
			}
			// Before the plan is executed, so a receiver hears of the risk
			// before the revocation it led to; once per batch (a retried
			// batch keeps its plan and is not signalled again).
			for _, s := range r.signals {
				s.Incident(inc)
			}
			r.pending = append(r.pending, r.planner.Plan(inc)...)
		}
		if r.pending == nil {
			r.Incidents.Add(int64(len(batch)))
			return nil
		}
	}
	if _, err := r.executor.Execute(ctx, r.pending); err != nil {
		return err
	}
	r.Incidents.Add(int64(len(batch)))
	r.pending = nil
	return nil
}

// KafkaRecorder records responses on tokenwatch.responses, keyed by
// integration id like every keyed topic.
type KafkaRecorder struct{ w *kafka.Writer }

// NewKafkaRecorder writes to the configured brokers; the topic must exist
// (broker.EnsureTopics).
func NewKafkaRecorder(kc broker.Config) *KafkaRecorder {
	return &KafkaRecorder{w: broker.NewWriter(kc, schemas.TopicResponses)}
}

// Record produces rs and waits for the acknowledgement.
func (k *KafkaRecorder) Record(ctx context.Context, rs []schemas.Response) error {
	msgs := make([]kafka.Message, 0, len(rs))
	for i := range rs {
		v, err := json.Marshal(&rs[i])
		if err != nil {
			return err
		}
		msgs = append(msgs, kafka.Message{Key: []byte(rs[i].IntegrationID), Value: v})
	}
	if err := k.w.WriteMessages(ctx, msgs...); err != nil {
		return errors.Join(errors.New("produce responses"), broker.Condense(err))
	}
	return nil
}

// Close flushes and closes the writer.
func (k *KafkaRecorder) Close() error { return k.w.Close() }
