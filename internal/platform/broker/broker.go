// Package broker owns tokenwatch's Kafka plumbing: writers and group readers
// built from config (segmentio/kafka-go), topic creation, the batch consumer
// loop that commits offsets only after a batch's results are durable.
// Production points Brokers at real Kafka; broker/embedded is the in-process
// broker for the demo, the embedded default and tests.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Config is the `kafka:` block.
type Config struct {
	// Brokers of a real cluster; empty runs the embedded in-process broker.
	Brokers           []string `yaml:"brokers"`
	Partitions        int      `yaml:"partitions"`         // for topics tokenwatch creates
	ReplicationFactor int      `yaml:"replication_factor"` // for topics tokenwatch creates
	// GroupPrefix prefixes consumer group ids ("tokenwatch" → "tokenwatch-detect").
	GroupPrefix string `yaml:"group_prefix"`
	// DataDir makes the embedded broker persist its log (survives restarts).
	DataDir string `yaml:"data_dir"`
	// Encoding is how tokenwatch writes events to its internal topics
	// (tokenwatch.events and the re-key topics): schemas.EncodingMsgpack or
	// schemas.EncodingJSON. Readers take either, by the record's
	// HeaderEncoding, so the setting can change while records of the other
	// encoding are still on the topics.
	Encoding string `yaml:"encoding"`
	// Compression of the record batches tokenwatch produces: lz4 (default),
	// zstd, snappy, gzip or none. Consumers read any. lz4 costs little CPU
	// and cuts what the brokers store, copy and send several times; on the
	// embedded broker, which copies every batch into each fetch, it saves
	// more CPU than it takes (BENCHMARKS.md section 4).
	Compression string `yaml:"compression"`
}

// compressions maps kafka.compression's names to kafka-go's codecs.
var compressions = map[string]kafka.Compression{"lz4": kafka.Lz4, "zstd": kafka.Zstd, "snappy": kafka.Snappy, "gzip": kafka.Gzip, "none": 0}

// Compressions lists kafka.compression's values.
var Compressions = []string{"lz4", "zstd", "snappy", "gzip", "none"}

// codec is Compression as kafka-go's setting ("" is none: a Config built
// in code rather than from DefaultConfig); Validate has checked the name.
func (c Config) codec() kafka.Compression { return compressions[c.Compression] }

// DefaultConfig: embedded broker, 4 partitions.
func DefaultConfig() Config {
	return Config{Partitions: 4, ReplicationFactor: 1, GroupPrefix: "tokenwatch", Encoding: schemas.EncodingMsgpack, Compression: "lz4"}
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.Partitions < 1 {
		return fmt.Errorf("kafka.partitions %d: must be at least 1", c.Partitions)
	}
	if c.ReplicationFactor < 1 {
		return fmt.Errorf("kafka.replication_factor %d: must be at least 1", c.ReplicationFactor)
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("kafka.brokers %q: want host:port", b)
		}
	}
	if c.GroupPrefix == "" {
		return errors.New("kafka.group_prefix: must not be empty")
	}
	if err := schemas.CheckEncoding(c.Encoding); err != nil {
		return fmt.Errorf("kafka.encoding: %w", err)
	}
	if _, ok := compressions[c.Compression]; !ok {
		return fmt.Errorf("kafka.compression %q: want lz4, zstd, snappy, gzip or none", c.Compression)
	}
	return nil
}

// Group returns the consumer group id for a role or sink.
func (c Config) Group(name string) string { return c.GroupPrefix + "-" + name }

// AllTopics are the topics every deployment has; the detect program adds its
// re-keyed stages' topics (program.Topics) to what EnsureTopics creates.
var AllTopics = []string{schemas.TopicEvents, schemas.TopicDeadLetter, schemas.TopicAlerts, schemas.TopicAlertDeadLetter,
	schemas.TopicState, schemas.TopicCursors, schemas.TopicDelivered, schemas.TopicIncidents, schemas.TopicDecisions}

// compacted topics keep the latest value per key forever.
func compacted(topic string) bool {
	return schemas.IsStateTopic(topic) || topic == schemas.TopicCursors || topic == schemas.TopicDelivered || topic == schemas.TopicDecisions
}

