// Package window keeps a connector's place while it pages through one time
// window of a vendor audit log. Vendors differ in order (GitHub and Okta can
// list oldest first, Slack and Graph list newest first) and some sources read
// several endpoints per window, so the high-water mark of a window is only
// known once the whole window has been read. A Pass carries that state in
// ingest.Cursor.Token between pages, while Cursor.Time stays at the window
// start: a caller that loses the token re-reads the window (overlap, which
// EventID dedup absorbs) instead of skipping part of it (a gap).
//
// It owns no I/O and imports nothing but ingest.
package window

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
)

// state is what travels in Cursor.Token while a window is being read.
type state struct {
	// Stream is the index of the endpoint being read, for sources that read
	// several endpoints over the same window.
	Stream int `json:"stream,omitempty"`
	// Next is the vendor's continuation: a next-page URL or page token.
	Next string `json:"next,omitempty"`
	// Max is the newest record time seen so far in this window, MaxIDs the ids
	// of the records at exactly Max.
	Max    time.Time `json:"max"`
	MaxIDs []string  `json:"max_ids,omitempty"`
}

// Pass is one read of the window that starts at a cursor's Time.
type Pass struct {
	// Start is the window start every endpoint is queried from; StartIDs are
	// the ids already delivered at exactly Start by the previous window.
	Start    time.Time
	StartIDs []string
	// Stream and Next say where in the window the read is; both zero at its start.
	Stream int
	Next   string

	max    time.Time
	maxIDs []string
}

// Resume rebuilds the pass a cursor points into. A cursor without a Token
// starts a new window at cur.Time.
func Resume(cur ingest.Cursor) (*Pass, error) {
	p := &Pass{Start: cur.Time, StartIDs: cur.SeenAtTime, max: cur.Time, maxIDs: slices.Clone(cur.SeenAtTime)}
	if cur.Token == "" {
		return p, nil
	}
	var s state
	if err := json.Unmarshal([]byte(cur.Token), &s); err != nil {
		return nil, fmt.Errorf("cursor token is not a window state: %w", err)
	}
	if s.Max.Before(cur.Time) {
		s.Max, s.MaxIDs = cur.Time, slices.Clone(cur.SeenAtTime)
	}
	p.Stream, p.Next, p.max, p.maxIDs = s.Stream, s.Next, s.Max, s.MaxIDs
	return p, nil
}

// Fresh reports whether a record at t with id belongs to this window: not
// older than its start, and not one the previous window already delivered at
// the start instant. Vendors whose time filters are coarser than their record
// times (whole seconds) return such records again on every poll.
func (p *Pass) Fresh(t time.Time, id string) bool {
	if t.Before(p.Start) {
		return false
	}
	return !(t.Equal(p.Start) && slices.Contains(p.StartIDs, id))
}

// Observe records that the record (t, id) was delivered in this window.
func (p *Pass) Observe(t time.Time, id string) {
	switch {
	case t.After(p.max):
		p.max, p.maxIDs = t, []string{id}
	case t.Equal(p.max) && !slices.Contains(p.maxIDs, id):
		p.maxIDs = append(p.maxIDs, id)
	}
}

// Continue is the cursor for the next page: same window, read from stream at
// next (a vendor URL or page token).
func (p *Pass) Continue(stream int, next string) ingest.Cursor {
	b, _ := json.Marshal(state{Stream: stream, Next: next, Max: p.max, MaxIDs: p.maxIDs})
	return ingest.Cursor{Time: p.Start, SeenAtTime: p.StartIDs, Token: string(b)}
}

// Finish is the cursor once the whole window is read: the next window starts
// at the newest record time seen, skipping the ids already delivered there.
func (p *Pass) Finish() ingest.Cursor {
	return ingest.Cursor{Time: p.max, SeenAtTime: p.maxIDs}
}
