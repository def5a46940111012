package deliver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// ErrCircuitOpen is returned (inside a *RetryAfterError) while a sink's
// circuit is open: the send was not attempted.
var ErrCircuitOpen = errors.New("circuit open")

// BreakerConfig sets when a sink's circuit opens and how long it rests.
type BreakerConfig struct {
	// Failures is how many consecutive failed sends open the circuit.
	Failures uint32 `yaml:"failures"`
	// CoolDown is how long the circuit stays open before one trial send is
	// let through (half-open); success closes it, failure reopens it.
	CoolDown time.Duration `yaml:"cool_down"`
}

// DefaultBreakerConfig opens after 5 consecutive failures for 30 s.
func DefaultBreakerConfig() BreakerConfig {
	return BreakerConfig{Failures: 5, CoolDown: 30 * time.Second}
}

// Validate checks the config.
func (c BreakerConfig) Validate() error {
	if c.Failures < 1 {
		return fmt.Errorf("failures %d: must be at least 1", c.Failures)
	}
	if c.CoolDown <= 0 {
		return fmt.Errorf("cool_down %s: must be positive", c.CoolDown)
	}
	return nil
}

// Breaker wraps one sink with a circuit breaker (closed → open after
// Failures consecutive failures → half-open after CoolDown → closed on a
// successful trial), so a receiver that is down is not hammered by every
// partition's retries and alerts for healthy sinks keep flowing.
//
// It uses github.com/sony/gobreaker rather than a hand-written state machine.
// gobreaker reads time.Now itself; tests drive its clock with testing/synctest
// instead of an injected clock func.
//
// What counts: a nil error or a *PermanentError is a success (the receiver
// answered; the payload was the problem), context.Canceled is ignored (the
// caller gave up), anything else is a failure.
type Breaker struct {
	sink     Sink
	coolDown time.Duration
	cb       *gobreaker.CircuitBreaker[struct{}]
}

var _ Sink = (*Breaker)(nil)

// NewBreaker wraps s. onStateChange, if not nil, is called with the sink name
// and the old and new state ("closed", "open", "half-open") for logs and
// metrics.
func NewBreaker(s Sink, c BreakerConfig, onStateChange func(sink, from, to string)) (*Breaker, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("sink %s: breaker: %w", s.Name(), err)
	}
	st := gobreaker.Settings{
		Name:        s.Name(),
		MaxRequests: 1,
		Timeout:     c.CoolDown,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= c.Failures },
		IsSuccessful: func(err error) bool {
			return err == nil || IsPermanent(err)
		},
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
	}
	if onStateChange != nil {
		st.OnStateChange = func(name string, from, to gobreaker.State) {
			onStateChange(name, from.String(), to.String())
		}
	}
	return &Breaker{sink: s, coolDown: c.CoolDown, cb: gobreaker.NewCircuitBreaker[struct{}](st)}, nil
}

// Name implements Sink.
func (b *Breaker) Name() string { return b.sink.Name() }

// State is "closed", "open" or "half-open".
func (b *Breaker) State() string { return b.cb.State().String() }

// Send implements Sink. While the circuit is open it fails fast with a
// *RetryAfterError wrapping ErrCircuitOpen and After = the cool-down, so
// SendWithRetry waits for the half-open trial instead of spinning.
func (b *Breaker) Send(ctx context.Context, alerts []schemas.Alert) error {
	_, err := b.cb.Execute(func() (struct{}, error) {
		return struct{}{}, b.sink.Send(ctx, alerts)
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return &RetryAfterError{Err: fmt.Errorf("sink %s: %w", b.sink.Name(), ErrCircuitOpen), After: b.coolDown}
	}
	return err
}

// Unwrap implements Wrapper.
func (b *Breaker) Unwrap() Sink { return b.sink }

// SendIncident implements IncidentSink through the same circuit as Send.
func (b *Breaker) SendIncident(ctx context.Context, inc schemas.Incident, prev Receipt) (Receipt, error) {
	_, err := b.cb.Execute(func() (struct{}, error) {
		var err error
		prev, err = sendIncident(ctx, b.sink, inc, prev)
		return struct{}{}, err
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return "", &RetryAfterError{Err: fmt.Errorf("sink %s: %w", b.sink.Name(), ErrCircuitOpen), After: b.coolDown}
	}
	if err != nil {
		return "", err
	}
	return prev, nil
}

// Close closes the wrapped sink if it holds connections.
func (b *Breaker) Close() error {
	if c, ok := b.sink.(Closer); ok {
		return c.Close()
	}
	return nil
}
