// Package publish writes normalized events to tokenwatch.events, keyed by
// integration id so one integration stays on one partition in order, and
// unprocessable records to tokenwatch.deadletter with their reason. A call
// returns only after Kafka acknowledged every message, which is what lets
// callers (pollers, the push receiver) advance cursors or answer 2xx.
package publish

import (
	"context"
	"fmt"
	json "github.com/goccy/go-json"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Publisher writes events and dead letters.
type Publisher struct {
	events, dead *kafka.Writer
	encoding     string // of the events (broker.Config.Encoding)
}

// New builds a publisher on the configured brokers.
func New(cfg broker.Config) *Publisher {
	return &Publisher{events: broker.NewWriter(cfg, schemas.TopicEvents), dead: broker.NewWriter(cfg, schemas.TopicDeadLetter), encoding: cfg.Encoding}
}

// Key is the partition key of an event: tenant and integration, so the same
// app id in two tenants are two integrations.
func Key(ev *schemas.Event) []byte { return []byte(ev.Tenant + "/" + ev.Integration.ID) }

// Events produces events and waits for the acknowledgement.
func (p *Publisher) Events(ctx context.Context, evs []schemas.Event) error {
	if len(evs) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(evs))
	for i := range evs {
		m, err := broker.EventMessage(p.encoding, Key(&evs[i]), &evs[i])
		if err != nil {
			return fmt.Errorf("publish: encode event %s: %w", evs[i].EventID, err)
		}
		m.Headers = append(m.Headers, broker.Header(broker.HeaderSource, evs[i].Source))
		msgs[i] = m
	}
	if acked, err := WriteInSlices(ctx, p.events, msgs); err != nil {
		return fmt.Errorf("publish %d events (%d already acknowledged): %w", len(msgs), acked, broker.Condense(err))
	}
	return nil
}

// WriteInSlices writes msgs in slices, each acknowledged before the next is
// sent, stopping at the first failure; acked is how many were acknowledged.
// One WriteMessages call splits a partition's messages into several produce
// batches, and a batch that fails without retry does not stop the ones after
// it: the partition then holds a gap, the caller publishes the whole set
// again, and the gap's events land after later ones of their integration.
// Order-sensitive detectors see that (the fault suite caught volume.spike
// firing on benign integrations after a broker restart). A slice is small
// enough that each partition's share is one batch even with a few other
// callers' messages in it.
func WriteInSlices(ctx context.Context, w *kafka.Writer, msgs []kafka.Message) (acked int, err error) {
	for lo := 0; lo < len(msgs); {
		hi, size := lo, 0
		for hi < len(msgs) && (hi == lo || (hi-lo < sliceMessages && size+len(msgs[hi].Value) <= sliceBytes)) {
			size += len(msgs[hi].Value)
			hi++
		}
		if err := w.WriteMessages(ctx, msgs[lo:hi]...); err != nil {
			return lo, err
		}
		lo = hi
	}
	return len(msgs), nil
}

// Slice bounds for WriteInSlices: a quarter of the writer's batch limits (5,000
// messages, 1 MiB in broker.NewWriter).
const (
	sliceMessages = 1000
	sliceBytes    = 256 << 10
)

// DeadLetters produces dead letters and waits for the acknowledgement.
func (p *Publisher) DeadLetters(ctx context.Context, dls []schemas.DeadLetter) error {
	if len(dls) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(dls))
	for i := range dls {
		v, err := json.Marshal(&dls[i])
		if err != nil {
			return fmt.Errorf("publish: encode dead letter: %w", err)
		}
		msgs[i] = kafka.Message{Key: []byte(dls[i].Source), Value: v, Headers: []kafka.Header{
			broker.Header(broker.HeaderSource, dls[i].Source), broker.Header(broker.HeaderReason, dls[i].Reason)}}
	}
	if err := p.dead.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish %d dead letters: %w", len(msgs), broker.Condense(err))
	}
	return nil
}

// Close flushes and closes the writers.
func (p *Publisher) Close() error {
	e1 := p.events.Close()
	e2 := p.dead.Close()
	if e1 != nil {
		return e1
	}
	return e2
}
