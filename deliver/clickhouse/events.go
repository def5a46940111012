package clickhouse

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// insertEvents names every column: events' optional fields (migration 0013)
// are written as plain zero values when absent (0 token_issued_at_ms is
// unknown, an empty delegation unknown, 0 http_status_code no request).
// The order is eventColumns.columns' order.
const insertEvents = `INSERT INTO events (event_id, source, tenant, time, time_ms, integration_id, source_app_id,
	integration_name, credential_type, credential_id, credential_name, credential_issuer, principal_id, principal_type,
	action_name, action_category, target_app, resource_type, resource_id, scopes, requested_scopes, token_issued_at_ms,
	impersonation, delegation, directory_roles, http_method, http_route, http_status_code, ip, user_agent, ip_chain,
	proxy, network_asn, network_as_org, outcome, bytes, records, country, city, lat, lon, asn, as_org, raw)`

// WriteEvents inserts the events not already stored as one batch (dedup.go).
func (c *Client) WriteEvents(ctx context.Context, events []schemas.Event) error {
	_, err := c.WriteNewEvents(ctx, events)
	return err
}

// WriteNewEvents is WriteEvents that also says how many events it left out
// as already stored or repeated in the batch.
func (c *Client) WriteNewEvents(ctx context.Context, events []schemas.Event) (skipped int, err error) {
	if len(events) == 0 {
		return 0, nil
	}
	if events, skipped, err = c.freshEvents(ctx, events); err != nil || len(events) == 0 {
		return skipped, err
	}
	return skipped, c.insertEvents(ctx, events)
}

// eventColumns holds a batch column by column. Appending whole columns to
// the driver's block costs a fraction of a row-wise Append, which boxes
// each of a row's 44 values in an interface and converts it through a type
// switch (BENCHMARKS.md section 4). Filled insertChunk rows at a time and
// pooled, so its slices are reused from batch to batch.
type eventColumns struct {
	str    [len(strCols)][]string // the String columns, in strCols order
	time   []time.Time
	u64    [4][]uint64 // time_ms, token_issued_at_ms, bytes, records
	u8     [2][]uint8  // impersonation, proxy
	status []uint16
	u32    [2][]uint32 // network_asn, asn
	f64    [2][]float64
	arrays [4][][]string // scopes, requested_scopes, directory_roles, ip_chain
}

// otherCols is how many of insertEvents' columns are not in strCols: time,
// the four u64, two u8, status, two u32, two f64 and four arrays.
const otherCols = 16

var eventColumnsPool = sync.Pool{New: func() any { return new(eventColumns) }}

func (c *eventColumns) reset() {
	for i := range c.str {
		clear(c.str[i]) // drop the strings for the collector
		c.str[i] = c.str[i][:0]
	}
	for i := range c.arrays {
		clear(c.arrays[i])
		c.arrays[i] = c.arrays[i][:0]
	}
	c.time = c.time[:0]
	for i := range c.u64 {
		c.u64[i] = c.u64[i][:0]
	}
	for i := range c.u8 {
		c.u8[i] = c.u8[i][:0]
	}
	c.status = c.status[:0]
	for i := range c.u32 {
		c.u32[i] = c.u32[i][:0]
	}
	for i := range c.f64 {
		c.f64[i] = c.f64[i][:0]
	}
}

// add appends one event's row.
func (c *eventColumns) add(e *schemas.Event) {
	var g schemas.Geo
	if e.Geo != nil {
		g = *e.Geo
	}
	var h schemas.HTTP
	if e.HTTP != nil {
		h = *e.HTTP
	}
	var issuedAt uint64
	if e.TokenIssuedAt != nil && !e.TokenIssuedAt.IsZero() {
		issuedAt = uint64(max(e.TokenIssuedAt.UnixMilli(), 0))
	}
	for i, v := range [len(strCols)]string{e.EventID, e.Source, e.Tenant, e.Integration.ID, e.Integration.SourceAppID,
		e.Integration.Name, e.Credential.Type, e.Credential.ID, e.Credential.Name, e.Credential.Issuer,
		e.Principal.ID, e.Principal.Type, e.Action.Name, e.Action.Category, e.TargetApp, e.Resource.Type,
		e.Resource.ID, e.Delegation, h.Method, h.Route, e.Network.IP, e.Network.UserAgent, e.Network.ASOrg,
		e.Outcome, g.Country, g.City, g.ASOrg, string(e.Raw)} {
		c.str[i] = append(c.str[i], v)
	}
	c.time = append(c.time, e.Time.Time)
	c.u64[0] = append(c.u64[0], uint64(e.Time.UnixMilli()))
	c.u64[1] = append(c.u64[1], issuedAt)
	c.u64[2] = append(c.u64[2], uint64(max(e.Bytes, 0)))
	c.u64[3] = append(c.u64[3], uint64(max(e.Records, 0)))
	c.u8[0] = append(c.u8[0], flag(e.Impersonation))
	c.u8[1] = append(c.u8[1], flag(e.Network.Proxy))
	c.status = append(c.status, uint16(min(max(h.StatusCode, 0), 65535)))
	c.u32[0] = append(c.u32[0], e.Network.ASN)
	c.u32[1] = append(c.u32[1], g.ASN)
	c.f64[0] = append(c.f64[0], g.Lat)
	c.f64[1] = append(c.f64[1], g.Lon)
	c.arrays[0] = append(c.arrays[0], strings0(e.Scopes))
	c.arrays[1] = append(c.arrays[1], strings0(e.RequestedScopes))
	c.arrays[2] = append(c.arrays[2], strings0(e.DirectoryRoles))
	c.arrays[3] = append(c.arrays[3], strings0(e.Network.IPChain))
}

