package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenwatch/tokenwatch/ingest"
	_ "github.com/tokenwatch/tokenwatch/ingest/all" // the okta normalizer
	"github.com/tokenwatch/tokenwatch/ingest/cursor"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// TestFileInputsAreNotReadAgainAfterARestart runs the file input as a
// sequence of restarts over one cursor store: each step edits the file (or
// not) and says how many records the restart must publish.
func TestFileInputsAreNotReadAgainAfterARestart(t *testing.T) {
	sample, err := os.ReadFile("../okta/testdata/records.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(bytes.TrimRight(sample, "\n"), []byte("\n"))
	if len(lines) < 4 {
		t.Fatalf("sample has %d records", len(lines))
	}
	half := bytes.Join(lines[:len(lines)/2], nil)
	if !bytes.HasSuffix(half, []byte("\n")) {
		half = append(half, '\n')
	}
	whole := append(bytes.Join(lines, nil), '\n')
	path := filepath.Join(t.TempDir(), "okta.jsonl")
	store := cursor.NewMemory()
	// published is what a fresh ingest of those lines publishes (a record
	// may hold no event, or several).
	published := func(b []byte) int {
		recs, err := ingest.ReadRecords(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := ingest.NewNormalizer("okta", "acme")
		nb := ingest.NormalizeRecords(n, "x", recs)
		return len(nb.Events) + len(nb.Dead)
	}
	if published(half) == 0 || published(whole) == published(half) {
		t.Fatal("the sample's halves publish nothing to tell apart")
	}
	steps := []struct {
		name    string
		content []byte // nil: leave the file as it is
		want    int    // records published by this start
	}{
		{"first start", half, published(half)},
		{"restart, file unchanged", nil, 0},
		{"file grew by appends", whole, published(whole) - published(half)},
		{"restart again", nil, 0},
		{"file rewritten in place", half, published(half)},
	}
	for _, s := range steps {
		if s.content != nil {
			if err := os.WriteFile(path, s.content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		reg := prometheus.NewRegistry()
		r := &Role{cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler), m: NewMetrics(reg), km: broker.NewMetrics(reg),
			now: func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }}
		fp := &fakePub{}
		p := &publisher{r: r, pub: fp}
		if err := r.ingestFileOnce(context.Background(), p, store, FileInput{Source: "okta", Tenant: "acme", Path: path}); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := len(fp.evs) + len(fp.dls); got != s.want {
			t.Errorf("%s: published %d records, want %d", s.name, got, s.want)
		}
	}
}

// failingPub lands `left` events, then fails: a process killed in the middle
// of publishing a file (the call in flight lands in part, as its partitions
// would).
type failingPub struct {
	fakePub
	left int
}

func (f *failingPub) Events(ctx context.Context, evs []schemas.Event) error {
	if len(evs) > f.left {
		f.fakePub.Events(ctx, evs[:f.left])
		f.left = 0
		return errors.New("killed")
	}
	f.left -= len(evs)
	return f.fakePub.Events(ctx, evs)
}

// Killed part way through a file, the next start goes on from the last
// acknowledged step, not from the start of the chunk: the repeats are at
// most one step of events, never days of them.
func TestFileInputResumesMidChunkAfterAKill(t *testing.T) {
	defer func(s int) { fileStep = s }(fileStep)
	fileStep = 2
	src, err := os.ReadFile("../okta/testdata/records.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "okta.jsonl")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	recs, _ := ingest.ReadFile(path)
	n, _ := ingest.NewNormalizer("okta", "acme")
	all := ingest.NormalizeRecords(n, path, recs).Events
	if len(all) < 3*fileStep {
		t.Fatalf("sample has %d events: too few steps", len(all))
	}
	newRole := func() *Role {
		reg := prometheus.NewRegistry()
		return &Role{cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler), m: NewMetrics(reg), km: broker.NewMetrics(reg),
			now: func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }}
	}
	in := FileInput{Source: "okta", Tenant: "acme", Path: path}
	for _, accepted := range []int{0, 1, fileStep, fileStep + 1, len(all) - 1} {
		t.Run(fmt.Sprint("killed after ", accepted), func(t *testing.T) {
			store := cursor.NewMemory()
			r := newRole()
			first := &failingPub{left: accepted}
			if err := r.ingestFileOnce(context.Background(), &publisher{r: r, pub: first}, store, in); err == nil {
				t.Fatal("the killed publish succeeded")
			}
			second := &fakePub{}
			if err := r.ingestFileOnce(context.Background(), &publisher{r: r, pub: second}, store, in); err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, e := range append(first.evs, second.evs...) {
				got[e.EventID]++
			}
			repeats := len(first.evs) + len(second.evs) - len(got)
			if len(got) != len(all) {
				t.Errorf("%d distinct events published, want %d", len(got), len(all))
			}
			if repeats > fileStep {
				t.Errorf("%d events published twice, want at most one step (%d)", repeats, fileStep)
			}
			third := &fakePub{}
			if err := r.ingestFileOnce(context.Background(), &publisher{r: r, pub: third}, store, in); err != nil || len(third.evs) != 0 {
				t.Errorf("a third start published %d events (%v), want none", len(third.evs), err)
			}
		})
	}
}
