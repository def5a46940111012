package stream

import (
	"context"
	"time"

	json "github.com/goccy/go-json"
	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/detect/correlate"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// loadDecisions reads tokenwatch.incident_decisions to its end (the
// compacted topic: the latest per incident) into b.
func loadDecisions(ctx context.Context, cfg broker.Config, b *correlate.Book) error {
	n, err := broker.Partitions(ctx, cfg, schemas.TopicDecisions)
	if err != nil {
		return err
	}
	var ds []schemas.Decision
	for p := 0; p < n; p++ {
		err := broker.ReadPartition(ctx, cfg, schemas.TopicDecisions, p, func(m kafka.Message) {
			var d schemas.Decision
			if json.Unmarshal(m.Value, &d) == nil && d.IncidentID != "" {
				ds = append(ds, d)
			}
		})
		if err != nil {
			return err
		}
	}
	b.Replace(ds)
	return nil
}

// DecisionRefresh is how often the detect role re-reads the decisions.
const DecisionRefresh = 5 * time.Second

// watchDecisions keeps the book current until ctx ends.
func (r *Role) watchDecisions(ctx context.Context, b *correlate.Book) {
	t := time.NewTicker(DecisionRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := loadDecisions(ctx, r.kafka, b); err != nil && ctx.Err() == nil {
				r.log.Warn("read incident decisions", "err", err)
			}
		}
	}
}
