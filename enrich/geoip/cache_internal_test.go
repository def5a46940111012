package geoip

import (
	"fmt"
	"sync"
	"testing"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// The cache answers an address with its own entry or not at all, however
// many addresses pass through it and however many goroutines share it; the
// address just added is always there.
func TestCacheKeepsEachAddressItsOwnEntry(t *testing.T) {
	for _, size := range []int{1, 4, 1000} {
		c := newCache(size)
		if len(c.slots) < 2*size {
			t.Fatalf("size %d: %d slots", size, len(c.slots))
		}
		geo := func(i int) *schemas.Geo { return &schemas.Geo{ASN: uint32(i)} }
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 5000 {
					n := (i*7 + w) % 3000
					addr := fmt.Sprint("10.0.", n)
					if g, ok := c.get(addr); ok && (g == nil || g.ASN != uint32(n)) {
						t.Errorf("size %d: %s answered %+v", size, addr, g)
						return
					}
					c.add(addr, geo(n))
					if g, ok := c.get(addr); !ok || g.ASN != uint32(n) {
						// Another goroutine may have pushed it out since: only
						// a wrong entry is an error.
						if ok {
							t.Errorf("size %d: %s answered %+v", size, addr, g)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		c.add("nowhere", nil)
		if g, ok := c.get("nowhere"); !ok || g != nil {
			t.Errorf("size %d: an address that resolves to nothing: %v, %v", size, g, ok)
		}
		if _, ok := c.get("never-added"); ok {
			t.Errorf("size %d: an address never added was found", size)
		}
	}
}
