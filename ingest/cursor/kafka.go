package cursor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
)

// Topic is the compacted topic cursors live on, keyed by Key(source, tenant),
// valued by the cursor as JSON. (To move into schemas/topics.go beside the
// other topic names.)
const Topic = "tokenwatch.cursors"

// MaxCursorBytes bounds one cursor record. A poller's cursor carries its
// overlap-window dedup set, which can reach a few MB for a busy tenant, so the
// topic is created with max.message.bytes at this size rather than Kafka's
// 1 MB default.
const MaxCursorBytes = 8 << 20

// Kafka is a Store on the compacted topic Topic. Open reads the topic to its
// end once to rebuild the latest cursor per key; afterwards Load answers from
// memory and Save writes through (returning after the broker's ack) and
// updates memory. It assumes it is the only writer of its keys, which holds
// while one tokenwatch process runs each (source, tenant) poller.
type Kafka struct {
	w  *kafka.Writer
	mu sync.RWMutex
	m  map[string]ingest.Cursor
}

var _ Store = (*Kafka)(nil)

// OpenKafka creates Topic if missing (cleanup.policy=compact, one partition:
// cursors are few and tiny in number, and one partition keeps the rebuild a
// single sequential read) and loads every cursor on it.
func OpenKafka(ctx context.Context, cfg broker.Config) (*Kafka, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("cursor: no kafka brokers")
	}
	if err := createTopic(ctx, cfg); err != nil {
		return nil, err
	}
	m, err := readAll(ctx, cfg)
	if err != nil {
		return nil, err
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        Topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1,
		BatchBytes:   topicMaxMessageBytes,
		BatchTimeout: time.Millisecond,
		MaxAttempts:  10,
		// A cursor may be large; compress it (ids in it are hex/base64 and the
		// time prefixes repeat).
		Compression:     kafka.Zstd,
		WriteBackoffMin: 50 * time.Millisecond,
		WriteBackoffMax: 2 * time.Second,
	}
	return &Kafka{w: w, m: m}, nil
}

func createTopic(ctx context.Context, cfg broker.Config) error {
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: Topic, NumPartitions: 1, ReplicationFactor: max(cfg.ReplicationFactor, 1),
		ConfigEntries: []kafka.ConfigEntry{
			{ConfigName: "cleanup.policy", ConfigValue: "compact"},
			{ConfigName: "max.message.bytes", ConfigValue: strconv.Itoa(topicMaxMessageBytes)},
		},
	}}})
	if err != nil {
		return fmt.Errorf("cursor: create topic %s: %w", Topic, err)
	}
	for t, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("cursor: create topic %s: %w", t, err)
		}
	}
	return ensureCompacted(ctx, client)
}

// topicMaxMessageBytes leaves room for the record framing around a cursor.
const topicMaxMessageBytes = MaxCursorBytes + 64<<10

// ensureCompacted sets the topic's configs when the topic already existed
// without them. That happens when a broker with auto.create.topics.enable
// created it from a metadata request before CreateTopics ran (kafka-go asks
// for metadata first), or someone created it by hand: a cursor topic under
// cleanup.policy=delete would lose every cursor after the retention period.
func ensureCompacted(ctx context.Context, client *kafka.Client) error {
	dc, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: Topic, ConfigNames: []string{"cleanup.policy", "max.message.bytes"}}}})
	if err != nil {
		return fmt.Errorf("cursor: describe topic %s: %w", Topic, err)
	}
	ok := map[string]bool{}
	for _, r := range dc.Resources {
		if r.Error != nil {
			return fmt.Errorf("cursor: describe topic %s: %w", Topic, r.Error)
		}
		for _, e := range r.ConfigEntries {
			switch e.ConfigName {
			case "cleanup.policy":
				ok[e.ConfigName] = e.ConfigValue == "compact"
			case "max.message.bytes":
				n, _ := strconv.Atoi(e.ConfigValue)
				ok[e.ConfigName] = n >= topicMaxMessageBytes
			}
		}
	}
	if ok["cleanup.policy"] && ok["max.message.bytes"] {
		return nil
	}
	resp, err := client.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: Topic, Configs: []kafka.IncrementalAlterConfigsRequestConfig{
			{Name: "cleanup.policy", Value: "compact", ConfigOperation: kafka.ConfigOperationSet},
			{Name: "max.message.bytes", Value: strconv.Itoa(topicMaxMessageBytes), ConfigOperation: kafka.ConfigOperationSet},
		}}}})
	if err == nil {
		for _, r := range resp.Resources {
			if r.Error != nil {
				err = r.Error
			}
		}
	}
	if err != nil {
		return fmt.Errorf("cursor: topic %s exists without cleanup.policy=compact and max.message.bytes>=%d, and setting them failed: %w",
			Topic, topicMaxMessageBytes, err)
	}
	return nil
}

