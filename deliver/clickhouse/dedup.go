package clickhouse

import (
	"context"
	"fmt"
	"hash/maphash"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Effectively once in ClickHouse. An event reaches the events writer twice
// when it reached Kafka twice (a re-ingested file, a poller's overlap after a
// crash, a vendor redelivery) or when the writer dies between INSERT and
// offset commit and its batch is fetched again. ReplacingMergeTree collapses
// such rows only at merge time, so count() without FINAL, the materialized
// views and every dashboard would count them twice.
//
// Before each INSERT the writer asks which of the batch's ids are already
// stored and leaves them out (an external table carries the ids; the lookup
// is bounded to the batch's tenants, integrations and time range, and
// compares the stored key_hash, one UInt64 a row, before the strings). Kafka Connect's ClickHouse sink stores the consumed
// offsets beside the data for the same end; an id lookup also catches the
// repeats that reached Kafka at new offsets, which an offset cannot.
//
// It holds with one writer per events partition (the deliver role's consumer
// group gives each partition to one member; an integration's events share a
// partition). During a rebalance two members may briefly write the same
// partition; ReplacingMergeTree still collapses what slips through at merge.
//
// ClickHouse 18.16 has no insert deduplication for non-replicated tables
// (non_replicated_deduplication_window came in 20.x) and no insert_deduplication_token.

// freshEvents returns evs without events already stored and without repeats
// inside the batch (first occurrence kept), and how many it left out. evs
// itself is returned when nothing is left out (the common case: no copy).
func (c *Client) freshEvents(ctx context.Context, evs []schemas.Event) ([]schemas.Event, int, error) {
	type key struct{ tenant, integ, id string }
	// In-batch repeats: a map keyed by a hash of the key hashes and compares
	// far cheaper than one keyed by three strings; the first event with each
	// hash is its value, and a second key with the same hash goes to clash.
	seed := maphash.MakeSeed()
	first := make(map[uint64]int32, len(evs))
	var clash map[key]struct{}
	var repeats []int // indexes of in-batch repeats, ascending
	tenants, integs, ids := make([]string, 0, len(evs)), make([]string, 0, len(evs)), make([]string, 0, len(evs))
	lo, hi := evs[0].Time.Unix(), evs[0].Time.Unix()
	for i := range evs {
		e := &evs[i]
		k := key{e.Tenant, e.Integration.ID, e.EventID}
		h := batchKeyHash(seed, k.tenant, k.integ, k.id)
		if j, taken := first[h]; !taken {
			first[h] = int32(i)
		} else if o := &evs[j]; o.Tenant == k.tenant && o.Integration.ID == k.integ && o.EventID == k.id {
			repeats = append(repeats, i)
			continue
		} else if _, dup := clash[k]; dup {
			repeats = append(repeats, i)
			continue
		} else {
			if clash == nil {
				clash = map[key]struct{}{}
			}
			clash[k] = struct{}{}
		}
		tenants, integs, ids = append(tenants, k.tenant), append(integs, k.integ), append(ids, k.id)
		lo, hi = min(lo, e.Time.Unix()), max(hi, e.Time.Unix())
	}
	tbl, err := ext.NewTable("batch", ext.Column("tenant", "String"), ext.Column("integration_id", "String"), ext.Column("event_id", "String"))
	if err != nil {
		return nil, 0, err
	}
	for i, col := range [...][]string{tenants, integs, ids} { // whole columns: no per-row boxing
		if _, err := tbl.Block().Columns[i].Append(col); err != nil {
			return nil, 0, err
		}
	}
	// The batch's tenants and integrations, a prefix of the sorting key, and
	// its time range bound what is read; key_hash (migration 0021) then
	// narrows to candidates, whose strings are compared exactly below, so a
	// hash collision cannot drop an event.
	const q = `SELECT tenant, integration_id, event_id FROM events
		WHERE time >= toDateTime(?) AND time <= toDateTime(?)
		  AND tenant IN (SELECT tenant FROM batch)
		  AND integration_id IN (SELECT integration_id FROM batch)
		  AND key_hash IN (SELECT cityHash64(tenant, integration_id, event_id) FROM batch)`
	stored := map[key]bool{}
	qctx := ch.Context(ctx, ch.WithExternalTable(tbl))
	rows, err := c.conn.Query(qctx, q, max(lo, 0), max(hi, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("clickhouse: look up stored event ids: %w", err)
	}
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.tenant, &k.integ, &k.id); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("clickhouse: look up stored event ids: %w", err)
		}
		stored[k] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("clickhouse: look up stored event ids: %w", err)
	}
	if len(repeats) == 0 && len(stored) == 0 {
		return evs, 0, nil
	}
	out := make([]schemas.Event, 0, len(evs)-len(repeats))
	for i := range evs {
		if len(repeats) > 0 && repeats[0] == i {
			repeats = repeats[1:]
			continue
		}
		e := &evs[i]
		if stored[key{e.Tenant, e.Integration.ID, e.EventID}] {
			continue // every later occurrence is in repeats
		}
		out = append(out, *e)
	}
	return out, len(evs) - len(out), nil
}

// batchKeyHash hashes an event's identity for freshEvents' repeat check; a
// variable so a test can make every key collide.
var batchKeyHash = func(seed maphash.Seed, tenant, integ, id string) uint64 {
	return maphash.Comparable(seed, [3]string{tenant, integ, id})
}

// storedIDs returns which of ids already have a row in table (column col).
// Alerts and incidents are few per batch; no range bound is needed.
func (c *Client) storedIDs(ctx context.Context, table, col string, ids []string) (map[string]bool, error) {
	tbl, err := ext.NewTable("batch", ext.Column("id", "String"))
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := tbl.Append(id); err != nil {
			return nil, err
		}
	}
	rows, err := c.conn.Query(ch.Context(ctx, ch.WithExternalTable(tbl)),
		fmt.Sprintf("SELECT %s FROM %s WHERE %s IN (SELECT id FROM batch)", col, table, col))
	if err != nil {
		return nil, fmt.Errorf("clickhouse: look up stored %s ids: %w", table, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("clickhouse: look up stored %s ids: %w", table, err)
		}
		out[id] = true
	}
	return out, rows.Err()
}
