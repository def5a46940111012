// Package geoip enriches events with city and ASN from MaxMind DB files
// (GeoIP2/GeoLite2 City and ASN layouts) through geoip2-golang, with a small
// cache in front (cache.go): integrations call from few addresses, so the hit
// rate is high and lookups stay off the hot path.
package geoip

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/oschwald/geoip2-golang"

	"github.com/tokenwatch/tokenwatch/enrich"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// DefaultCacheSize is about the number of IPs remembered.
const DefaultCacheSize = 16384

// Enricher resolves event IPs. Either database may be absent. Safe for
// concurrent use.
type Enricher struct {
	city, asn *geoip2.Reader
	cache     *cache
	mu        sync.Mutex // guards Close against lookups
}

var _ enrich.Enricher = (*Enricher)(nil)

// Open loads the City and ASN databases; an empty path skips that database.
func Open(cityPath, asnPath string, cacheSize int) (*Enricher, error) {
	if cacheSize <= 0 {
		cacheSize = DefaultCacheSize
	}
	e := &Enricher{}
	var err error
	if cityPath != "" {
		if e.city, err = geoip2.Open(cityPath); err != nil {
			return nil, fmt.Errorf("geoip city database %s: %w", cityPath, err)
		}
	}
	if asnPath != "" {
		if e.asn, err = geoip2.Open(asnPath); err != nil {
			e.Close()
			return nil, fmt.Errorf("geoip asn database %s: %w", asnPath, err)
		}
	}
	e.cache = newCache(cacheSize)
	return e, nil
}

// Close releases the databases.
func (e *Enricher) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.city != nil {
		e.city.Close()
		e.city = nil
	}
	if e.asn != nil {
		e.asn.Close()
		e.asn = nil
	}
	return nil
}

// Enrich sets ev.Geo when the IP resolves in either database. The cached Geo is
// shared between events: detectors treat events as read-only.
func (e *Enricher) Enrich(ev *schemas.Event) {
	if ev.Network.IP == "" {
		return
	}
	ev.Geo = e.Lookup(ev.Network.IP)
}

// Lookup resolves one address; nil when nothing is known.
func (e *Enricher) Lookup(addr string) *schemas.Geo {
	if g, ok := e.cache.get(addr); ok {
		return g
	}
	g := e.lookup(addr)
	e.cache.add(addr, g)
	return g
}

func (e *Enricher) lookup(addr string) *schemas.Geo {
	ip := net.ParseIP(addr)
	if ip == nil {
		return nil
	}
	var g schemas.Geo
	if e.city != nil {
		if c, err := e.city.City(ip); err == nil {
			g.Country = c.Country.IsoCode
			g.City = c.City.Names["en"]
			g.Lat, g.Lon = c.Location.Latitude, c.Location.Longitude
			g.AccuracyKM = c.Location.AccuracyRadius
		}
	}
	if e.asn != nil {
		if a, err := e.asn.ASN(ip); err == nil {
			g.ASN = uint32(a.AutonomousSystemNumber)
			g.ASOrg = a.AutonomousSystemOrganization
		}
	}
	if g == (schemas.Geo{}) {
		return nil
	}
	return &g
}

// BuildTimes reports when each loaded database was built ("city", "asn"), for
// the database-age metric: stale GeoIP data quietly degrades geo detectors.
func (e *Enricher) BuildTimes() map[string]time.Time {
	out := map[string]time.Time{}
	if e.city != nil {
		out["city"] = time.Unix(int64(e.city.Metadata().BuildEpoch), 0)
	}
	if e.asn != nil {
		out["asn"] = time.Unix(int64(e.asn.Metadata().BuildEpoch), 0)
	}
	return out
}
