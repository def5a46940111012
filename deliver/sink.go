// Package deliver owns getting alerts (and, for ClickHouse, events) to where
// analysts work: the Sink contract and its registry, the retry/dead-letter
// policy every sink shares, and one folder per sink (deliver/<sink>). It must
// not import ingest or detect.
package deliver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// A Sink sends alerts somewhere. It does one attempt per call: retries,
// backoff, dead-lettering and consumer groups belong to the runner (Deliver).
type Sink interface {
	// Name is the configured instance name ("soc-webhook"); it labels metrics,
	// logs and dead letters.
	Name() string
	// Send delivers alerts, all or nothing, once. Return a *PermanentError for
	// failures a retry cannot fix (HTTP 400, a rejected payload) and a
	// *RetryAfterError when the receiver said when to come back. Errors must
	// not contain secrets (URLs with tokens, auth headers).
	Send(ctx context.Context, alerts []schemas.Alert) error
}

// Idempotent is an optional power: a sink whose receiver collapses repeated
// alerts by id (ClickHouse's ReplacingMergeTree) may be sent whole batches.
// Other sinks are sent one alert per call, so a retry never repeats an alert
// that already went through.
type Idempotent interface{ Idempotent() bool }

// Closer is an optional power of sinks holding connections.
type Closer interface{ Close() error }

// PermanentError marks a failure that retrying will not fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// RetryAfterError carries the receiver's Retry-After.
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return fmt.Sprintf("%v (retry after %s)", e.Err, e.After) }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// Factory builds a sink of one kind from its YAML config; no network.
type Factory func(name string, decode func(any) error) (Sink, error)

var (
	mu       sync.RWMutex
	registry = map[string]Factory{}
)

// Register makes a sink kind available ("webhook", "clickhouse"). Call it from
// init(); it panics on a duplicate.
func Register(kind string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[kind]; dup {
		panic("deliver: duplicate sink kind " + kind)
	}
	registry[kind] = f
}

// New builds a sink of the named kind.
func New(kind, name string, decode func(any) error) (Sink, error) {
	mu.RLock()
	f, ok := registry[kind]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown sink kind %q (known: %v)", kind, Kinds())
	}
	return f(name, decode)
}

// Kinds lists registered sink kinds, sorted.
func Kinds() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