// EnsureTopics creates missing topics (existing ones are left as they are).
func EnsureTopics(ctx context.Context, cfg Config, topics ...string) error {
	if len(cfg.Brokers) == 0 {
		return errors.New("kafka: no brokers")
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second}
	req := &kafka.CreateTopicsRequest{}
	seen := map[string]bool{}
	for _, t := range topics {
		if seen[t] {
			continue // a topic twice in one request is an invalid request
		}
		seen[t] = true
		tc := kafka.TopicConfig{Topic: t, NumPartitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor}
		if compacted(t) {
			tc.ConfigEntries = []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}
		}
		req.Topics = append(req.Topics, tc)
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("kafka: create topics: %w", err)
	}
	for t, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s: %w", t, err)
		}
	}
	return nil
}

// NewWriter returns a writer for topic that partitions by key (integration id)
// and waits for all in-sync replicas. WriteMessages returns once the batch is
// acknowledged.
func NewWriter(cfg Config, topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Topic:                  topic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		BatchSize:              5000,
		BatchBytes:             1 << 20, // Kafka's default message.max.bytes
		BatchTimeout:           2 * time.Millisecond,
		MaxAttempts:            10,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        2 * time.Second,
		AllowAutoTopicCreation: false,
		Compression:            cfg.codec(),
	}
}

// FetchMaxBytes bounds one fetch response of every reader: twice the
// largest message a writer sends (BatchBytes, Kafka's message.max.bytes), as
// Kafka's own consumer bounds a partition's fetch at 1 MiB. A reader asking
// for 16 MiB at once waited for the whole response, and on a slow broker or
// link (the race detector made it 10× slower) the read timed out before it
// came, was retried the same size, and the partition never advanced.
const FetchMaxBytes = 2 << 20

// readerConfig is what every reader shares: the fetch sizes and wait, and
// the queue that keeps fetching while a batch is handled.
func readerConfig(cfg Config, topic string) kafka.ReaderConfig {
	return kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: topic,
		MinBytes: 1, MaxBytes: FetchMaxBytes, MaxWait: 100 * time.Millisecond, QueueCapacity: QueueDepth}
}

// NewReader returns a consumer-group reader of topic that starts at the
// earliest offset when the group has none, and commits only when told.
func NewReader(cfg Config, topic, group string) *kafka.Reader {
	rc := readerConfig(cfg, topic)
	rc.GroupID = group
	rc.ReadBatchTimeout = 2 * time.Second
	rc.StartOffset = kafka.FirstOffset
	rc.CommitInterval = 0 // synchronous commits, after results are durable
	rc.HeartbeatInterval = 1 * time.Second
	rc.SessionTimeout = 10 * time.Second
	rc.RebalanceTimeout = 10 * time.Second
	rc.JoinGroupBackoff = 500 * time.Millisecond
	rc.WatchPartitionChanges = true
	return kafka.NewReader(rc)
}

// NewPartitionReader returns a reader of one partition, outside any group
// (the caller sets its offset); errLog, when not nil, receives kafka-go's
// errors.
func NewPartitionReader(cfg Config, topic string, partition int, errLog kafka.Logger) *kafka.Reader {
	rc := readerConfig(cfg, topic)
	rc.Partition = partition
	rc.ErrorLogger = errLog
	return kafka.NewReader(rc)
}

// QueueDepth is how many fetched messages a reader holds for its consumer,
// enough to keep fetching while a batch is handled (Batches); kafka-go's
// default, 100, is a fraction of one fetch, and 1,024 made detect + deliver
// 0.93× as fast (BENCHMARKS.md section 4). A count, not bytes: 2.2 MB of
// 540-byte events, 4,096 times the record size for larger ones (Batches' own
// channel held up to a whole batch, 50,000, before). On a rebalance what is
// queued for a revoked partition may still be handled, and is handled again
// by its new owner: at-least-once, as before (the writers drop repeats by
// id).
const QueueDepth = 4096

// Handler processes one batch. It returns nil once the batch's results are
// durable (produced and acknowledged, or written); only then are the offsets
// committed. An error is retried with backoff: the batch is never skipped.
type Handler func(ctx context.Context, batch []kafka.Message) error

