package clickhouse

import (
	"context"
	"fmt"
	"hash/maphash"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/platform/chtest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// With every key hashing alike, freshEvents' repeat check falls back to its
// clash set for all but the first key, and must still keep each first
// occurrence and leave out each repeat.
func TestInBatchRepeatsSurviveHashCollisions(t *testing.T) {
	defer func(h func(maphash.Seed, string, string, string) uint64) { batchKeyHash = h }(batchKeyHash)
	batchKeyHash = func(maphash.Seed, string, string, string) uint64 { return 42 }
	srv := chtest.New(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Addr = []string{srv.TCPAddr}
	if _, err := Migrate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ts := schemas.NewTime(time.Date(2026, 10, 30, 9, 0, 0, 0, time.UTC))
	ev := func(tenant, integ string, i int) schemas.Event {
		return schemas.Event{EventID: fmt.Sprintf("e%d", i), Source: "okta", Tenant: tenant, Time: ts, Integration: schemas.Integration{ID: integ}}
	}
	// Four distinct keys (same id under other tenants and integrations),
	// each repeated; the first key's repeat is found through first, the
	// others' through clash.
	batch := []schemas.Event{ev("T1", "a", 1), ev("T1", "a", 2), ev("T2", "a", 1), ev("T1", "b", 1),
		ev("T1", "a", 1), ev("T1", "a", 2), ev("T2", "a", 1), ev("T1", "b", 1), ev("T1", "b", 1)}
	fresh, skipped, err := c.freshEvents(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 5 || len(fresh) != 4 {
		t.Fatalf("%d left out, %d kept: want 5 and 4", skipped, len(fresh))
	}
	for i, e := range fresh {
		if e.Tenant != batch[i].Tenant || e.Integration.ID != batch[i].Integration.ID || e.EventID != batch[i].EventID {
			t.Fatalf("kept %d is %s/%s/%s, want the first occurrences in order", i, e.Tenant, e.Integration.ID, e.EventID)
		}
	}
}
