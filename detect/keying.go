package detect

import (
	"hash/maphash"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Keying says what a detector's state is keyed by. Most detectors watch one
// integration (ByIntegration, the default). A detector that looks across
// integrations — one IP acting as several — needs its records gathered by
// another key: the detect program re-keys each event with Rekey onto that
// keying's own repartition topic and runs those detectors in a stage of their
// own, with their own state topic, exactly as it runs the integration stage.
// Declaring the keying in the detector's Spec is all a detector does; nothing
// outside its folder names it.
type Keying struct {
	// Name is "" for the integration; otherwise a short word ("source_ip")
	// that names the stage, its topics and its consumer group.
	Name string
	// Rekey writes into rec the record the keying's detectors observe for
	// ev: a copy whose Integration.ID is the key (and so the partition and
	// state key); ok is false, and rec unspecified, when ev has no such key.
	// Into the caller's record rather than returned: an Event is some 600
	// bytes, copied at each return. Nil for ByIntegration.
	Rekey func(ev, rec *schemas.Event) (ok bool)
	// Coalesce, when set, names the record ev would be re-keyed to; records
	// with the same name are sent once (within a bounded memory), so a busy
	// integration does not repeat itself on the repartition topic. Detectors
	// must tolerate a repeat. It runs on every event: keep it cheap.
	Coalesce func(ev *schemas.Event) CoalesceKey
}

// CoalesceKey names a re-keyed record for Coalesce: comparable, so looking
// it up allocates nothing.
type CoalesceKey struct {
	A, B string
	N    int64
}

// ByIntegration keys state by (tenant, integration): the default.
var ByIntegration = Keying{}

// IPKeyPrefix marks a source-IP record's Integration.ID: "ip:203.0.113.9".
const IPKeyPrefix = "ip:"

// BySourceIP keys state by (tenant, source IP). Each record carries the
// integration seen at that IP as its Principal.
var BySourceIP = Keying{
	Name: "source_ip",
	Rekey: func(ev, rec *schemas.Event) bool {
		if ev.Network.IP == "" || ev.Integration.ID == "" {
			return false
		}
		*rec = schemas.Event{
			EventID: ev.EventID, Source: ev.Source, Tenant: ev.Tenant, Time: ev.Time,
			Integration: schemas.Integration{ID: IPKeyPrefix + ev.Network.IP},
			Principal:   schemas.Principal{ID: ev.Integration.ID, Type: "integration"},
			Action:      ev.Action, Network: schemas.Network{IP: ev.Network.IP}, Geo: ev.Geo,
		}
		return true
	},
	// Once per integration, IP and hour: the stage only needs to know an
	// integration was there, not every call it made.
	Coalesce: func(ev *schemas.Event) CoalesceKey {
		return CoalesceKey{A: ev.Integration.ID, B: ev.Network.IP, N: ev.Time.Unix() / 3600}
	},
}

// Rekeyer applies a keying's Rekey and Coalesce to a stream of events. Its
// memory is bounded: after a reset (or a restart) a record may come again.
type Rekeyer struct {
	k Keying
	// seen is the set of names sent, by a hash of the name: a map keyed by
	// a uint64 hashes, compares and grows far cheaper than one keyed by
	// two strings. A second name with the same hash goes to clash.
	seed  maphash.Seed
	seen  map[uint64]CoalesceKey
	clash map[CoalesceKey]struct{}
	// last is the latest name looked up and found or added in seen.
	last    CoalesceKey
	hasLast bool
}

// NewRekeyer returns a Rekeyer for k.
func NewRekeyer(k Keying) *Rekeyer { return &Rekeyer{k: k, seed: maphash.MakeSeed()} }

// coalesceMemory bounds the names a Rekeyer remembers before it starts over.
const coalesceMemory = 100_000

// Rekey writes into rec the record to publish for ev, and reports whether
// there is one (rec is unspecified when not).
func (r *Rekeyer) Rekey(ev, rec *schemas.Event) bool {
	if r.k.Coalesce != nil {
		// Named first: most events repeat a record already sent, and
		// building the record costs more than naming it.
		name := r.k.Coalesce(ev)
		// A run of events with one name (a busy integration at one IP in
		// one hour) compares with the last name instead of hashing it.
		if r.hasLast && name == r.last {
			return false
		}
		h := maphash.Comparable(r.seed, name)
		had, taken := r.seen[h]
		if taken && had == name {
			r.last, r.hasLast = name, true
			return false
		}
		if taken {
			if _, dup := r.clash[name]; dup {
				r.last, r.hasLast = name, true
				return false
			}
		}
		if !r.k.Rekey(ev, rec) {
			return false
		}
		switch {
		case r.seen == nil:
			r.seen = make(map[uint64]CoalesceKey, 1024)
		case len(r.seen)+len(r.clash) >= coalesceMemory:
			// It filled once and will again: made at full size, it does not
			// grow (rehash) its way there a second time.
			r.seen, r.clash, taken = make(map[uint64]CoalesceKey, coalesceMemory), nil, false
		}
		if taken {
			if r.clash == nil {
				r.clash = map[CoalesceKey]struct{}{}
			}
			r.clash[name] = struct{}{}
		} else {
			r.seen[h] = name
		}
		r.last, r.hasLast = name, true
		return true
	}
	return r.k.Rekey(ev, rec)
}
