package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
)

// ConsumePipelined prepares the next batch while the one before is being
// written, writes every message once in partition order even when a write
// fails and is retried, and commits what it wrote (read back from the
// group's committed offsets). A refused commit is not injected: kafka-go
// then leaves the group and the rejoined reader fetches from the last
// commit again, Kafka's at-least-once, which the events writer's id lookup
// absorbs.
func TestConsumePipelinedOverlapsRetriesAndCommits(t *testing.T) {
	b, err := embedded.Start(2, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := broker.DefaultConfig()
	cfg.Brokers, cfg.Partitions = b.Addrs(), 2
	const topic, n = "pipelined", 1000
	if err := broker.EnsureTopics(ctx, cfg, topic); err != nil {
		t.Fatal(err)
	}
	w := broker.NewWriter(cfg, topic)
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprint(i))}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	type batch struct{ offsets map[int][]int64 }
	var (
		mu        sync.Mutex
		prepared  int
		second    = make(chan struct{})
		written   = map[int][]int64{}
		total     int
		attempts  int
		overlapOK bool
	)
	runCtx, stop := context.WithCancel(ctx)
	r := broker.NewReader(cfg, topic, cfg.Group("pipelined"))
	err = broker.ConsumePipelined(runCtx, r, 100, 20*time.Millisecond, slog.New(slog.DiscardHandler),
		func(ms []kafka.Message) batch {
			mu.Lock()
			prepared++
			if prepared == 2 {
				close(second)
			}
			mu.Unlock()
			p := batch{offsets: map[int][]int64{}}
			for _, m := range ms {
				p.offsets[m.Partition] = append(p.offsets[m.Partition], m.Offset)
			}
			return p
		},
		func(_ context.Context, p batch) error {
			mu.Lock()
			attempts++
			a := attempts
			mu.Unlock()
			if a == 1 { // the first write waits until the next batch is prepared
				select {
				case <-second:
					overlapOK = true
				case <-time.After(10 * time.Second):
				}
			}
			if a == 3 {
				return errors.New("sink down once")
			}
			mu.Lock()
			defer mu.Unlock()
			for part, offs := range p.offsets {
				written[part] = append(written[part], offs...)
				total += len(offs)
			}
			if total == n {
				stop()
			}
			return nil
		})
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !overlapOK {
		t.Error("the second batch was not prepared while the first was being written")
	}
	if total != n || attempts < 4 {
		t.Fatalf("wrote %d of %d messages in %d attempts", total, n, attempts)
	}
	for part, offs := range written {
		for i, o := range offs {
			if o != int64(i) {
				t.Fatalf("partition %d: message %d written is offset %d: want every offset once, in order", part, i, o)
			}
		}
	}
	cl := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...)}
	res, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: cfg.Group("pipelined"), Topics: map[string][]int{topic: {0, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	committed := 0
	for _, p := range res.Topics[topic] {
		if p.CommittedOffset != int64(len(written[p.Partition])) {
			t.Errorf("partition %d: committed offset %d, want %d (every message written)", p.Partition, p.CommittedOffset, len(written[p.Partition]))
		}
		committed += int(p.CommittedOffset)
	}
	if committed != n {
		t.Fatalf("committed %d of %d messages", committed, n)
	}
}
