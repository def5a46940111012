package ssf

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The outbox is the durable copy of the stream queues, beside state_file in
// <state_file>.queue: an append-only journal of the SETs queued (stream,
// sequence number, jti, the signed token) and of their completion
// (delivered, refused as malformed, dropped by hold_limit or a disable, the
// stream deleted). Each record is written with one write(2) as it happens,
// so a process that dies (kill -9, a panic, an OOM kill) loses nothing; the
// file is fsynced every outboxSync when it changed, so a machine that dies
// (power, kernel) loses at most the records of the last outboxSync. A start
// replays it: the SETs not completed go back to their streams in the order
// they were queued, before any new one.
//
// The file is a header (outboxMagic) then records: a 4-byte big-endian
// length, the CRC-32C of the payload (4 bytes, big-endian), the payload (a
// journalRec as JSON). A torn tail (a crash mid-write: a short header, a
// length past the end, a last record whose CRC fails, zeros) is cut off and
// logged; a bad record followed by more data is corruption, an error that
// names its offset.

const (
	outboxMagic = "TWSSFQ1\n"
	// outboxSync is how often the journal is fsynced when it changed: the
	// most a machine crash can lose.
	outboxSync = 100 * time.Millisecond
	// outboxMaxRecord bounds one record (a SET is a few KiB).
	outboxMaxRecord = 1 << 20
	// outboxCompactMin is the dead records (completed SETs and completion
	// records) the journal may carry before it is rewritten; it is rewritten
	// once they are more than this and more than the live SETs, so the file
	// stays under about twice the live SETs plus this many records.
	outboxCompactMin = 1024
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// journalRec is one journal record. Op "q" queues a SET (Seq, Stream, JTI,
// Typ, SET); "d" completes the SETs numbered Done; "x" completes every SET
// of Stream (it was deleted).
type journalRec struct {
	Op     string   `json:"op"`
	Seq    uint64   `json:"seq,omitempty"`
	Stream string   `json:"stream,omitempty"`
	JTI    string   `json:"jti,omitempty"`
	Typ    string   `json:"typ,omitempty"`
	SET    string   `json:"set,omitempty"`
	Done   []uint64 `json:"done,omitempty"`
}

// queued is a live SET of the journal.
type queued struct {
	stream string
	p      pending
}

func appendRecord(dst []byte, r *journalRec) []byte {
	b, _ := json.Marshal(r) // strings and numbers only
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(b, crcTable))
	return append(dst, b...)
}

// errCorrupt is a journal damaged before its end.
var errCorrupt = errors.New("corrupt")

