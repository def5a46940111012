package ssf

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// configuredStream is a config edit for restarts on one state_file with
// one configured stream "static" to endpoint (push) or polled ("" endpoint)
// at status, requesting session-revoked only.
func configuredStream(state, endpoint, status, reason string) func(*Config) {
	return func(c *Config) {
		c.StateFile = state
		sc := StreamConfig{ID: "static", Audience: audience, EndpointURL: endpoint, Status: status, StatusReason: reason,
			EventsRequested: []string{EventSessionRevoked}}
		if endpoint == "" {
			sc.DeliveryMethod = DeliveryPoll
		}
		c.Streams = []StreamConfig{sc}
	}
}

// checkStreamUpdated verifies a stream-updated SET as its receiver must:
// the signature with the key its kid names in the JWKS, typ, iss, aud, iat
// within [from, to], a jti, no sub nor exp, sub_id the stream (SSF 1.0:
// format opaque, id the stream id) and the one event with status and
// reason. It returns the jti.
func checkStreamUpdated(t *testing.T, f *fixture, set, status, reason string, from, to time.Time) string {
	t.Helper()
	var jwks map[string][]JWK
	getJSON(t, f.srv.URL+PathJWKS, &jwks)
	c, err := verifyByJWKS(set, jwks, f.srv.URL)
	if err != nil {
		t.Fatalf("stream-updated SET does not verify: %v", err)
	}
	tok, _, _ := jwt.NewParser().ParseUnverified(set, jwt.MapClaims{})
	if tok.Header["typ"] != "secevent+jwt" || tok.Header["kid"] != testKeyID {
		t.Errorf("header %v", tok.Header)
	}
	if iat, _ := c["iat"].(float64); iat < float64(from.Unix()) || iat > float64(to.Unix()) {
		t.Errorf("iat %v, want between %d and %d", c["iat"], from.Unix(), to.Unix())
	}
	if j, _ := c["jti"].(string); len(j) != 32 {
		t.Errorf("jti %v", c["jti"])
	}
	for _, forbidden := range []string{"sub", "exp"} {
		if _, ok := c[forbidden]; ok {
			t.Errorf("SSF forbids %q in a SET: %v", forbidden, c)
		}
	}
	if sub, _ := json.Marshal(c["sub_id"]); string(sub) != `{"format":"opaque","id":"static"}` {
		t.Errorf("sub_id %s, want the stream as an opaque subject", sub)
	}
	want := fmt.Sprintf(`{%q:{"reason":%q,"status":%q}}`, EventStreamUpdated, reason, status)
	if ev, _ := json.Marshal(c["events"]); string(ev) != want {
		t.Errorf("events %s, want %s", ev, want)
	}
	return c["jti"].(string)
}

func eventOf(t *testing.T, set string) string {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(set, c); err != nil {
		t.Fatal(err)
	}
	for typ := range c["events"].(map[string]any) {
		return typ
	}
	return ""
}

// quiet waits a little and fails if rc got more than n pushes.
func quiet(t *testing.T, rc *receiver, n int) {
	t.Helper()
	time.Sleep(150 * time.Millisecond)
	if got := rc.pushes(); len(got) != n {
		t.Fatalf("%d pushes, want %d", len(got), n)
	}
}

