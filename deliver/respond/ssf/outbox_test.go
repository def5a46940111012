package ssf

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// durable is a config edit for a transmitter that restarts on one
// state_file, with no configured stream.
func durable(t *testing.T, edit func(*Config)) func(*Config) {
	state := filepath.Join(t.TempDir(), "ssf-state.json")
	return func(c *Config) {
		c.StateFile = state
		if edit != nil {
			edit(c)
		}
	}
}

func queueOf(f *fixture, id string) []pending {
	f.tr.mu.Lock()
	s := f.tr.streams[id]
	f.tr.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.queue)
}

// TestQueuedSETsSurviveRestart: SETs held by a refused or a paused stream
// when the transmitter stops are delivered by the next one on the same
// state_file once the receiver takes them: the same tokens (same jti, a
// valid signature), in order, none twice.
func TestQueuedSETsSurviveRestart(t *testing.T) {
	_, ec := keys(t)
	for _, tc := range []struct {
		name   string
		script []int  // the receiver's answers
		pause  bool   // the stream is paused (else refused by the receiver)
		keyID  string // the second transmitter's key_id ("" the same)
	}{
		{name: "refused by the receiver", script: []int{http.StatusUnauthorized}},
		{name: "paused", pause: true},
		{name: "refused, key_id rotated: re-signed, same jti", script: []int{http.StatusUnauthorized}, keyID: "tw-test-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, tc.script...)
			edit := durable(t, nil)
			a := newTransmitter(t, ec, edit)
			id := createStream(t, a.srv.URL+PathConfiguration, rc.srv.URL, []string{EventSessionRevoked})
			if tc.pause {
				setStatus(t, a, id, StatusPaused)
			}
			revoke(t, a, "r-1")
			if !tc.pause {
				rc.wait(1)
				waitGauge(a.m, id, 1)
			}
			revoke(t, a, "r-2")
			revoke(t, a, "r-3")
			var jtis []string
			for _, p := range queueOf(a, id) {
				jtis = append(jtis, p.jti)
			}
			if len(jtis) != 3 {
				t.Fatalf("queued %d SETs before the stop, want 3", len(jtis))
			}
			a.stop()
			before := len(rc.pushes())
			if st, err := os.Stat(a.tr.outboxFile()); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("outbox %v %v, want mode 0600", st, err)
			}

			b := newTransmitter(t, ec, func(c *Config) {
				edit(c)
				if tc.keyID != "" {
					c.KeyID = tc.keyID
				}
			})
			if tc.pause {
				setStatus(t, b, id, StatusEnabled)
			}
			got := rc.wait(before + 3)
			time.Sleep(100 * time.Millisecond)
			if n := len(rc.pushes()); n != before+3 {
				t.Fatalf("%d pushes after the restart, want 3", n-before)
			}
			var pub any
			var set map[string][]JWK
			getJSON(t, b.srv.URL+PathJWKS, &set)
			kid := testKeyID
			if tc.keyID != "" {
				kid = tc.keyID
			}
			pub = keyFromJWKS(t, set, kid)
			var after []string
			for _, p := range got[before:] {
				if tc.keyID != "" {
					after = append(after, jtiOf(t, p.body))
					continue
				}
				c := verifySET(t, p, pub, "ES256", a.srv.URL) // signed by the first
				after = append(after, c["jti"].(string))
			}
			if !slices.Equal(after, jtis) {
				t.Errorf("delivered jti %v, want %v (in order, once each)", after, jtis)
			}
			if tc.keyID != "" {
				for _, p := range got[before:] {
					if !strings.Contains(p.body, ".") || headerKid(t, p.body) != tc.keyID {
						t.Errorf("SET not re-signed with the new key_id: %s", p.body)
					}
					verifyWith(t, p.body, pub)
				}
			}
			if n := waitCount(b.m, id, "delivered", 3); n != 3 {
				t.Errorf("delivered %v, want 3", n)
			}
			// Delivered SETs are done: a third start has nothing to send.
			b.stop()
			c := newTransmitter(t, ec, edit)
			if q := queueOf(c, id); len(q) != 0 {
				t.Errorf("%d SETs queued again after they were delivered", len(q))
			}
		})
	}
}

