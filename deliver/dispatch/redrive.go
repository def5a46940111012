package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// RedriveResult counts what a redrive did.
type RedriveResult struct {
	Sent, Skipped, Failed int
}

// Redrive sends the alerts that sink dead-lettered (on
// tokenwatch.alerts.deadletter) to it again, with the usual retries, in the
// consumer group "<prefix>-redrive-<sink>" so each dead letter is redriven
// once. It stops when the topic has been idle for idle, or on the first batch
// that still fails (its offsets stay uncommitted, so the next redrive retries
// it).
func (dr *Role) Redrive(ctx context.Context, s deliver.Sink, idle time.Duration) (RedriveResult, error) {
	var res RedriveResult
	group := dr.kafka.Group("redrive-" + s.Name())
	if lag, err := broker.GroupLag(ctx, dr.kafka, group, schemas.TopicAlertDeadLetter); err == nil && lag == 0 {
		return res, nil // nothing dead-lettered since the last redrive
	}
	r := broker.NewReader(dr.kafka, schemas.TopicAlertDeadLetter, group)
	defer r.Close()
	wait := max(idle, 15*time.Second) // the first fetch includes joining the group
	for {
		fctx, cancel := context.WithTimeout(ctx, wait)
		wait = idle
		m, err := r.FetchMessage(fctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, nil // idle: nothing left
		}
		var d schemas.DeadLetter
		var a schemas.Alert
		if json.Unmarshal(m.Value, &d) != nil || d.Stage != "deliver" || d.Source != s.Name() || json.Unmarshal([]byte(d.Record), &a) != nil {
			res.Skipped++
		} else {
			if _, err := deliver.SendWithRetry(ctx, s, []schemas.Alert{a}, dr.cfg.Retry); err != nil {
				res.Failed++
				return res, fmt.Errorf("redrive alert %s to %s: %w", a.ID, s.Name(), err)
			}
			res.Sent++
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			return res, fmt.Errorf("commit redrive offset: %w", err)
		}
	}
}
