package detect

import "time"

// SinceMilli is t.Sub(time.UnixMilli(ms)), the age of a Unix-ms timestamp
// at event time t, which most detectors compare with a learning period on
// every event: the same value, without building a time.Time and the
// overflow check that Sub does by adding back (it takes that path only for
// spans near the limits of a Duration, where Sub saturates).
func SinceMilli(t time.Time, ms int64) time.Duration {
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	msec, mrem := ms/1000, ms%1000
	if mrem < 0 {
		msec, mrem = msec-1, mrem+1000
	}
	if d := sec - msec; d > -maxSpanSec && d < maxSpanSec {
		return time.Duration(d)*time.Second + time.Duration(nsec-mrem*1e6)
	}
	return t.Sub(time.UnixMilli(ms))
}

// maxSpanSec keeps SinceMilli's fast path well inside a Duration (±292 years).
const maxSpanSec = 200 * 365 * 24 * 3600
