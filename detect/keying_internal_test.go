package detect

import (
	"time"

	"fmt"
	"hash/maphash"
	"testing"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// The Rekeyer sends exactly what a plain set of names (cleared when it
// holds coalesceMemory names) would: over more names than that, with
// repeats, runs and revisits.
func TestRekeyerMatchesAPlainSet(t *testing.T) {
	r := NewRekeyer(BySourceIP)
	ref := map[CoalesceKey]struct{}{}
	sent := 0
	for i := 0; i < 3*coalesceMemory; i++ {
		n := i * 7919 % (coalesceMemory + 5000) // revisits names, across the clears
		ev := schemas.Event{Tenant: "t", Integration: schemas.Integration{ID: fmt.Sprint("app", n%977)},
			Network: schemas.Network{IP: fmt.Sprint("10.0.", n/977)}, Time: schemas.NewTime(t0)}
		name := BySourceIP.Coalesce(&ev)
		_, dup := ref[name]
		if !dup {
			if len(ref) >= coalesceMemory {
				ref = map[CoalesceKey]struct{}{}
			}
			ref[name] = struct{}{}
		}
		for range 1 + i%2 { // every other event comes twice in a row
			var rec schemas.Event
			ok := r.Rekey(&ev, &rec)
			if ok != !dup {
				t.Fatalf("event %d (%v): sent %v, a plain set says %v", i, name, ok, !dup)
			}
			dup = true
			if ok {
				sent++
			}
		}
	}
	if sent == 0 {
		t.Fatal("nothing sent")
	}
}

// Two names with one hash are both sent once: the second is kept apart.
func TestRekeyerHashClash(t *testing.T) {
	r := NewRekeyer(BySourceIP)
	a := schemas.Event{Tenant: "t", Integration: schemas.Integration{ID: "a"}, Network: schemas.Network{IP: "1.1.1.1"}, Time: schemas.NewTime(t0)}
	b := a
	b.Integration.ID = "b"
	// Make b's hash look taken by another name: as if the two clashed.
	r.seen = map[uint64]CoalesceKey{maphash.Comparable(r.seed, BySourceIP.Coalesce(&b)): {A: "c", B: "2.2.2.2"}}
	for i, tc := range []struct {
		ev   *schemas.Event
		want bool
	}{{&b, true}, {&b, false}, {&a, true}, {&a, false}, {&b, false}} {
		r.hasLast = false // look in the set, not at the last name
		var rec schemas.Event
		if ok := r.Rekey(tc.ev, &rec); ok != tc.want {
			t.Errorf("step %d (%s): sent %v, want %v", i, tc.ev.Integration.ID, ok, tc.want)
		}
	}
	if len(r.clash) != 1 {
		t.Errorf("clash holds %d names, want 1", len(r.clash))
	}
}

var t0 = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
