package deliver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// RetryPolicy bounds how hard a sink is retried before its alerts are
// dead-lettered.
type RetryPolicy struct {
	MaxAttempts     int           `yaml:"max_attempts"`
	InitialInterval time.Duration `yaml:"initial_interval"`
	MaxInterval     time.Duration `yaml:"max_interval"`
}

// DefaultRetryPolicy: 6 attempts over roughly 15 s.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 6, InitialInterval: 250 * time.Millisecond, MaxInterval: 10 * time.Second}
}

// Validate checks the policy.
func (p RetryPolicy) Validate() error {
	if p.MaxAttempts < 1 {
		return fmt.Errorf("max_attempts %d: must be at least 1", p.MaxAttempts)
	}
	if p.InitialInterval <= 0 || p.MaxInterval < p.InitialInterval {
		return fmt.Errorf("initial_interval and max_interval must be positive, max ≥ initial")
	}
	return nil
}

// SendWithRetry calls s.Send until it succeeds, fails permanently, or
// MaxAttempts is reached, with exponential backoff and jitter, honouring a
// RetryAfterError. It returns the last error and the attempts made.
func SendWithRetry(ctx context.Context, s Sink, alerts []schemas.Alert, p RetryPolicy) (attempts int, err error) {
	return retry(ctx, p, func() error { return s.Send(ctx, alerts) })
}

// SendIncidentWithRetry is SendWithRetry for one incident version: s must
// take incidents (TakesIncidents), else the first attempt fails permanently.
// It returns the receipt of the attempt that succeeded.
func SendIncidentWithRetry(ctx context.Context, s Sink, inc schemas.Incident, prev Receipt, p RetryPolicy) (r Receipt, attempts int, err error) {
	attempts, err = retry(ctx, p, func() error {
		var err error
		r, err = sendIncident(ctx, s, inc, prev)
		return err
	})
	return r, attempts, err
}

// Retry calls send as SendWithRetry calls a sink: until it succeeds, fails
// with a PermanentError, or MaxAttempts is reached, with exponential backoff
// and jitter, honouring a RetryAfterError. For senders that are not sinks
// (the SSF transmitter's push delivery).
func Retry(ctx context.Context, p RetryPolicy, send func() error) (attempts int, err error) {
	return retry(ctx, p, send)
}

func retry(ctx context.Context, p RetryPolicy, send func() error) (attempts int, err error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = p.InitialInterval, p.MaxInterval, 0
	b.Reset()
	for {
		attempts++
		err = send()
		if err == nil || IsPermanent(err) || attempts >= p.MaxAttempts {
			return attempts, err
		}
		wait := b.NextBackOff()
		var ra *RetryAfterError
		if errors.As(err, &ra) && ra.After > wait {
			wait = ra.After
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempts, fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-t.C:
		}
	}
}
