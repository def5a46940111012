package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
)

// Batches cuts a batch at maxBatch messages or maxWait after its first, in
// offset order; retries a failed batch whole; handles the batch in hand when
// ctx ends during its fill and then returns nil; and returns a fetch error
// that is not ctx's end. The fetches are a real partition reader's.
func TestBatchesCutsRetriesAndFinishesTheBatchInHand(t *testing.T) {
	b, err := embedded.Start(1, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := broker.DefaultConfig()
	cfg.Brokers, cfg.Partitions = b.Addrs(), 1
	const topic = "batches"
	if err := broker.EnsureTopics(ctx, cfg, topic); err != nil {
		t.Fatal(err)
	}
	w := broker.NewWriter(cfg, topic)
	defer w.Close()
	produce := func(from, to int) {
		t.Helper()
		var ms []kafka.Message
		for i := from; i < to; i++ {
			ms = append(ms, kafka.Message{Value: []byte(fmt.Sprint(i))})
		}
		if err := w.WriteMessages(ctx, ms...); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 10)
	reader := func() *kafka.Reader {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: topic, Partition: 0, MaxWait: 20 * time.Millisecond})
		t.Cleanup(func() { r.Close() })
		return r
	}
	log := slog.New(slog.DiscardHandler)

	// Cut by size, then by wait; a failure retries the same batch.
	r := reader()
	runCtx, stop := context.WithCancel(ctx)
	var got [][]int64
	failed := false
	err = broker.Batches(runCtx, r.FetchMessage, 4, 300*time.Millisecond, log, func(_ context.Context, batch []kafka.Message) error {
		var offs []int64
		for _, m := range batch {
			offs = append(offs, m.Offset)
		}
		if len(got) == 1 && !failed {
			failed = true
			return errors.New("sink down once")
		}
		got = append(got, offs)
		if len(got) == 3 {
			stop()
		}
		return nil
	})
	stop()
	if err != nil {
		t.Fatalf("Batches after ctx ended: %v, want nil", err)
	}
	want := [][]int64{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %v, want %v (the second once more after its failure)", got, want)
	}

	// ctx ends while a batch fills: the batch in hand is handled, whole.
	produce(10, 13)
	r = reader()
	if err := r.SetOffset(10); err != nil {
		t.Fatal(err)
	}
	runCtx, stop = context.WithCancel(ctx)
	defer stop()
	fetched := 0
	fetch := func(c context.Context) (kafka.Message, error) {
		m, err := r.FetchMessage(c)
		if err == nil {
			if fetched++; fetched == 2 {
				stop() // mid-fill: maxWait (a minute) has not passed
			}
		}
		return m, err
	}
	got = nil
	err = broker.Batches(runCtx, fetch, 100, time.Minute, log, func(_ context.Context, batch []kafka.Message) error {
		var offs []int64
		for _, m := range batch {
			offs = append(offs, m.Offset)
		}
		got = append(got, offs)
		return nil
	})
	if err != nil || len(got) != 1 || len(got[0]) < 2 || got[0][0] != 10 || got[0][1] != 11 {
		t.Fatalf("shutdown mid-fill: err %v, batches %v: want nil and one batch starting 10, 11", err, got)
	}

	// A fetch error that is not ctx's end is returned.
	boom := errors.New("reader closed under us")
	err = broker.Batches(ctx, func(context.Context) (kafka.Message, error) { return kafka.Message{}, boom }, 10, time.Second, log,
		func(context.Context, []kafka.Message) error {
			t.Error("handled a batch that was never fetched")
			return nil
		})
	if !errors.Is(err, boom) {
		t.Fatalf("fetch error: got %v, want %v", err, boom)
	}
}
