package ingesttest

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Update is the -update flag of every connector's tests: rewrite the golden
// files and the fuzz seed corpus instead of comparing.
var Update = flag.Bool("update", false, "rewrite testdata/golden and the fuzz seed corpus")

// Records is where a connector's tests keep raw vendor records, one JSON
// object a line; NormalizeGolden, FuzzNormalize and the fake APIs read it.
const (
	Records    = "testdata/records.jsonl"
	GoldenFile = "testdata/golden/normalized.jsonl"
	SeedDir    = "testdata/fuzz/FuzzNormalize"
)

// NormalizeGolden compares n's events for the records in testdata/records.jsonl
// with testdata/golden/normalized.jsonl; with -update it rewrites the golden
// file and the FuzzNormalize seed corpus in testdata/fuzz.
func NormalizeGolden(t *testing.T, n ingest.Normalizer) {
	t.Helper()
	records := ReadLines(t, Records)
	GoldenEvents(t, n, records, GoldenFile, *Update)
	if *Update {
		WriteSeedCorpus(t, SeedDir, records)
	}
}

// FuzzNormalize is the body of a connector's FuzzNormalize target: seeds are
// the given records (testdata/records.jsonl when none are given) on top of the
// corpus go test reads from testdata/fuzz/FuzzNormalize, and every input must
// satisfy CheckNormalize.
func FuzzNormalize(f *testing.F, n ingest.Normalizer, seeds ...[]byte) {
	if len(seeds) == 0 {
		seeds = ReadLines(f, Records)
	}
	for _, r := range seeds {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := CheckNormalize(n, raw); err != nil {
			t.Fatal(err)
		}
	})
}

// NormalizeCase checks one row of a connector's Normalize table. With wantErr
// set, Normalize must fail mentioning it. Otherwise it must succeed with
// exactly len(want) events (none for an empty want), each passing CheckEvent,
// and got(t, ev), the fields the table compares, must print (%+v) as want[i].
// got may assert more of the event itself.
func NormalizeCase[W any](t *testing.T, n ingest.Normalizer, raw string, want []W, wantErr string, got func(t *testing.T, ev schemas.Event) W) {
	t.Helper()
	evs, err := n.Normalize([]byte(raw))
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want it to mention %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 && len(evs) != 0 {
		t.Fatalf("want no events, got %+v", evs)
	}
	if len(evs) != len(want) {
		t.Fatalf("want %d events, got %d", len(want), len(evs))
	}
	for i, ev := range evs {
		if err := CheckEvent(ev, n.Name()); err != nil {
			t.Fatal(err)
		}
		if g := got(t, ev); fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", want[i]) {
			t.Errorf("event %d:\ngot  %+v\nwant %+v", i, g, want[i])
		}
	}
}

// One is the want list of a table row that expects one event (w) or none (nil).
func One[W any](w *W) []W {
	if w == nil {
		return nil
	}
	return []W{*w}
}

// TimeString is an event's time as the tables write it (RFC 3339, milliseconds, UTC).
func TimeString(ev schemas.Event) string {
	b, _ := ev.Time.MarshalJSON()
	return strings.Trim(string(b), `"`)
}

// ResourceString is an event's resource as the tables write it ("type:id",
// "" when there is none).
func ResourceString(ev schemas.Event) string {
	if ev.Resource.ID == "" {
		return ""
	}
	return ev.Resource.Type + ":" + ev.Resource.ID
}

// RecordKey reads a raw record's time and id (each connector's recordKey).
type RecordKey func(json.RawMessage) (time.Time, string, bool)

// FakeAPI is what every connector's fake vendor API shares: an httptest server
// whose handler runs under one lock, sets the vendor's Content-Type, and
// answers a request without the wanted Authorization header with 401 and the
// vendor's error body before the connector's own handler sees it. The
// handler pages through Records with the helpers below and answers the first
// follow-up page with a rate limit (RateLimitOnce).
type FakeAPI struct {
	*httptest.Server
	T *testing.T
	// Records is the vendor's log; a test may add to it between polls.
	Records [][]byte
	// Queries is what the handler logged of each request, in order.
	Queries []string

	mu          sync.Mutex
	limited     map[string]bool
	noRateLimit bool
}

// FakeAuth is what a FakeAPI asks of a request.
type FakeAuth struct {
	// Header is the Authorization value wanted: "Bearer …", "SSWS …", or
	// BasicAuth(id, secret).
	Header string
	// Body is the vendor's answer to a request without it (status 401).
	Body string
	// Open are paths served without it (a token endpoint).
	Open []string
}

