package distinctspike

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"unsafe"

	"github.com/axiomhq/hyperloglog"
	metro "github.com/dgryski/go-metro"
)

// counter counts one dimension's distinct values in the open hour. While the
// hour has few distinct values it keeps them exactly, as the sparse keys a
// hyperloglog.Sketch (precision 14, sparse precision 25) would hold, and
// estimates as that sketch does; past smallMax it moves them into a real
// sketch and counts there. The keys are the sketch's own, so the estimate is
// the one the sketch always gave: a quiet integration holds a few dozen bytes
// per dimension where three sketches cost hundreds.
//
// To keep even the sketch's later sparse-to-dense switch where it was, the
// counter tracks what the sketch's two sparse halves would hold: keys[:merged]
// are the keys inserted before the last Estimate (its compacted list), and
// fresh marks the keys inserted since (its insertion set).
type counter struct {
	// k0 is the keys' array (see keys): a pointer and two byte counts
	// rather than a slice header, 16 bytes less a counter.
	k0     *uint32
	n, c   uint8 // keys held, and the array's length
	merged uint8
	fresh  uint32 // smallMax bits
	sk     *hyperloglog.Sketch
}

// keys are the counter's exact keys (at most smallMax).
func (c *counter) keys() []uint32 {
	if c.k0 == nil {
		return nil
	}
	return unsafe.Slice(c.k0, c.c)[:c.n]
}

// setKeys makes ks (at most smallMax, in an array of at most 255) the keys.
func (c *counter) setKeys(ks []uint32) {
	if cap(ks) == 0 {
		c.k0, c.n, c.c = nil, 0, 0
		return
	}
	c.k0, c.n, c.c = &ks[:cap(ks)][0], uint8(len(ks)), uint8(cap(ks))
}

// smallMax is the distinct values a counter keeps exactly before it makes a
// sketch (at most 32, the bits of fresh; below the 164 insertions at which a
// sparse sketch first compacts itself on insert).
const smallMax = 32

// Sketch parameters of hyperloglog.New (version 2 encoding).
const (
	hllP    = 14
	hllPP   = 25
	hllSeed = 1337
)

// sparseKey is the key a precision-14 sparse sketch stores for hash x.
func sparseKey(x uint64) uint32 {
	idx := uint32(x >> (64 - hllPP) & (1<<hllPP - 1))
	if x>>(64-hllPP)&(1<<(hllPP-hllP)-1) == 0 {
		zeros := bits.LeadingZeros64((x&(1<<(64-hllPP)-1))<<hllPP|(1<<hllPP-1)) + 1
		return idx<<7 | uint32(zeros<<1) | 1
	}
	return idx << 1
}

// keyHash is a hash whose sparse key is k and whose dense register update
// (index and rank) is that of every hash with that key.
func keyHash(k uint32) uint64 {
	if k&1 == 0 {
		return uint64(k>>1) << (64 - hllPP)
	}
	x := uint64(k>>7) << (64 - hllPP)
	if z := (k >> 1) & 0x3f; z < 64-hllPP+1 {
		x |= 1 << (64 - hllPP - z)
	}
	return x
}

func (c *counter) insert(v []byte) {
	if c.sk != nil {
		c.sk.Insert(v)
		return
	}
	k := sparseKey(metro.Hash64(v, hllSeed))
	keys := c.keys()
	for i, have := range keys {
		if have == k {
			c.fresh |= 1 << i
			return
		}
	}
	if len(keys) == smallMax {
		c.promote()
		c.sk.InsertHash(keyHash(k))
		return
	}
	c.fresh |= 1 << len(keys)
	c.setKeys(append(keys, k))
}

// promote moves the keys into a sketch in the state the sketch would be in
// had it counted them from the start.
func (c *counter) promote() {
	sk := hyperloglog.New()
	keys := c.keys()
	for _, k := range keys[:c.merged] {
		sk.InsertHash(keyHash(k))
	}
	if c.merged > 0 {
		sk.Estimate() // compacts them, as the Estimate that followed them did
	}
	for i, k := range keys {
		if c.fresh&(1<<i) != 0 {
			sk.InsertHash(keyHash(k))
		}
	}
	c.sk, c.merged, c.fresh = sk, 0, 0
	c.setKeys(nil)
}

// estimate is the sketch's Estimate.
func (c *counter) estimate() uint64 {
	if c.sk != nil {
		return c.sk.Estimate()
	}
	c.merged, c.fresh = c.n, 0
	if c.n == 0 {
		return 0
	}
	// A sparse sketch's estimate: linear counting over 2^25 registers.
	const m = uint32(1) << hllPP
	fm := float64(m)
	return uint64(fm * math.Log(fm/float64(m-min(uint32(c.n), m-1))))
}

// reset empties the counter for a new hour, as the detector always did: a
// sketch of an hour under reuseBelow events is still sparse (a sketch turns
// dense only past thousands of distinct values) and is Reset and reused,
// which makes it a new sketch; a busier hour's is dropped, and a new sketch
// is an empty small counter.
func (c *counter) reset(events int64) {
	if c.sk != nil && events < reuseBelow {
		c.sk.Reset()
		return
	}
	c.sk, c.merged, c.fresh = nil, 0, 0
	if c.c > 8 {
		c.setKeys(nil)
	} else {
		c.n = 0
	}
}

// reuseBelow is the events in an hour under which its sketches are surely
// still sparse: a precision-14 sketch turns dense when its sparse list passes
// 2^14 bytes, thousands of distinct values.
const reuseBelow = 1000

// empty reports whether the counter has seen nothing since its reset.
func (c *counter) empty() bool { return c.sk == nil && c.n == 0 }

// smallWire is a small counter's JSON form: the keys packed big-endian, 4
// bytes each (base64 in the JSON, a third the size of a list of numbers,
// which matters in an evicted integration's compressed snapshot).
type smallWire struct {
	Keys   []byte `json:"keys"`
	Merged uint8  `json:"merged,omitempty"`
	Fresh  uint64 `json:"fresh,omitempty"`
}

func (c *counter) marshalSmall() ([]byte, error) {
	w := smallWire{Keys: make([]byte, 0, 4*int(c.n)), Merged: c.merged, Fresh: uint64(c.fresh)}
	for _, k := range c.keys() {
		w.Keys = binary.BigEndian.AppendUint32(w.Keys, k)
	}
	return json.Marshal(w)
}

func (c *counter) unmarshalSmall(b []byte) error {
	var w smallWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	n := len(w.Keys) / 4
	if len(w.Keys)%4 != 0 || n > smallMax || int(w.Merged) > n || w.Fresh>>n != 0 {
		return fmt.Errorf("%d key bytes, %d merged, fresh %#x: not a small counter", len(w.Keys), w.Merged, w.Fresh)
	}
	keys := make([]uint32, n)
	for i := range keys {
		keys[i] = binary.BigEndian.Uint32(w.Keys[4*i:])
	}
	c.merged, c.fresh, c.sk = w.Merged, uint32(w.Fresh), nil
	c.setKeys(keys)
	return nil
}