// TestStreamUpdatedPush: the operator pausing, re-enabling and disabling a
// configured stream (streams[].status) is a change the receiver did not ask
// for: each is told to it as a stream-updated SET, before the stream stops
// (a paused or disabled stream still sends it) and, on re-enabling, ahead of
// the SETs it held; once told, a restart does not tell it again; a receiver's
// own status changes are not told back; a stream-updated SET refused by the
// receiver survives a restart in the outbox, even on a disabled stream.
func TestStreamUpdatedPush(t *testing.T) {
	_, ec := keys(t)
	rc := newReceiver(t)
	state := filepath.Join(t.TempDir(), "ssf-state.json")
	start := func(status, reason string) *fixture {
		return newTransmitter(t, ec, configuredStream(state, rc.srv.URL, status, reason))
	}

	a := start(StatusEnabled, "")
	revoke(t, a, "r-1")
	rc.wait(1)
	a.stop()

	from := time.Now()
	b := start(StatusPaused, "maintenance window")
	got := rc.wait(2)
	checkStreamUpdated(t, b, got[1].body, StatusPaused, "maintenance window", from, time.Now())
	code, st := call(t, http.MethodGet, b.srv.URL+PathStatus+"?stream_id=static", token, nil)
	if code != http.StatusOK || string(st) != `{"stream_id":"static","status":"paused","reason":"maintenance window"}`+"\n" {
		t.Errorf("status %d %s", code, st)
	}
	revoke(t, b, "r-2") // held: paused
	quiet(t, rc, 2)
	b.stop()

	c := start(StatusPaused, "maintenance window") // the same config: nothing new to tell
	quiet(t, rc, 2)
	if q := queueOf(c, "static"); len(q) != 1 || q[0].typ != EventSessionRevoked {
		t.Fatalf("queue %v, want r-2 held", q)
	}
	c.stop()

	from = time.Now()
	d := start(StatusEnabled, "")
	got = rc.wait(4)
	checkStreamUpdated(t, d, got[2].body, StatusEnabled, "set by the transmitter's operator", from, time.Now())
	if typ := eventOf(t, got[3].body); typ != EventSessionRevoked {
		t.Errorf("after the stream-updated %s, want the held session-revoked", typ)
	}
	// The receiver's own changes are not told back to it.
	setStatus(t, d, "static", StatusPaused)
	setStatus(t, d, "static", StatusEnabled)
	revoke(t, d, "r-3")
	rc.wait(5)
	quiet(t, rc, 5)
	if typ := eventOf(t, rc.pushes()[4].body); typ != EventSessionRevoked {
		t.Errorf("push %s after the receiver's status changes, want only r-3", typ)
	}
	d.stop()

	// Disabled by the operator while the receiver refuses (401): the
	// stream-updated SET is held, kept in the outbox across a restart
	// although a disabled stream keeps nothing else, and sent once taken.
	rc.mu.Lock()
	rc.script = []int{http.StatusUnauthorized}
	rc.mu.Unlock()
	from = time.Now()
	e := start(StatusDisabled, "tenant offboarded")
	got = rc.wait(6)
	refused := checkStreamUpdated(t, e, got[5].body, StatusDisabled, "tenant offboarded", from, time.Now())
	waitGauge(e.m, "static", 1)
	e.stop()

	f := start(StatusDisabled, "tenant offboarded")
	got = rc.wait(7) // the token e signed: e's issuer (each start has its own test server)
	if jti := checkStreamUpdated(t, e, got[6].body, StatusDisabled, "tenant offboarded", from, time.Now()); jti != refused {
		t.Errorf("stream-updated after the restart has jti %s, want the refused one %s", jti, refused)
	}
	revoke(t, f, "r-4") // disabled: dropped
	quiet(t, rc, 7)
	if n := waitCount(f.m, "static", "dropped", 1); n != 1 {
		t.Errorf("dropped %v, want r-4", n)
	}
	if n := waitCount(f.m, "static", "delivered", 1); n != 1 {
		t.Errorf("delivered %v, want the stream-updated", n)
	}
}

