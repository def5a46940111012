package clickhouse

import (
	"context"
	"fmt"
	"time"
)

// IntegrationRow is one row of the integrations table: an integration seen in
// events, as enrich/inventory's Discovery tracks it. The pipeline converts
// inventory.Sighting to it, so this package does not reach back up into
// enrichment.
type IntegrationRow struct {
	Tenant        string
	IntegrationID string
	Name          string
	Owner         string
	Catalogued    bool
	FirstSeen     time.Time
	LastSeen      time.Time // the ReplacingMergeTree version: the latest row wins
	Sources       []string
	Scopes        []string
}

const insertIntegrations = `INSERT INTO integrations (tenant, integration_id, name, owner, catalogued, first_seen,
	last_seen, sources, scopes)`

// WriteIntegrations upserts rows as one batch. A row replaces an earlier one
// of the same (tenant, integration_id) with an older or equal last_seen once
// ClickHouse merges; read with FINAL.
func (c *Client) WriteIntegrations(ctx context.Context, rows []IntegrationRow) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := c.conn.PrepareBatch(ctx, insertIntegrations)
	if err != nil {
		return fmt.Errorf("clickhouse: prepare integrations batch: %w", err)
	}
	defer b.Abort()
	for i := range rows {
		r := &rows[i]
		var catalogued uint8
		if r.Catalogued {
			catalogued = 1
		}
		if err := b.Append(r.Tenant, r.IntegrationID, r.Name, r.Owner, catalogued, r.FirstSeen.UTC(), r.LastSeen.UTC(),
			nonNil(r.Sources), nonNil(r.Scopes)); err != nil {
			return fmt.Errorf("clickhouse: append integration %s/%s: %w", r.Tenant, r.IntegrationID, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert %d integrations: %w", len(rows), err)
	}
	return nil
}

// ReadIntegrations returns the current row of every integration (FINAL), so a
// restarted Discovery can be seeded with first_seen, sources and scopes.
func (c *Client) ReadIntegrations(ctx context.Context) ([]IntegrationRow, error) {
	rows, err := c.conn.Query(ctx, `SELECT tenant, integration_id, name, owner, catalogued, first_seen, last_seen,
		sources, scopes FROM integrations FINAL ORDER BY tenant, integration_id`)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read integrations: %w", err)
	}
	defer rows.Close()
	var out []IntegrationRow
	for rows.Next() {
		var r IntegrationRow
		var catalogued uint8
		if err := rows.Scan(&r.Tenant, &r.IntegrationID, &r.Name, &r.Owner, &catalogued, &r.FirstSeen, &r.LastSeen,
			&r.Sources, &r.Scopes); err != nil {
			return nil, fmt.Errorf("clickhouse: read integrations: %w", err)
		}
		r.Catalogued = catalogued == 1
		r.FirstSeen, r.LastSeen = r.FirstSeen.UTC(), r.LastSeen.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: read integrations: %w", err)
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
