package intake

import (
	"bytes"
	"context"
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
