package baseline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"testing"
	"time"
)

// Seen must read and write exactly the JSON the map[string]int64 it replaced
// did, so checkpoints taken before and after the change restore alike.
func TestSeenMarshalsLikeAMap(t *testing.T) {
	m := map[string]int64{}
	var s Seen
	base := time.UnixMilli(1_700_000_000_000)
	for i, v := range []string{"US", "AS15169", "a<b>&\"c", "", "DE", "US", "Zz", "é"} {
		at := base.Add(time.Duration(i) * time.Minute)
		_, had := m[v]
		if s.Add(v, at) == had {
			t.Fatalf("Add(%q) new=%v, map had it=%v", v, !had, had)
		}
		if !had {
			m[v] = at.UnixMilli()
		}
		if !s.Has(v) {
			t.Fatalf("Has(%q) false after Add", v)
		}
	}
	want, _ := json.Marshal(m)
	got, err := json.Marshal(s)
	if err != nil || string(got) != string(want) {
		t.Fatalf("Seen JSON %s (%v), map JSON %s", got, err, want)
	}
	var back Seen
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	if string(again) != string(want) || len(back.Keys()) != len(m) {
		t.Fatalf("round trip %s, want %s", again, want)
	}
	var nilSeen Seen
	type holder struct {
		A Seen `json:"a"`
		B Seen `json:"b,omitempty"`
	}
	hb, _ := json.Marshal(holder{A: nilSeen, B: Seen{}})
	type mapHolder struct {
		A map[string]int64 `json:"a"`
		B map[string]int64 `json:"b,omitempty"`
	}
	mb, _ := json.Marshal(mapHolder{A: nil, B: map[string]int64{}})
	if string(hb) != string(mb) {
		t.Fatalf("nil/empty: %s, map gives %s", hb, mb)
	}
	if k := (Seen{}).Keys(); k == nil || len(k) != 0 {
		t.Fatalf("Keys of an empty set = %#v, want an empty non-nil slice", k)
	}
}

// SmallMap likewise must read and write what map[string]V did.
func TestSmallMapMarshalsLikeAMap(t *testing.T) {
	type fix struct {
		T   int64   `json:"t"`
		Lat float64 `json:"lat"`
		IP  string  `json:"ip,omitempty"`
	}
	m := map[string]fix{}
	var s SmallMap[fix]
	for i, k := range []string{"tok-2", "integration", "a<b>&", "", "tok-1", "tok-2", "é"} {
		v := fix{T: int64(i), Lat: float64(i) / 3}
		if i%2 == 0 {
			v.IP = "10.0.0.1"
		}
		m[k] = v
		s.Set(k, v)
		if got, ok := s.Get(k); !ok || got != v {
			t.Fatalf("Get(%q) = %v, %v after Set", k, got, ok)
		}
	}
	delete(m, "tok-1")
	s.Delete("tok-1")
	s.Delete("absent")
	want, _ := json.Marshal(m)
	got, err := json.Marshal(s)
	if err != nil || string(got) != string(want) {
		t.Fatalf("SmallMap JSON %s (%v), map JSON %s", got, err, want)
	}
	var back SmallMap[fix]
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	if again, _ := json.Marshal(back); string(again) != string(want) || len(back) != len(m) {
		t.Fatalf("round trip %s, want %s", again, want)
	}
	type holder struct {
		A SmallMap[string] `json:"a"`
		B SmallMap[string] `json:"b"`
		C SmallMap[string] `json:"c,omitempty"`
	}
	type mapHolder struct {
		A map[string]string `json:"a"`
		B map[string]string `json:"b"`
		C map[string]string `json:"c,omitempty"`
	}
	hb, _ := json.Marshal(holder{B: SmallMap[string]{}, C: SmallMap[string]{}})
	mb, _ := json.Marshal(mapHolder{B: map[string]string{}, C: map[string]string{}})
	if string(hb) != string(mb) {
		t.Fatalf("nil/empty: %s, map gives %s", hb, mb)
	}
}

