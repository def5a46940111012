package engine_test

import (
	"reflect"
	"testing"

	"github.com/tokenwatch/tokenwatch/detect/engine"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// TestRepeatedEventsAreCountedOnce feeds the scenario the way a crash-prone
// pipeline delivers it: every event once, then repeats as a poller re-reading
// its overlap window (the previous 40 events after every 100), a producer
// retrying one event at once, and a file ingested twice (its last tenth
// again at the end), with a checkpoint and restore between. The alerts must be
// those of the clean run, and every repeat counted as a duplicate.
func TestRepeatedEventsAreCountedOnce(t *testing.T) {
	evs := scenarioEvents(t)
	g := enricher(t)
	for i := range evs {
		g.Enrich(&evs[i])
	}
	dets, _ := buildDetectors(nil)
	clean := engine.New(dets)
	var want []schemas.Alert
	for i := range evs {
		want = append(want, clean.Observe(&evs[i])...)
	}
	want = append(want, clean.Flush(clean.Watermark())...)
	if len(want) == 0 {
		t.Fatal("the scenario raises no alerts")
	}

	var feed []int // indexes into evs, with repeats
	for i := range evs {
		feed = append(feed, i)
		if i%100 == 99 {
			for j := i - 39; j <= i; j++ {
				feed = append(feed, j)
			}
		}
		if i%257 == 0 {
			feed = append(feed, i)
		}
	}
	for i := len(evs) * 9 / 10; i < len(evs); i++ {
		feed = append(feed, i)
	}
	repeats := int64(len(feed) - len(evs))

	e := engine.New(dets)
	var got []schemas.Alert
	var dupsBefore int64
	for n, i := range feed {
		if n == len(feed)/2 { // checkpoint, then another instance goes on
			next := engine.New(dets)
			for _, k := range e.Dirty() {
				b, err := e.Snapshot(k)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := next.Restore(b); err != nil {
					t.Fatal(err)
				}
			}
			next.SetWatermark(e.Watermark())
			dupsBefore, e = e.Duplicates(), next
		}
		ev := evs[i]
		got = append(got, e.Observe(&ev)...)
	}
	got = append(got, e.Flush(e.Watermark())...)
	if d := dupsBefore + e.Duplicates(); d != repeats {
		t.Errorf("%d duplicates counted, %d repeats fed", d, repeats)
	}
	if len(got) != len(want) {
		t.Fatalf("with repeats %d alerts, clean run %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("alert %d differs:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}
