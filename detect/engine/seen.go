package engine

import (
	"encoding/binary"
	"errors"
)

// An event reaches the detectors twice when it reaches Kafka twice: a file
// ingested again, a poller re-reading its overlap window after a crash, a
// vendor redelivering a webhook, a producer retrying. Each key remembers
// the ids of the events it was fed recently and skips a repeat, so every
// detector counts an event once. The set lives in the key's state and is
// checkpointed with it: a restore forgets nothing the detectors counted.
//
// Bounds: ids within SeenWindow of event time behind the key's latest event,
// and at most SeenMax of them (a busy key keeps its newest). A repeat older
// than both is counted again; poller overlaps, redeliveries and retries are
// minutes to hours, well inside them.
const (
	SeenWindow = 48 * 3600 * 1000 // ms of event time
	SeenMax    = 8192
	// seenLinear: below this many ids a scan beats a map (and a quiet
	// integration, the common case, holds a few dozen bytes).
	seenLinear = 32
	// seenShift: past this many ids a drop re-slices instead of moving the
	// rest down. At SeenMax every event drops one id, and moving 8,191 of
	// them (128 KiB) per event was a tenth of the detection core; re-slicing
	// lets append's growth copy the set once per ~2,000 drops instead.
	seenShift = 256
)

// seenIDs holds 64-bit FNV-1a hashes of event ids in arrival order with
// their event times (Unix ms). A collision (p ≈ n²/2⁶⁵ per key) would skip
// one event; the hash keeps the set at 16 bytes an id. Hash and time sit
// in one slice (one header and one allocation a key, not two).
type seenIDs struct {
	ids []seenID
	idx *seenTable // the hashes held, built past seenLinear
}

type seenID struct {
	h  uint64
	ms int64
}

// hashID is FNV-1a 64 (hash/fnv's New64a, whose values the checkpoints
// hold), over the string itself: no hasher and no []byte copy per event.
func hashID(id string) uint64 {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= prime64
	}
	return h
}

// latest is the newest event time held (Unix ms), 0 when none.
func (s *seenIDs) latest() (ms int64) {
	for _, x := range s.ids {
		ms = max(ms, x.ms)
	}
	return ms
}

func (s *seenIDs) has(h uint64) bool {
	if s.idx != nil {
		return s.idx.has(h)
	}
	for _, x := range s.ids {
		if x.h == h {
			return true
		}
	}
	return false
}

// add records h at event time at (Unix ms), dropping ids older than the
// window behind latest and the oldest beyond SeenMax.
func (s *seenIDs) add(h uint64, at, latest int64) {
	s.ids = append(s.ids, seenID{h, at})
	if s.idx != nil {
		s.idx.add(h)
	} else if len(s.ids) > seenLinear {
		s.index()
	}
	drop := 0
	for drop < len(s.ids) && (len(s.ids)-drop > SeenMax || s.ids[drop].ms < latest-SeenWindow) {
		drop++
	}
	if drop == 0 {
		return
	}
	if s.idx != nil {
		for _, x := range s.ids[:drop] {
			s.idx.remove(x.h)
		}
	}
	if len(s.ids)-drop > seenShift {
		s.ids = s.ids[drop:]
	} else {
		s.ids = append(s.ids[:0], s.ids[drop:]...)
	}
	if len(s.ids) <= seenLinear/2 {
		s.idx = nil
	}
}

// trim gives back what append's doubling left unused past a quarter of the
// set (called at a checkpoint: a quiet key may then sit unchanged for
// hours; a busy one grows again from its exact size). Past seenShift ids
// the array may also hold dropped ids before the slice, which cap does not
// show, so such a set is copied anyway.
func (s *seenIDs) trim() {
	if n := len(s.ids); cap(s.ids)-n > n/4 || n > seenShift {
		s.ids = append(make([]seenID, 0, n), s.ids...)
	}
}

// marshal encodes the set as (hash uint64 LE, zigzag varint of the time
// delta from the previous id) pairs.
func (s *seenIDs) marshal() []byte {
	if len(s.ids) == 0 {
		return nil
	}
	b := make([]byte, 0, len(s.ids)*11)
	var prev int64
	for _, x := range s.ids {
		b = binary.LittleEndian.AppendUint64(b, x.h)
		b = binary.AppendVarint(b, x.ms-prev)
		prev = x.ms
	}
	return b
}

func (s *seenIDs) index() {
	s.idx = newSeenTable(len(s.ids))
	for _, x := range s.ids {
		s.idx.add(x.h)
	}
}

// seenTable is a multiset of hashes: open addressing with linear probing
// over a power-of-two array kept at most half full, 0 marking an empty slot
// (the hash 0 is counted apart). A hash held twice (an encoding from a
// collision) takes two slots, so removing one occurrence keeps the other,
// as the count map it replaced did. Against that map it does one probe
// sequence per operation over 8-byte slots: the seen set was a tenth of
// the detection core.
type seenTable struct {
	slots []uint64
	n     int // slots in use
	zeros int // occurrences of the hash 0
}

func newSeenTable(n int) *seenTable {
	size := 64
	for size < 2*n {
		size *= 2
	}
	return &seenTable{slots: make([]uint64, size)}
}

// home is h's first slot: FNV-1a's high bits, mixed, index a power of two.
func (t *seenTable) home(h uint64) int {
	return int((h * 0x9e3779b97f4a7c15) >> 32 & uint64(len(t.slots)-1))
}

func (t *seenTable) has(h uint64) bool {
	if h == 0 {
		return t.zeros > 0
	}
	mask := len(t.slots) - 1
	for i := t.home(h); ; i = (i + 1) & mask {
		switch t.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

func (t *seenTable) add(h uint64) {
	if h == 0 {
		t.zeros++
		return
	}
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	mask := len(t.slots) - 1
	i := t.home(h)
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = h
	t.n++
}

func (t *seenTable) grow() {
	old := t.slots
	t.slots, t.n = make([]uint64, 2*len(old)), 0
	for _, h := range old {
		if h != 0 {
			t.add(h)
		}
	}
}

// remove drops one occurrence of h (held: the set adds before it drops),
// closing the gap by moving later entries of the run back (no tombstones).
func (t *seenTable) remove(h uint64) {
	if h == 0 {
		t.zeros--
		return
	}
	mask := len(t.slots) - 1
	i := t.home(h)
	for t.slots[i] != h {
		if t.slots[i] == 0 {
			return
		}
		i = (i + 1) & mask
	}
	t.slots[i] = 0
	t.n--
	for j := (i + 1) & mask; t.slots[j] != 0; j = (j + 1) & mask {
		// The entry at j may move to the gap at i unless its home lies
		// cyclically in (i, j].
		if k := t.home(t.slots[j]); (j-k)&mask >= (j-i)&mask {
			t.slots[i], t.slots[j] = t.slots[j], 0
			i = j
		}
	}
}

func (s *seenIDs) unmarshal(b []byte) error {
	*s = seenIDs{}
	var prev int64
	for len(b) > 0 {
		if len(b) < 9 {
			return errors.New("engine: truncated seen-id set")
		}
		h := binary.LittleEndian.Uint64(b)
		d, n := binary.Varint(b[8:])
		if n <= 0 {
			return errors.New("engine: corrupt seen-id set")
		}
		b = b[8+n:]
		prev += d
		s.ids = append(s.ids, seenID{h, prev})
	}
	if len(s.ids) > seenLinear {
		s.index()
	}
	return nil
}
