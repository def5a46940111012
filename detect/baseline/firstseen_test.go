package baseline

import (
	"slices"
	"testing"
	"time"
)

func TestFirstSeenLearnsThenReportsOnce(t *testing.T) {
	rule := FirstSeen{LearningPeriod: 7 * 24 * time.Hour}
	t0 := time.UnixMilli(1_790_000_000_000)
	var start int64
	var seen Seen
	day := func(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }
	if s := rule.Observe(&start, &seen, "", t0); s.New || start != t0.UnixMilli() {
		t.Fatalf("an event without a value must start the clock only: %+v, start %d", s, start)
	}
	if s := rule.Observe(&start, &seen, "DE", day(1)); !s.New || s.News {
		t.Fatalf("a value while learning is new but not news: %+v", s)
	}
	s := rule.Observe(&start, &seen, "RU", day(7))
	if !s.New || !s.News || !slices.Equal(s.Known, []string{"DE"}) || !s.Since.Equal(t0) {
		t.Fatalf("a value once learning is over is news with the known values before it: %+v", s)
	}
	if s := rule.Observe(&start, &seen, "RU", day(8)); s.New {
		t.Fatalf("a value seen before is not new: %+v", s)
	}
}

func TestFirstSeenIsBounded(t *testing.T) {
	rule := FirstSeen{Limit: 2}
	var start int64
	var seen Seen
	now := time.UnixMilli(1_790_000_000_000)
	for _, v := range []string{"a", "b", "c", "c"} {
		if s := rule.Observe(&start, &seen, v, now); !s.New || !s.News {
			t.Fatalf("%s: %+v", v, s)
		}
	}
	if k := seen.Keys(); !slices.Equal(k, []string{"a", "b"}) {
		t.Fatalf("a full set keeps its first values: %v", k)
	}
}

func TestFirstSeenKeepsItsOwnCopy(t *testing.T) {
	buf := []byte("AS15169")
	var start int64
	var seen Seen
	FirstSeen{}.Observe(&start, &seen, string(buf), time.UnixMilli(1))
	copy(buf, "AS99999")
	if !seen.Has("AS15169") {
		t.Fatalf("the set shares the caller's bytes: %v", seen.Keys())
	}
	copy(buf, "AS15169")
	if n := testing.AllocsPerRun(100, func() { FirstSeen{}.Observe(&start, &seen, string(buf), time.UnixMilli(2)) }); n != 0 {
		t.Errorf("a known value converted from bytes allocates %v times", n)
	}
}