// NewFakeAPI starts the server; t.Cleanup closes it. serve handles the
// requests that passed the auth check, under the FakeAPI's lock.
func NewFakeAPI(t *testing.T, records [][]byte, contentType string, auth FakeAuth, serve http.HandlerFunc) *FakeAPI {
	f := &FakeAPI{T: t, Records: records, limited: map[string]bool{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", contentType)
		if r.Header.Get("Authorization") != auth.Header && !slices.Contains(auth.Open, r.URL.Path) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, auth.Body)
			return
		}
		serve(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// SkipRateLimit makes RateLimitOnce answer nothing: for tests about paging
// and cursors rather than rate limits.
func (f *FakeAPI) SkipRateLimit() { f.noRateLimit = true }

// RateLimitOnce answers the first request it is called for (per key: one
// list of a multi-list API, or "") with 429, the header key/value pairs (e.g.
// "Retry-After", "7") and the vendor's body, and reports whether it did; the
// handler then returns.
func (f *FakeAPI) RateLimitOnce(w http.ResponseWriter, key, body string, header ...string) bool {
	if f.noRateLimit || f.limited[key] {
		return false
	}
	f.limited[key] = true
	for i := 0; i+1 < len(header); i += 2 {
		w.Header().Set(header[i], header[i+1])
	}
	w.WriteHeader(http.StatusTooManyRequests)
	fmt.Fprint(w, body)
	return true
}

// Since returns the records whose time is not before since, in order.
func Since(records [][]byte, since time.Time, key RecordKey) [][]byte {
	var out [][]byte
	for _, raw := range records {
		if tm, _, ok := key(raw); ok && !tm.Before(since) {
			out = append(out, raw)
		}
	}
	return out
}

// SortByTime orders records by time, newest first when newestFirst (as most
// audit APIs list), stably.
func SortByTime(records [][]byte, key RecordKey, newestFirst bool) {
	sort.SliceStable(records, func(i, j int) bool {
		a, _, _ := key(records[i])
		b, _, _ := key(records[j])
		if newestFirst {
			return a.After(b)
		}
		return a.Before(b)
	})
}

// PageOf is the page of at most limit records starting at off, and the offset
// after it (len(match) on the last page).
func PageOf(match [][]byte, off, limit int) ([][]byte, int) {
	off = min(off, len(match))
	end := min(off+limit, len(match))
	return match[off:end], end
}

// JSONArray joins raw records into a JSON array ("[]" when empty).
func JSONArray(records [][]byte) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, raw := range records {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(raw)
	}
	b.WriteByte(']')
	return b.String()
}

// ClientCredentials reads an OAuth client-credentials request's client id
// and secret, from HTTP basic auth or, failing that, the form body.
func ClientCredentials(r *http.Request) (id, secret string) {
	r.ParseForm()
	if id, secret, ok := r.BasicAuth(); ok {
		return id, secret
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
}

// YAML is a decode function over a literal connector config, as a Factory
// takes it (lenient, like the config loader).
func YAML(doc []byte) func(any) error {
	return func(v any) error { return yaml.Unmarshal(doc, v) }
}

// FromSample builds a connector with its factory from the sample.yaml's
// config: node, edit applied to the decoded config struct (nil for none),
// and fails t if the factory refuses it.
func FromSample(t testing.TB, sample []byte, factory ingest.Factory, opt ingest.Options, edit func(cfg any)) ingest.Source {
	t.Helper()
	s := ParseSample(t, sample)
	src, err := factory(func(v any) error {
		if err := s.Decode(v); err != nil {
			return err
		}
		if edit != nil {
			edit(v)
		}
		return nil
	}, opt)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// Options points a connector at the fake API for tenant.
func (f *FakeAPI) Options(tenant string) ingest.Options {
	return ingest.Options{Tenant: tenant, BaseURL: f.URL, Client: f.Client()}
}

// IDs are the records' ids, by key, in order.
func IDs(records []json.RawMessage, key RecordKey) []string {
	var ids []string
	for _, raw := range records {
		_, id, _ := key(raw)
		ids = append(ids, id)
	}
	return ids
}

// ConfigCase checks that factory accepts the literal config doc when wantErr
// is "", and otherwise refuses it with an error mentioning wantErr.
func ConfigCase(t *testing.T, factory ingest.Factory, doc, wantErr string) {
	t.Helper()
	_, err := factory(YAML([]byte(doc)), ingest.Options{})
	if (wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), wantErr)) {
		t.Errorf("%q: err = %v, want %q", doc, err, wantErr)
	}
}
