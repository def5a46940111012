package engine

import (
	"fmt"
	"hash/fnv"
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