// TestOutboxForgetsWhatIsDropped: SETs a disable drops, and those of a
// deleted stream, are completed in the journal: a restart sends none.
func TestOutboxForgetsWhatIsDropped(t *testing.T) {
	_, ec := keys(t)
	for _, tc := range []struct {
		name string
		drop func(t *testing.T, f *fixture, id string)
	}{
		{"disabled", func(t *testing.T, f *fixture, id string) { setStatus(t, f, id, StatusDisabled) }},
		{"deleted", func(t *testing.T, f *fixture, id string) {
			if code, b := call(t, http.MethodDelete, f.srv.URL+PathConfiguration+"?stream_id="+id, token, nil); code != http.StatusNoContent {
				t.Fatalf("delete: %d %s", code, b)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t)
			edit := durable(t, nil)
			a := newTransmitter(t, ec, edit)
			id := createStream(t, a.srv.URL+PathConfiguration, rc.srv.URL, []string{EventSessionRevoked})
			keep := createStream(t, a.srv.URL+PathConfiguration, rc.srv.URL, []string{EventSessionRevoked})
			setStatus(t, a, id, StatusPaused)
			setStatus(t, a, keep, StatusPaused)
			revoke(t, a, "r-1")
			revoke(t, a, "r-2")
			tc.drop(t, a, id)
			a.stop()
			live, _, _, err := decodeOutbox(mustRead(t, a.tr.outboxFile()))
			if err != nil || len(live) != 2 || live[0].stream != keep || live[1].stream != keep {
				t.Fatalf("journal holds %+v (%v), want the two SETs of the stream kept", live, err)
			}
			b := newTransmitter(t, ec, edit)
			if tc.name == "disabled" {
				if q := queueOf(b, id); len(q) != 0 {
					t.Errorf("%d SETs back on the disabled stream", len(q))
				}
			}
			if q := queueOf(b, keep); len(q) != 2 {
				t.Errorf("%d SETs back on the paused stream, want 2", len(q))
			}
		})
	}
}

// TestHoldLimitAcrossRestart: hold_limit bounds what the outbox keeps and
// what a restart queues again, the oldest dropped and counted.
func TestHoldLimitAcrossRestart(t *testing.T) {
	_, ec := keys(t)
	rc := newReceiver(t)
	state := durable(t, nil)
	a := newTransmitter(t, ec, func(c *Config) { state(c); c.HoldLimit = 3 })
	id := createStream(t, a.srv.URL+PathConfiguration, rc.srv.URL, []string{EventSessionRevoked})
	setStatus(t, a, id, StatusPaused)
	for i := 1; i <= 5; i++ {
		revoke(t, a, fmt.Sprintf("r-%d", i))
	}
	if n := counted(a.m, id, "dropped"); n != 2 {
		t.Errorf("dropped %v before the restart, want 2", n)
	}
	want := queueOf(a, id)[1:] // r-4, r-5: what hold_limit 2 keeps
	a.stop()
	if live, _, _, err := decodeOutbox(mustRead(t, a.tr.outboxFile())); err != nil || len(live) != 3 {
		t.Fatalf("outbox holds %d SETs (%v), want hold_limit 3", len(live), err)
	}

	b := newTransmitter(t, ec, func(c *Config) { state(c); c.HoldLimit = 2 })
	if n := counted(b.m, id, "dropped"); n != 1 {
		t.Errorf("dropped %v on load with hold_limit 2, want 1", n)
	}
	if !strings.Contains(b.logs.String(), "hold limit reached") {
		t.Errorf("the drop on load is not logged: %s", b.logs.String())
	}
	got := queueOf(b, id)
	if len(got) != 2 || got[0].jti != want[0].jti || got[1].jti != want[1].jti {
		t.Fatalf("queued after the restart %v, want the newest two %v", got, want)
	}
	revoke(t, b, "r-6") // still bounded: r-4 goes
	if n := counted(b.m, id, "dropped"); n != 2 {
		t.Errorf("dropped %v, want 2", n)
	}
	setStatus(t, b, id, StatusEnabled)
	rc.wait(2)
	if n := waitCount(b.m, id, "delivered", 2); n != 2 {
		t.Errorf("delivered %v, want 2", n)
	}
}

