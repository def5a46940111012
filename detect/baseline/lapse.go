package baseline

import (
	"encoding/json"
	"time"
)

// Lapse is the state of a detector that alerts once when a catalog date
// (an expiry, a review due date) has passed: it remembers the date last
// reported, so each lapse alerts once, and a renewed date that lapses again
// alerts again.
type Lapse struct {
	Reported int64 `json:"reported,omitempty"` // Unix ms of the date reported
}

// MarshalBinary implements detect.State.
func (s *Lapse) MarshalBinary() ([]byte, error) { return json.Marshal(s) }

// UnmarshalBinary implements detect.State.
func (s *Lapse) UnmarshalBinary(b []byte) error { return json.Unmarshal(b, s) }

// Passed reports whether at is more than grace after date and date has not
// been reported yet; it records date as reported when so.
func (s *Lapse) Passed(date, at time.Time, grace time.Duration) bool {
	if s.Reported == date.UnixMilli() || at.Sub(date) <= grace {
		return false
	}
	s.Reported = date.UnixMilli()
	return true
}
