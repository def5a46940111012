package detect

import "github.com/tokenwatch/tokenwatch/schemas"

// Active reports whether ev is the integration doing something: a call that
// did not fail and is not a revoke or an authentication failure. A dead
// integration's failing retries or its revocation is it being switched off,
// not used: the inventory detectors (expired, review overdue, unowned) count
// only active events.
func Active(ev *schemas.Event) bool {
	if ev.Outcome == "failure" {
		return false
	}
	switch ev.Action.Category {
	case schemas.CategoryRevoke, schemas.CategoryAuthFailure:
		return false
	}
	return true
}