// TestStreamUpdatedPoll: a poll stream the operator pauses answers its
// stream-updated SET, and nothing it holds, until it is enabled again.
func TestStreamUpdatedPoll(t *testing.T) {
	_, ec := keys(t)
	state := filepath.Join(t.TempDir(), "ssf-state.json")
	a := newTransmitter(t, ec, configuredStream(state, "", StatusEnabled, ""))
	revoke(t, a, "r-1") // not polled: queued across the restart
	a.stop()

	from := time.Now()
	b := newTransmitter(t, ec, configuredStream(state, "", StatusPaused, "maintenance window"))
	url := b.srv.URL + PathPoll + "/static"
	out := pollAs(t, url, token, map[string]any{"returnImmediately": true})
	if len(out.Sets) != 1 || out.MoreAvailable {
		t.Fatalf("paused poll stream answered %d SETs (more %v), want its stream-updated alone", len(out.Sets), out.MoreAvailable)
	}
	var jti string
	for j, set := range out.Sets {
		jti = checkStreamUpdated(t, b, set, StatusPaused, "maintenance window", from, time.Now())
		if j != jti {
			t.Errorf("polled under %s, jti %s", j, jti)
		}
	}
	if out := pollAs(t, url, token, map[string]any{"returnImmediately": true, "ack": []string{jti}}); len(out.Sets) != 0 {
		t.Errorf("after the ack a paused stream answered %d SETs, want none (r-1 is held)", len(out.Sets))
	}
	b.stop()

	c := newTransmitter(t, ec, configuredStream(state, "", StatusEnabled, "back"))
	out = pollAs(t, c.srv.URL+PathPoll+"/static", token, map[string]any{"returnImmediately": true})
	if len(out.Sets) != 2 {
		t.Fatalf("re-enabled poll stream answered %d SETs, want its stream-updated and r-1", len(out.Sets))
	}
	q := queueOf(c, "static")
	if len(q) != 2 || q[0].typ != EventStreamUpdated || q[1].typ != EventSessionRevoked {
		t.Errorf("queue %v, want the stream-updated ahead of r-1", q)
	}
	checkStreamUpdated(t, c, q[0].set, StatusEnabled, "back", from, time.Now())
}

// TestControlSETsQueueAhead: a stream-updated SET goes ahead of the SETs a
// stream holds (behind the one being pushed and earlier stream-updated
// ones, in order), a disabled stream keeps it, and hold_limit drops the
// oldest other SETs, never it.
func TestControlSETsQueueAhead(t *testing.T) {
	_, ec := keys(t)
	f := newTransmitter(t, ec, func(c *Config) {
		c.HoldLimit = 3
		// Poll: no worker takes SETs out of the queue under the test.
		c.Streams = []StreamConfig{{ID: "static", Audience: audience, DeliveryMethod: DeliveryPoll, Status: StatusPaused}}
	})
	f.tr.mu.Lock()
	s := f.tr.streams["static"]
	f.tr.mu.Unlock()
	put := func(typ, name string) { f.tr.enqueue(s, pending{set: name, typ: typ, jti: name}) }
	names := func() string {
		var out []string
		for _, p := range queueOf(f, "static") {
			out = append(out, p.jti)
		}
		return fmt.Sprint(out)
	}
	for _, step := range []struct {
		typ, name, want  string
		sending, disable bool
	}{
		{typ: EventSessionRevoked, name: "n1", want: "[n1]"},
		{typ: EventSessionRevoked, name: "n2", want: "[n1 n2]"},
		{typ: EventStreamUpdated, name: "c1", want: "[c1 n1 n2]"},
		{typ: EventSessionRevoked, name: "n3", want: "[c1 n2 n3]"},
		{typ: EventStreamUpdated, name: "c2", want: "[c1 c2 n3]"},
		{typ: EventSessionRevoked, name: "n4", want: "[c1 c2 n4]"},
		{typ: EventStreamUpdated, name: "c3", want: "[c1 c2 c3]"},
		{typ: EventSessionRevoked, name: "n5", want: "[c1 c2 c3]"}, // the oldest SET but stream-updated ones is itself
		{typ: EventStreamUpdated, name: "c4", sending: true, want: "[c1 c2 c3 c4]"},
		{typ: EventSessionRevoked, name: "n6", disable: true, want: "[c1 c2 c3 c4]"}, // disabled: dropped
		{typ: EventStreamUpdated, name: "c5", disable: true, want: "[c1 c2 c3 c4 c5]"},
	} {
		s.mu.Lock()
		s.sending = step.sending
		if step.disable {
			s.status = StatusDisabled
		}
		s.mu.Unlock()
		put(step.typ, step.name)
		if got := names(); got != step.want {
			t.Errorf("after %s: queue %s, want %s", step.name, got, step.want)
		}
	}
	s.mu.Lock()
	s.sending = false
	s.queue = []pending{{jti: "n0", typ: EventSessionRevoked}}
	s.sending = true
	s.mu.Unlock()
	put(EventStreamUpdated, "c6")
	if got := names(); got != "[n0 c6]" {
		t.Errorf("while n0 is pushed: queue %s, want c6 behind it", got)
	}
}
