package baseline

import (
	"encoding/json"
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
