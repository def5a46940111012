package clickhouse_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// TestRepeatedRowsAreStoredOnceWithoutFinal writes the way a crashing
// pipeline does: a batch, the same batch again (killed before the offset
// commit), an overlapping batch with repeats inside it, and the same id in a
// second tenant and integration (a different event). Plain count(), without
// FINAL, and the hourly materialized view must see each event once.
func TestRepeatedRowsAreStoredOnceWithoutFinal(t *testing.T) {
	ctx, _, c := migrated(t)
	base := time.Date(2026, 10, 30, 23, 50, 0, 0, time.UTC) // batches span a month boundary
	ev := func(tenant, integ string, i int) schemas.Event {
		return schemas.Event{EventID: fmt.Sprintf("e%d", i), Source: "okta", Tenant: tenant,
			Time:        schemas.NewTime(base.Add(time.Duration(i) * 24 * time.Hour / 10)),
			Integration: schemas.Integration{ID: integ}, Action: schemas.Action{Name: "x"}, Bytes: 10}
	}
	var first, overlap []schemas.Event
	for i := 0; i < 20; i++ {
		first = append(first, ev("T1", "app1", i))
	}
	for i := 15; i < 30; i++ {
		overlap = append(overlap, ev("T1", "app1", i), ev("T1", "app1", i))
	}
	other := []schemas.Event{ev("T2", "app1", 3), ev("T1", "app2", 3)}
	steps := []struct {
		name        string
		batch       []schemas.Event
		wantSkipped int
	}{
		{"first", first, 0},
		{"the same batch again", first, 20},
		{"overlap with repeats inside", overlap, 5 + 15},
		{"same id, other tenant and integration", other, 0},
	}
	for _, s := range steps {
		skipped, err := c.WriteNewEvents(ctx, s.batch)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if skipped != s.wantSkipped {
			t.Errorf("%s: %d left out, want %d", s.name, skipped, s.wantSkipped)
		}
	}
	var n, hourly uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count() FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := c.Conn().QueryRow(ctx, "SELECT countMerge(events) FROM integration_activity_hourly").Scan(&hourly); err != nil {
		t.Fatal(err)
	}
	if n != 32 || hourly != 32 {
		t.Fatalf("count() %d, hourly view %d: want 32 unique events", n, hourly)
	}

	a := schemas.Alert{ID: "a1", Detector: "d", Severity: schemas.SeverityHigh, IntegrationID: "app1", Tenant: "T1",
		FirstSeen: schemas.NewTime(base), LastSeen: schemas.NewTime(base)}
	b := a
	b.ID = "a2"
	for _, batch := range [][]schemas.Alert{{a, a}, {a, b}} {
		if err := c.WriteAlerts(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	inc := schemas.Incident{ID: "i1", Version: 1, Tenant: "T1", IntegrationID: "app1", Severity: schemas.SeverityHigh,
		FirstSeen: schemas.NewTime(base), LastSeen: schemas.NewTime(base), UpdatedAt: schemas.NewTime(base)}
	v2 := inc
	v2.Version = 2
	for _, batch := range [][]schemas.Incident{{inc}, {inc, v2, v2}} {
		if err := c.WriteIncidents(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	var alerts, incidents uint64
	c.Conn().QueryRow(ctx, "SELECT count() FROM alerts").Scan(&alerts)
	c.Conn().QueryRow(ctx, "SELECT count() FROM incidents").Scan(&incidents)
	if alerts != 2 || incidents != 2 {
		t.Fatalf("alerts %d (want 2), incident versions %d (want 2) without FINAL", alerts, incidents)
	}
}

// Events stored before migration 0021 added key_hash sit in parts without
// the column: the server computes it when the lookup reads them, so they are
// still found.
func TestEventsStoredBeforeKeyHashAreFound(t *testing.T) {
	ctx, _, c := migrated(t)
	const add = "ALTER TABLE events ADD COLUMN key_hash UInt64 MATERIALIZED cityHash64(tenant, integration_id, event_id)"
	if err := c.Conn().Exec(ctx, "ALTER TABLE events DROP COLUMN key_hash"); err != nil {
		t.Fatal(err)
	}
	ts := schemas.NewTime(time.Date(2026, 10, 30, 9, 0, 0, 0, time.UTC))
	old := []schemas.Event{{EventID: "e-old", Source: "okta", Tenant: "T1", Time: ts, Integration: schemas.Integration{ID: "app1"}}}
	b, err := c.Conn().PrepareBatch(ctx, "INSERT INTO events (event_id, source, tenant, integration_id, time)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append("e-old", "okta", "T1", "app1", ts.Time); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	if err := c.Conn().Exec(ctx, add); err != nil {
		t.Fatal(err)
	}
	if skipped, err := c.WriteNewEvents(ctx, old); err != nil || skipped != 1 {
		t.Fatalf("an event stored before key_hash existed: %d left out (%v), want 1", skipped, err)
	}
}
