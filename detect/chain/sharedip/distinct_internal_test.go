package sharedip

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// distinct counts what union lists, duplicates within a bucket included.
func TestDistinctIsTheUnionsLength(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		var s State
		for start := int64(0); start < 4; start++ {
			b := bucket{Start: start * 10}
			for range r.IntN(6) {
				b.Seen = append(b.Seen, seen{ID: fmt.Sprint("app", r.IntN(5)), T: r.Int64N(100)})
			}
			s.Buckets = append(s.Buckets, b)
		}
		a := int64(r.IntN(5)) * 10
		if got, want := s.distinct(a, a+10), len(s.union(a, a+10)); got != want {
			t.Fatalf("case %d: distinct(%d, %d) = %d, union has %d: %+v", i, a, a+10, got, want, s.Buckets)
		}
	}
}
