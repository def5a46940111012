package engine

import (
	"testing"
	"time"
)

// unixHour orders hours as Truncate(time.Hour) does, before the epoch too.
func TestUnixHourIsTruncate(t *testing.T) {
	base := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	var times []time.Time
	for _, d := range []time.Duration{0, 1, -1, time.Hour - 1, time.Hour, -time.Hour, 59 * time.Minute, 90 * time.Minute} {
		times = append(times, base.Add(d), time.Unix(0, 0).Add(d), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Add(d+time.Hour))
	}
	for _, a := range times {
		for _, b := range times {
			if got, want := unixHour(a) > unixHour(b), a.Truncate(time.Hour).After(b.Truncate(time.Hour)); got != want {
				t.Errorf("%v vs %v: unixHour says later %v, Truncate %v", a, b, got, want)
			}
		}
	}
}
