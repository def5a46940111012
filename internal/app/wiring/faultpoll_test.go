package wiring_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest/ingesttest"
)

// The fault suite's poller: an Okta System Log the ingest process polls,
// killed while a pass is half read.

const (
	faultOktaToken = "fault-okta-token"
	faultOktaLimit = 100 // records a page: a pass over the log is many pages
)

// oktaLog reproduces GET /api/v1/logs as Okta documents it and the okta
// connector reads it: SSWS auth (401 and Okta's error body without it),
// since inclusive, sortOrder=ASCENDING, limit, and Okta's polling
// pagination (a Link rel="next" with an opaque after= on every page, the
// last included). It stays empty until the test opens it: its records
// follow the file's in event time, and so they must on Kafka.
type oktaLog struct {
	records [][]byte
	times   []time.Time // records' published times, ascending
	open    atomic.Bool
	failing atomic.Bool  // an outage: 503 with Okta's error body
	pages   atomic.Int64 // non-empty pages served, repeats included
	end     atomic.Int64 // one past the furthest record served
	latency time.Duration
}

func newOktaLog(records [][]byte, times []time.Time) *oktaLog {
	return &oktaLog{records: records, times: times, latency: 20 * time.Millisecond}
}

func (o *oktaLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "SSWS "+faultOktaToken {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errorCode":"E0000011","errorSummary":"Invalid token provided","errorLink":"E0000011","errorId":"oaeFault","errorCauses":[]}`)
		return
	}
	if r.URL.Path != "/api/v1/logs" {
		http.NotFound(w, r)
		return
	}
	if o.failing.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"errorCode":"E0000009","errorSummary":"Internal Server Error","errorLink":"E0000009","errorId":"oaeFault","errorCauses":[]}`)
		return
	}
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		var err error
		if since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"errorCode":"E0000001","errorSummary":"Api validation failed: since"}`)
			return
		}
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit < 1 || limit > 1000 {
		limit = 100
	}
	first := len(o.times) // index of the first record at or after since
	if o.open.Load() {
		for i, t := range o.times {
			if !t.Before(since) {
				first = i
				break
			}
		}
	}
	off := 0
	if a := q.Get("after"); a != "" {
		b, _ := base64.RawURLEncoding.DecodeString(a)
		off, _ = strconv.Atoi(string(b))
	}
	lo := min(first+off, len(o.records))
	hi := min(lo+limit, len(o.records))
	time.Sleep(o.latency) // a vendor's page takes time: kills land mid-pass
	self := r.URL.RawQuery
	q.Set("after", base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(hi-first))))
	w.Header().Add("Link", fmt.Sprintf(`<http://%s/api/v1/logs?%s>; rel="self"`, r.Host, self))
	w.Header().Add("Link", fmt.Sprintf(`<http://%s/api/v1/logs?%s>; rel="next"`, r.Host, q.Encode()))
	var body bytes.Buffer
	body.WriteByte('[')
	for i, rec := range o.records[lo:hi] {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(rec)
	}
	body.WriteByte(']')
	w.Write(body.Bytes())
	if hi > lo {
		o.pages.Add(1)
		for e := o.end.Load(); int64(hi) > e && !o.end.CompareAndSwap(e, int64(hi)); e = o.end.Load() {
		}
	}
}

// oktaRecords builds n System Log records of OAuth token grants by client
// apps, in the shapes of ingest/okta/testdata/records.jsonl (written from
// Okta's documentation): mostly granted access tokens, one in ten refused,
// each with its own uuid and a published time 30 s apart from `from` on.
// They are dated after the file's scenario and before the pushes.
func oktaRecords(t *testing.T, n int, from time.Time) ([][]byte, []time.Time) {
	t.Helper()
	var granted, refused map[string]any
	for _, m := range recordTemplates(t, "ingest/okta/testdata/records.jsonl") {
		switch m["eventType"] {
		case "app.oauth2.as.token.grant.access_token":
			granted = m
		case "app.oauth2.as.token.grant":
			refused = m
		}
	}
	if granted == nil || refused == nil {
		t.Fatal("ingest/okta/testdata/records.jsonl: no granted or refused token grant to build the Okta log from")
	}
	apps := []struct{ id, name string }{
		{"0oafault1ReportSync4697", "Report Sync"}, {"0oafault2Backup4697", "Nightly Backup"},
		{"0oafault3Deploy4697", "Deploy Bot"}, {"0oafault4Pulse4697", "Team Pulse"},
	}
	base := from.Truncate(time.Hour).Add(time.Hour)
	recs, times := make([][]byte, n), make([]time.Time, n)
	for k := range recs {
		tmpl := granted
		if k%10 == 9 {
			tmpl = refused
		}
		m := cloneJSON(tmpl) // nested objects are edited below
		app := apps[k%len(apps)]
		actor := m["actor"].(map[string]any)
		actor["id"], actor["alternateId"], actor["displayName"] = app.id, app.id, app.name
		times[k] = base.Add(time.Duration(k) * 30 * time.Second)
		m["published"] = times[k].Format("2006-01-02T15:04:05.000Z")
		m["uuid"] = fmt.Sprintf("fa017000-0000-4000-8000-%012d", k)
		var err error
		if recs[k], err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	}
	return recs, times
}

// recordTemplates reads a connector's testdata records (JSON lines, path
// relative to the repository root) as objects to build fault-suite input from.
func recordTemplates(t *testing.T, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range ingesttest.ReadLines(t, filepath.Join(root, path)) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

// cloneJSON deep-copies a decoded JSON object.
func cloneJSON(m map[string]any) map[string]any {
	var out map[string]any
	b, _ := json.Marshal(m)
	json.Unmarshal(b, &out)
	return out
}

// midPassKills picks k increasing page counts in [1, pages-4] at which to
// kill ingest: each after a page and before the pass ends.
func midPassKills(rngIntN func(int) int, k, pages int) []int {
	var out []int
	lo := 1
	for i := 0; i < k; i++ {
		hi := pages - 4 - (k - 1 - i) // leave room for the kills after this one
		if hi < lo {
			break
		}
		at := lo + rngIntN(hi-lo+1)
		out = append(out, at)
		lo = at + 1
	}
	return out
}
