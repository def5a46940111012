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

// Receipt is what a sink needs to remember about an incident it delivered,
// to update it next time: Slack's channel and message ts. The runtime stores
// it durably (tokenwatch.delivered) with the delivered version and hands it
// back with the incident's next version. Most sinks return "".
type Receipt string

// IncidentSink is an optional power: a sink that delivers incidents
// (schemas.Incident, from tokenwatch.incidents). The runtime calls it once per
// incident version, only with a version newer than the last one this sink
// delivered (across restarts), and only the newest of a batch. prev is the
// receipt returned for the last delivered version of this incident, "" the
// first time. Errors follow Send's rules (PermanentError, RetryAfterError,
// no secrets).
type IncidentSink interface {
	Sink
	SendIncident(ctx context.Context, inc schemas.Incident, prev Receipt) (Receipt, error)
}

// IncidentCapable lets a sink whose type is an IncidentSink say that its
// configuration cannot deliver incidents (Slack with only an incoming
// webhook: no chat.update).
type IncidentCapable interface{ TakesIncidents() bool }

// Pager is an optional power of sinks that page or interrupt a person
// (PagerDuty, Slack in bot mode): they get incidents, and alerts only where
// config asks for them (deliver.sinks[].alerts, deliver.routes[].alerts).
type Pager interface{ Pages() bool }

// Archiver is an optional power of a sink that keeps a record nobody is
// paged from (the file sink with `archive: true`): besides the live alerts
// it gets shadow alerts (schemas.Alert.Shadow), which every other sink
// skips.
type Archiver interface{ Archives() bool }

// Wrapper is a sink around another (circuit breaker, rate limit).
type Wrapper interface{ Unwrap() Sink }

// Innermost unwraps s to the sink that does the delivering.
func Innermost(s Sink) Sink {
	for {
		w, ok := s.(Wrapper)
		if !ok {
			return s
		}
		s = w.Unwrap()
	}
}

// TakesIncidents reports whether s (through its wrappers) delivers incidents.
func TakesIncidents(s Sink) bool {
	in := Innermost(s)
	if _, ok := in.(IncidentSink); !ok {
		return false
	}
	if c, ok := in.(IncidentCapable); ok {
		return c.TakesIncidents()
	}
	return true
}

// Pages reports whether s (through its wrappers) pages a person.
func Pages(s Sink) bool {
	p, ok := Innermost(s).(Pager)
	return ok && p.Pages()
}

// Archives reports whether s (through its wrappers) is an archive that
// records shadow alerts.
func Archives(s Sink) bool {
	a, ok := Innermost(s).(Archiver)
	return ok && a.Archives()
}

// sendIncident calls s's SendIncident, or fails permanently when s cannot
// take incidents (a wrapper around a sink that is not an IncidentSink).
func sendIncident(ctx context.Context, s Sink, inc schemas.Incident, prev Receipt) (Receipt, error) {
	is, ok := s.(IncidentSink)
	if !ok {
		return "", &PermanentError{Err: fmt.Errorf("sink %s: does not deliver incidents", s.Name())}
	}
	return is.SendIncident(ctx, inc, prev)
}
