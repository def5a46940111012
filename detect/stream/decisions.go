package stream

import (
	"context"
	"sync"
	"time"

	json "github.com/goccy/go-json"
	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// decisionBook is the analysts' decisions in force, read from the compacted
// tokenwatch.incident_decisions (latest per incident), for the correlator.
type decisionBook struct {
	mu   sync.RWMutex
	byID map[string]schemas.Decision
}

func (b *decisionBook) Decision(id string) (schemas.Decision, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	d, ok := b.byID[id]
	return d, ok
}

func (b *decisionBook) Suppressed(tenant, key string, t time.Time) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, d := range b.byID {
		if d.Action == schemas.DecisionSuppress && d.Tenant == tenant && d.Key == key && d.Until != nil && t.Before(d.Until.Time) {
			return true
		}
	}
	return false
}

// load reads the topic to its end and replaces the book.
func (b *decisionBook) load(ctx context.Context, cfg broker.Config) error {
	n, err := broker.Partitions(ctx, cfg, schemas.TopicDecisions)
	if err != nil {
		return err
	}
	next := map[string]schemas.Decision{}
	for p := 0; p < n; p++ {
		err := broker.ReadPartition(ctx, cfg, schemas.TopicDecisions, p, func(m kafka.Message) {
			var d schemas.Decision
			if json.Unmarshal(m.Value, &d) == nil && d.IncidentID != "" {
				next[d.IncidentID] = d
			}
		})
		if err != nil {
			return err
		}
	}
	b.mu.Lock()
	b.byID = next
	b.mu.Unlock()
	return nil
}

// DecisionRefresh is how often the detect role re-reads the decisions.
const DecisionRefresh = 5 * time.Second

// watchDecisions keeps the book current until ctx ends.
func (r *Role) watchDecisions(ctx context.Context, b *decisionBook) {
	t := time.NewTicker(DecisionRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := b.load(ctx, r.kafka); err != nil && ctx.Err() == nil {
				r.log.Warn("read incident decisions", "err", err)
			}
		}
	}
}
