package inventory

import (
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Sighting is what Discovery knows of one integration in one tenant: the row
// the integrations table keeps, so analysts can list what is really active,
// where, with which scopes, and whether anyone catalogued it.
type Sighting struct {
	Tenant        string
	IntegrationID string
	Name          string
	Owner         string
	Catalogued    bool
	FirstSeen     time.Time // event time of the earliest event seen
	LastSeen      time.Time // event time of the latest event seen
	Sources       []string  // sorted
	Scopes        []string  // sorted, at most MaxScopes
}

// Discovery limits. An integration is a handful of sources and tens of
// scopes; the caps only stop a misbehaving source from growing memory.
const (
	DefaultMaxIntegrations = 100_000
	MaxSources             = 32
	MaxScopes              = 256
)

// Discovery tracks integrations seen in enriched events and hands out the rows
// that changed since the last Drain, for a writer to upsert. It is bounded:
// past maxIntegrations the least recently seen integration is forgotten
// (after its pending change, if any, is kept for the next Drain), and a later
// event starts it afresh. Safe for concurrent use.
type Discovery struct {
	mu      sync.Mutex
	max     int
	rows    map[sightingKey]*Sighting
	dirty   map[sightingKey]struct{}
	evicted []Sighting // changed rows forgotten before they were drained
}

type sightingKey struct{ tenant, id string }

// NewDiscovery returns a tracker holding at most maxIntegrations rows
// (DefaultMaxIntegrations when ≤ 0).
func NewDiscovery(maxIntegrations int) *Discovery {
	if maxIntegrations <= 0 {
		maxIntegrations = DefaultMaxIntegrations
	}
	return &Discovery{max: maxIntegrations, rows: map[sightingKey]*Sighting{}, dirty: map[sightingKey]struct{}{}}
}

// Observe folds one enriched event in. Call it after the inventory Enricher,
// so ev.Integration.ID is the catalog id and ev.Inventory is set.
func (d *Discovery) Observe(ev *schemas.Event) {
	if ev.Integration.ID == "" {
		return
	}
	t := ev.Time.Time.UTC()
	k := sightingKey{ev.Tenant, ev.Integration.ID}
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.rows[k]
	if !ok {
		if len(d.rows) >= d.max {
			d.evictOldest()
		}
		s = &Sighting{Tenant: ev.Tenant, IntegrationID: ev.Integration.ID, FirstSeen: t, LastSeen: t}
		d.rows[k] = s
		d.dirty[k] = struct{}{}
	}
	changed := false
	if t.Before(s.FirstSeen) {
		s.FirstSeen, changed = t, true
	}
	if t.After(s.LastSeen) {
		s.LastSeen, changed = t, true
	}
	name, owner, catalogued := ev.Integration.Name, "", false
	if inv := ev.Inventory; inv != nil {
		owner, catalogued = inv.Owner, inv.Catalogued
		if inv.Name != "" {
			name = inv.Name
		}
	}
	if name != s.Name || owner != s.Owner || catalogued != s.Catalogued {
		s.Name, s.Owner, s.Catalogued, changed = name, owner, catalogued, true
	}
	if ev.Source != "" && insertSorted(&s.Sources, ev.Source, MaxSources) {
		changed = true
	}
	for _, sc := range ev.Scopes {
		if sc != "" && insertSorted(&s.Scopes, sc, MaxScopes) {
			changed = true
		}
	}
	if changed {
		d.dirty[k] = struct{}{}
	}
}

// insertSorted adds v to the sorted set *set unless present or full, and
// reports whether it did.
func insertSorted(set *[]string, v string, limit int) bool {
	i, found := slices.BinarySearch(*set, v)
	if found || len(*set) >= limit {
		return false
	}
	*set = slices.Insert(*set, i, v)
	return true
}

// evictOldest forgets the least recently seen row. A linear scan: eviction
// only happens past the cap, which a healthy deployment never reaches.
func (d *Discovery) evictOldest() {
	var oldest sightingKey
	var at time.Time
	first := true
	for k, s := range d.rows {
		if first || s.LastSeen.Before(at) || (s.LastSeen.Equal(at) && less(k, oldest)) {
			oldest, at, first = k, s.LastSeen, false
		}
	}
	if _, pending := d.dirty[oldest]; pending {
		d.evicted = append(d.evicted, clone(d.rows[oldest]))
		delete(d.dirty, oldest)
	}
	delete(d.rows, oldest)
}

// Seed restores rows (read back from the integrations table at start-up) so
// first_seen, sources and scopes survive a restart. Seeded rows are not
// pending; rows already tracked are merged, keeping the earlier first_seen.
func (d *Discovery) Seed(rows []Sighting) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range rows {
		k := sightingKey{r.Tenant, r.IntegrationID}
		if s, ok := d.rows[k]; ok {
			if r.FirstSeen.Before(s.FirstSeen) {
				s.FirstSeen = r.FirstSeen
				d.dirty[k] = struct{}{}
			}
			continue
		}
		if len(d.rows) >= d.max {
			continue
		}
		c := clone(&r)
		slices.Sort(c.Sources)
		slices.Sort(c.Scopes)
		d.rows[k] = &c
	}
}

// Drain returns the rows changed since the last Drain, sorted by tenant and
// integration id, and marks them clean.
func (d *Discovery) Drain() []Sighting {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.evicted
	d.evicted = nil
	for k := range d.dirty {
		out = append(out, clone(d.rows[k]))
	}
	clear(d.dirty)
	sort.SliceStable(out, func(i, j int) bool {
		return less(sightingKey{out[i].Tenant, out[i].IntegrationID}, sightingKey{out[j].Tenant, out[j].IntegrationID})
	})
	return out
}

// Len is the number of integrations tracked.
func (d *Discovery) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.rows)
}

func less(a, b sightingKey) bool {
	if a.tenant != b.tenant {
		return a.tenant < b.tenant
	}
	return a.id < b.id
}

// clone copies s so callers never share the tracker's slices.
func clone(s *Sighting) Sighting {
	c := *s
	c.Sources = slices.Clone(s.Sources)
	c.Scopes = slices.Clone(s.Scopes)
	if c.Sources == nil {
		c.Sources = []string{}
	}
	if c.Scopes == nil {
		c.Scopes = []string{}
	}
	return c
}
