package intake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/cursor"
)

// A file input keeps a cursor in tokenwatch.cursors like a poller does, so a
// restart does not publish the file again (and the detectors never count
// its events twice). The cursor holds how many records were published and a
// SHA-256 over them: a file that grew by appends publishes only its new
// records; a file rewritten in place (the hash of its first records differs)
// is published whole, and the repeats among its events are dropped downstream
// by event id (detect/engine, deliver/clickhouse).

// filesCursorSource names file cursors in the store; a poller's source
// never has this name.
const filesCursorSource = "files"

// fileCursor is what a file input's ingest.Cursor.Token holds.
type fileCursor struct {
	Records int    `json:"records"`
	SHA256  string `json:"sha256"`
	// A publish in progress: the records up to Pending (hash PendingSHA256)
	// were being published, and the first Events of their events (in the
	// order NormalizeRecords gives, which is deterministic) are acknowledged.
	// A restart goes on from there: republishing a whole chunk of a file
	// would repeat events days older than the ones after them, beyond the
	// detectors' repeat window (detect/engine/seen.go), and count them twice.
	Pending       int    `json:"pending,omitempty"`
	PendingSHA256 string `json:"pending_sha256,omitempty"`
	Events        int    `json:"events,omitempty"`
}

// fileStep is how many events a file input publishes between two saves of
// its cursor: a kill mid-publish repeats at most this many, all close in
// event time. A variable for the tests.
var fileStep = 1000

func fileCursorKey(f FileInput) (string, error) {
	abs, err := filepath.Abs(f.Path)
	if err != nil {
		return "", err
	}
	return f.Source + "|" + f.Tenant + "|" + abs, nil
}

func recordsHash(recs []ingest.RawRecord) string {
	h := sha256.New()
	for _, r := range recs {
		h.Write(r.Data)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ingestFileOnce publishes the records of f not published before, moving
// its cursor every fileStep events.
func (r *Role) ingestFileOnce(ctx context.Context, ip *publisher, store cursor.Store, f FileInput) error {
	n, err := ingest.NewNormalizer(f.Source, f.Tenant)
	if err != nil {
		return err
	}
	key, err := fileCursorKey(f)
	if err != nil {
		return fmt.Errorf("ingest.files %s: %w", f.Path, err)
	}
	recs, err := ingest.ReadFile(f.Path)
	if err != nil {
		return fmt.Errorf("ingest.files %s: %w", f.Path, err)
	}
	c, ok, err := store.Load(ctx, filesCursorSource, key)
	if err != nil {
		return fmt.Errorf("ingest.files %s: load cursor: %w", f.Path, err)
	}
	var fc fileCursor
	if ok {
		if err := json.Unmarshal([]byte(c.Token), &fc); err != nil {
			return fmt.Errorf("ingest.files %s: cursor %q unreadable: %w", f.Path, c.Token, err)
		}
	}
	// skipHash and uptoHash are the hashes of recs[:skip] and recs[:upto]
	// once known (a cursor's, verified), so no prefix is hashed twice.
	skip, upto, from := 0, len(recs), 0
	skipHash, uptoHash := recordsHash(nil), ""
	switch {
	case !ok:
	case fc.Pending > 0 && fc.Pending <= len(recs) && recordsHash(recs[:fc.Pending]) == fc.PendingSHA256:
		// Interrupted mid-publish: finish that chunk first, from where it stopped.
		skip, upto, from = fc.Records, fc.Pending, fc.Events
		skipHash, uptoHash = fc.SHA256, fc.PendingSHA256 // recs[:Records] lies inside recs[:Pending]
	case fc.Records <= len(recs) && recordsHash(recs[:fc.Records]) == fc.SHA256:
		skip, skipHash = fc.Records, fc.SHA256
	default:
		r.log.Warn("ingest file changed since it was ingested: publishing it whole (repeated events are dropped by id downstream)",
			"path", f.Path, "records_before", fc.Records, "records_now", len(recs))
	}
	if skip == len(recs) && ok && fc.Pending == 0 {
		r.log.Info("ingest file already ingested", "path", f.Path, "records", len(recs))
		return nil
	}
	// What the published part taught the normalizer (a Salesforce app's id
	// named only there) applies to the rest, as in a run never interrupted.
	ingest.Learn(n, recs[:skip])
	save := func(fc fileCursor) error {
		tok, _ := json.Marshal(fc)
		if err := store.Save(ctx, filesCursorSource, key, ingest.Cursor{Time: time.Now().UTC(), Token: string(tok)}); err != nil {
			return fmt.Errorf("ingest.files %s: save cursor: %w", f.Path, err)
		}
		return nil
	}
	for skip < len(recs) {
		b := ingest.NormalizeRecords(n, f.Path, recs[skip:upto])
		if uptoHash == "" {
			uptoHash = recordsHash(recs[:upto])
		}
		done := fileCursor{Records: skip, SHA256: skipHash, Pending: upto, PendingSHA256: uptoHash}
		for i := min(from, len(b.Events)); i < len(b.Events); {
			j := min(i+fileStep, len(b.Events))
			if err := ip.Events(ctx, b.Events[i:j]); err != nil {
				return err
			}
			if done.Events, i = j, j; j < len(b.Events) {
				if err := save(done); err != nil {
					return err
				}
			}
		}
		if err := ip.DeadLetters(ctx, b.Dead); err != nil {
			return err
		}
		if err := save(fileCursor{Records: upto, SHA256: done.PendingSHA256}); err != nil {
			return err
		}
		r.log.Info("ingested file", "path", f.Path, "source", n.Name(), "skipped_already_ingested", skip, "resumed_at_event", from,
			"events", len(b.Events)-min(from, len(b.Events)), "dead_letters", len(b.Dead))
		for _, d := range b.Dead {
			r.log.Warn("dead-lettered record", "source", d.Source, "reason", d.Reason)
		}
		skip, upto, from = upto, len(recs), 0
		skipHash, uptoHash = uptoHash, ""
	}
	return nil
}
