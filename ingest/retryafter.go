package ingest

import (
	"time"

	"github.com/tokenwatch/tokenwatch/internal/platform/retryafter"
)

// ParseRetryAfter reads a Retry-After header (seconds or an HTTP date); it
// returns 0 when absent or unreadable, leaving the backoff to the caller.
func ParseRetryAfter(v string) time.Duration { return retryafter.Parse(v) }