// Consume runs the batch loop of a group reader until ctx is done: up to
// maxBatch messages or maxWait after the first, handled, then committed.
func Consume(ctx context.Context, r *kafka.Reader, maxBatch int, maxWait time.Duration, log *slog.Logger, handle Handler) error {
	err := Batches(ctx, r.FetchMessage, maxBatch, maxWait, log, func(ctx context.Context, batch []kafka.Message) error {
		if err := handle(ctx, batch); err != nil {
			return err
		}
		return r.CommitMessages(ctx, batch...)
	})
	if err != nil {
		return fmt.Errorf("consume %s: %w", r.Config().Topic, err)
	}
	return nil
}

// ConsumePipelined is Consume in two stages, so that preparing a batch
// (decoding it) overlaps writing the one before (the sink's round trips):
// prepare runs in the batch loop, write and the offset commit in a goroutine
// of their own, behind it. prepare must have no effect beyond what it
// returns. Each prepared batch is written (retried until it is) and then
// committed, in batch order, so a crash loses nothing: it re-reads what was
// not committed, at most the three batches prepared or being written and
// the messages fetched behind them. A failed commit is retried without
// repeating the write (if the reader left its group meanwhile, the rejoined
// reader fetches from the last commit again: Kafka's at-least-once).
func ConsumePipelined[T any](ctx context.Context, r *kafka.Reader, maxBatch int, maxWait time.Duration, log *slog.Logger,
	prepare func(batch []kafka.Message) T, write func(ctx context.Context, prepared T) error) error {
	type item struct {
		msgs []kafka.Message
		v    T
	}
	ready := make(chan item, 1) // one batch prepared ahead of the one being written
	written := make(chan struct{})
	// The copies of Batches' batch (it reuses its own) are reused once
	// committed: at 150 bytes a message a fresh 50,000-message copy per batch
	// cost more CPU (allocation, zeroing, collection) than the write loop.
	// Three are in flight at most: preparing, ready and being written.
	free := make(chan []kafka.Message, 3)
	go func() {
		defer close(written)
		for it := range ready {
			// retry returns an error only once ctx has ended: what is not
			// committed is read again by the next consumer.
			if retry(ctx, log, func(actx context.Context) error { return write(actx, it.v) }) != nil {
				return
			}
			if retry(ctx, log, func(actx context.Context) error { return r.CommitMessages(actx, it.msgs...) }) != nil {
				return
			}
			clear(it.msgs) // the records' bytes are the prepared values' now, or garbage
			select {
			case free <- it.msgs[:0]:
			default:
			}
		}
	}()
	err := Batches(ctx, r.FetchMessage, maxBatch, maxWait, log, func(ctx context.Context, batch []kafka.Message) error {
		var msgs []kafka.Message
		select {
		case msgs = <-free:
		default:
		}
		msgs = append(msgs[:0], batch...) // Batches reuses batch for the next one
		it := item{msgs: msgs, v: prepare(msgs)}
		select {
		case ready <- it:
			return nil
		case <-written:
			return errors.New("writer stopped") // only after ctx ended
		}
	})
	close(ready)
	<-written
	if err != nil {
		return fmt.Errorf("consume %s: %w", r.Config().Topic, err)
	}
	return nil
}

// Batches feeds fetched messages to handle in batches of up to maxBatch, or
// what arrived within maxWait of a batch's first message. A failing handle is
// retried with backoff (the batch is never skipped). Fetching stops while a
// batch is handled (backpressure), and the reader's own queue (QueueDepth)
// keeps its fetches going meanwhile. When ctx ends, the batch in hand is
// still handled (graceful shutdown), then Batches returns nil without taking
// another: what is queued is read again from the last commit.
//
// fetch is called in this goroutine, not handed over a channel by a
// goroutine of its own: that second hop per message (lock, select, wake-up)
// cost 3-6 % of detect + deliver's CPU (BENCHMARKS.md section 4). A fetch
// that ends with the batch's deadline leaves its message in the reader.
func Batches(ctx context.Context, fetch func(context.Context) (kafka.Message, error), maxBatch int, maxWait time.Duration, log *slog.Logger, handle Handler) error {
	batch := make([]kafka.Message, 0, maxBatch)
	for {
		// Checked first: a fetch on an ended ctx may still return a queued
		// message (kafka-go selects between the two at random).
		if ctx.Err() != nil {
			return nil
		}
		batch = batch[:0]
		m, err := fetch(ctx)
		if err != nil {
			return fetchStop(ctx, err)
		}
		batch = append(batch, m)
		fctx, cancel := context.WithTimeout(ctx, maxWait)
		var fillErr error // kafka-go reports an error once: kept for after the batch
		for len(batch) < maxBatch {
			m, err := fetch(fctx)
			if err != nil {
				if fctx.Err() == nil {
					fillErr = err
				}
				break // the deadline, ctx's end, or fillErr
			}
			batch = append(batch, m)
		}
		cancel()
		err = retry(ctx, log, func(actx context.Context) error { return handle(actx, batch) })
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if fillErr != nil {
			return fetchStop(ctx, fillErr)
		}
	}
}