// readAll reads every partition of Topic from its first offset to the high
// watermark it had when the read started, keeping the last value per key (what
// compaction would keep). An empty value is a tombstone.
func readAll(ctx context.Context, cfg broker.Config) (map[string]ingest.Cursor, error) {
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{Topic}})
	if err != nil {
		return nil, fmt.Errorf("cursor: metadata of %s: %w", Topic, err)
	}
	out := map[string]ingest.Cursor{}
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("cursor: metadata of %s: %w", Topic, t.Error)
		}
		for _, p := range t.Partitions {
			if err := readPartition(ctx, client, p.ID, out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func readPartition(ctx context.Context, client *kafka.Client, partition int, out map[string]ingest.Cursor) error {
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		Topic: {kafka.FirstOffsetOf(partition), kafka.LastOffsetOf(partition)}}})
	if err != nil {
		return fmt.Errorf("cursor: list offsets of %s/%d: %w", Topic, partition, err)
	}
	var first, end int64
	for _, po := range offs.Topics[Topic] {
		if po.Partition != partition {
			continue
		}
		if po.Error != nil {
			return fmt.Errorf("cursor: list offsets of %s/%d: %w", Topic, partition, po.Error)
		}
		first, end = po.FirstOffset, po.LastOffset
	}
	for off := first; off < end; {
		resp, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: Topic, Partition: partition, Offset: off,
			MinBytes: 1, MaxBytes: 4 * MaxCursorBytes, MaxWait: 500 * time.Millisecond})
		if err != nil {
			return fmt.Errorf("cursor: read %s/%d at %d: %w", Topic, partition, off, err)
		}
		if resp.Error != nil {
			return fmt.Errorf("cursor: read %s/%d at %d: %w", Topic, partition, off, resp.Error)
		}
		next, err := applyRecords(resp.Records, off, out)
		if err != nil {
			return err
		}
		if next == off {
			// Nothing at or after off below the watermark (compaction can leave
			// holes at the end of a batch): done.
			if resp.HighWatermark <= off {
				break
			}
			off++
			continue
		}
		off = next
	}
	return nil
}

func applyRecords(rr kafka.RecordReader, from int64, out map[string]ingest.Cursor) (int64, error) {
	if rr == nil {
		return from, nil
	}
	defer func() {
		if c, ok := rr.(interface{ Close() error }); ok {
			c.Close()
		}
	}()
	next := from
	for {
		r, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			return next, nil
		}
		if err != nil {
			return next, fmt.Errorf("cursor: read %s at %d: %w", Topic, next, err)
		}
		if r.Offset < from {
			continue // batches may start before the requested offset
		}
		next = r.Offset + 1
		key, err := kafka.ReadAll(r.Key)
		if err != nil {
			return next, fmt.Errorf("cursor: read key at %d: %w", r.Offset, err)
		}
		val, err := kafka.ReadAll(r.Value)
		if err != nil {
			return next, fmt.Errorf("cursor: read value at %d: %w", r.Offset, err)
		}
		if len(val) == 0 {
			delete(out, string(key))
			continue
		}
		var c ingest.Cursor
		if err := json.Unmarshal(val, &c); err != nil {
			// A cursor we cannot read must stop the start, not silently rewind
			// the poller to its initial lookback (that would duplicate days).
			return next, fmt.Errorf("cursor: %s offset %d key %q: not a cursor: %w", Topic, r.Offset, key, err)
		}
		out[string(key)] = c
	}
}

// Load implements Store.
func (s *Kafka) Load(_ context.Context, source, tenant string) (ingest.Cursor, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.m[Key(source, tenant)]
	return clone(c), ok, nil
}

// Save implements Store: it returns after the broker acknowledged the record.
func (s *Kafka) Save(ctx context.Context, source, tenant string, c ingest.Cursor) error {
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("cursor: encode %s: %w", Key(source, tenant), err)
	}
	if len(v) > MaxCursorBytes {
		return fmt.Errorf("cursor: %s is %d bytes, over the %d-byte limit", Key(source, tenant), len(v), MaxCursorBytes)
	}
	k := Key(source, tenant)
	if err := s.w.WriteMessages(ctx, kafka.Message{Key: []byte(k), Value: v}); err != nil {
		return fmt.Errorf("cursor: save %s: %w", k, broker.Condense(err))
	}
	s.mu.Lock()
	s.m[k] = clone(c)
	s.mu.Unlock()
	return nil
}

// Close flushes and closes the writer.
func (s *Kafka) Close() error { return s.w.Close() }
