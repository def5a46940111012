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
}

// New builds a publisher on the configured brokers.
func New(cfg broker.Config) *Publisher {
	return &Publisher{events: broker.NewWriter(cfg, schemas.TopicEvents), dead: broker.NewWriter(cfg, schemas.TopicDeadLetter)}
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
		v, err := json.Marshal(&evs[i])
		if err != nil {
			return fmt.Errorf("publish: encode event %s: %w", evs[i].EventID, err)
		}
		msgs[i] = kafka.Message{Key: Key(&evs[i]), Value: v,
			Headers: []kafka.Header{broker.Header(broker.HeaderSource, evs[i].Source)}}
	}
	if err := p.events.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish %d events: %w", len(msgs), broker.Condense(err))
	}
	return nil
}

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
