package engine_test

import (
	"bufio"
	"bytes"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect/engine"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// goldenJSON holds the checkpoint of every integration of the bundled
// scenario after 14,900 of its 17,633 events (before the attack), as the JSON snapshots the
// engine wrote before the binary form (written by commit 21fec9c's
// Snapshot, one a line; watermark goldenWatermark).
const goldenJSON = "testdata/checkpoint-json-21fec9c.jsonl"

var goldenWatermark = time.Date(2026, 10, 20, 0, 9, 15, 126_000_000, time.UTC)

// TestOldJSONCheckpointRestores restores the old JSON checkpoint into a
// new engine, replays the rest of the scenario, and expects every alert a
// single uninterrupted run raises after that point, in full; then it
// checkpoints the restored state in the binary form and restores that too.
func TestOldJSONCheckpointRestores(t *testing.T) {
	evs := scenarioEvents(t)
	g := enricher(t)
	for i := range evs {
		g.Enrich(&evs[i])
	}
	const half = 14900
	dets, _ := buildDetectors(nil)
	whole := engine.New(dets)
	var want []schemas.Alert
	for i := range evs {
		as := whole.Observe(&evs[i])
		if i >= half {
			want = append(want, as...)
		}
	}
	if len(want) == 0 {
		t.Fatal("no alerts after the checkpoint: the test would prove nothing")
	}
	f, err := os.ReadFile(goldenJSON)
	if err != nil {
		t.Fatal(err)
	}
	old := engine.New(dets)
	sc := bufio.NewScanner(bytes.NewReader(f))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if _, err := old.Restore(sc.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	if old.Integrations() != 20 {
		t.Fatalf("restored %d integrations, want 20", old.Integrations())
	}
	old.SetWatermark(goldenWatermark)
	// The same state through the binary form.
	bin := engine.New(dets)
	for _, k := range old.Dirty() {
		t.Fatalf("restoring marked %v dirty", k)
	}
	for _, line := range bytes.Split(bytes.TrimSpace(f), []byte("\n")) {
		k, err := engine.New(dets).Restore(line)
		if err != nil {
			t.Fatal(err)
		}
		b, err := old.Snapshot(k)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != 1 {
			t.Fatalf("snapshot starts %q, want the binary form's version byte", b[:1])
		}
		if _, err := bin.Restore(b); err != nil {
			t.Fatal(err)
		}
	}
	bin.SetWatermark(goldenWatermark)
	for name, e := range map[string]*engine.Engine{"json": old, "binary": bin} {
		var got []schemas.Alert
		for i := range evs[half:] {
			got = append(got, e.Observe(&evs[half+i])...)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s checkpoint: %d alerts, uninterrupted run %d (or they differ)", name, len(got), len(want))
		}
	}
}

func TestSnapshotIsStableAndRejectsDamage(t *testing.T) {
	evs := scenarioEvents(t)
	g := enricher(t)
	dets, _ := buildDetectors(nil)
	e := engine.New(dets)
	for i := range evs {
		g.Enrich(&evs[i])
		e.Observe(&evs[i])
	}
	keys := e.Dirty()
	var big []byte
	for _, k := range keys {
		a, _ := e.Snapshot(k)
		b, _ := e.Snapshot(k)
		if !bytes.Equal(a, b) {
			t.Fatalf("%v: two snapshots of one state differ", k)
		}
		if bytes.Contains(a, []byte("volume.spike")) && len(a) > len(big) {
			big = a
		}
	}
	r := engine.New(dets)
	k, err := r.Restore(big)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := r.Snapshot(k); !bytes.Equal(again, big) {
		t.Fatal("a restored snapshot does not write the same bytes")
	}
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"unknown version", append([]byte{2}, big[1:]...)},
		{"truncated", big[:len(big)-1]},
		{"cut in the header", big[:3]},
		{"trailing bytes", append(append([]byte(nil), big...), 0)},
		{"bad JSON", []byte(`{"tenant":`)},
	} {
		if _, err := engine.New(dets).Restore(c.b); err == nil {
			t.Errorf("%s: restored without an error", c.name)
		}
	}
}
