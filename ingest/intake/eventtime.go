package intake

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Event-time bounds. Detection runs on event time and never reads a clock;
// ingest is the one place the wall clock is consulted (operational, not
// detection): a record dated beyond max_future_skew ahead of it is a broken
// vendor clock or a forged record, and would drag every watermark and
// baseline into the future, so it is dead-lettered with the reason instead
// of published. A record older than backfill_after is real but old news (a
// first lookback, a vendor or export catching up): it is published, marked
// Backfill, and the alerts it raises say so.
const (
	DefaultMaxFutureSkew = 5 * time.Minute
	DefaultBackfillAfter = 7 * 24 * time.Hour
)

// StageEventTime is the dead-letter stage of records dated in the future.
const StageEventTime = "event_time"

// boundEventTimes stamps IngestedAt (now) on every event, marks the old ones
// Backfill and takes out those dated more than maxSkew after now, returned
// as dead letters. It copies: the caller's slice is left as it was.
func boundEventTimes(evs []schemas.Event, now time.Time, maxSkew, backfillAfter time.Duration) (kept []schemas.Event, future []schemas.DeadLetter) {
	if len(evs) == 0 {
		return evs, nil
	}
	at := schemas.NewTime(now)
	kept = make([]schemas.Event, 0, len(evs))
	for _, ev := range evs {
		if ahead := ev.Time.Sub(now); ahead > maxSkew {
			raw := []byte(ev.Raw)
			if len(raw) == 0 {
				raw, _ = json.Marshal(ev)
			}
			reason := fmt.Sprintf("event time %s is %s ahead of the ingest clock %s (more than ingest.max_future_skew %s): not published, it would move watermarks and baselines into the future",
				ev.Time.Format(time.RFC3339Nano), ahead.Round(time.Second), at.Format(time.RFC3339), maxSkew)
			dl := schemas.NewDeadLetter(StageEventTime, ev.Source, "event "+ev.Tenant+"/"+ev.EventID, reason, raw)
			dl.Time = at
			future = append(future, dl)
			continue
		}
		ev.IngestedAt = &at
		ev.Backfill = now.Sub(ev.Time.Time) > backfillAfter
		kept = append(kept, ev)
	}
	return kept, future
}
