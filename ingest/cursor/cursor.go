// Package cursor owns where each poller resumes: one durable ingest.Cursor per
// (source, tenant). The Kafka store keeps them on a compacted topic, so the
// cursor lives in the same system as the events it points past and needs no
// extra database; the memory store is for tests and one-shot runs.
//
// A store does not interpret the cursor: ingest/poll decides what it holds
// (see its README). A store must not import ingest/poll or the connectors.
package cursor

import (
	"context"
	"slices"
	"sync"

	"github.com/tokenwatch/tokenwatch/ingest"
)

// Store keeps the latest cursor per (source, tenant).
//
// Save returns nil only once the cursor is durable (for Kafka: acknowledged by
// all in-sync replicas); a caller advances only after that. Load returns
// ok=false when nothing was ever saved for the pair. Both are safe for
// concurrent use by several pollers; each (source, tenant) pair must have one
// writer.
type Store interface {
	Load(ctx context.Context, source, tenant string) (c ingest.Cursor, ok bool, err error)
	Save(ctx context.Context, source, tenant string, c ingest.Cursor) error
}

// Key is the record key of a (source, tenant) pair: "source/tenant". Source
// names never contain "/", so the split at the first "/" is unambiguous.
func Key(source, tenant string) string { return source + "/" + tenant }

// Memory is an in-process Store, for tests and runs that need no resume.
type Memory struct {
	mu sync.Mutex
	m  map[string]ingest.Cursor
	// Saves counts successful saves, for tests asserting when a cursor moved.
	saves int
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty memory store.
func NewMemory() *Memory { return &Memory{m: map[string]ingest.Cursor{}} }

// Load implements Store.
func (s *Memory) Load(_ context.Context, source, tenant string) (ingest.Cursor, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[Key(source, tenant)]
	return clone(c), ok, nil
}

// Save implements Store.
func (s *Memory) Save(_ context.Context, source, tenant string, c ingest.Cursor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[Key(source, tenant)] = clone(c)
	s.saves++
	return nil
}

// Saves reports how many saves succeeded.
func (s *Memory) Saves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}

// clone keeps callers from sharing the SeenAtTime backing array with the store.
func clone(c ingest.Cursor) ingest.Cursor {
	c.SeenAtTime = slices.Clone(c.SeenAtTime)
	return c
}
