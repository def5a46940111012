// Package ingesttest is the conformance suite every source connector's tests
// run against a fake of its vendor API (an httptest server): page through the
// whole log from a zero cursor, surviving a rate limit, normalize every record,
// and find no duplicate or malformed event. It also holds the invariants the
// connectors' fuzz targets assert and the golden-file and seed-corpus helpers
// their tests share. Test code only: nothing in the binary imports it.
package ingesttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// MaxPages bounds a conformance run so a connector that never says Done fails
// instead of hanging.
const MaxPages = 200

// Result is what a conformance run read, for connector-specific assertions.
type Result struct {
	Pages      int
	Records    []json.RawMessage
	Events     []schemas.Event
	RateLimits []*ingest.RateLimitError
	// Final is the cursor after the last page.
	Final ingest.Cursor
}

// Run pages src from a zero cursor until Done and asserts the Source contract:
// a rate limit comes back as *ingest.RateLimitError with a positive wait (the
// fake server must answer at least one request with 429 or the vendor's
// equivalent) and retrying the same cursor then works; every record
// normalizes; every event passes CheckEvent; no EventID repeats; and polling
// again from the final cursor delivers nothing already delivered.
func Run(t testing.TB, src ingest.Source) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res Result
	cur := ingest.Cursor{}
	retries := 0
	for {
		if res.Pages >= MaxPages {
			t.Fatalf("%s: no Done after %d pages (last cursor %+v)", src.Name(), MaxPages, cur)
		}
		page, err := src.Fetch(ctx, cur)
		var rl *ingest.RateLimitError
		if errors.As(err, &rl) {
			if rl.RetryAfter <= 0 {
				t.Errorf("%s: rate limit error without a wait: %v", src.Name(), rl)
			}
			res.RateLimits = append(res.RateLimits, rl)
			if retries++; retries > 3 {
				t.Fatalf("%s: still rate limited after %d retries of cursor %+v", src.Name(), retries, cur)
			}
			continue // the caller retries the same cursor; that must be safe
		}
		if err != nil {
			t.Fatalf("%s: fetch page %d (cursor %+v): %v", src.Name(), res.Pages+1, cur, err)
		}
		retries = 0
		res.Pages++
		res.Records = append(res.Records, page.Records...)
		cur = page.Next
		if page.Done {
			break
		}
	}
	res.Final = cur
	if len(res.RateLimits) == 0 {
		t.Errorf("%s: the fake server's rate limit never surfaced as *ingest.RateLimitError", src.Name())
	}
	if len(res.Records) == 0 {
		t.Fatalf("%s: paged %d pages and read no records", src.Name(), res.Pages)
	}
	seen := map[string]bool{}
	for i, raw := range res.Records {
		evs, err := src.Normalize(raw)
		if err != nil {
			t.Errorf("%s: record %d does not normalize: %v\n%s", src.Name(), i, err, raw)
			continue
		}
		for _, ev := range evs {
			if err := CheckEvent(ev, src.Name()); err != nil {
				t.Errorf("%s: record %d: %v", src.Name(), i, err)
			}
			if seen[ev.EventID] {
				t.Errorf("%s: duplicate event id %q (record %d)", src.Name(), ev.EventID, i)
			}
			seen[ev.EventID] = true
		}
		res.Events = append(res.Events, evs...)
	}
	// A poll after the last page must not re-deliver the boundary records.
	page, err := src.Fetch(ctx, res.Final)
	if err != nil {
		t.Fatalf("%s: re-poll from final cursor %+v: %v", src.Name(), res.Final, err)
	}
	for _, raw := range page.Records {
		evs, _ := src.Normalize(raw)
		for _, ev := range evs {
			if seen[ev.EventID] {
				t.Errorf("%s: re-poll from final cursor re-delivered %q", src.Name(), ev.EventID)
			}
		}
	}
	return res
}

// CheckEvent asserts what every normalized event must carry.
func CheckEvent(ev schemas.Event, source string) error {
	switch {
	case ev.EventID == "":
		return errors.New("event has no EventID")
	case ev.Source != source:
		return fmt.Errorf("event %s: Source %q, want %q", ev.EventID, ev.Source, source)
	case ev.Time.IsZero():
		return fmt.Errorf("event %s: zero Time", ev.EventID)
	case ev.Integration.ID == "":
		return fmt.Errorf("event %s: no Integration.ID", ev.EventID)
	case !slices.Contains(schemas.Categories, ev.Action.Category):
		return fmt.Errorf("event %s: Action.Category %q is not one of %v", ev.EventID, ev.Action.Category, schemas.Categories)
	case ev.Outcome != "" && ev.Outcome != "success" && ev.Outcome != "failure" && ev.Outcome != "unknown":
		return fmt.Errorf("event %s: Outcome %q", ev.EventID, ev.Outcome)
	}
	return nil
}

// CheckNormalize is the fuzz invariant: Normalize does not panic; when it
// succeeds every event passes CheckEvent, and a second call on the same bytes
// gives identical events (no clock, no randomness, no hidden state).
func CheckNormalize(n ingest.Normalizer, raw []byte) error {
	first, err := n.Normalize(json.RawMessage(raw))
	if err != nil {
		return nil
	}
	for _, ev := range first {
		if err := CheckEvent(ev, n.Name()); err != nil {
			return err
		}
	}
	second, err := n.Normalize(json.RawMessage(slices.Clone(raw)))
	if err != nil {
		return fmt.Errorf("second Normalize failed where the first succeeded: %v", err)
	}
	a, _ := json.Marshal(first)
	b, _ := json.Marshal(second)
	if !bytes.Equal(a, b) {
		return fmt.Errorf("Normalize is not deterministic:\n%s\n%s", a, b)
	}
	return nil
}

// ReadLines reads a JSON-lines file of raw vendor records, skipping blank lines.
func ReadLines(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 16<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, slices.Clone(line))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// GoldenEvents normalizes each record in records and compares the events, one
// JSON object per line, with the golden file at path; update rewrites it.
func GoldenEvents(t testing.TB, n ingest.Normalizer, records [][]byte, path string, update bool) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i, raw := range records {
		evs, err := n.Normalize(raw)
		if err != nil {
			t.Fatalf("record %d: %v", i+1, err)
		}
		for _, ev := range evs {
			ev.Raw = nil // the input file already holds it
			if err := enc.Encode(ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	Golden(t, path, buf.Bytes(), update)
}

// Golden compares got with the file at path, or rewrites the file when update is set.
func Golden(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
		for i := 0; i < max(len(gl), len(wl)); i++ {
			var g, w []byte
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if !bytes.Equal(g, w) {
				t.Fatalf("%s differs at line %d (run with -update if the change is intended)\n got: %s\nwant: %s", path, i+1, g, w)
			}
		}
	}
}

// WriteSeedCorpus writes each record as a seed file for a fuzz target that
// takes one []byte, in the format `go test` reads from testdata/fuzz/<Target>/.
func WriteSeedCorpus(t testing.TB, dir string, records [][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, r := range records {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(r)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("record-%02d", i+1)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
