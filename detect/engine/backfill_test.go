package engine_test

import (
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/engine"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// everyEvent fires once per event id.
type everyEvent struct{}

type noState struct{}

func (noState) MarshalBinary() ([]byte, error) { return nil, nil }
func (noState) UnmarshalBinary([]byte) error   { return nil }

func (everyEvent) ID() string             { return "test.every_event" }
func (everyEvent) NewState() detect.State { return noState{} }
func (everyEvent) Observe(ev *schemas.Event, _ detect.State) []detect.Finding {
	return []detect.Finding{{Key: ev.EventID, Title: "seen", Severity: schemas.SeverityLow, EventIDs: []string{ev.EventID},
		FirstSeen: ev.Time.Time, LastSeen: ev.Time.Time}}
}

// An alert raised by a backfilled event (ingest marks records older than
// ingest.backfill_after) says so; one raised by a live event does not.
func TestAlertsFromBackfilledEventsSaySo(t *testing.T) {
	e := engine.New([]detect.Detector{everyEvent{}})
	t0 := time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)
	old := schemas.Event{EventID: "old", Tenant: "acme", Integration: schemas.Integration{ID: "app"}, Time: schemas.NewTime(t0), Backfill: true}
	live := old
	live.EventID, live.Backfill, live.Time = "live", false, schemas.NewTime(t0.Add(time.Minute))
	a := e.Observe(&old)
	b := e.Observe(&live)
	if len(a) != 1 || !a[0].Backfill || len(b) != 1 || b[0].Backfill {
		t.Fatalf("backfilled event's alerts %+v, live event's %+v", a, b)
	}
}