// decodeOutbox reads a journal: the live SETs in the order they were
// queued, how many records it holds, and how many bytes are valid (less
// than len(b) for a torn tail, which is not an error). Damage followed by
// more records is an error naming the offset.
func decodeOutbox(b []byte) (live []queued, records, valid int, err error) {
	if len(b) < len(outboxMagic) {
		if strings.HasPrefix(outboxMagic, string(b)) || allZero(b) {
			return nil, 0, 0, nil // a crash while the header was written
		}
		return nil, 0, 0, fmt.Errorf("offset 0: not an SSF outbox: %w", errCorrupt)
	}
	if string(b[:len(outboxMagic)]) != outboxMagic {
		if allZero(b) {
			return nil, 0, 0, nil
		}
		return nil, 0, 0, fmt.Errorf("offset 0: not an SSF outbox: %w", errCorrupt)
	}
	byseq := map[uint64]queued{}
	var last uint64
	off := len(outboxMagic)
	for off < len(b) {
		rest := b[off:]
		if len(rest) < 8 {
			return sorted(byseq), records, off, nil // a header written in part
		}
		n := int(binary.BigEndian.Uint32(rest))
		if n > len(rest)-8 {
			return sorted(byseq), records, off, nil // written in part
		}
		payload := rest[8 : 8+n]
		var bad string
		switch {
		case n == 0 || n > outboxMaxRecord:
			bad = fmt.Sprintf("record length %d", n)
		case crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(rest[4:]):
			bad = "checksum mismatch"
		}
		if bad != "" {
			if allZero(rest[8+n:]) {
				// The last record, or one followed by zeros only (a
				// file whose size was extended before its data): torn.
				return sorted(byseq), records, off, nil
			}
			return nil, 0, 0, fmt.Errorf("offset %d: %s, and %d bytes follow: %w", off, bad, len(rest)-8-n, errCorrupt)
		}
		var r journalRec
		d := json.NewDecoder(bytes.NewReader(payload))
		d.DisallowUnknownFields()
		if err := d.Decode(&r); err != nil {
			return nil, 0, 0, fmt.Errorf("offset %d: record: %v: %w", off, err, errCorrupt)
		}
		switch r.Op {
		case "q":
			if r.Seq <= last || r.Stream == "" || r.SET == "" {
				return nil, 0, 0, fmt.Errorf("offset %d: queued record: sequence %d after %d, stream %q: %w", off, r.Seq, last, r.Stream, errCorrupt)
			}
			last = r.Seq
			byseq[r.Seq] = queued{stream: r.Stream, p: pending{seq: r.Seq, set: r.SET, typ: r.Typ, jti: r.JTI}}
		case "d":
			for _, s := range r.Done {
				delete(byseq, s)
			}
		case "x":
			for s, q := range byseq {
				if q.stream == r.Stream {
					delete(byseq, s)
				}
			}
		default:
			return nil, 0, 0, fmt.Errorf("offset %d: record op %q: %w", off, r.Op, errCorrupt)
		}
		records++
		off += 8 + n
	}
	return sorted(byseq), records, off, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func sorted(m map[uint64]queued) []queued {
	out := make([]queued, 0, len(m))
	for _, q := range m {
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b queued) int {
		switch {
		case a.p.seq < b.p.seq:
			return -1
		case a.p.seq > b.p.seq:
			return 1
		}
		return 0
	})
	return out
}

// outbox writes the journal. A nil outbox (no state_file) keeps nothing.
// Its lock is taken under a stream's, never the other way round.
type outbox struct {
	mu      sync.Mutex
	path    string
	log     *slog.Logger
	f       *os.File
	live    map[uint64]queued
	seq     uint64
	records int  // in the file
	dirty   bool // written since the last fsync
	failing bool // the last write failed (logged once)
	buf     []byte
}

// openOutbox writes the live SETs to a fresh journal at path (a
// compaction: the file loaded, its torn tail and the SETs of streams gone
// are left behind) and opens it to append.
func openOutbox(path string, live []queued, log *slog.Logger) (*outbox, error) {
	o := &outbox{path: path, log: log, live: map[uint64]queued{}}
	for _, q := range live {
		o.live[q.p.seq] = q
		o.seq = max(o.seq, q.p.seq)
	}
	if err := o.rewriteLocked(); err != nil {
		return nil, err
	}
	return o, nil
}

// rewriteLocked writes the live SETs to a temporary file, fsyncs it and
// renames it over the journal (o.mu held, or before o is shared).
func (o *outbox) rewriteLocked() error {
	b := append([]byte(nil), outboxMagic...)
	for _, q := range sorted(o.live) {
		b = appendRecord(b, &journalRec{Op: "q", Seq: q.p.seq, Stream: q.stream, JTI: q.p.jti, Typ: q.p.typ, SET: q.p.set})
	}
	tmp, err := os.CreateTemp(filepath.Dir(o.path), ".ssf-queue-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(b)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if err != nil {
		tmp.Close()
		return err
	}
	if err := os.Rename(tmp.Name(), o.path); err != nil {
		tmp.Close()
		return err
	}
	if d, err := os.Open(filepath.Dir(o.path)); err == nil {
		_ = d.Sync() // the rename itself
		d.Close()
	}
	if o.f != nil {
		o.f.Close()
	}
	o.f, o.records, o.dirty = tmp, len(o.live), false
	return nil
}

