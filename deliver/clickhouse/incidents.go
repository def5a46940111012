package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

const insertIncidents = `INSERT INTO incidents (id, version, status, tenant, integration_id, integration_ids, key, severity,
	risk_score, first_seen, last_seen, updated_at, detectors, alert_ids, title, summary, timeline, blast_radius,
	blast_events, blast_bytes, blast_records, owner, purpose, criticality, source, next, written_at)`

// WriteIncidents inserts incident versions as one batch. Every version may
// be written (ReplacingMergeTree(version) keeps the newest of each id); a
// version already stored (a redelivery) is left out, so count() and the
// views count each version once without FINAL.
func (c *Client) WriteIncidents(ctx context.Context, incs []schemas.Incident) error {
	if len(incs) == 0 {
		return nil
	}
	keys := make([]string, len(incs))
	for i := range incs {
		keys[i] = fmt.Sprintf("%s/%d", incs[i].ID, max(incs[i].Version, 0))
	}
	stored, err := c.storedIDs(ctx, "incidents", "concat(id, '/', toString(version))", keys)
	if err != nil {
		return err
	}
	fresh := incs[:0:0]
	for i := range incs {
		if !stored[keys[i]] {
			stored[keys[i]] = true
			fresh = append(fresh, incs[i])
		}
	}
	if incs = fresh; len(incs) == 0 {
		return nil
	}
	b, err := c.conn.PrepareBatch(ctx, insertIncidents)
	if err != nil {
		return fmt.Errorf("clickhouse: prepare incidents batch: %w", err)
	}
	defer b.Abort()
	now := time.Now().UTC()
	strs := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	for i := range incs {
		inc := &incs[i]
		sev := string(inc.Severity)
		if inc.Severity.Rank() < 0 {
			sev = string(schemas.SeverityInfo)
		}
		timeline, err := json.Marshal(inc.Timeline)
		if err != nil {
			return fmt.Errorf("clickhouse: incident %s timeline: %w", inc.ID, err)
		}
		blast, err := json.Marshal(inc.Blast)
		if err != nil {
			return fmt.Errorf("clickhouse: incident %s blast radius: %w", inc.ID, err)
		}
		next, _ := json.Marshal(strs(inc.Next))
		if err := b.Append(inc.ID, uint32(max(inc.Version, 0)), inc.Status, inc.Tenant, inc.IntegrationID,
			strs(inc.IntegrationIDs), inc.Key, sev, inc.RiskScore, inc.FirstSeen.Time, inc.LastSeen.Time,
			inc.UpdatedAt.Time, strs(inc.Detectors), strs(inc.AlertIDs), inc.Title, inc.Summary, string(timeline),
			string(blast), uint64(max(inc.Blast.Events, 0)), uint64(max(inc.Blast.Bytes, 0)),
			uint64(max(inc.Blast.Records, 0)), inc.Owner, inc.Purpose, inc.Criticality, inc.Source, string(next),
			now); err != nil {
			return fmt.Errorf("clickhouse: append incident %s v%d: %w", inc.ID, inc.Version, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert %d incidents: %w", len(incs), err)
	}
	return nil
}
