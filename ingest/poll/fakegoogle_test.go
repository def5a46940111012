package poll

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// fakeGoogle reproduces the Admin SDK Reports API token activity listing as
// far as a poller can tell: bearer auth, startTime filter, maxResults and
// nextPageToken paging, newest first, records that become visible late, and
// 429 with Retry-After.
type fakeGoogle struct {
	t     *testing.T
	srv   *httptest.Server
	token string

	mu       sync.Mutex
	records  []fakeRecord
	limited  map[int]bool // request numbers answered 429 Retry-After: 1
	requests []fakeRequest
	served   map[string]int // uniqueQualifier → times served
	// onRequest runs before request n (1-based) is answered; it may block.
	onRequest func(ctx context.Context, n int)
}

type fakeRecord struct {
	at time.Time
	uq string
}

type fakeRequest struct {
	n        int
	received time.Time
	answered time.Time
	status   int
	query    string
}

func newFakeGoogle(t *testing.T) *fakeGoogle {
	f := &fakeGoogle{t: t, token: "ya29.test-token-do-not-log", limited: map[int]bool{}, served: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// add makes records visible from now on.
func (f *fakeGoogle) add(recs ...fakeRecord) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records = append(f.records, recs...)
}

// seq returns n records spread one minute apart ending at end.
func seq(prefix string, n int, end time.Time) []fakeRecord {
	out := make([]fakeRecord, n)
	for i := range out {
		out[i] = fakeRecord{at: end.Add(-time.Duration(n-1-i) * time.Minute), uq: fmt.Sprintf("%s%03d", prefix, i)}
	}
	return out
}

// eventID is what the google_workspace normalizer makes of a fake record.
func (r fakeRecord) eventID() string {
	return fmt.Sprintf("%s/%s/0", r.at.UTC().Format(time.RFC3339Nano), r.uq)
}

func (f *fakeGoogle) servedIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.records {
		if f.served[r.uq] > 0 {
			out = append(out, r.eventID())
		}
	}
	return out
}

func (f *fakeGoogle) log() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *fakeGoogle) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	n := len(f.requests) + 1
	f.requests = append(f.requests, fakeRequest{n: n, received: time.Now(), query: r.URL.RawQuery})
	hook := f.onRequest
	f.mu.Unlock()
	status := f.answer(w, r, n, hook)
	f.mu.Lock()
	f.requests[n-1].status = status
	f.requests[n-1].answered = time.Now()
	f.mu.Unlock()
}

func (f *fakeGoogle) answer(w http.ResponseWriter, r *http.Request, n int, hook func(context.Context, int)) int {
	if hook != nil {
		hook(r.Context(), n)
	}
	fail := func(status int, reason string) int {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"code":%d,"message":%q,"errors":[{"reason":%q}]}}`, status, reason, reason)
		return status
	}
	if r.Method != http.MethodGet || r.URL.Path != "/admin/reports/v1/activity/users/all/applications/token" {
		return fail(http.StatusNotFound, "notFound")
	}
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		return fail(http.StatusUnauthorized, "authError")
	}
	f.mu.Lock()
	limited := f.limited[n]
	f.mu.Unlock()
	if limited {
		w.Header().Set("Retry-After", "1")
		return fail(http.StatusTooManyRequests, "rateLimitExceeded")
	}
	q := r.URL.Query()
	var start time.Time
	if s := q.Get("startTime"); s != "" {
		var err error
		if start, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return fail(http.StatusBadRequest, "invalid startTime")
		}
	}
	size, _ := strconv.Atoi(q.Get("maxResults"))
	if size <= 0 || size > 1000 {
		size = 1000
	}
	off := 0
	if tok := q.Get("pageToken"); tok != "" {
		var err error
		if off, err = strconv.Atoi(strings.TrimPrefix(tok, "off-")); err != nil || !strings.HasPrefix(tok, "off-") {
			return fail(http.StatusBadRequest, "invalid pageToken")
		}
	}
	f.mu.Lock()
	var match []fakeRecord
	for _, rec := range f.records {
		if !rec.at.Before(start) {
			match = append(match, rec)
		}
	}
	// Newest first, as the Reports API lists.
	slices.SortFunc(match, func(a, b fakeRecord) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		return strings.Compare(b.uq, a.uq)
	})
	end := min(off+size, len(match))
	page := match[min(off, end):end]
	items := make([]json.RawMessage, len(page))
	for i, rec := range page {
		items[i] = rec.json()
		f.served[rec.uq]++
	}
	f.mu.Unlock()
	resp := map[string]any{"kind": "admin#reports#activities", "items": items}
	if end < len(match) {
		resp["nextPageToken"] = fmt.Sprintf("off-%d", end)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
	return http.StatusOK
}

func (r fakeRecord) json() json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"kind":"admin#reports#activity","id":{"time":%q,"uniqueQualifier":%q,"applicationName":"token","customerId":"C0acme"},`+
		`"actor":{"callerType":"USER","email":"ops@acme.example","profileId":"1049"},"ipAddress":"102.89.0.1",`+
		`"events":[{"type":"auth","name":"activity","parameters":[{"name":"api_name","value":"gmail"},`+
		`{"name":"method_name","value":"gmail.users.messages.get"},{"name":"client_id","value":"1234-crm.apps.googleusercontent.com"},`+
		`{"name":"app_name","value":"CRM Sync"}]}]}`, r.at.UTC().Format(time.RFC3339Nano), r.uq))
}

// recorder is a Publisher that keeps what it was given; fail, when set, is
// asked before each Events call and can refuse it.
type recorder struct {
	mu     sync.Mutex
	events []schemas.Event
	dead   []schemas.DeadLetter
	calls  int
	fail   func(call int) error
}

func (r *recorder) Events(ctx context.Context, evs []schemas.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail != nil {
		if err := r.fail(r.calls); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.events = append(r.events, evs...)
	return nil
}

func (r *recorder) DeadLetters(_ context.Context, dls []schemas.DeadLetter) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dead = append(r.dead, dls...)
	return nil
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.events))
	for i, ev := range r.events {
		out[i] = ev.EventID
	}
	return out
}

// assertExactlyOnce fails unless got holds every id of want exactly once and nothing else.
func assertExactlyOnce(t *testing.T, got, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, id := range got {
		count[id]++
	}
	for id, n := range count {
		if n > 1 {
			t.Errorf("event %s published %d times", id, n)
		}
	}
	for _, id := range want {
		if count[id] == 0 {
			t.Errorf("event %s served but never published (gap)", id)
		}
	}
	if len(count) != len(want) {
		t.Errorf("published %d distinct events, the server served %d records", len(count), len(want))
	}
}
