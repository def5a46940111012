// Package retryafter parses the HTTP Retry-After header, which both vendor
// APIs (ingest) and alert receivers (deliver) use to say when to come back.
package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Parse reads a Retry-After value (seconds or an HTTP date); it returns 0 when
// absent or unreadable, leaving the backoff to the caller.
func Parse(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
