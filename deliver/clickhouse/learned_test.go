package clickhouse_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The "by when tokenwatch learned of it" queries window on events.inserted_at
// (migration 0014, default now() at insert): records written just now but
// dated days ago are there, where the event-time windows miss them.
func TestLearnedTimeQueriesSeeLateRecords(t *testing.T) {
	c, _ := loadAnalystFixture(t)
	ctx := context.Background()
	var oldest, newest time.Time
	if err := c.Conn().QueryRow(ctx, "SELECT min(inserted_at), max(inserted_at) FROM events").Scan(&oldest, &newest); err != nil {
		t.Fatal(err)
	}
	if time.Since(oldest) > 5*time.Minute || time.Until(newest) > time.Minute {
		t.Fatalf("inserted_at %s..%s, want the insert time (about now)", oldest, newest)
	}
	run := func(heading string) []map[string]string {
		t.Helper()
		var hits []analystQuery
		for _, q := range parseAnalystQueries(t, analystQueriesDoc) {
			if strings.Contains(q.heading, heading) {
				hits = append(hits, q)
			}
		}
		if len(hits) != 1 {
			t.Fatalf("want one query heading containing %q, found %d", heading, len(hits))
		}
		sql := placeholder.ReplaceAllStringFunc(hits[0].sql, func(p string) string { return fixturePlaceholders[strings.Trim(p, "{}")] })
		rows, err := queryRows(ctx, c.Conn(), sql)
		if err != nil {
			t.Fatalf("%q: %v", heading, err)
		}
		return rows
	}
	byEventTime := run("event-by-event timeline of {integration_id} in the last 24 hours")
	learned := run("What did tokenwatch learn about {integration_id} in the last 24 hours")
	var sawOld bool
	for _, r := range learned {
		sawOld = sawOld || strings.HasPrefix(r["event_id"], "crm-base-")
	}
	if len(learned) <= len(byEventTime) || !sawOld {
		t.Fatalf("learned in 24h: %d rows (old baseline events among them: %v); by event time: %d", len(learned), sawOld, len(byEventTime))
	}
	late := run("happened more than a day earlier")
	var crm int
	for _, r := range late {
		if r["integration_id"] == "crm-sync" {
			crm, _ = strconv.Atoi(r["events"])
		}
	}
	if crm < 19 { // the fixture's 19 daily baseline events, all written just now
		t.Fatalf("late arrivals: %v, want crm-sync with its 19 baseline events", late)
	}
}
