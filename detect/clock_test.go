package detect_test

import (
	"math"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
)

// SinceMilli is t.Sub(time.UnixMilli(ms)) everywhere: either sign, sub-ms
// parts, and spans up to and past a Duration's limits (where Sub saturates).
func TestSinceMilliIsSub(t *testing.T) {
	base := time.Date(2026, 9, 1, 12, 0, 0, 123456789, time.UTC)
	ts := []time.Time{base, base.Add(-1), time.Unix(0, 0), time.Unix(-1, 999_999_999), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC), base.In(time.FixedZone("x", 3600))}
	ms := []int64{0, 1, -1, 999, -999, 1000, -1001, base.UnixMilli(), base.UnixMilli() + 1, base.UnixMilli() - 7*24*3600*1000,
		math.MaxInt64, math.MinInt64, math.MaxInt64 / 2, math.MinInt64 / 2, 200 * 365 * 24 * 3600 * 1000, -200 * 365 * 24 * 3600 * 1000}
	for _, tt := range ts {
		for _, m := range ms {
			for _, dm := range []int64{0, 1, -1, 12345} {
				m := m + dm
				if got, want := detect.SinceMilli(tt, m), tt.Sub(time.UnixMilli(m)); got != want {
					t.Errorf("SinceMilli(%v, %d) = %d, Sub gives %d", tt, m, got, want)
				}
			}
		}
	}
}
