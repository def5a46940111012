package ssf

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// createPollStream creates a poll stream for the receiver of token and
// returns its id and its poll endpoint_url, as the receiver reads them.
func createPollStream(t *testing.T, f *fixture, events []string) (string, string) {
	t.Helper()
	code, b := call(t, http.MethodPost, f.srv.URL+PathConfiguration, token,
		map[string]any{"delivery": map[string]any{"method": DeliveryPoll}, "events_requested": events})
	if code != http.StatusCreated {
		t.Fatalf("create poll stream: %d %s", code, b)
	}
	var s streamJSON
	if err := json.Unmarshal(b, &s); err != nil || s.StreamID == "" {
		t.Fatalf("create poll stream: %v %s", err, b)
	}
	if s.Delivery.Method != DeliveryPoll || s.Delivery.EndpointURL != f.srv.URL+PathPoll+"/"+s.StreamID {
		t.Fatalf("delivery %+v, want %s at the transmitter's poll endpoint", s.Delivery, DeliveryPoll)
	}
	return s.StreamID, s.Delivery.EndpointURL
}

// pollAs makes one poll as the receiver holding tok; it fails the test on
// an answer other than 200.
func pollAs(t *testing.T, url, tok string, req map[string]any) pollResponse {
	t.Helper()
	code, b := call(t, http.MethodPost, url, tok, req)
	if code != http.StatusOK {
		t.Fatalf("poll %v: %d %s", req, code, b)
	}
	var out pollResponse
	if err := json.Unmarshal(b, &out); err != nil || out.Sets == nil {
		t.Fatalf("poll %v: %v %s (want a sets object)", req, err, b)
	}
	return out
}

// checkPolled verifies every polled SET as a receiver must (signature with
// the JWKS key, typ, iss, aud, its jti the key it came under) and returns
// the jtis, sorted.
func checkPolled(t *testing.T, f *fixture, out pollResponse) []string {
	t.Helper()
	return checkPolledFrom(t, f, f.srv.URL, out)
}

// checkPolledFrom is checkPolled for SETs signed with issuer iss.
func checkPolledFrom(t *testing.T, f *fixture, iss string, out pollResponse) []string {
	t.Helper()
	var set map[string][]JWK
	getJSON(t, f.srv.URL+PathJWKS, &set)
	pub := keyFromJWKS(t, set, testKeyID)
	var jtis []string
	for jti, s := range out.Sets {
		c := jwt.MapClaims{}
		tok, err := jwt.ParseWithClaims(s, c, func(*jwt.Token) (any, error) { return pub, nil },
			jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(audience), jwt.WithIssuer(iss))
		if err != nil {
			t.Fatalf("polled SET does not verify: %v", err)
		}
		if tok.Header["typ"] != "secevent+jwt" || c["jti"] != jti {
			t.Errorf("polled SET typ %v jti %v under %q", tok.Header["typ"], c["jti"], jti)
		}
		jtis = append(jtis, jti)
	}
	slices.Sort(jtis)
	return jtis
}

func setPollWait(f *fixture, d time.Duration) {
	f.tr.mu.Lock()
	f.tr.pollWait = d
	f.tr.mu.Unlock()
}

