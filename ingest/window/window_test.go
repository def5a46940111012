package window

import (
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
)

func TestPassCarriesHighWaterMarkAcrossPagesAndSkipsBoundaryIDs(t *testing.T) {
	t0 := time.Date(2026, 10, 27, 2, 0, 0, 0, time.UTC)
	p, err := Resume(ingest.Cursor{Time: t0, SeenAtTime: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		t     time.Time
		id    string
		fresh bool
	}{
		{t0.Add(-time.Second), "old", false},
		{t0, "a", false},
		{t0, "b", true},
		{t0.Add(time.Minute), "c", true},
	} {
		if got := p.Fresh(c.t, c.id); got != c.fresh {
			t.Errorf("Fresh(%s, %s) = %v, want %v", c.t, c.id, got, c.fresh)
		}
	}
	// Newest first, as Slack and Graph list: the max is seen on the first page.
	p.Observe(t0.Add(2*time.Minute), "d")
	next := p.Continue(1, "https://vendor/next?page=2")
	if !next.Time.Equal(t0) || next.SeenAtTime[0] != "a" {
		t.Fatalf("in-window cursor moved its start: %+v", next)
	}
	p2, err := Resume(next)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Stream != 1 || p2.Next != "https://vendor/next?page=2" {
		t.Fatalf("resume lost position: stream %d next %q", p2.Stream, p2.Next)
	}
	p2.Observe(t0.Add(time.Minute), "c")
	p2.Observe(t0.Add(2*time.Minute), "e")
	done := p2.Finish()
	if !done.Time.Equal(t0.Add(2*time.Minute)) || len(done.SeenAtTime) != 2 || done.Token != "" {
		t.Fatalf("finish cursor = %+v, want time t0+2m with ids d,e and no token", done)
	}
}

func TestEmptyWindowKeepsCursor(t *testing.T) {
	t0 := time.Date(2026, 10, 27, 2, 0, 0, 0, time.UTC)
	p, _ := Resume(ingest.Cursor{Time: t0, SeenAtTime: []string{"a"}})
	done := p.Finish()
	if !done.Time.Equal(t0) || len(done.SeenAtTime) != 1 || done.SeenAtTime[0] != "a" {
		t.Fatalf("empty window moved the cursor: %+v", done)
	}
}

func TestResumeRejectsForeignToken(t *testing.T) {
	if _, err := Resume(ingest.Cursor{Token: "not-json"}); err == nil {
		t.Fatal("want error for a token that is not window state")
	}
}
