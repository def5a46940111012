package dispatch

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// deliveredSet is one sink's memory of delivered alert ids, rebuilt at start
// from tokenwatch.delivered and kept for deliver.dedup_window (wall clock:
// delivery is an operational fact, not event time).
type deliveredSet struct {
	sink   string
	window time.Duration
	ids    map[string]time.Time
	pruned time.Time
}

func (d *deliveredSet) has(id string) bool {
	t, ok := d.ids[id]
	return ok && time.Since(t) < d.window
}

// mark records alerts as delivered, durably (acknowledged) before the
// consumer commits their offsets.
func (d *deliveredSet) mark(ctx context.Context, w *kafka.Writer, alerts []schemas.Alert) error {
	now := time.Now()
	msgs := make([]kafka.Message, len(alerts))
	for i, a := range alerts {
		msgs[i] = kafka.Message{Key: []byte(d.sink + "/" + a.ID), Value: []byte(strconv.FormatInt(now.UnixMilli(), 10))}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("record deliveries: %w", broker.Condense(err))
	}
	for _, a := range alerts {
		d.ids[a.ID] = now
	}
	if now.Sub(d.pruned) > time.Hour {
		for id, t := range d.ids {
			if now.Sub(t) >= d.window {
				delete(d.ids, id)
			}
		}
		d.pruned = now
	}
	return nil
}

// loadDelivered reads tokenwatch.delivered to its end for one sink.
func loadDelivered(ctx context.Context, kafkaCfg broker.Config, window time.Duration, sink string) (*deliveredSet, error) {
	d := &deliveredSet{sink: sink, window: window, ids: map[string]time.Time{}, pruned: time.Now()}
	n, err := broker.Partitions(ctx, kafkaCfg, schemas.TopicDelivered)
	if err != nil {
		return nil, err
	}
	prefix := sink + "/"
	for part := 0; part < n; part++ {
		err := broker.ReadPartition(ctx, kafkaCfg, schemas.TopicDelivered, part, func(m kafka.Message) {
			id, ok := strings.CutPrefix(string(m.Key), prefix)
			if !ok {
				return
			}
			if ms, err := strconv.ParseInt(string(m.Value), 10, 64); err == nil {
				if t := time.UnixMilli(ms); time.Since(t) < d.window {
					d.ids[id] = t
				}
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}