// strCols are the String columns in the order add fills c.str.
var strCols = [...]string{"event_id", "source", "tenant", "integration_id", "source_app_id",
	"integration_name", "credential_type", "credential_id", "credential_name", "credential_issuer",
	"principal_id", "principal_type", "action_name", "action_category", "target_app", "resource_type",
	"resource_id", "delegation", "http_method", "http_route", "ip", "user_agent", "network_as_org",
	"outcome", "country", "city", "as_org", "raw"}

// column returns the slice holding the column named name, and whether it is
// an Array column (appended row by row: the driver's whole-column Append
// for arrays goes through reflection).
func (c *eventColumns) column(name string) (v any, array bool, err error) {
	for i, n := range strCols {
		if n == name {
			return c.str[i], false, nil
		}
	}
	switch name {
	case "time":
		return c.time, false, nil
	case "time_ms":
		return c.u64[0], false, nil
	case "token_issued_at_ms":
		return c.u64[1], false, nil
	case "bytes":
		return c.u64[2], false, nil
	case "records":
		return c.u64[3], false, nil
	case "impersonation":
		return c.u8[0], false, nil
	case "proxy":
		return c.u8[1], false, nil
	case "http_status_code":
		return c.status, false, nil
	case "network_asn":
		return c.u32[0], false, nil
	case "asn":
		return c.u32[1], false, nil
	case "lat":
		return c.f64[0], false, nil
	case "lon":
		return c.f64[1], false, nil
	case "scopes":
		return c.arrays[0], true, nil
	case "requested_scopes":
		return c.arrays[1], true, nil
	case "directory_roles":
		return c.arrays[2], true, nil
	case "ip_chain":
		return c.arrays[3], true, nil
	}
	return nil, false, fmt.Errorf("no buffer for events column %q", name)
}

// appendTo fills b's columns, matched by the names the server returned for
// the INSERT, so the column order lives in one place (insertEvents).
func (c *eventColumns) appendTo(b driver.Batch) error {
	for i, col := range b.Columns() {
		v, array, err := c.column(col.Name())
		if err != nil {
			return err
		}
		bc := b.Column(i)
		if !array {
			if err := bc.Append(v); err != nil {
				return fmt.Errorf("column %s: %w", col.Name(), err)
			}
			continue
		}
		for _, row := range v.([][]string) {
			if err := bc.AppendRow(row); err != nil {
				return fmt.Errorf("column %s: %w", col.Name(), err)
			}
		}
	}
	return nil
}

// insertChunk is how many rows the writer appends before it hands them to the
// driver (batch.Flush): the column buffers, the driver's and ours, stay a
// few megabytes and are reused, where a whole 50,000-event batch grew
// fresh ones of tens of megabytes each time. The server squashes the blocks
// of one INSERT (min_insert_block_size_rows) and writes them as it would
// one block. 2,048 rather than 8,192: the driver's columns start empty for
// every INSERT and grow by doubling through the first chunk, so a smaller
// chunk copies less per batch (this process's CPU 3.18 → 3.01 s per 500,000
// events, medians of 7 alternated runs; BENCHMARKS.md section 4), and 1,024
// measured no better.
const insertChunk = 2048

func (c *Client) insertEvents(ctx context.Context, events []schemas.Event) error {
	b, err := c.conn.PrepareBatch(ctx, insertEvents)
	if err != nil {
		return fmt.Errorf("clickhouse: prepare events batch: %w", err)
	}
	defer b.Abort()
	if len(b.Columns()) != len(strCols)+otherCols {
		return fmt.Errorf("clickhouse: events insert has %d columns, the writer fills %d", len(b.Columns()), len(strCols)+otherCols)
	}
	cols := eventColumnsPool.Get().(*eventColumns)
	defer func() { cols.reset(); eventColumnsPool.Put(cols) }()
	for start := 0; start < len(events); start += insertChunk {
		cols.reset()
		for i := start; i < min(start+insertChunk, len(events)); i++ {
			cols.add(&events[i])
		}
		if err := cols.appendTo(b); err != nil {
			return fmt.Errorf("clickhouse: append %d events: %w", len(events), err)
		}
		if start+insertChunk < len(events) {
			if err := b.Flush(); err != nil {
				return fmt.Errorf("clickhouse: insert %d events: %w", len(events), err)
			}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert %d events: %w", len(events), err)
	}
	return nil
}