// denseProfile is Profile as it was before buckets were stored sparsely: the
// reference its arithmetic and JSON must match.
type denseProfile struct {
	Mean [24]float64 `json:"mean"`
	Var  [24]float64 `json:"var"`
	N    [24]uint32  `json:"n"`
}

func (p *denseProfile) add(hour time.Time, v float64) {
	h := hour.UTC().Hour()
	if p.N[h] == 0 {
		p.Mean[h], p.Var[h] = v, 0
	} else {
		d := v - p.Mean[h]
		incr := Alpha * d
		p.Mean[h] += incr
		p.Var[h] = (1 - Alpha) * (p.Var[h] + d*incr)
	}
	p.N[h]++
}

// The sparse Profile must compute bit for bit what the dense one did, write
// the same JSON, and read a checkpoint the dense one wrote: over 40 days
// (byte counts) and 300 (counts past 255, moved to 16 bits).
func TestProfileMatchesTheDenseProfile(t *testing.T) {
	for _, days := range []int{40, 300} {
		t.Run(fmt.Sprint(days, "days"), func(t *testing.T) { profileMatchesDense(t, days) })
	}
}

func profileMatchesDense(t *testing.T, days int) {
	var p Profile
	var d denseProfile
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	rnd := uint64(1)
	for i := 0; i < 24*days; i++ {
		rnd = rnd*6364136223846793005 + 1442695040888963407
		hour := start.Add(time.Duration(i) * time.Hour)
		v := 0.0
		if h := hour.Hour(); (h >= 9 && h <= 11) || h == 20 {
			v = float64(rnd >> 58) // 0–63, often zero for a quiet hour
		}
		p.Add(hour, v)
		d.add(hour, v)
		for k := 0; k < 24; k++ {
			at := start.Add(time.Duration(k) * time.Hour)
			m, s, n := p.At(at)
			if m != d.Mean[k] || s != math.Sqrt(d.Var[k]) || n != d.N[k] {
				t.Fatalf("step %d hour %d: sparse %v %v %d, dense %v %v %d", i, k, m, s, n, d.Mean[k], math.Sqrt(d.Var[k]), d.N[k])
			}
		}
		if i == 5 || i == 24*255+3 || i == 24*days-1 {
			got, err := json.Marshal(p)
			want, _ := json.Marshal(d)
			if err != nil || string(got) != string(want) {
				t.Fatalf("JSON %s (%v), dense %s", got, err, want)
			}
			var back Profile
			if err := json.Unmarshal(want, &back); err != nil {
				t.Fatal(err)
			}
			again, _ := json.Marshal(&back)
			if string(again) != string(want) || back.mask != p.mask || len(back.mv()) != len(p.mv()) || (back.big == nil) != (p.big == nil) {
				t.Fatalf("dense JSON read back as %s (mask %x, %d stored), want %s (mask %x)", again, back.mask, len(back.mv()), want, p.mask)
			}
		}
	}
	if n := bits.OnesCount32(p.mask); n != 4 {
		t.Fatalf("%d buckets stored, want the 4 hours that saw non-zero values", n)
	}
	if wantBig := days > 255; (p.big != nil) != wantBig {
		t.Fatalf("after %d days the counts are 16-bit: %v, want %v", days, p.big != nil, wantBig)
	}
}

// Counts stop at 65,535 observations of a bucket, written and read back so.
func TestProfileCountsSaturate(t *testing.T) {
	var p Profile
	for range 70_000 {
		p.AddHour(7, 1)
	}
	if _, _, n := p.At(time.Date(2026, 1, 1, 7, 0, 0, 0, time.UTC)); n != math.MaxUint16 {
		t.Fatalf("count %d, want %d", n, math.MaxUint16)
	}
	var back Profile
	if err := json.Unmarshal([]byte(`{"mean":[0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"var":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"n":[0,0,0,0,0,0,0,70000,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,3]}`), &back); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(p)
	b, _ := json.Marshal(back)
	wantB := `{"mean":[0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"var":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"n":[0,0,0,0,0,0,0,65535,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,3]}`
	if string(b) != wantB || !bytes.Contains(a, []byte(`,65535,`)) {
		t.Fatalf("saturated profile %s, read back %s", a, b)
	}
}