// TestPollDelivery: a poll returns the queued SETs up to maxEvents with
// moreAvailable, the same again until acknowledged; an ack completes them
// (counted delivered), a setErrs report too (counted failed, logged, not
// sent again); nothing is pushed.
func TestPollDelivery(t *testing.T) {
	_, ec := keys(t)
	f := newTransmitter(t, ec, nil)
	id, url := createPollStream(t, f, []string{EventSessionRevoked})
	for _, r := range []string{"r-1", "r-2", "r-3"} {
		revoke(t, f, r)
	}
	all := make([]string, 0, 3)
	for _, p := range queueOf(f, id) {
		all = append(all, p.jti)
	}
	if len(all) != 3 {
		t.Fatalf("%d SETs queued, want 3", len(all))
	}
	first := pollAs(t, url, token, map[string]any{"maxEvents": 2, "returnImmediately": true})
	got := checkPolled(t, f, first)
	if len(got) != 2 || !first.MoreAvailable {
		t.Fatalf("first poll: %v moreAvailable %v, want 2 SETs and more", got, first.MoreAvailable)
	}
	if want := slices.Sorted(slices.Values(all[:2])); !slices.Equal(got, want) {
		t.Errorf("first poll %v, want the oldest two %v", got, want)
	}
	// Not acknowledged: the same again.
	again := checkPolled(t, f, pollAs(t, url, token, map[string]any{"maxEvents": 2, "returnImmediately": true}))
	if !slices.Equal(again, got) {
		t.Errorf("unacknowledged SETs polled again: %v, want %v", again, got)
	}
	// Acknowledged in the same request that asks for the rest.
	rest := pollAs(t, url, token, map[string]any{"maxEvents": 2, "returnImmediately": true, "ack": got})
	if jtis := checkPolled(t, f, rest); !slices.Equal(jtis, all[2:]) || rest.MoreAvailable {
		t.Errorf("after the ack: %v moreAvailable %v, want %v and no more", jtis, rest.MoreAvailable, all[2:])
	}
	if n := counted(f.m, id, "delivered"); n != 2 {
		t.Errorf("delivered %v, want 2", n)
	}
	// An error report completes the SET: not sent again, counted failed.
	out := pollAs(t, url, token, map[string]any{"returnImmediately": true,
		"setErrs": map[string]any{all[2]: map[string]string{"err": "invalid_request", "description": "bad claims"}}})
	if len(out.Sets) != 0 || out.MoreAvailable {
		t.Errorf("after setErrs: %v, want nothing", out)
	}
	if n := counted(f.m, id, "failed"); n != 1 {
		t.Errorf("failed %v, want 1", n)
	}
	if l := f.logs.String(); !strings.Contains(l, "jti="+all[2]) || !strings.Contains(l, "invalid_request") || !strings.Contains(l, "bad claims") {
		t.Errorf("setErrs not logged: %s", l)
	}
	if q := queueOf(f, id); len(q) != 0 {
		t.Errorf("%d SETs still queued", len(q))
	}
	// An ack of jtis already completed, or unknown, is harmless; maxEvents
	// 0 acknowledges only, and answers at once.
	start := time.Now()
	if out := pollAs(t, url, token, map[string]any{"maxEvents": 0, "ack": []string{all[0], "unknown"}}); len(out.Sets) != 0 {
		t.Errorf("maxEvents 0: %v", out)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("maxEvents 0 waited")
	}
	if n := counted(f.m, id, "delivered"); n != 2 {
		t.Errorf("delivered %v after acking again, want 2", n)
	}
	code, b := call(t, http.MethodPost, url, token, map[string]any{"maxEvents": -1})
	if code != http.StatusBadRequest || !strings.Contains(string(b), "maxEvents") {
		t.Errorf("maxEvents -1: %d %s", code, b)
	}
	// The metadata offers poll.
	var md map[string]any
	getJSON(t, f.srv.URL+PathMetadata, &md)
	if dm, _ := md["delivery_methods_supported"].([]any); !slices.Contains(dm, any(DeliveryPoll)) {
		t.Errorf("delivery_methods_supported %v", md["delivery_methods_supported"])
	}
}

