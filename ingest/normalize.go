package ingest

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Batch is the outcome of normalizing a set of raw records: the events, and a
// dead letter for every record that could not become one (never dropped).
type Batch struct {
	Events []schemas.Event
	Dead   []schemas.DeadLetter
}

// NormalizeRecords runs n over recs. input names where they came from (a file,
// a URL) for the dead letters. Events come out in event-time order (ties by
// event id): vendors list newest first or out of order, and detectors want
// time order.
func NormalizeRecords(n Normalizer, input string, recs []RawRecord) Batch {
	Learn(n, recs)
	var b Batch
	for _, r := range recs {
		if r.Err != nil {
			b.Dead = append(b.Dead, schemas.NewDeadLetter("parse", n.Name(), input, fmt.Sprintf("%s: %v", r.Pos, r.Err), r.Data))
			continue
		}
		evs, err := n.Normalize(r.Data)
		if err != nil {
			b.Dead = append(b.Dead, schemas.NewDeadLetter("normalize", n.Name(), input, fmt.Sprintf("%s: %v", r.Pos, err), r.Data))
			continue
		}
		b.Events = append(b.Events, evs...)
	}
	SortEvents(b.Events)
	return b
}

// SortEvents orders events by time, then event id.
func SortEvents(evs []schemas.Event) {
	sort.SliceStable(evs, func(i, j int) bool {
		ti, tj := evs[i].Time.Time, evs[j].Time.Time
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return evs[i].EventID < evs[j].EventID
	})
}

// A Learner is a Normalizer that learns from every record of a batch before
// any is normalized what only some records spell out. Salesforce writes a
// connected app's id on the call that opened a session and leaves it null on
// the calls that reuse its token: learning first makes one app one
// integration whatever the order of the records in the batch.
type Learner interface {
	Learn(raw json.RawMessage)
}

// Learn shows recs to n when n is a Learner. NormalizeRecords calls it; a
// caller that normalizes only part of what it read (a file resumed from its
// cursor) calls it with all of it first, so the part normalizes as it would
// have in the whole.
func Learn(n Normalizer, recs []RawRecord) {
	l, ok := n.(Learner)
	if !ok {
		return
	}
	for _, r := range recs {
		if r.Err == nil {
			l.Learn(r.Data)
		}
	}
}