// fetchStop is what Batches returns for a fetch's err: nil when it is ctx's
// end.
func fetchStop(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// retry runs f until it succeeds or ctx ends, backing off 100 ms → 5 s. Each
// attempt gets its own context that outlives ctx by up to shutdownGrace, so a
// shutdown finishes the batch in hand instead of abandoning it half-done; an
// outage (ClickHouse down) just keeps retrying, which stops fetching:
// backpressure. An attempt is otherwise bounded only by attemptLimit: a
// sink's own retries (deliver.retry, sized to outlast the sink's outages)
// run inside one attempt, and a 30 s bound here once cut them short and
// dead-lettered incidents two minutes into a webhook outage.
func retry(ctx context.Context, log *slog.Logger, f func(context.Context) error) error {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), attemptLimit)
		stop := context.AfterFunc(ctx, func() { time.AfterFunc(shutdownGrace, cancel) })
		err := f(actx)
		stop()
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		log.Warn("batch failed, retrying", "attempt", attempt, "err", err, "wait", wait)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// Bounds of one attempt at a batch (retry); variables for the tests.
var (
	shutdownGrace = 30 * time.Second
	attemptLimit  = 30 * time.Minute
)

// Headers used on tokenwatch messages.
const (
	HeaderSource = "tokenwatch-source"
	HeaderReason = "tokenwatch-reason"
	// HeaderEncoding names an event record's encoding (schemas.Encodings);
	// a record without it is JSON.
	HeaderEncoding = "tokenwatch-encoding"
)

// EventMessage encodes ev in enc ("" is JSON) as a keyed message naming its
// encoding.
func EventMessage(enc string, key []byte, ev *schemas.Event) (kafka.Message, error) {
	if enc == "" {
		enc = schemas.EncodingJSON
	}
	v, err := schemas.AppendEvent(nil, enc, ev)
	if err != nil {
		return kafka.Message{}, err
	}
	headers := make([]kafka.Header, 1, 2) // room for the caller's source header
	headers[0] = Header(HeaderEncoding, enc)
	return kafka.Message{Key: key, Value: v, Headers: headers}, nil
}

// DecodeEvent decodes an event record in the encoding its header names into
// ev, which must be the zero Event.
func DecodeEvent(m kafka.Message, ev *schemas.Event) error {
	for _, h := range m.Headers {
		if h.Key != HeaderEncoding {
			continue
		}
		switch string(h.Value) { // the constants, not a copy per record
		case schemas.EncodingMsgpack:
			return schemas.DecodeEvent(schemas.EncodingMsgpack, m.Value, ev)
		case schemas.EncodingJSON:
			return schemas.DecodeEvent(schemas.EncodingJSON, m.Value, ev)
		}
		return schemas.DecodeEvent(string(h.Value), m.Value, ev)
	}
	return schemas.DecodeEvent("", m.Value, ev)
}

// Header builds a kafka header.
func Header(k, v string) kafka.Header { return kafka.Header{Key: k, Value: []byte(v)} }

// Condense shortens kafka-go's WriteErrors (one entry per message) to a count
// and the first distinct error, so a failed batch logs one readable line.
func Condense(err error) error {
	var we kafka.WriteErrors
	if !errors.As(err, &we) {
		return err
	}
	var first error
	n := 0
	for _, e := range we {
		if e != nil {
			n++
			if first == nil {
				first = e
			}
		}
	}
	if first == nil {
		return err
	}
	return fmt.Errorf("%d of %d messages failed, first: %w", n, len(we), first)
}

// ExplicitPartition is a balancer that keeps the partition the caller set on
// the message: detector state is written to the partition number of the
// events it was built from, so a new owner of events partition p restores
// state partition p and nothing else.
type ExplicitPartition struct{}

