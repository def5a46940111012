package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestSeenIDsBounds(t *testing.T) {
	tests := []struct {
		name      string
		n         int   // ids added, one per step of event time
		step      int64 // ms between them
		wantHeld  int
		wantFirst int // index of the oldest id still held
	}{
		{"few", 5, 1000, 5, 0},
		{"past the linear scan", 100, 1000, 100, 0},
		{"count bound keeps the newest", SeenMax + 500, 1, SeenMax, 500},
		{"time bound", 10, SeenWindow / 4, 5, 5},
		// Past seenShift ids a drop re-slices; append's growth moves the set.
		{"count bound over many growths", 3*SeenMax + 7, 1, SeenMax, 2*SeenMax + 7},
		{"time bound past the shift size", 1000, SeenWindow / 500, 501, 499},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seenIDs
			for i := 0; i < tt.n; i++ {
				at := int64(i) * tt.step
				s.add(hashID(fmt.Sprint("ev", i)), at, at)
			}
			if len(s.ids) != tt.wantHeld {
				t.Fatalf("held %d ids, want %d", len(s.ids), tt.wantHeld)
			}
			for i := 0; i < tt.n; i++ {
				if want := i >= tt.wantFirst; s.has(hashID(fmt.Sprint("ev", i))) != want {
					t.Fatalf("id %d held=%v, want %v", i, !want, want)
				}
			}
			// The encoding, built here from the ids that must be held.
			var want []byte
			var prev int64
			for i := tt.wantFirst; i < tt.n; i++ {
				at := int64(i) * tt.step
				want = binary.LittleEndian.AppendUint64(want, hashID(fmt.Sprint("ev", i)))
				want = binary.AppendVarint(want, at-prev)
				prev = at
			}
			if !bytes.Equal(s.marshal(), want) {
				t.Fatal("the encoding differs from the held ids' in arrival order")
			}
			var r seenIDs
			if err := r.unmarshal(s.marshal()); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(r.ids) != fmt.Sprint(s.ids) || (r.idx == nil) != (len(r.ids) <= seenLinear) {
				t.Fatal("round trip changed the set")
			}
			before := fmt.Sprint(s.ids)
			s.trim()
			if fmt.Sprint(s.ids) != before || cap(s.ids)-len(s.ids) > len(s.ids)/4 {
				t.Fatalf("trim: %d held in a capacity of %d, or the set changed", len(s.ids), cap(s.ids))
			}
			for i := 0; i < tt.n; i++ {
				if want := i >= tt.wantFirst; s.has(hashID(fmt.Sprint("ev", i))) != want {
					t.Fatalf("after trim id %d held=%v, want %v", i, !want, want)
				}
			}
		})
	}
	var s seenIDs
	if err := s.unmarshal([]byte{1, 2, 3}); err == nil {
		t.Error("a truncated set restored without an error")
	}
}

// hashID is hash/fnv's FNV-1a 64, the hash the checkpoints hold.
func TestHashIDIsFNV1a(t *testing.T) {
	for _, id := range []string{"", "a", "event-1", "4f1c2a9e-0b6d-4c55-9a2e-5d8f7b3c1e60", strings.Repeat("x", 300)} {
		h := fnv.New64a()
		h.Write([]byte(id))
		if got, want := hashID(id), h.Sum64(); got != want {
			t.Errorf("hashID(%q) = %#x, want %#x", id, got, want)
		}
	}
}

// A key at SeenMax drops one id per event.
func BenchmarkSeenAddAtMax(b *testing.B) {
	var s seenIDs
	for i := 0; i < SeenMax; i++ {
		s.add(uint64(i)*0x9e3779b97f4a7c15, int64(i), int64(i))
	}
	i := int64(SeenMax)
	for b.Loop() {
		s.add(uint64(i)*0x9e3779b97f4a7c15, i, i)
		i++
	}
}

// seenTable against the count map it replaced, over random adds and
// removes of held hashes, with runs of clashing homes, the hash 0 and
// hashes held twice.
func TestSeenTableIsACountMap(t *testing.T) {
	tests := []struct {
		name   string
		values uint64 // hashes drawn from [0, values) scaled to clash
		ops    int
	}{
		{"few values, many repeats", 8, 20000},
		{"growth past many sizes", 1 << 40, 20000},
		{"clashing homes", 300, 50000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			tab, want := newSeenTable(0), map[uint64]int{}
			var held []uint64
			for op := 0; op < tt.ops; op++ {
				// Few distinct values (per test) give repeats and holds of two.
				h := rng.Uint64N(tt.values) << 32
				if len(held) > 0 && rng.IntN(3) == 0 {
					j := rng.IntN(len(held))
					h = held[j]
					held[j] = held[len(held)-1]
					held = held[:len(held)-1]
					tab.remove(h)
					if want[h]--; want[h] == 0 {
						delete(want, h)
					}
				} else {
					tab.add(h)
					want[h]++
					held = append(held, h)
				}
				if op%97 == 0 || op == tt.ops-1 {
					for v := uint64(0); v < min(tt.values, 400); v++ {
						if got := tab.has(v << 32); got != (want[v<<32] > 0) {
							t.Fatalf("op %d: has(%#x) = %v, want %v", op, v<<32, got, !got)
						}
					}
					for _, h := range held {
						if !tab.has(h) {
							t.Fatalf("op %d: a held hash %#x is missing", op, h)
						}
					}
				}
			}
		})
	}
}
