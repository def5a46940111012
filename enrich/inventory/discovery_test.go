package inventory

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

var t0 = time.Date(2026, 10, 5, 9, 0, 0, 0, time.UTC)

func seen(tenant, id, source string, at time.Duration, inv *schemas.Inventory, scopes ...string) *schemas.Event {
	return &schemas.Event{Tenant: tenant, Source: source, Time: schemas.NewTime(t0.Add(at)),
		Integration: schemas.Integration{ID: id, Name: "conn-" + id}, Inventory: inv, Scopes: scopes}
}

func TestDiscoveryRecordsSightingsAndDrainsOnlyChanges(t *testing.T) {
	d := NewDiscovery(0)
	owned := &schemas.Inventory{Catalogued: true, Name: "CRM Sync", Owner: "alice"}
	d.Observe(seen("acme", "crm", "salesforce", time.Hour, owned, "api"))
	d.Observe(seen("acme", "crm", "google_workspace", 0, owned, "calendar", "api")) // late event
	d.Observe(seen("acme", "stray", "slack", 0, &schemas.Inventory{}))

	got := d.Drain()
	want := []Sighting{
		{Tenant: "acme", IntegrationID: "crm", Name: "CRM Sync", Owner: "alice", Catalogued: true, FirstSeen: t0, LastSeen: t0.Add(time.Hour),
			Sources: []string{"google_workspace", "salesforce"}, Scopes: []string{"api", "calendar"}},
		{Tenant: "acme", IntegrationID: "stray", Name: "conn-stray", FirstSeen: t0, LastSeen: t0, Sources: []string{"slack"}, Scopes: []string{}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("drain:\n got %+v\nwant %+v", got, want)
	}
	if again := d.Drain(); len(again) != 0 {
		t.Fatalf("second drain returned %v", again)
	}

	// Nothing new: an event inside the known span with known scopes.
	d.Observe(seen("acme", "crm", "salesforce", 30*time.Minute, owned, "api"))
	if got := d.Drain(); len(got) != 0 {
		t.Fatalf("unchanged sighting drained: %v", got)
	}
	// Each kind of change makes the row pending again.
	for name, ev := range map[string]*schemas.Event{
		"later event": seen("acme", "crm", "salesforce", 2*time.Hour, owned),
		"new scope":   seen("acme", "crm", "salesforce", 0, owned, "refresh_token"),
		"new owner":   seen("acme", "crm", "salesforce", 0, &schemas.Inventory{Catalogued: true, Name: "CRM Sync", Owner: "bob"}),
	} {
		d.Observe(ev)
		if got := d.Drain(); len(got) != 1 || got[0].IntegrationID != "crm" {
			t.Errorf("%s: drained %v", name, got)
		}
	}
}

func TestDiscoveryIsBoundedAndKeepsPendingRowsOfEvicted(t *testing.T) {
	d := NewDiscovery(2)
	d.Observe(seen("acme", "a", "slack", 0, nil))
	d.Observe(seen("acme", "b", "slack", time.Hour, nil))
	d.Observe(seen("acme", "c", "slack", 2*time.Hour, nil)) // evicts a, the least recently seen
	if d.Len() != 2 {
		t.Fatalf("tracking %d integrations, cap 2", d.Len())
	}
	var ids []string
	for _, s := range d.Drain() {
		ids = append(ids, s.IntegrationID)
	}
	if !slices.Equal(ids, []string{"a", "b", "c"}) {
		t.Fatalf("drained %v: the evicted row's pending change was lost", ids)
	}
	// Scopes per integration are capped too.
	many := make([]string, MaxScopes+10)
	for i := range many {
		many[i] = fmt.Sprintf("scope-%03d", i)
	}
	d.Observe(seen("acme", "c", "slack", 3*time.Hour, nil, many...))
	if got := d.Drain(); len(got) != 1 || len(got[0].Scopes) != MaxScopes {
		t.Fatalf("scopes not capped: %d rows", len(got))
	}
}

func TestDiscoverySeedKeepsHistoryAcrossRestarts(t *testing.T) {
	d := NewDiscovery(0)
	d.Seed([]Sighting{{Tenant: "acme", IntegrationID: "crm", FirstSeen: t0.Add(-30 * 24 * time.Hour), LastSeen: t0.Add(-time.Hour),
		Sources: []string{"slack"}, Scopes: []string{"api"}, Catalogued: true, Name: "conn-crm"}})
	if got := d.Drain(); len(got) != 0 {
		t.Fatalf("seeded rows are not changes: %v", got)
	}
	d.Observe(seen("acme", "crm", "github", 0, &schemas.Inventory{Catalogued: true}))
	got := d.Drain()
	if len(got) != 1 || !got[0].FirstSeen.Equal(t0.Add(-30*24*time.Hour)) || !slices.Equal(got[0].Sources, []string{"github", "slack"}) {
		t.Fatalf("after seed + event: %+v", got)
	}
}
