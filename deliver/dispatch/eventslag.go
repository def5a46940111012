package dispatch

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// committedLag keeps the events writer's tokenwatch_kafka_consumer_lag
// truthful. The reader's own figure (kafka.Reader.Stats().Lag) is how far
// its prefetch is behind the end of the partition: with ClickHouse down the
// writer fetches the backlog, cannot write it, and that figure reads 0 (and
// stops moving, as backpressure stops the fetch). So before every write
// attempt, at most once per every, the lag is measured from what the group
// has committed, which only a successful write advances.
type committedLag struct {
	kafka broker.Config
	group string
	gauge prometheus.Gauge
	every time.Duration
	last  time.Time
}

func (l *committedLag) measure(ctx context.Context) {
	if !l.last.IsZero() && time.Since(l.last) < l.every {
		return
	}
	l.last = time.Now()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if n, err := broker.GroupLag(ctx, l.kafka, l.group, schemas.TopicEvents); err == nil {
		l.gauge.Set(float64(n))
	}
}
