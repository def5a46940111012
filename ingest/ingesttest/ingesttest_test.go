package ingesttest

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// pagedSource serves fixed pages; its records are {"id":…} objects.
type pagedSource struct {
	pages     [][]string
	rateLimit bool // answer the first request for page 2 with a rate limit
	limited   bool
	badEvent  bool // normalize to an event without Integration.ID
}

func (s *pagedSource) Name() string { return "fake" }

func (s *pagedSource) Fetch(_ context.Context, cur ingest.Cursor) (ingest.Page, error) {
	n := 0
	fmt.Sscan(cur.Token, &n)
	if n == 1 && s.rateLimit && !s.limited {
		s.limited = true
		return ingest.Page{}, &ingest.RateLimitError{Status: 429, RetryAfter: time.Second}
	}
	if n >= len(s.pages) {
		return ingest.Page{Next: cur, Done: true}, nil
	}
	var recs []json.RawMessage
	for _, id := range s.pages[n] {
		recs = append(recs, json.RawMessage(`{"id":"`+id+`"}`))
	}
	next := ingest.Cursor{Token: fmt.Sprint(n + 1)}
	return ingest.Page{Records: recs, Next: next, Done: n+1 == len(s.pages)}, nil
}

func (s *pagedSource) Normalize(raw json.RawMessage) ([]schemas.Event, error) {
	var r struct{ ID string }
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	ev := schemas.Event{EventID: r.ID, Source: "fake", Time: schemas.UnixMilli(1), Integration: schemas.Integration{ID: "app"},
		Action: schemas.Action{Name: "x", Category: schemas.CategoryAccess}}
	if s.badEvent {
		ev.Integration.ID = ""
	}
	return []schemas.Event{ev}, nil
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	msgs []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Errorf(f string, a ...any) { r.msgs = append(r.msgs, fmt.Sprintf(f, a...)) }
func (r *recorder) Fatalf(f string, a ...any) { r.Errorf(f, a...); runtime.Goexit() }

func runRecorded(src ingest.Source) []string {
	r := &recorder{}
	done := make(chan struct{})
	go func() { defer close(done); Run(r, src) }()
	<-done
	return r.msgs
}

func TestRunCatchesContractViolations(t *testing.T) {
	cases := []struct {
		name string
		src  *pagedSource
		want string // "" means a clean run
	}{
		{"conforming source", &pagedSource{pages: [][]string{{"a", "b"}, {"c"}}, rateLimit: true}, ""},
		{"duplicate ids across pages", &pagedSource{pages: [][]string{{"a", "b"}, {"b"}}, rateLimit: true}, `duplicate event id "b"`},
		{"rate limit never surfaced", &pagedSource{pages: [][]string{{"a"}, {"b"}}}, "never surfaced"},
		{"event missing its integration", &pagedSource{pages: [][]string{{"a"}, {"b"}}, rateLimit: true, badEvent: true}, "no Integration.ID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msgs := runRecorded(c.src)
			if c.want == "" {
				if len(msgs) > 0 {
					t.Fatalf("conforming source failed: %v", msgs)
				}
				return
			}
			if !strings.Contains(strings.Join(msgs, "\n"), c.want) {
				t.Fatalf("failures %v, want one mentioning %q", msgs, c.want)
			}
		})
	}
}

func TestCheckNormalizeCatchesNondeterminism(t *testing.T) {
	n := &counterNormalizer{}
	if err := CheckNormalize(n, []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "not deterministic") {
		t.Fatalf("err = %v, want nondeterminism reported", err)
	}
}

// counterNormalizer leaks state between calls, as a clock or counter would.
type counterNormalizer struct{ n int }

func (c *counterNormalizer) Name() string { return "fake" }
func (c *counterNormalizer) Normalize(json.RawMessage) ([]schemas.Event, error) {
	c.n++
	return []schemas.Event{{EventID: fmt.Sprint("e", c.n), Source: "fake", Time: schemas.UnixMilli(1),
		Integration: schemas.Integration{ID: "app"}, Action: schemas.Action{Category: schemas.CategoryAccess}}}, nil
}
