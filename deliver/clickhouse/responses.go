package clickhouse

import (
	"context"
	"fmt"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Record writes respond's audit records (table responses); it is a
// respond.Recorder.
func (c *Client) Record(ctx context.Context, rs []schemas.Response) error {
	if len(rs) == 0 {
		return nil
	}
	b, err := c.conn.PrepareBatch(ctx, `INSERT INTO responses (id, incident_id, incident_version, tenant, source, integration_id, target,
		principal, action, mode, status, rule, reason, requests, error, actor, at, recorded_at, recorded_ns)`)
	if err != nil {
		return fmt.Errorf("clickhouse: record responses: %w", err)
	}
	defer b.Abort()
	for _, r := range rs {
		reqs := r.Requests
		if reqs == nil {
			reqs = []string{}
		}
		if err := b.Append(r.ID, r.IncidentID, uint32(max(r.IncidentVersion, 0)), r.Tenant, r.Source, r.IntegrationID, r.Target,
			r.Principal, r.Action, r.Mode, r.Status, r.Rule, r.Reason, reqs, r.Error, r.Actor, r.At.Time, r.RecordedAt.Time, uint64(max(r.RecordedAt.UnixNano(), 0))); err != nil {
			return fmt.Errorf("clickhouse: record response %s: %w", r.ID, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: record responses: %w", err)
	}
	return nil
}

// Completed reports which of ids have a step executed or already_done: the
// executor's guard against revoking twice after a restart (a respond.Store).
func (c *Client) Completed(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	// An external table, as storedIDs does: ids may be many, and 18.16 takes
	// no array parameter for IN.
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
		`SELECT DISTINCT id FROM responses WHERE id IN (SELECT id FROM batch) AND status IN ('executed', 'already_done')`)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read completed responses: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("clickhouse: read completed responses: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

const responseColumns = `id, incident_id, incident_version, tenant, source, integration_id, target, principal, toString(action),
	toString(mode), toString(status), rule, reason, requests, error, actor, at, recorded_at`

// Response reads the latest step of an action.
func (c *Client) Response(ctx context.Context, id string) (schemas.Response, error) {
	rs, err := c.responses(ctx, "SELECT "+responseColumns+" FROM responses WHERE id = ? ORDER BY recorded_ns DESC LIMIT 1", id)
	if err != nil {
		return schemas.Response{}, err
	}
	if len(rs) == 0 {
		return schemas.Response{}, fmt.Errorf("no response %s in ClickHouse", id)
	}
	return rs[0], nil
}

// IncidentResponses reads every step of the actions on an incident, oldest
// first: the Slack approvals' memory after a restart.
func (c *Client) IncidentResponses(ctx context.Context, incidentID string) ([]schemas.Response, error) {
	return c.responses(ctx, "SELECT "+responseColumns+" FROM responses WHERE incident_id = ? ORDER BY recorded_ns, id", incidentID)
}

// PendingApprovals lists the request_approval actions no one has answered,
// oldest incident time first.
func (c *Client) PendingApprovals(ctx context.Context, limit int) ([]schemas.Response, error) {
	return c.responses(ctx, fmt.Sprintf(`SELECT %s FROM responses
		WHERE id IN (SELECT id FROM response_state WHERE action = 'request_approval' AND status = 'planned')
		ORDER BY at, id, recorded_ns DESC LIMIT 1 BY id LIMIT %d`, responseColumns, limit))
}

func (c *Client) responses(ctx context.Context, q string, args ...any) ([]schemas.Response, error) {
	rows, err := c.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read responses: %w", err)
	}
	defer rows.Close()
	var out []schemas.Response
	for rows.Next() {
		var r schemas.Response
		var version uint32
		var at, recorded time.Time
		if err := rows.Scan(&r.ID, &r.IncidentID, &version, &r.Tenant, &r.Source, &r.IntegrationID, &r.Target, &r.Principal, &r.Action,
			&r.Mode, &r.Status, &r.Rule, &r.Reason, &r.Requests, &r.Error, &r.Actor, &at, &recorded); err != nil {
			return nil, fmt.Errorf("clickhouse: read responses: %w", err)
		}
		r.IncidentVersion, r.At, r.RecordedAt = int(version), schemas.NewTime(at), schemas.NewTime(recorded)
		out = append(out, r)
	}
	return out, rows.Err()
}

// TimelineRow is one row of incident_timeline: an alert of the incident or
// a step of an action on it.
type TimelineRow struct {
	Time   time.Time
	Kind   string // alert, response
	ID     string // alert id, response id
	What   string // detector, action
	State  string // severity, status
	Detail string
	Actor  string
}

// Timeline reads incident_timeline for one incident, in order.
func (c *Client) Timeline(ctx context.Context, incidentID string) ([]TimelineRow, error) {
	rows, err := c.conn.Query(ctx, `SELECT time, kind, id, what, state, detail, actor FROM incident_timeline
		WHERE incident_id = ? ORDER BY time, seq, id`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read incident_timeline: %w", err)
	}
	defer rows.Close()
	var out []TimelineRow
	for rows.Next() {
		var r TimelineRow
		if err := rows.Scan(&r.Time, &r.Kind, &r.ID, &r.What, &r.State, &r.Detail, &r.Actor); err != nil {
			return nil, fmt.Errorf("clickhouse: read incident_timeline: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