// TestOutboxLoad: what a start makes of the journal: a torn tail is cut
// off and logged, damage before the end refuses to start naming the
// offset, SETs of a stream gone are dropped and logged.
func TestOutboxLoad(t *testing.T) {
	_, ec := keys(t)
	rc := newReceiver(t)
	journal := func(stream string, n int) ([]byte, []int) {
		b := []byte(outboxMagic)
		var ends []int
		for i := 1; i <= n; i++ {
			b = appendRecord(b, &journalRec{Op: "q", Seq: uint64(i), Stream: stream, JTI: fmt.Sprint("j", i), Typ: EventSessionRevoked, SET: "h.p.s"})
			ends = append(ends, len(b))
		}
		return b, ends
	}
	full, ends := journal("static", 3)
	corrupt := slices.Clone(full)
	corrupt[ends[0]+10] ^= 0xff // in the second record
	for _, tc := range []struct {
		name    string
		file    []byte
		queued  int
		wantLog string
		wantErr string
	}{
		{name: "whole", file: full, queued: 3},
		{name: "torn in the last record", file: full[:ends[2]-5], queued: 2, wantLog: fmt.Sprintf("bytes_discarded=%d", ends[2]-5-ends[1])},
		{name: "zeros after the last record", file: append(slices.Clone(full), make([]byte, 4096)...), queued: 3, wantLog: "bytes_discarded=4096"},
		{name: "corrupt in the middle", file: corrupt, wantErr: fmt.Sprintf("offset %d: checksum mismatch", ends[0])},
		{name: "not an outbox", file: []byte("{\"streams\":[]}"), wantErr: "offset 0: not an SSF outbox"},
		{name: "stream gone", file: func() []byte { b, _ := journal("gone", 2); return b }(), wantLog: "their stream no longer exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "ssf-state.json")
			if err := os.WriteFile(state+".queue", tc.file, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.Issuer, cfg.Listen, cfg.KeyID, cfg.SigningKey, cfg.AllowInsecureHTTP = "http://127.0.0.1:1", "127.0.0.1:1", testKeyID, secretOf(ec), true
			cfg.StateFile = state
			cfg.Streams = []StreamConfig{{ID: "static", Audience: audience, EndpointURL: rc.srv.URL, Status: StatusPaused}}
			var logs bytes.Buffer
			tr, err := New(cfg, nil, slog.New(slog.NewTextHandler(&logs, nil)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tr.ob.close()
			if n := len(tr.streams["static"].queue); n != tc.queued {
				t.Errorf("queued %d, want %d", n, tc.queued)
			}
			if tc.wantLog != "" && !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log does not say %q: %s", tc.wantLog, logs.String())
			}
			// The load rewrote the journal with what it kept.
			live, _, valid, err := decodeOutbox(mustRead(t, state+".queue"))
			if b := mustRead(t, state+".queue"); err != nil || valid != len(b) || len(live) != tc.queued {
				t.Errorf("journal after load: %d SETs, %d of %d bytes valid, %v", len(live), valid, len(b), err)
			}
		})
	}
}

// TestOutboxTornAtEveryOffset: a crash may stop the journal at any byte;
// every prefix loads the records it holds whole, and nothing else.
func TestOutboxTornAtEveryOffset(t *testing.T) {
	recs := []journalRec{
		{Op: "q", Seq: 1, Stream: "a", JTI: "j1", Typ: EventSessionRevoked, SET: "h.p.1"},
		{Op: "q", Seq: 2, Stream: "b", JTI: "j2", Typ: EventSessionRevoked, SET: "h.p.2"},
		{Op: "d", Done: []uint64{1}},
		{Op: "q", Seq: 3, Stream: "a", JTI: "j3", Typ: EventCredentialChange, SET: "h.p.3"},
		{Op: "x", Stream: "b"},
		{Op: "q", Seq: 4, Stream: "a", JTI: "j4", Typ: EventSessionRevoked, SET: "h.p.4"},
	}
	b := []byte(outboxMagic)
	ends := []int{len(b)}
	for i := range recs {
		b = appendRecord(b, &recs[i])
		ends = append(ends, len(b))
	}
	// The live jti after each whole record.
	want := [][]string{{}, {"j1"}, {"j1", "j2"}, {"j2"}, {"j2", "j3"}, {"j3"}, {"j3", "j4"}}
	for cut := 0; cut <= len(b); cut++ {
		whole := 0
		for whole+1 < len(ends) && ends[whole+1] <= cut {
			whole++
		}
		validWant := ends[whole]
		if cut < len(outboxMagic) {
			validWant = 0
		}
		live, records, valid, err := decodeOutbox(b[:cut])
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		var got []string
		for _, q := range live {
			got = append(got, q.p.jti)
		}
		if !slices.Equal(got, want[whole]) || (got == nil) != (len(want[whole]) == 0) || valid != validWant || records != whole {
			t.Fatalf("cut at %d: live %v, %d records, %d bytes valid; want %v, %d, %d", cut, got, records, valid, want[whole], whole, validWant)
		}
	}
}

// TestOutboxCompaction: once the completed records outnumber the live SETs
// (and outboxCompactMin), the journal is rewritten with exactly the SETs
// not completed, in order; the file stays bounded.
func TestOutboxCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.queue")
	o, err := openOutbox(path, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer o.close()
	keep := map[uint64]bool{7: true, 1501: true, 2999: true, 4001: true}
	var want, behind []uint64 // behind: "s" SETs not yet delivered
	var deleted []uint64      // "deleted" SETs queued after its deletion
	maxSize := int64(0)
	for i := 1; i <= 5000; i++ {
		stream := "s"
		if i%10 == 0 {
			stream = "deleted"
		}
		p := pending{set: strings.Repeat("x", 400), typ: EventSessionRevoked, jti: fmt.Sprint("j", i)}
		o.append(stream, &p)
		switch {
		case stream == "deleted":
			if i > 4500 {
				deleted = append(deleted, p.seq)
			}
		case keep[p.seq]:
			want = append(want, p.seq)
		default:
			behind = append(behind, p.seq)
			if len(behind) > 10 { // delivered ten behind
				o.done(behind[0])
				behind = behind[1:]
			}
		}
		if i == 4500 {
			o.deleted("deleted")
		}
		if st, err := os.Stat(path); err == nil {
			maxSize = max(maxSize, st.Size())
		}
	}
	want = append(append(want, behind...), deleted...)
	slices.Sort(want)
	// What the journal holds as it stands, then once rewritten.
	for _, rewrite := range []bool{false, true} {
		if rewrite {
			o.mu.Lock()
			err := o.rewriteLocked()
			o.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
		live, _, _, err := decodeOutbox(mustRead(t, path))
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, q := range live {
			got = append(got, q.p.seq)
		}
		if !slices.Equal(got, want) {
			t.Errorf("journal (rewritten %v) holds %v, want %v", rewrite, got, want)
		}
	}
	// Bounded: about twice the live SETs plus outboxCompactMin records
	// (each ~500 bytes here), far below the 5000 appended.
	if limit := int64(2*len(want)+outboxCompactMin+100) * 520; maxSize > limit {
		t.Errorf("journal grew to %d bytes, want at most %d", maxSize, limit)
	}
	t.Logf("%d live SETs, journal at most %d bytes", len(want), maxSize)
}

// FuzzOutboxDecode: the journal decoder never panics, never claims more
// bytes valid than it was given, and what it accepts survives a rewrite.
func FuzzOutboxDecode(f *testing.F) {
	b := []byte(outboxMagic)
	b = appendRecord(b, &journalRec{Op: "q", Seq: 1, Stream: "s", JTI: "j1", Typ: EventSessionRevoked, SET: "h.p.s"})
	b = appendRecord(b, &journalRec{Op: "d", Done: []uint64{1}})
	f.Add(b)
	f.Add([]byte(outboxMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		live, _, valid, err := decodeOutbox(data)
		if err != nil {
			return
		}
		if valid > len(data) || valid < 0 {
			t.Fatalf("valid %d of %d bytes", valid, len(data))
		}
		again := []byte(outboxMagic)
		for _, q := range live {
			again = appendRecord(again, &journalRec{Op: "q", Seq: q.p.seq, Stream: q.stream, JTI: q.p.jti, Typ: q.p.typ, SET: q.p.set})
		}
		live2, _, valid2, err := decodeOutbox(again)
		if err != nil || valid2 != len(again) || !slices.Equal(live, live2) {
			t.Fatalf("rewrite of %v: %v, %d of %d bytes, %v", live, live2, valid2, len(again), err)
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func secretOf(s string) secret.Secret { return secret.New(s) }

// jtiOf is a SET's jti, read without verifying it.
func jtiOf(t *testing.T, set string) string {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(set, c); err != nil {
		t.Fatal(err)
	}
	j, _ := c["jti"].(string)
	return j
}

func headerKid(t *testing.T, set string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(set, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := tok.Header["kid"].(string)
	return k
}

// verifyWith checks a SET's signature with pub.
func verifyWith(t *testing.T, set string, pub any) {
	t.Helper()
	if _, err := jwt.Parse(set, func(*jwt.Token) (any, error) { return pub, nil }, jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(audience)); err != nil {
		t.Errorf("re-signed SET does not verify: %v", err)
	}
}

// BenchmarkOutboxAppend: the cost a queued SET adds (one journal write; the
// fsync runs every outboxSync, apart), and one fsync of the journal.
func BenchmarkOutboxAppend(b *testing.B) {
	o, err := openOutbox(filepath.Join(b.TempDir(), "s.queue"), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer o.close()
	set := strings.Repeat("x", 900) // an ES256 SET is ~900 bytes
	b.Run("append+done", func(b *testing.B) {
		for b.Loop() {
			p := pending{set: set, typ: EventSessionRevoked, jti: "0123456789abcdef0123456789abcdef"}
			o.append("s", &p)
			o.done(p.seq)
		}
	})
	b.Run("fsync", func(b *testing.B) {
		for b.Loop() {
			p := pending{set: set, typ: EventSessionRevoked, jti: "0123456789abcdef0123456789abcdef"}
			o.append("s", &p)
			o.sync()
		}
	})
}