// writeLocked appends one record (o.mu held). A failure is logged once:
// the SETs go on in memory.
func (o *outbox) writeLocked(r *journalRec) {
	if o.f == nil {
		return
	}
	o.buf = appendRecord(o.buf[:0], r)
	if _, err := o.f.Write(o.buf); err != nil {
		if !o.failing {
			o.log.Error("SSF outbox not written: queued SETs would not survive a restart", "file", o.path, "err", err)
		}
		o.failing = true
		return
	}
	if o.failing {
		o.log.Info("SSF outbox written again", "file", o.path)
	}
	o.failing, o.dirty = false, true
	o.records++
}

// append journals p, queued on stream, and gives it its sequence number.
func (o *outbox) append(stream string, p *pending) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seq++
	p.seq = o.seq
	o.live[p.seq] = queued{stream: stream, p: *p}
	o.writeLocked(&journalRec{Op: "q", Seq: p.seq, Stream: stream, JTI: p.jti, Typ: p.typ, SET: p.set})
	o.compactLocked()
}

// done journals the completion of SETs.
func (o *outbox) done(seqs ...uint64) {
	if o == nil || len(seqs) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range seqs {
		delete(o.live, s)
	}
	o.writeLocked(&journalRec{Op: "d", Done: seqs})
	o.compactLocked()
}

// deleted journals that stream is gone, and its SETs with it.
func (o *outbox) deleted(stream string) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for s, q := range o.live {
		if q.stream == stream {
			delete(o.live, s)
		}
	}
	o.writeLocked(&journalRec{Op: "x", Stream: stream})
	o.compactLocked()
}

// compactLocked rewrites the journal when its dead records outnumber the
// live SETs (and outboxCompactMin).
func (o *outbox) compactLocked() {
	if dead := o.records - len(o.live); dead <= outboxCompactMin || dead <= len(o.live) || o.f == nil {
		return
	}
	if err := o.rewriteLocked(); err != nil {
		o.log.Warn("SSF outbox not compacted; it goes on growing until the next try", "file", o.path, "err", err)
	}
}

// sync fsyncs what was written since the last call.
func (o *outbox) sync() {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.dirty || o.f == nil {
		return
	}
	if err := o.f.Sync(); err != nil {
		o.log.Warn("SSF outbox not synced", "file", o.path, "err", err)
		return
	}
	o.dirty = false
}

// close syncs and closes the journal; later records are not kept (the
// transmitter has stopped).
func (o *outbox) close() {
	if o == nil {
		return
	}
	o.sync()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f != nil {
		o.f.Close()
		o.f = nil
	}
}

// outboxFile is the journal of the queued SETs, beside state_file.
func (t *Transmitter) outboxFile() string { return t.cfg.StateFile + ".queue" }

