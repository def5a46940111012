package intake

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

var wall = time.Date(2026, 10, 27, 12, 0, 0, 0, time.UTC)

func at(id string, d time.Duration) schemas.Event {
	return schemas.Event{EventID: id, Source: "github", Tenant: "acme", Time: schemas.NewTime(wall.Add(d)),
		Integration: schemas.Integration{ID: "app"}, Raw: json.RawMessage(`{"id":"` + id + `"}`)}
}

func TestEventTimeBounds(t *testing.T) {
	tests := []struct {
		name       string
		offset     time.Duration
		published  bool
		backfilled bool
	}{
		{"now", 0, true, false},
		{"a little ahead (clock skew within bounds)", 4 * time.Minute, true, false},
		{"exactly at the bound", 5 * time.Minute, true, false},
		{"beyond the bound", 5*time.Minute + time.Second, false, false},
		{"a year ahead", 365 * 24 * time.Hour, false, false},
		{"an hour old", -time.Hour, true, false},
		{"exactly backfill_after old", -7 * 24 * time.Hour, true, false},
		{"older than backfill_after", -7*24*time.Hour - time.Second, true, true},
		{"years old", -3 * 365 * 24 * time.Hour, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []schemas.Event{at("e1", tc.offset)}
			kept, future := boundEventTimes(in, wall, DefaultMaxFutureSkew, DefaultBackfillAfter)
			if in[0].IngestedAt != nil || in[0].Backfill {
				t.Fatal("the caller's events were changed")
			}
			if !tc.published {
				if len(kept) != 0 || len(future) != 1 {
					t.Fatalf("kept %d, dead %d: want it dead-lettered", len(kept), len(future))
				}
				d := future[0]
				if d.Stage != StageEventTime || d.Source != "github" || d.Record != `{"id":"e1"}` ||
					!strings.Contains(d.Reason, "ahead of the ingest clock") || !strings.Contains(d.Reason, "max_future_skew") {
					t.Fatalf("dead letter %+v", d)
				}
				return
			}
			if len(kept) != 1 || len(future) != 0 {
				t.Fatalf("kept %d, dead %d: want it published", len(kept), len(future))
			}
			ev := kept[0]
			if ev.IngestedAt == nil || !ev.IngestedAt.Equal(wall) || ev.Backfill != tc.backfilled || !ev.Time.Equal(wall.Add(tc.offset)) {
				t.Fatalf("ingested_at %v backfill %v, want %v and %v", ev.IngestedAt, ev.Backfill, wall, tc.backfilled)
			}
		})
	}
}

type fakePub struct {
	evs []schemas.Event
	dls []schemas.DeadLetter
}

func (f *fakePub) Events(_ context.Context, evs []schemas.Event) error {
	f.evs = append(f.evs, evs...)
	return nil
}

func (f *fakePub) DeadLetters(_ context.Context, dls []schemas.DeadLetter) error {
	f.dls = append(f.dls, dls...)
	return nil
}
func (f *fakePub) Close() error { return nil }

// The one publisher every input (pollers, push, Kafka sources, files) goes
// through applies the bounds: a future record is dead-lettered and counted,
// never published; the rest are published stamped.
func TestPublisherDeadLettersFutureRecordsForEveryInput(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxFutureSkew, cfg.BackfillAfter = time.Minute, 24*time.Hour
	reg := prometheus.NewRegistry()
	r := &Role{cfg: cfg, log: slog.New(slog.DiscardHandler), m: NewMetrics(reg), km: broker.NewMetrics(reg), now: func() time.Time { return wall }}
	fp := &fakePub{}
	p := &publisher{r: r, pub: fp}
	if err := p.Events(context.Background(), []schemas.Event{at("live", 0), at("future", 2*time.Minute), at("old", -48*time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if len(fp.evs) != 2 || fp.evs[0].EventID != "live" || fp.evs[1].EventID != "old" || !fp.evs[1].Backfill || fp.evs[0].Backfill {
		t.Fatalf("published %+v", fp.evs)
	}
	if len(fp.dls) != 1 || fp.dls[0].Stage != StageEventTime || r.Stats.DeadLetters.Load() != 1 || r.Stats.EventsPublished.Load() != 2 {
		t.Fatalf("dead letters %+v, stats %d/%d", fp.dls, r.Stats.EventsPublished.Load(), r.Stats.DeadLetters.Load())
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestEventTimeBoundsConfig(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.MaxFutureSkew = 0 }, "ingest.max_future_skew"},
		{func(c *Config) { c.BackfillAfter = -time.Hour }, "ingest.backfill_after"},
	} {
		c := DefaultConfig()
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err %v, want %q", err, tc.want)
		}
	}
	if c := DefaultConfig(); c.MaxFutureSkew != 5*time.Minute || c.BackfillAfter != 7*24*time.Hour {
		t.Fatalf("defaults %+v", c)
	}
}
