// Package ingest owns getting SaaS audit records into tokenwatch: the Source
// connector contract and its registry, the raw-record file reader, and (in
// sub-packages) one folder per vendor connector, the Kafka publisher and the
// pollers. It must not import detect, enrich or deliver: data flows one way.
package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// A Source reads one SaaS audit API. It knows the vendor's paging, auth and
// record shape, and nothing of Kafka, cursor storage, retries or schedules.
type Source interface {
	// Name is the registered id, e.g. "google_workspace"; it prefixes errors,
	// metrics and dead letters.
	Name() string
	// Fetch returns the page after cur. Calling it again with the same cur must
	// be safe: pages may overlap, and events are deduplicated by EventID
	// downstream. A *RateLimitError asks the caller to wait before retrying.
	Fetch(ctx context.Context, cur Cursor) (Page, error)
	// Normalize maps one raw record to events. Pure: no I/O, no clock. An error
	// means the record is dead-lettered with the error as the reason.
	Normalize(raw json.RawMessage) ([]schemas.Event, error)
}

// Normalizer is the pure half of a Source, all that offline tools need.
type Normalizer interface {
	Name() string
	Normalize(raw json.RawMessage) ([]schemas.Event, error)
}

// Cursor is where a poll resumes: a time pointer, the vendor's page token, and
// the ids already seen at the pointer's timestamp (so a boundary re-read does
// not duplicate them).
type Cursor struct {
	Time       time.Time `json:"time"`
	Token      string    `json:"token,omitempty"`
	SeenAtTime []string  `json:"seen_at_time,omitempty"`
}

// Page is one response from a vendor API.
type Page struct {
	Records []json.RawMessage
	Next    Cursor
	// Done is true when there is no further page now (poll again later from Next).
	Done bool
}

// RateLimitError is returned by Fetch when the vendor says to slow down.
type RateLimitError struct {
	RetryAfter time.Duration
	Status     int
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited (HTTP %d), retry after %s", e.Status, e.RetryAfter)
}

// Options is what every connector gets besides its own config.
type Options struct {
	Tenant  string       // the tenant label events carry when the record has none
	BaseURL string       // override of the vendor endpoint (tests, sovereign clouds)
	Client  *http.Client // nil means http.DefaultClient
}

// Factory builds a Source from its YAML config (decode fills the connector's
// own struct). It validates and must not touch the network.
type Factory func(decode func(any) error, opt Options) (Source, error)

var (
	mu       sync.RWMutex
	registry = map[string]Factory{}
)

// Register makes a connector available by name. Call it from init(); it panics
// on a duplicate name.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[name]; dup {
		panic("ingest: duplicate source " + name)
	}
	registry[name] = f
}

// New builds the named source.
func New(name string, decode func(any) error, opt Options) (Source, error) {
	mu.RLock()
	f, ok := registry[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown source %q (known: %v)", name, Names())
	}
	return f(decode, opt)
}

// Names lists registered sources, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// NoConfig is a decode function for a source built without YAML.
func NoConfig(any) error { return nil }

var normalizers = map[string]func(tenant string) Normalizer{}

// RegisterNormalizer makes a connector's pure half available to offline tools
// (normalize, replay), which have no credentials to build a full Source. Call
// it from init() beside Register.
func RegisterNormalizer(name string, f func(tenant string) Normalizer) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := normalizers[name]; dup {
		panic("ingest: duplicate normalizer " + name)
	}
	normalizers[name] = f
}

// NewNormalizer returns the named source's normalizer.
func NewNormalizer(name, tenant string) (Normalizer, error) {
	mu.RLock()
	f, ok := normalizers[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown source %q (known: %v)", name, Names())
	}
	return f(tenant), nil
}