// Balance implements kafka.Balancer. It returns the message's partition even
// when the writer's partition list (from metadata, possibly partial while a
// broker restarts) does not hold it: the broker then refuses the write and
// the writer retries, where falling back to another partition would put one
// partition's state, and its checkpoint marker, into another's.
func (ExplicitPartition) Balance(m kafka.Message, partitions ...int) int {
	if m.Partition >= 0 {
		return m.Partition
	}
	return partitions[0]
}

// Partitions returns the partition count of topic.
func Partitions(ctx context.Context, cfg Config, topic string) (int, error) {
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("kafka: metadata of %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return 0, fmt.Errorf("kafka: topic %s: %w", topic, t.Error)
			}
			return len(t.Partitions), nil
		}
	}
	return 0, fmt.Errorf("kafka: topic %s not found", topic)
}

// EndOffset returns the offset after the last message of a partition.
func EndOffset(ctx context.Context, cfg Config, topic string, partition int) (int64, error) {
	return listOffset(ctx, cfg, topic, kafka.LastOffsetOf(partition), "end")
}

// FirstOffset is the offset of the oldest record partition still holds (its
// end offset when it holds none).
func FirstOffset(ctx context.Context, cfg Config, topic string, partition int) (int64, error) {
	return listOffset(ctx, cfg, topic, kafka.FirstOffsetOf(partition), "first")
}

func listOffset(ctx context.Context, cfg Config, topic string, req kafka.OffsetRequest, what string) (int64, error) {
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {req}}})
	if err != nil {
		return 0, fmt.Errorf("kafka: %s offset of %s[%d]: %w", what, topic, req.Partition, err)
	}
	for _, po := range resp.Topics[topic] {
		if po.Partition == req.Partition {
			if po.Error != nil {
				return 0, po.Error
			}
			if req.Timestamp == kafka.FirstOffset {
				return po.FirstOffset, nil
			}
			return po.LastOffset, nil
		}
	}
	return 0, fmt.Errorf("kafka: no offset for %s[%d]", topic, req.Partition)
}

// GroupLag is how many messages of topic the consumer group has not
// committed yet (all of them for a group that never committed).
func GroupLag(ctx context.Context, cfg Config, group, topic string) (int64, error) {
	n, err := Partitions(ctx, cfg, topic)
	if err != nil {
		return 0, err
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second}
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return 0, fmt.Errorf("kafka: committed offsets of %s: %w", group, err)
	}
	committed := map[int]int64{}
	for _, po := range resp.Topics[topic] {
		committed[po.Partition] = po.CommittedOffset
	}
	var lag int64
	for _, part := range parts {
		end, err := EndOffset(ctx, cfg, topic, part)
		if err != nil {
			return 0, err
		}
		c := committed[part]
		if c < 0 {
			c = 0
		}
		lag += max(end-c, 0)
	}
	return lag, nil
}

// ReadPartition calls fn for every message of one partition, from the first
// to the one before the end offset at call time: how compacted topics (state,
// deliveries) are read back at start.
func ReadPartition(ctx context.Context, cfg Config, topic string, partition int, fn func(kafka.Message)) error {
	return ReadRange(ctx, cfg, topic, partition, 0, false, func(m kafka.Message) error { fn(m); return nil })
}

// ReadRange calls fn for the messages of one partition from its oldest, or
// only the last `last` of them (last > 0), to the end offset at call time;
// with follow, for every message after that too, until ctx ends (which then
// returns nil). An error from fn stops the read and is returned.
func ReadRange(ctx context.Context, cfg Config, topic string, partition int, last int64, follow bool, fn func(kafka.Message) error) error {
	first, err := FirstOffset(ctx, cfg, topic, partition)
	if err != nil {
		return err
	}
	end, err := EndOffset(ctx, cfg, topic, partition)
	if err != nil {
		return err
	}
	start := first // past what retention deleted: a fetch from before it would wait for nothing
	if last > 0 {
		start = max(first, end-last)
	}
	if start >= end && !follow {
		return nil
	}
	r := NewPartitionReader(cfg, topic, partition, nil)
	defer r.Close()
	if err := r.SetOffset(start); err != nil {
		return err
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if follow && errors.Is(err, context.Canceled) {
				return nil
			}
			return fmt.Errorf("read %s[%d]: %w", topic, partition, err)
		}
		if err := fn(m); err != nil {
			return err
		}
		if !follow && m.Offset+1 >= end {
			return nil
		}
	}
}
