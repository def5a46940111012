package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// WriteDecision records an analyst's decision on an incident.
func (c *Client) WriteDecision(ctx context.Context, d schemas.Decision) error {
	var until time.Time
	if d.Until != nil {
		until = d.Until.Time
	}
	b, err := c.conn.PrepareBatch(ctx, `INSERT INTO incident_decisions (incident_id, tenant, key, integration_id, action, reason, actor, decided_at, until)`)
	if err != nil {
		return fmt.Errorf("clickhouse: record decision on %s: %w", d.IncidentID, err)
	}
	defer b.Abort()
	if err := b.Append(d.IncidentID, d.Tenant, d.Key, d.IntegrationID, d.Action, d.Reason, d.Actor, d.DecidedAt.Time, until); err != nil {
		return fmt.Errorf("clickhouse: record decision on %s: %w", d.IncidentID, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: record decision on %s: %w", d.IncidentID, err)
	}
	return nil
}

// Decisions reads every analyst decision recorded, oldest first, as the
// records of tokenwatch.incident_decisions (until only on a suppression).
func (c *Client) Decisions(ctx context.Context) ([]schemas.Decision, error) {
	rows, err := c.conn.Query(ctx, `SELECT incident_id, tenant, key, integration_id, toString(action), reason, actor, decided_at, until
		FROM incident_decisions ORDER BY decided_at, incident_id`)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read decisions: %w", err)
	}
	defer rows.Close()
	var out []schemas.Decision
	for rows.Next() {
		var d schemas.Decision
		var decided, until time.Time
		if err := rows.Scan(&d.IncidentID, &d.Tenant, &d.Key, &d.IntegrationID, &d.Action, &d.Reason, &d.Actor, &decided, &until); err != nil {
			return nil, fmt.Errorf("clickhouse: read decisions: %w", err)
		}
		d.DecidedAt = schemas.NewTime(decided)
		if d.Action == schemas.DecisionSuppress {
			u := schemas.NewTime(until)
			d.Until = &u
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: read decisions: %w", err)
	}
	return out, nil
}

// IncidentRow is what the incident commands show of an incident.
type IncidentRow struct {
	ID, Status, Tenant, IntegrationID, Key, Severity, Title string
	Version                                                 uint32
	RiskScore                                               float64
	LastSeen                                                time.Time
	Decision                                                string // the decision in force, "" without one
}

// 18.16 joins by USING on unqualified columns.
const incidentQuery = `SELECT id, status, tenant, integration_id, key, sev, title, version, risk_score, last_seen, action
	FROM (SELECT id, status, tenant, integration_id, key, toString(severity) AS sev, title, version, risk_score, last_seen FROM incidents FINAL %s)
	ANY LEFT JOIN (SELECT incident_id AS id, toString(action) AS action FROM incident_decision) USING id %s`

// Incident reads the newest version of one incident, with the decision in force.
func (c *Client) Incident(ctx context.Context, id string) (IncidentRow, error) {
	rows, err := c.incidents(ctx, fmt.Sprintf(incidentQuery, "WHERE id = ?", ""), id)
	if err != nil {
		return IncidentRow{}, err
	}
	if len(rows) == 0 {
		return IncidentRow{}, fmt.Errorf("no incident %s in ClickHouse", id)
	}
	return rows[0], nil
}

// Incidents lists the newest version of every incident, riskiest first.
func (c *Client) Incidents(ctx context.Context, limit int) ([]IncidentRow, error) {
	return c.incidents(ctx, fmt.Sprintf(incidentQuery, "", fmt.Sprintf("ORDER BY risk_score DESC, id LIMIT %d", limit)))
}

func (c *Client) incidents(ctx context.Context, q string, args ...any) ([]IncidentRow, error) {
	rows, err := c.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read incidents: %w", err)
	}
	defer rows.Close()
	var out []IncidentRow
	for rows.Next() {
		var r IncidentRow
		if err := rows.Scan(&r.ID, &r.Status, &r.Tenant, &r.IntegrationID, &r.Key, &r.Severity, &r.Title, &r.Version, &r.RiskScore, &r.LastSeen, &r.Decision); err != nil {
			return nil, fmt.Errorf("clickhouse: read incidents: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
