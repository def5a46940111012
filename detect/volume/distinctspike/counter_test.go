package distinctspike

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/axiomhq/hyperloglog"

	"github.com/tokenwatch/tokenwatch/detect/baseline"
)

// A counter must estimate exactly what the sketch it replaced did, through
// its promotion to a sketch and the sketch's switch to dense registers,
// whatever the interleaving of inserts (new and repeated) and estimates.
func TestCounterEstimatesAsTheSketch(t *testing.T) {
	for _, every := range []int{5, 64, 1000, 1 << 30} {
		t.Run(fmt.Sprint(every), func(t *testing.T) {
			var c counter
			sk := hyperloglog.New()
			rnd := uint64(every)
			for i := 0; i < 30000; i++ {
				rnd = rnd*6364136223846793005 + 1442695040888963407
				v := []byte(fmt.Sprintf("v%d", rnd>>52)) // 4,096 values: repeats
				if i%2 == 0 {
					v = []byte(fmt.Sprintf("u%d", i)) // and new ones
				}
				c.insert(v)
				sk.Insert(v)
				if i%every == 0 || i < 200 && i%3 == 1 {
					if got, want := c.estimate(), sk.Estimate(); got != want {
						t.Fatalf("insert %d: counter %d, sketch %d", i, got, want)
					}
				}
			}
			if got, want := c.estimate(), sk.Estimate(); got != want || c.sk == nil {
				t.Fatalf("end: counter %d (sketch %v), sketch %d", got, c.sk != nil, want)
			}
			if b, _ := c.sk.MarshalBinary(); b[3] != 0 {
				t.Fatal("the sketch never turned dense: the test does not reach the switch")
			}
		})
	}
}

func TestKeyHashRoundTrips(t *testing.T) {
	rnd := uint64(7)
	for i := 0; i < 50000; i++ {
		rnd = rnd*6364136223846793005 + 1442695040888963407
		x := rnd
		if i%3 == 0 {
			x &^= (1<<(hllPP-hllP) - 1) << (64 - hllPP) // the ranked form
			x &= ^uint64(0) << (i % 40)
		}
		k := sparseKey(x)
		if sparseKey(keyHash(k)) != k {
			t.Fatalf("%#x: key %#x, keyHash's key %#x", x, k, sparseKey(keyHash(k)))
		}
		a, b := hyperloglog.NewNoSparse(), hyperloglog.NewNoSparse()
		a.InsertHash(x)
		b.InsertHash(keyHash(k))
		ab, _ := a.MarshalBinary()
		bb, _ := b.MarshalBinary()
		if string(ab) != string(bb) {
			t.Fatalf("%#x: dense register update differs from keyHash's", x)
		}
	}
}

// A state written before the small counters (every dimension a sketch)
// still loads, and counts on from its sketches.
func TestOldStateWithSketchesLoads(t *testing.T) {
	sk := hyperloglog.New()
	for i := 0; i < 40; i++ {
		sk.Insert([]byte(fmt.Sprintf("file\x00f%d", i)))
	}
	raw, err := sk.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	old, _ := json.Marshal(map[string]any{"first_seen": 1, "hour": 2, "events": 40, "profiles": map[string]any{},
		"sketches": map[string][]byte{DimResource: raw}})
	var s State
	if err := s.UnmarshalBinary(old); err != nil {
		t.Fatal(err)
	}
	if got := s.Estimate(DimResource); got != 40 || s.Counts[0].sk == nil || s.Estimate(DimIP) != 0 {
		t.Fatalf("old state: resource %d (sketch %v), ip %d", got, s.Counts[0].sk != nil, s.Estimate(DimIP))
	}
	s.Counts[0].insert([]byte("file\x00f40"))
	if got := s.Estimate(DimResource); got != 41 {
		t.Fatalf("after one more value: %d, want 41", got)
	}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := back.UnmarshalBinary(b); err != nil || back.Estimate(DimResource) != 41 {
		t.Fatalf("round trip: %v, %d", err, back.Estimate(DimResource))
	}
}

func TestSmallCounterRoundTrips(t *testing.T) {
	var s State
	for i := 0; i < 5; i++ {
		s.Counts[1].insert([]byte(fmt.Sprintf("p%d", i)))
	}
	s.Counts[1].estimate()
	s.Counts[1].insert([]byte("p1"))
	s.Counts[1].insert([]byte("p9"))
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	got, want := back.Counts[1], s.Counts[1]
	if fmt.Sprint(got.keys()) != fmt.Sprint(want.keys()) || got.merged != want.merged || got.fresh != want.fresh || got.sk != nil {
		t.Fatalf("restored %+v, want %+v (%s)", got, want, b)
	}
	if err := back.UnmarshalBinary([]byte(`{"small":{"ip":{"keys":"AAAAAQ==","merged":2}}}`)); err == nil {
		t.Error("a corrupt counter was accepted")
	}
}

// Profiles must write and read the JSON the map of profiles it replaced did.
func TestProfilesMarshalLikeTheMap(t *testing.T) {
	at := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
	old := baseline.SmallMap[*baseline.Profile]{}
	var ps Profiles
	for n, dim := range []string{DimResource, DimIP, DimPrincipal} {
		p := &baseline.Profile{}
		p.Add(at, float64(n+1))
		p.Add(at.Add(time.Hour), 0)
		old.Set(dim, p)
		s := State{Profiles: ps}
		q := s.profile(dim)
		q.Add(at, float64(n+1))
		q.Add(at.Add(time.Hour), 0)
		ps = s.Profiles
		want, _ := json.Marshal(old)
		got, err := json.Marshal(ps)
		if err != nil || string(got) != string(want) {
			t.Fatalf("after %s: %s (%v), map %s", dim, got, err, want)
		}
		var back Profiles
		if err := json.Unmarshal(want, &back); err != nil {
			t.Fatal(err)
		}
		if again, _ := json.Marshal(back); string(again) != string(want) {
			t.Fatalf("read back %s, want %s", again, want)
		}
	}
	if b, _ := json.Marshal(Profiles{}); string(b) != "{}" {
		t.Fatalf("empty: %s", b)
	}
}
