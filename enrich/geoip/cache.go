package geoip

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// cache remembers lookups: a two-way set-associative table of atomic
// pointers, read without a lock on every event (an LRU's mutex and list
// move per hit were most of the enrichment's cost). Lookups are
// deterministic, so which entries it keeps changes the speed only, never a
// result. A full set replaces one of its two entries, picked by the hash.
type cache struct {
	seed  maphash.Seed
	mask  uint64
	slots []atomic.Pointer[cacheEntry]
}

type cacheEntry struct {
	addr string
	geo  *schemas.Geo // nil: the address resolves to nothing
}

// newCache holds about size addresses (twice as many slots, a power of two,
// so a busy set rarely pushes one out).
func newCache(size int) *cache {
	n := uint64(1) << bits.Len64(uint64(max(size, 1))*2-1)
	return &cache{seed: maphash.MakeSeed(), mask: n - 1, slots: make([]atomic.Pointer[cacheEntry], n)}
}

func (c *cache) get(addr string) (*schemas.Geo, bool) {
	i := maphash.String(c.seed, addr) & c.mask
	if e := c.slots[i].Load(); e != nil && e.addr == addr {
		return e.geo, true
	}
	if e := c.slots[i^1].Load(); e != nil && e.addr == addr {
		return e.geo, true
	}
	return nil, false
}

func (c *cache) add(addr string, g *schemas.Geo) {
	h := maphash.String(c.seed, addr)
	i := h & c.mask
	switch {
	case c.slots[i].Load() == nil:
	case c.slots[i^1].Load() == nil:
		i ^= 1
	default:
		i ^= h >> 63 // both taken: one of them, by a hash bit the index does not use
	}
	c.slots[i].Store(&cacheEntry{addr: addr, geo: g})
}
