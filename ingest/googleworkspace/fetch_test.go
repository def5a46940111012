package googleworkspace

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/ingesttest"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// fakeReports reproduces activities.list for applicationName=token: bearer
// auth, startTime (inclusive), newest first, maxResults pages with
// nextPageToken, and one 429 with Retry-After on the first follow-up page.
type fakeReports struct {
	mu       sync.Mutex
	items    []json.RawMessage // newest first
	limited  bool
	requests int
}

func (f *fakeReports) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if r.Header.Get("Authorization") != "Bearer t0ken" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if !strings.HasSuffix(r.URL.Path, "/admin/reports/v1/activity/users/all/applications/token") {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if q.Get("pageToken") != "" && !f.limited {
		f.limited = true
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	start, _ := time.Parse(time.RFC3339Nano, q.Get("startTime"))
	var match []json.RawMessage
	for _, it := range f.items {
		if t, _, _ := recordKey(it); !t.Before(start) {
			match = append(match, it)
		}
	}
	var max, from int
	fmt.Sscan(q.Get("maxResults"), &max)
	fmt.Sscan(q.Get("pageToken"), &from)
	to := min(from+max, len(match))
	resp := map[string]any{"kind": "admin#reports#activities", "items": match[from:to]}
	if to < len(match) {
		resp["nextPageToken"] = fmt.Sprint(to)
	}
	json.NewEncoder(w).Encode(resp)
}

func item(t time.Time, uq string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"kind":"admin#reports#activity","id":{"time":%q,"uniqueQualifier":%q,"applicationName":"token","customerId":"C1"},"actor":{"email":"a@example.com"},"ipAddress":"52.4.1.2","events":[{"name":"activity","parameters":[{"name":"client_id","value":"c1"},{"name":"api_name","value":"drive"}]}]}`,
		t.UTC().Format("2006-01-02T15:04:05.000Z"), uq))
}

func TestFetchPagesHonoursRateLimitAndResumesWithoutDuplicates(t *testing.T) {
	base := time.Date(2026, 10, 27, 0, 0, 0, 0, time.UTC)
	f := &fakeReports{}
	for i := 24; i >= 0; i-- { // newest first; two records share the newest instant
		f.items = append(f.items, item(base.Add(time.Duration(i)*time.Minute), fmt.Sprint(i)))
	}
	f.items = append([]json.RawMessage{item(base.Add(24*time.Minute), "24b")}, f.items...)
	srv := httptest.NewServer(f)
	defer srv.Close()
	decode := func(v any) error {
		c := v.(*Config)
		c.Token, c.MaxResults = mustSecret("t0ken"), 10
		return nil
	}
	src, err := New(decode, ingest.Options{BaseURL: srv.URL, Tenant: "C1"})
	if err != nil {
		t.Fatal(err)
	}
	res := ingesttest.Run(t, src)
	if len(res.Records) != len(f.items) || res.Pages < 3 {
		t.Fatalf("read %d records in %d pages, want %d in ≥3", len(res.Records), res.Pages, len(f.items))
	}
	if !res.Final.Time.Equal(base.Add(24*time.Minute)) || len(res.Final.SeenAtTime) != 2 {
		t.Fatalf("final cursor %+v: want the newest time and both ids there", res.Final)
	}
	// A record arriving late inside the last instant, and a new one, are
	// picked up by the next poll from the final cursor — nothing else is.
	f.mu.Lock()
	f.items = append([]json.RawMessage{item(base.Add(30*time.Minute), "new"), item(base.Add(24*time.Minute), "24late")}, f.items...)
	f.mu.Unlock()
	page, err := src.Fetch(t.Context(), res.Final)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range page.Records {
		_, id, _ := recordKey(r)
		got = append(got, id)
	}
	if strings.Join(got, ",") != "new,24late" || !page.Done {
		t.Fatalf("next poll delivered %v (done %v), want [new 24late]", got, page.Done)
	}
}

func TestFetchWithoutValidTokenFails(t *testing.T) {
	srv := httptest.NewServer(&fakeReports{})
	defer srv.Close()
	src, _ := New(func(v any) error { v.(*Config).Token = mustSecret("wrong-secret-value"); return nil }, ingest.Options{BaseURL: srv.URL})
	_, err := src.Fetch(t.Context(), ingest.Cursor{})
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "wrong-secret-value") {
		t.Fatalf("err %v", err)
	}
}

func mustSecret(v string) secret.Secret { return secret.New(v) }
