package correlate

import (
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Book is the analysts' decisions in force, the latest per incident: the
// live detect role refreshes it from tokenwatch.incident_decisions, and
// `tokenwatch replay --decisions` fills it from a file, so a rehearsal honours
// the same suppressions and resolutions the live correlator did. Safe for
// concurrent use.
type Book struct {
	mu   sync.RWMutex
	byID map[string]schemas.Decision
}

var _ Decisions = (*Book)(nil)

// NewBook returns a book of ds: per incident the decision with the latest
// decided_at (of equal ones, the later in ds, as on the compacted topic).
func NewBook(ds []schemas.Decision) *Book {
	b := &Book{}
	b.Replace(ds)
	return b
}

// Replace makes ds the decisions in force (the same choice as NewBook).
func (b *Book) Replace(ds []schemas.Decision) {
	next := make(map[string]schemas.Decision, len(ds))
	for _, d := range ds {
		if d.IncidentID == "" {
			continue
		}
		if prev, ok := next[d.IncidentID]; ok && d.DecidedAt.Before(prev.DecidedAt.Time) {
			continue
		}
		next[d.IncidentID] = d
	}
	b.mu.Lock()
	b.byID = next
	b.mu.Unlock()
}

// Len is how many incidents have a decision.
func (b *Book) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.byID)
}

// Decision is the decision in force on incident id.
func (b *Book) Decision(id string) (schemas.Decision, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	d, ok := b.byID[id]
	return d, ok
}

// Suppressed reports whether tenant's key is under a suppression at event
// time t: a suppression holds for signals dated before its until.
func (b *Book) Suppressed(tenant, key string, t time.Time) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, d := range b.byID {
		if d.Action == schemas.DecisionSuppress && d.Tenant == tenant && d.Key == key && d.Until != nil && t.Before(d.Until.Time) {
			return true
		}
	}
	return false
}