// loadOutbox replays the journal: each stream gets back its SETs not
// completed, in order (re-signed if signed with a key the JWKS no longer
// publishes); a SET for a stream that is gone is dropped and logged, a
// disabled stream's are dropped (it holds nothing), and hold_limit keeps
// the newest of each stream. The journal is then rewritten with what was
// kept. A torn tail is cut off and logged; damage before the end is an
// error.
func (t *Transmitter) loadOutbox() error {
	if t.cfg.StateFile == "" {
		return nil
	}
	path := t.outboxFile()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("respond.ssf.state_file: %w", err)
	}
	live, _, valid, err := decodeOutbox(b)
	if err != nil {
		return fmt.Errorf("respond.ssf.state_file: %s: %w", path, err)
	}
	if valid < len(b) {
		t.log.Warn("SSF outbox: torn tail discarded (a crash while it was written)", "file", path, "bytes_discarded", len(b)-valid, "kept_bytes", valid)
	}
	gone := map[string]int{}
	by := map[*stream][]pending{}
	var order []*stream
	for _, q := range live {
		s := t.streams[q.stream]
		if s == nil {
			gone[q.stream]++
			continue
		}
		if _, ok := by[s]; !ok {
			order = append(order, s)
		}
		by[s] = append(by[s], q.p)
	}
	for id, n := range gone {
		t.log.Warn("SSF queued SETs dropped: their stream no longer exists", "stream_id", id, "dropped", n)
	}
	var kept []queued
	for _, s := range order {
		// Control SETs (stream-updated) first, as enqueue puts them, each
		// part in the order queued; a disabled stream keeps only those,
		// and hold_limit drops none of them.
		ps := by[s]
		ctl := slices.DeleteFunc(slices.Clone(ps), func(p pending) bool { return !p.control() })
		ps = slices.DeleteFunc(ps, func(p pending) bool { return p.control() })
		if s.status == StatusDisabled && len(ps) > 0 {
			t.metrics.count(s.id, "dropped", len(ps))
			t.log.Warn("SSF queued SETs dropped: their stream is disabled", "stream_id", s.id, "dropped", len(ps))
			ps = nil
		}
		if over := min(len(ps)+len(ctl)-t.cfg.HoldLimit, len(ps)); over > 0 {
			ps = ps[over:]
			t.metrics.count(s.id, "dropped", over)
			t.log.Warn("SETs dropped: stream hold limit reached", "stream_id", s.id, "dropped", over, "hold_limit", t.cfg.HoldLimit)
		}
		ps = append(ctl, ps...)
		for i := range ps {
			set, err := t.resign(ps[i].set)
			if err != nil {
				t.log.Warn("SSF queued SET not re-signed with the new key; sent as it was", "stream_id", s.id, "jti", ps[i].jti, "err", err)
			} else {
				ps[i].set = set
			}
			kept = append(kept, queued{stream: s.id, p: ps[i]})
		}
		s.queue = append(s.queue, ps...)
	}
	if len(live) > 0 {
		t.log.Info("SSF outbox loaded", "file", path, "sets", len(kept), "dropped", len(live)-len(kept))
	}
	o, err := openOutbox(path, kept, t.log)
	if err != nil {
		return fmt.Errorf("respond.ssf.state_file: %s: %w", path, err)
	}
	t.ob = o
	return nil
}

// resign returns set unchanged while the JWKS publishes the key that
// signed it (the current key, or a previous one within its overlap), so a
// receiver that saw it deduplicates it byte for byte; otherwise (its key is
// gone: no receiver could verify it) the same claims, jti included, signed
// with the current key, iat now.
func (t *Transmitter) resign(set string) (string, error) {
	parts := strings.Split(set, ".")
	if len(parts) != 3 {
		return set, errors.New("not a compact JWS")
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return set, err
	}
	if err := json.Unmarshal(h, &hdr); err != nil {
		return set, err
	}
	now := t.Now()
	// Still listed for a receiver's whole cache time (the JWKS's max-age):
	// one that verifies a little later, or polls, still finds the key.
	if t.published(hdr.Kid, now.Add(jwksMaxAge)) {
		return set, nil
	}
	pl, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return set, err
	}
	d := json.NewDecoder(bytes.NewReader(pl))
	d.UseNumber() // numbers as written
	var claims map[string]any
	if err := d.Decode(&claims); err != nil {
		return set, err
	}
	claims["iat"] = now.Unix()
	return t.signer.sign(jwt.MapClaims(claims))
}

// refresh re-signs a queued SET about to be sent whose key is no longer
// published (a previous key's overlap ended while it waited), so the
// receiver can verify it (s.mu held). The journal keeps the old token: a
// restart re-signs it again on load.
func (t *Transmitter) refresh(s *stream, p *pending) {
	set, err := t.resign(p.set)
	if err != nil {
		t.log.Warn("SSF queued SET not re-signed with the current key; sent as it was", "stream_id", s.id, "jti", p.jti, "err", err)
		return
	}
	if set != p.set {
		t.log.Info("SSF queued SET re-signed: the key that signed it is no longer published", "stream_id", s.id, "jti", p.jti, "key_id", t.signer.kid)
		p.set = set
	}
}
