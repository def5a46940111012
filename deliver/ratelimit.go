package deliver

import (
	"context"
	"fmt"
	"math"

	"golang.org/x/time/rate"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// RateLimitConfig caps how fast alerts reach one sink, counted in alerts
// (not requests): Slack takes about one message a second per webhook, and a
// SIEM licence is priced per event, whatever the batching.
type RateLimitConfig struct {
	// PerSecond is the sustained rate; 0 means unlimited.
	PerSecond float64 `yaml:"per_second"`
	// Burst is how many alerts may go at once after a quiet spell; 0 means
	// max(1, ceil(PerSecond)).
	Burst int `yaml:"burst"`
}

// Validate checks the config.
func (c RateLimitConfig) Validate() error {
	if c.PerSecond < 0 || math.IsNaN(c.PerSecond) || math.IsInf(c.PerSecond, 0) {
		return fmt.Errorf("per_second %v: must be a finite number ≥ 0", c.PerSecond)
	}
	if c.Burst < 0 {
		return fmt.Errorf("burst %d: must be ≥ 0", c.Burst)
	}
	return nil
}

// RateLimited wraps a sink with a token bucket (golang.org/x/time/rate).
// Send waits for one token per alert before delivering the batch; a batch
// larger than the burst waits in burst-sized steps. Waiting honours ctx: if
// the deadline would pass first, Send returns a retryable error without
// sending.
type RateLimited struct {
	sink  Sink
	lim   *rate.Limiter
	burst int
}

var _ Sink = (*RateLimited)(nil)

// NewRateLimited wraps s; with PerSecond 0 it returns s unchanged.
func NewRateLimited(s Sink, c RateLimitConfig) (Sink, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("sink %s: rate_limit: %w", s.Name(), err)
	}
	if c.PerSecond == 0 {
		return s, nil
	}
	burst := c.Burst
	if burst == 0 {
		burst = max(1, int(math.Ceil(c.PerSecond)))
	}
	return &RateLimited{sink: s, lim: rate.NewLimiter(rate.Limit(c.PerSecond), burst), burst: burst}, nil
}

// Name implements Sink.
func (r *RateLimited) Name() string { return r.sink.Name() }

// Send implements Sink.
func (r *RateLimited) Send(ctx context.Context, alerts []schemas.Alert) error {
	for n := len(alerts); n > 0; {
		k := min(n, r.burst)
		if err := r.lim.WaitN(ctx, k); err != nil {
			return fmt.Errorf("sink %s: rate limit: %w", r.sink.Name(), err)
		}
		n -= k
	}
	return r.sink.Send(ctx, alerts)
}

// Unwrap implements Wrapper.
func (r *RateLimited) Unwrap() Sink { return r.sink }

// SendIncident implements IncidentSink: one token per incident version.
func (r *RateLimited) SendIncident(ctx context.Context, inc schemas.Incident, prev Receipt) (Receipt, error) {
	if err := r.lim.WaitN(ctx, 1); err != nil {
		return "", fmt.Errorf("sink %s: rate limit: %w", r.sink.Name(), err)
	}
	return sendIncident(ctx, r.sink, inc, prev)
}

// Close closes the wrapped sink if it holds connections.
func (r *RateLimited) Close() error {
	if c, ok := r.sink.(Closer); ok {
		return c.Close()
	}
	return nil
}
