// Package enrich owns adding context to normalized events before detection:
// GeoIP city and ASN (enrich/geoip) and the integration catalog
// (enrich/inventory). An Enricher mutates an event in place and never fails
// it: missing context is simply absent. It must not import ingest, detect or deliver.
package enrich

import "github.com/tokenwatch/tokenwatch/schemas"

// Enricher adds context to an event in place.
type Enricher interface {
	Enrich(ev *schemas.Event)
}

// Chain applies enrichers in order.
type Chain []Enricher

// Enrich implements Enricher.
func (c Chain) Enrich(ev *schemas.Event) {
	for _, e := range c {
		e.Enrich(ev)
	}
}
