package poll

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// bucketWidth is the time granularity of the dedup set: entries are kept and
// pruned by the minute their record's event time falls in.
const bucketWidth = time.Minute

// seenSet is the poller's dedup memory: 64-bit hashes of the (tenant, event
// id) pairs it has published, bucketed by event-time minute so that the
// buckets older than the overlap window can be dropped whole.
//
// Bound: it holds what was published with event time in [frontier - overlap,
// now], and never more than max entries (the oldest buckets go first when the
// cap is hit, which can let a re-read duplicate, never skip, a record). At
// about 40 bytes per entry in memory and 11 in the cursor, the default cap of
// 100,000 is ~4 MB of heap and ~1.1 MB of cursor.
//
// Collisions: two distinct ids share a 64-bit hash with probability about
// n/2^64 per lookup (5e-15 at n = 100,000); a collision would drop the later
// record, which is accepted as negligible.
type seenSet struct {
	buckets map[int64]map[uint64]struct{} // unix minute → hashes
	index   map[uint64]int64              // hash → its bucket, for O(1) lookups
	n       int
	max     int
	evicted int // entries dropped by the cap, for a warning
}

func newSeenSet(max int) *seenSet {
	return &seenSet{buckets: map[int64]map[uint64]struct{}{}, index: map[uint64]int64{}, max: max}
}

// hashID is the dedup key of an event: source is fixed per poller, so (tenant,
// event id) completes the (source, tenant, event_id) key. Dead records, which
// have no event id, are keyed by their bytes (prefix "dead").
func hashID(kind, tenant, id string) uint64 {
	h := sha256.Sum256([]byte(kind + "\x00" + tenant + "\x00" + id))
	return binary.BigEndian.Uint64(h[:8])
}

func bucketOf(t time.Time) int64 { return t.Unix() / int64(bucketWidth/time.Second) }

func (s *seenSet) has(h uint64) bool {
	_, ok := s.index[h]
	return ok
}

func (s *seenSet) drop(k int64) {
	for h := range s.buckets[k] {
		delete(s.index, h)
	}
	s.n -= len(s.buckets[k])
	delete(s.buckets, k)
}

func (s *seenSet) add(h uint64, t time.Time) {
	if s.has(h) {
		return
	}
	k := bucketOf(t)
	b := s.buckets[k]
	if b == nil {
		b = map[uint64]struct{}{}
		s.buckets[k] = b
	}
	b[h] = struct{}{}
	s.index[h] = k
	s.n++
	for s.n > s.max && len(s.buckets) > 1 {
		oldest := slices.Min(slices.Collect(maps.Keys(s.buckets)))
		s.evicted += len(s.buckets[oldest])
		s.drop(oldest)
	}
}

// prune drops the buckets that end before from: records that old are not
// re-read by a pass starting at from.
func (s *seenSet) prune(from time.Time) {
	limit := bucketOf(from)
	for k := range s.buckets {
		if k < limit {
			s.drop(k)
		}
	}
}

func (s *seenSet) len() int { return s.n }

// encode renders the set for the stored cursor: one string per bucket,
// "<unix minute>:<base64url of the bucket's 8-byte hashes, sorted>". Sorting
// makes the cursor deterministic.
func (s *seenSet) encode() []string {
	keys := slices.Sorted(maps.Keys(s.buckets))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		hs := slices.Sorted(maps.Keys(s.buckets[k]))
		buf := make([]byte, 8*len(hs))
		for i, h := range hs {
			binary.BigEndian.PutUint64(buf[8*i:], h)
		}
		out = append(out, strconv.FormatInt(k, 10)+":"+base64.RawURLEncoding.EncodeToString(buf))
	}
	return out
}

func decodeSeenSet(entries []string, max int) (*seenSet, error) {
	s := newSeenSet(max)
	for _, e := range entries {
		ks, hs, ok := strings.Cut(e, ":")
		if !ok {
			return nil, fmt.Errorf("seen entry %.40q: want minute:hashes", e)
		}
		k, err := strconv.ParseInt(ks, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("seen entry %.40q: %w", e, err)
		}
		buf, err := base64.RawURLEncoding.DecodeString(hs)
		if err != nil || len(buf)%8 != 0 {
			return nil, fmt.Errorf("seen entry %.40q: bad hash list", e)
		}
		t := time.Unix(k*int64(bucketWidth/time.Second), 0)
		for i := 0; i < len(buf); i += 8 {
			s.add(binary.BigEndian.Uint64(buf[i:]), t)
		}
	}
	return s, nil
}
