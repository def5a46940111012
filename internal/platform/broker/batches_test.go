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
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/brokertest"
)

// Batches cuts a batch at maxBatch messages or maxWait after its first, in
// offset order, leaving a record whose fetch met the deadline for the next
// batch; retries a failed batch whole; handles the batch in hand when ctx
// ends during its fill and then returns nil without another; and returns a
// fetch error that is not ctx's end. The fetches are a real partition
// reader's.
func TestBatchesCutsRetriesAndFinishesTheBatchInHand(t *testing.T) {
	cfg, _ := brokertest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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
	err := broker.Batches(runCtx, r.FetchMessage, 4, 300*time.Millisecond, log, func(_ context.Context, batch []kafka.Message) error {
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

	// Every fill fetch ends on the batch's deadline with records waiting in
	// the reader: each is left there for the next batch, none lost or repeated.
	r = reader()
	if err := r.SetOffset(0); err != nil {
		t.Fatal(err)
	}
	late := func(c context.Context) (kafka.Message, error) {
		if dl, ok := c.Deadline(); ok {
			time.Sleep(time.Until(dl) + time.Millisecond)
		}
		return r.FetchMessage(c)
	}
	noDeadline, stop2 := context.WithCancel(context.Background())
	defer stop2()
	guard := time.AfterFunc(30*time.Second, stop2)
	defer guard.Stop()
	var offs []int64
	err = broker.Batches(noDeadline, late, 100, 20*time.Millisecond, log, func(_ context.Context, batch []kafka.Message) error {
		for _, m := range batch {
			offs = append(offs, m.Offset)
		}
		if len(offs) >= 13 {
			stop2()
		}
		return nil
	})
	if err != nil || !slices.Equal(offs, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}) {
		t.Fatalf("fills cut by their deadline: err %v, offsets %v: want nil and 0 to 12 once each, in order", err, offs)
	}

	// A fetch error that is not ctx's end is returned: at once, or after
	// the batch it cut short is handled.
	boom := errors.New("reader closed under us")
	for _, ok := range []int{0, 1} {
		calls, handled := 0, 0
		fetch := func(context.Context) (kafka.Message, error) {
			if calls++; calls <= ok {
				return kafka.Message{Offset: int64(calls)}, nil
			}
			return kafka.Message{}, boom
		}
		err = broker.Batches(ctx, fetch, 10, time.Minute, log, func(_ context.Context, b []kafka.Message) error {
			handled += len(b)
			return nil
		})
		if !errors.Is(err, boom) || handled != ok {
			t.Fatalf("fetch error after %d records: got %v with %d handled, want %v with %d", ok, err, handled, boom, ok)
		}
	}
}