// TestLongPoll: a poll without returnImmediately waits for a SET and
// answers as soon as one is queued; with none it answers empty after
// pollWait; a shutdown ends it.
func TestLongPoll(t *testing.T) {
	_, ec := keys(t)
	f := newTransmitter(t, ec, nil)
	setPollWait(f, 300*time.Millisecond)
	_, url := createPollStream(t, f, []string{EventSessionRevoked})

	start := time.Now()
	if out := pollAs(t, url, token, map[string]any{}); len(out.Sets) != 0 {
		t.Fatalf("empty long poll: %v", out)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("empty long poll answered after %v, want about pollWait", d)
	}

	setPollWait(f, time.Minute)
	type res struct {
		out pollResponse
		d   time.Duration
	}
	ch := make(chan res, 1)
	start = time.Now()
	go func() {
		code, b := call(t, http.MethodPost, url, token, map[string]any{"returnImmediately": false})
		var out pollResponse
		if code != http.StatusOK || json.Unmarshal(b, &out) != nil {
			t.Errorf("long poll: %d %s", code, b)
		}
		ch <- res{out, time.Since(start)}
	}()
	time.Sleep(200 * time.Millisecond)
	revoke(t, f, "r-1")
	select {
	case r := <-ch:
		if len(checkPolled(t, f, r.out)) != 1 || r.d > 10*time.Second {
			t.Errorf("long poll woke after %v with %v, want the new SET", r.d, r.out)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("long poll did not wake on a new SET")
	}

	// A shutdown ends a waiting poll.
	g := newTransmitter(t, ec, nil)
	setPollWait(g, time.Minute)
	_, gurl := createPollStream(t, g, []string{EventSessionRevoked})
	done := make(chan int, 1)
	go func() {
		code, _ := call(t, http.MethodPost, gurl, token, map[string]any{})
		done <- code
	}()
	time.Sleep(200 * time.Millisecond)
	g.stop()
	select {
	case code := <-done:
		if code != http.StatusOK {
			t.Errorf("poll at shutdown: %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a shutdown did not end the long poll")
	}
}

// TestPollAuthorization: the poll endpoint takes a receiver's bearer
// token (401 without one) and polls only that receiver's own poll streams
// (403 for another's, or none); a push stream is not polled.
func TestPollAuthorization(t *testing.T) {
	_, ec := keys(t)
	f := newTransmitter(t, ec, nil)
	id, url := createPollStream(t, f, []string{EventSessionRevoked})
	revoke(t, f, "r-1")
	push := createStream(t, f.srv.URL+PathConfiguration, "http://127.0.0.1:1/push", []string{EventSessionRevoked})
	for _, tc := range []struct {
		name, url, tok string
		code           int
	}{
		{"no token", url, "", http.StatusUnauthorized},
		{"unknown token", url, "not-a-receiver-token-0123456789", http.StatusUnauthorized},
		{"another receiver", url, otherToken, http.StatusForbidden},
		{"no such stream", f.srv.URL + PathPoll + "/nope", token, http.StatusForbidden},
		{"a push stream", f.srv.URL + PathPoll + "/" + push, token, http.StatusBadRequest},
	} {
		code, b := call(t, http.MethodPost, tc.url, tc.tok, map[string]any{"returnImmediately": true, "ack": []string{queueOf(f, id)[0].jti}})
		if code != tc.code || strings.Contains(string(b), "eyJ") {
			t.Errorf("%s: %d %s, want %d and no SET", tc.name, code, b, tc.code)
		}
	}
	// Nothing was acknowledged by the refused polls.
	if q := queueOf(f, id); len(q) != 1 {
		t.Errorf("%d SETs queued after refused polls, want 1", len(q))
	}
}

// TestPolledSETsSurviveRestart: SETs queued on a poll stream when the
// transmitter stops are returned by the next one's poll, the same tokens;
// acknowledged, a third start has none.
func TestPolledSETsSurviveRestart(t *testing.T) {
	_, ec := keys(t)
	edit := durable(t, nil)
	a := newTransmitter(t, ec, edit)
	id, _ := createPollStream(t, a, []string{EventSessionRevoked})
	revoke(t, a, "r-1")
	revoke(t, a, "r-2")
	var before []string
	for _, p := range queueOf(a, id) {
		before = append(before, p.set)
	}
	a.stop()

	b := newTransmitter(t, ec, edit)
	out := pollAs(t, b.srv.URL+PathPoll+"/"+id, token, map[string]any{"returnImmediately": true})
	jtis := checkPolledFrom(t, b, a.srv.URL, out) // signed by the first
	var after []string
	for _, j := range jtis {
		after = append(after, out.Sets[j])
	}
	slices.Sort(before)
	slices.Sort(after)
	if len(after) != 2 || !slices.Equal(after, before) {
		t.Fatalf("polled after the restart %d SETs, want the 2 queued before, byte for byte", len(after))
	}
	pollAs(t, b.srv.URL+PathPoll+"/"+id, token, map[string]any{"maxEvents": 0, "ack": jtis})
	b.stop()
	c := newTransmitter(t, ec, edit)
	if q := queueOf(c, id); len(q) != 0 {
		t.Errorf("%d SETs queued again after they were acknowledged", len(q))
	}
}

// TestConfiguredPollStream: streams[].delivery_method poll has no
// endpoint_url and is polled with its receiver's token; the config refuses
// what does not fit.
func TestConfiguredPollStream(t *testing.T) {
	_, ec := keys(t)
	f := newTransmitter(t, ec, func(c *Config) {
		c.Streams = []StreamConfig{{ID: "polled", Audience: audience, DeliveryMethod: DeliveryPoll, EventsRequested: []string{EventSessionRevoked}}}
	})
	code, b := call(t, http.MethodGet, f.srv.URL+PathConfiguration+"?stream_id=polled", token, nil)
	if code != http.StatusOK || !strings.Contains(string(b), `"endpoint_url":"`+f.srv.URL+PathPoll+`/polled"`) {
		t.Fatalf("configured poll stream: %d %s", code, b)
	}
	revoke(t, f, "r-1")
	if out := pollAs(t, f.srv.URL+PathPoll+"/polled", token, map[string]any{"returnImmediately": true}); len(checkPolled(t, f, out)) != 1 {
		t.Errorf("configured poll stream polled %v, want 1 SET", out)
	}

	base := func() Config {
		c := DefaultConfig()
		c.Issuer, c.Listen, c.KeyID = "https://tw.example", "127.0.0.1:1", testKeyID
		c.SigningKey = secretOf(ec)
		c.Receivers = []Receiver{{Audience: audience, Token: secretOf(token)}}
		c.StateFile = t.TempDir() + "/s.json"
		return c
	}
	for _, tc := range []struct {
		name string
		s    StreamConfig
		want string
	}{
		{"endpoint_url", StreamConfig{ID: "p", Audience: audience, DeliveryMethod: DeliveryPoll, EndpointURL: "https://r.example/p"}, "streams[0].endpoint_url"},
		{"authorization_header", StreamConfig{ID: "p", Audience: audience, DeliveryMethod: DeliveryPoll, AuthorizationHeader: secretOf(pushAuth)}, "streams[0].authorization_header"},
		{"no receiver", StreamConfig{ID: "p", Audience: "https://nobody.example", DeliveryMethod: DeliveryPoll}, "streams[0].audience"},
		{"unknown method", StreamConfig{ID: "p", Audience: audience, DeliveryMethod: "poll"}, "streams[0].delivery_method"},
	} {
		c := base()
		c.Streams = []StreamConfig{tc.s}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
	c := base()
	c.Streams = []StreamConfig{{ID: "p", Audience: audience, DeliveryMethod: DeliveryPoll}}
	if err := c.Validate(); err != nil {
		t.Errorf("a valid poll stream: %v", err)
	}
}

// TestSwitchPushAndPoll: a PATCH turns a refused push stream into a poll
// stream (its queued SET is polled, the stream no longer shows blocked, its
// push secret is gone) and back into a push stream (what was queued since
// is pushed).
func TestSwitchPushAndPoll(t *testing.T) {
	_, ec := keys(t)
	rc := newReceiver(t, http.StatusUnauthorized)
	f := newTransmitter(t, ec, nil)
	id := createStream(t, f.srv.URL+PathConfiguration, rc.srv.URL, []string{EventSessionRevoked})
	revoke(t, f, "r-1")
	rc.wait(1)
	waitGauge(f.m, id, 1)

	code, b := call(t, http.MethodPatch, f.srv.URL+PathConfiguration, token,
		map[string]any{"stream_id": id, "delivery": map[string]any{"method": DeliveryPoll}})
	if code != http.StatusOK || !strings.Contains(string(b), `"endpoint_url":"`+f.srv.URL+PathPoll+"/"+id+`"`) {
		t.Fatalf("PATCH to poll: %d %s", code, b)
	}
	if g := gauge(f.m, id); g != 0 {
		t.Errorf("blocked gauge %v on a poll stream, want 0", g)
	}
	f.tr.mu.Lock()
	s := f.tr.streams[id]
	f.tr.mu.Unlock()
	s.mu.Lock()
	if !s.auth.IsZero() || s.endpoint != "" {
		t.Errorf("a poll stream kept its push endpoint or secret")
	}
	s.mu.Unlock()
	url := f.srv.URL + PathPoll + "/" + id
	jtis := checkPolled(t, f, pollAs(t, url, token, map[string]any{"returnImmediately": true}))
	if len(jtis) != 1 {
		t.Fatalf("polled %v, want the SET the push was refused", jtis)
	}
	pollAs(t, url, token, map[string]any{"maxEvents": 0, "ack": jtis})
	revoke(t, f, "r-2")
	time.Sleep(100 * time.Millisecond)
	if n := len(rc.pushes()); n != 1 {
		t.Fatalf("%d pushes to a poll stream's old endpoint", n-1)
	}

	code, b = call(t, http.MethodPatch, f.srv.URL+PathConfiguration, token,
		map[string]any{"stream_id": id, "delivery": map[string]any{"method": DeliveryPush, "endpoint_url": rc.srv.URL, "authorization_header": pushAuth}})
	if code != http.StatusOK {
		t.Fatalf("PATCH to push: %d %s", code, b)
	}
	got := rc.wait(2)
	if jtiOf(t, got[1].body) == jtis[0] {
		t.Errorf("the acknowledged SET was pushed again")
	}
	if n := waitCount(f.m, id, "delivered", 2); n != 2 {
		t.Errorf("delivered %v, want 2 (one acked, one pushed)", n)
	}
}
