package engine

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// A snapshot is written in a small binary form: a version byte, then
// length-prefixed fields. Checkpoints written before it are JSON objects
// (first byte '{'), which Restore still reads. The binary form carries the
// same content: each detector's state is its MarshalBinary bytes, whatever
// they hold, so a detector changes its own encoding without the engine.
//
//	snapshotV1 tenant id seen emitted states
//	  tenant, id, seen:  uvarint length, bytes
//	  emitted:           uvarint count, then (uvarint length, alert id, varint Unix ms), sorted by id
//	  states:            uvarint count, then (uvarint length, detector id, uvarint length, state)
const snapshotV1 = 1

// decoded is a snapshot read back, in either form.
type decoded struct {
	tenant, id string
	states     map[string][]byte // by detector id (correlateID for the correlator)
	emitted    map[string]int64
	seen       []byte
}

type stateBytes struct {
	id string
	b  []byte
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendString(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// encodeSnapshot writes the binary form; states stay in the order given.
func encodeSnapshot(tenant, id string, seen []byte, emitted map[string]int64, states []stateBytes) []byte {
	n := 1 + 3*binary.MaxVarintLen32 + len(tenant) + len(id) + len(seen)
	for _, s := range states {
		n += 2*binary.MaxVarintLen32 + len(s.id) + len(s.b)
	}
	b := make([]byte, 0, n+len(emitted)*64)
	b = append(b, snapshotV1)
	b = appendString(b, tenant)
	b = appendString(b, id)
	b = appendBytes(b, seen)
	ids := make([]string, 0, len(emitted))
	for a := range emitted {
		ids = append(ids, a)
	}
	slices.Sort(ids) // map order is random; the same state writes the same bytes
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, a := range ids {
		b = appendString(b, a)
		b = binary.AppendVarint(b, emitted[a])
	}
	b = binary.AppendUvarint(b, uint64(len(states)))
	for _, s := range states {
		b = appendString(b, s.id)
		b = appendBytes(b, s.b)
	}
	return b
}

var errTruncated = errors.New("truncated snapshot")

// reader reads the binary form's fields, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errTruncated
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// count reads an element count, bounded by the bytes left (every element
// takes at least one), so a corrupt count cannot make a huge map.
func (r *reader) count() int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = errTruncated
	}
	return int(n)
}

// decodeSnapshot reads either form. The states it returns alias b.
func decodeSnapshot(b []byte) (decoded, error) {
	if len(b) == 0 {
		return decoded{}, errors.New("empty snapshot")
	}
	switch b[0] {
	case '{':
		return decodeJSON(b)
	case snapshotV1:
	default:
		return decoded{}, fmt.Errorf("unknown snapshot version %d", b[0])
	}
	r := reader{b: b[1:]}
	var d decoded
	d.tenant = string(r.bytes())
	d.id = string(r.bytes())
	if s := r.bytes(); len(s) > 0 {
		d.seen = s
	}
	if n := r.count(); n > 0 {
		d.emitted = make(map[string]int64, n)
		for range n {
			a := string(r.bytes())
			d.emitted[a] = r.varint()
		}
	}
	n := r.count()
	d.states = make(map[string][]byte, n)
	for range n {
		id := string(r.bytes())
		d.states[id] = r.bytes()
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%d bytes after the snapshot", len(r.b))
	}
	return d, r.err
}

// snapshotJSON is the form checkpoints were written in before snapshotV1.
type snapshotJSON struct {
	Tenant string `json:"tenant"`
	ID     string `json:"id"`
	// States held the detectors' states that were JSON, inline; Detectors
	// the others, base64.
	States    map[string]json.RawMessage `json:"states,omitempty"`
	Detectors map[string][]byte          `json:"detectors,omitempty"`
	Emitted   map[string]int64           `json:"emitted,omitempty"`
	Seen      []byte                     `json:"seen,omitempty"`
}

func decodeJSON(b []byte) (decoded, error) {
	var s snapshotJSON
	if err := json.Unmarshal(b, &s); err != nil {
		return decoded{}, err
	}
	d := decoded{tenant: s.Tenant, id: s.ID, emitted: s.Emitted, seen: s.Seen,
		states: make(map[string][]byte, len(s.States)+len(s.Detectors))}
	for id, raw := range s.Detectors {
		d.states[id] = raw
	}
	for id, raw := range s.States {
		d.states[id] = raw
	}
	return d, nil
}
