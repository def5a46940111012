package ssf

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// revoke emits one executed revoke: two SETs (session-revoked,
// credential-change) for streams requesting both.
func revoke(t *testing.T, f *fixture, id string) {
	t.Helper()
	r := executed()
	r.ID = id
	if err := f.tr.Record(context.Background(), []schemas.Response{r}); err != nil {
		t.Fatal(err)
	}
}

func setStatus(t *testing.T, f *fixture, id, status string) {
	t.Helper()
	code, b := call(t, http.MethodPost, f.srv.URL+PathStatus, token, map[string]string{"stream_id": id, "status": status, "reason": "test"})
	if code != http.StatusOK || !strings.Contains(string(b), `"status":"`+status+`"`) {
		t.Fatalf("status %s: %d %s", status, code, b)
	}
}

// TestPausedHoldsDisabledDrops: a paused stream sends nothing and keeps
// what it would have sent until enabled; a disabled one keeps nothing.
func TestPausedHoldsDisabledDrops(t *testing.T) {
	_, ec := keys(t)
	f := newTransmitter(t, ec, nil)
	rc := newReceiver(t)
	id := createStream(t, f.srv.URL+PathConfiguration, rc.srv.URL, []string{EventSessionRevoked})

	setStatus(t, f, id, StatusPaused)
	revoke(t, f, "r-paused")
	time.Sleep(100 * time.Millisecond)
	if n := len(rc.pushes()); n != 0 {
		t.Fatalf("a paused stream pushed %d SETs", n)
	}
	code, b := call(t, http.MethodGet, f.srv.URL+PathStatus+"?stream_id="+id, token, nil)
	if code != http.StatusOK || !strings.Contains(string(b), `"paused"`) {
		t.Fatalf("read status: %d %s", code, b)
	}
	setStatus(t, f, id, StatusEnabled)
	rc.wait(1) // the held SET

	setStatus(t, f, id, StatusDisabled)
	revoke(t, f, "r-disabled")
	setStatus(t, f, id, StatusEnabled)
	revoke(t, f, "r-enabled")
	got := rc.wait(2)
	time.Sleep(50 * time.Millisecond)
	if n := len(rc.pushes()); n != 2 {
		t.Fatalf("%d pushes, want 2: the disabled stream's SET is dropped", n)
	}
	if !strings.Contains(got[1].body, ".") || waitCount(f.m, id, "dropped", 1) != 1 {
		t.Errorf("dropped %v, want 1", counted(f.m, id, "dropped"))
	}
}

// TestPushErrorsRetriedOrNot: no security signal is given up on while the
// receiver is away. 429, 5xx and network errors retry the same SET without
// limit (past retry.max_attempts the stream shows as blocked); a refusal of
// the stream (401, 403, invalid_audience, a redirect) holds it, SETs
// queued, until the receiver sets its status (or a probe passes); only
// invalid_request drops the one SET.
func TestPushErrorsRetriedOrNot(t *testing.T) {
	_, ec := keys(t)
	for _, tc := range []struct {
		name                                string
		script                              []int
		held                                bool   // the stream stops until unblocked
		unblock                             string // status or probe
		attempts                            int    // pushes in all, two SETs
		delivered, failed, retried, blocked float64
		logWant                             string
	}{
		{"400 invalid_request drops that SET only", []int{badSET}, false, "", 2, 1, 1, 0, 0, "invalid_request"},
		{"503 is retried", []int{503, 503}, false, "", 4, 2, 0, 2, 0, ""},
		{"503 past max_attempts is still retried", []int{503, 503, 503, 503, 503}, false, "", 7, 2, 0, 5, 0, "SSF stream failing"},
		{"429 is retried", []int{http.StatusTooManyRequests}, false, "", 3, 2, 0, 1, 0, ""},
		{"400 invalid_audience holds the stream", []int{http.StatusBadRequest}, true, "status", 3, 2, 0, 0, 0, "invalid_audience"},
		{"401 holds the stream", []int{http.StatusUnauthorized}, true, "status", 3, 2, 0, 0, 0, "HTTP 401"},
		{"403 holds the stream until a probe passes", []int{http.StatusForbidden}, true, "probe", 3, 2, 0, 0, 0, "HTTP 403"},
		{"a redirect holds the stream, not followed", []int{http.StatusFound}, true, "status", 3, 2, 0, 0, 0, "HTTP 302"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTransmitter(t, ec, nil)
			if tc.unblock == "probe" {
				f.tr.blockedProbe = 200 * time.Millisecond
			}
			rc := newReceiver(t, tc.script...)
			id := createStream(t, f.srv.URL+PathConfiguration, rc.srv.URL, []string{EventSessionRevoked})
			revoke(t, f, "r-1")
			revoke(t, f, "r-2")
			if tc.held {
				rc.wait(1)
				time.Sleep(50 * time.Millisecond)
				if n := len(rc.pushes()); n != 1 {
					t.Fatalf("a held stream pushed %d times, want 1", n)
				}
				if b := waitGauge(f.m, id, 1); b != 1 {
					t.Errorf("blocked %v while held, want 1", b)
				}
				if tc.unblock == "status" {
					setStatus(t, f, id, StatusEnabled)
				}
			}
			rc.wait(tc.attempts)
			waitCount(f.m, id, "delivered", tc.delivered)
			time.Sleep(30 * time.Millisecond)
			got := rc.pushes()
			if len(got) != tc.attempts {
				t.Errorf("%d attempts, want %d", len(got), tc.attempts)
			}
			for result, want := range map[string]float64{"delivered": tc.delivered, "failed": tc.failed, "retried": tc.retried} {
				if got := counted(f.m, id, result); got != want {
					t.Errorf("%s %v, want %v", result, got, want)
				}
			}
			if b := gauge(f.m, id); b != tc.blocked {
				t.Errorf("blocked %v at the end, want %v", b, tc.blocked)
			}
			if tc.held && got[0].body != got[1].body {
				t.Error("the refused SET was not the first sent once the stream was unblocked")
			}
			if tc.logWant != "" && !strings.Contains(f.logs.String(), tc.logWant) {
				t.Errorf("log does not say %q: %s", tc.logWant, f.logs.String())
			}
			if strings.Contains(f.logs.String(), "push-secret") {
				t.Error("the push authorization header is in the log")
			}
		})
	}
}

// TestHeldStreamKeepsHoldLimit: a held stream queues up to hold_limit and
// drops the oldest beyond, counted.
func TestHeldStreamKeepsHoldLimit(t *testing.T) {
	_, ec := keys(t)
	f := newTransmitter(t, ec, func(c *Config) { c.HoldLimit = 2 })
	rc := newReceiver(t, http.StatusUnauthorized)
	id := createStream(t, f.srv.URL+PathConfiguration, rc.srv.URL, []string{EventSessionRevoked})
	revoke(t, f, "r-1")
	rc.wait(1)
	waitGauge(f.m, id, 1)
	for _, r := range []string{"r-2", "r-3", "r-4"} {
		revoke(t, f, r)
	}
	if n := waitCount(f.m, id, "dropped", 2); n != 2 {
		t.Errorf("dropped %v, want 2 (r-1 and r-2: hold_limit 2 keeps the newest)", n)
	}
	setStatus(t, f, id, StatusEnabled)
	rc.wait(3)
	if n := waitCount(f.m, id, "delivered", 2); n != 2 {
		t.Errorf("delivered %v, want 2", n)
	}
}

// TestDeletedStreamStops: deleting a stream stops its worker's retries and
// removes its metric series (stream ids are random: kept, they would grow
// without bound).
func TestDeletedStreamStops(t *testing.T) {
	_, ec := keys(t)
	f := newTransmitter(t, ec, nil)
	script := make([]int, 1000)
	for i := range script {
		script[i] = http.StatusServiceUnavailable
	}
	rc := newReceiver(t, script...)
	id := createStream(t, f.srv.URL+PathConfiguration, rc.srv.URL, []string{EventSessionRevoked})
	revoke(t, f, "r-1")
	rc.wait(2)
	if code, b := call(t, http.MethodDelete, f.srv.URL+PathConfiguration+"?stream_id="+id, token, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, b)
	}
	time.Sleep(50 * time.Millisecond)
	n := len(rc.pushes())
	time.Sleep(100 * time.Millisecond)
	if m := len(rc.pushes()); m != n {
		t.Errorf("%d pushes after the delete, want none", m-n)
	}
	if n := testutil.CollectAndCount(f.m.sets) + testutil.CollectAndCount(f.m.blockedStreams); n != 0 {
		t.Errorf("%d series left for the deleted stream", n)
	}
}

// TestManagementRefusesWithoutToken: every management endpoint wants a
// receiver's bearer token, and a receiver reaches only its own streams.
func TestManagementRefusesWithoutToken(t *testing.T) {
	_, ec := keys(t)
	f := newTransmitter(t, ec, nil)
	rc := newReceiver(t)
	id := createStream(t, f.srv.URL+PathConfiguration, rc.srv.URL, nil)
	endpoints := []struct{ method, path string }{
		{http.MethodPost, PathConfiguration}, {http.MethodGet, PathConfiguration + "?stream_id=" + id},
		{http.MethodPatch, PathConfiguration}, {http.MethodPut, PathConfiguration},
		{http.MethodDelete, PathConfiguration + "?stream_id=" + id}, {http.MethodGet, PathStatus + "?stream_id=" + id},
		{http.MethodPost, PathStatus}, {http.MethodPost, PathAddSubject}, {http.MethodPost, PathRemoveSubject}, {http.MethodPost, PathVerify},
	}
	body := map[string]any{"stream_id": id, "status": "paused", "state": "x", "subject": map[string]string{"format": "opaque", "id": "x"},
		"delivery": map[string]string{"method": DeliveryPush, "endpoint_url": rc.srv.URL}}
	for _, e := range endpoints {
		for _, tok := range []string{"", "wrong-token-0123456789"} {
			code, b := call(t, e.method, f.srv.URL+e.path, tok, body)
			if code != http.StatusUnauthorized || !strings.Contains(string(b), "bearer token") {
				t.Errorf("%s %s with token %q: %d %s, want 401", e.method, e.path, tok, code, b)
			}
		}
		if e.method == http.MethodPost && e.path == PathConfiguration {
			continue // creating is not about an existing stream
		}
		if code, b := call(t, e.method, f.srv.URL+e.path, otherToken, body); code != http.StatusNotFound {
			t.Errorf("%s %s by another receiver: %d %s, want 404", e.method, e.path, code, b)
		}
	}
	if s := f.logs.String(); strings.Contains(s, token) || strings.Contains(s, "wrong-token") {
		t.Error("a bearer token is in the log")
	}
}

// TestStreamConfiguration: read, update (PATCH keeps, PUT replaces),
// clear 4xx on bad input, delete; configured streams are read-only.
func TestStreamConfiguration(t *testing.T) {
	_, ec := keys(t)
	rc := newReceiver(t)
	f := newTransmitter(t, ec, func(c *Config) {
		c.Streams = []StreamConfig{{ID: "static", Audience: audience, EndpointURL: rc.srv.URL, Status: StatusEnabled}}
	})
	url := f.srv.URL + PathConfiguration
	id := createStream(t, url, rc.srv.URL, []string{EventRiskLevelChange, "urn:example:unknown"})

	read := func() streamJSON {
		code, b := call(t, http.MethodGet, url+"?stream_id="+id, token, nil)
		var s streamJSON
		if code != http.StatusOK || json.Unmarshal(b, &s) != nil {
			t.Fatalf("read: %d %s", code, b)
		}
		return s
	}
	s := read()
	if s.Iss != f.srv.URL || s.Aud != audience || len(s.EventsDelivered) != 1 || s.EventsDelivered[0] != EventRiskLevelChange ||
		len(s.EventsRequested) != 2 || s.EventsRequested[1] != "urn:example:unknown" || // echoed as sent
		len(s.EventsSupported) != 4 || s.Description != "test receiver" || s.Delivery.AuthorizationHeader != "" {
		t.Errorf("stream %+v", s)
	}
	if code, b := call(t, http.MethodPatch, url, token, map[string]any{"stream_id": id, "description": "patched"}); code != http.StatusOK {
		t.Fatalf("patch: %d %s", code, b)
	}
	if s := read(); s.Description != "patched" || len(s.EventsRequested) != 2 {
		t.Errorf("after PATCH %+v", s)
	}
	put := map[string]any{"stream_id": id, "delivery": map[string]any{"method": DeliveryPush, "endpoint_url": rc.srv.URL}}
	if code, b := call(t, http.MethodPut, url, token, put); code != http.StatusOK {
		t.Fatalf("put: %d %s", code, b)
	}
	if s := read(); s.Description != "" || len(s.EventsRequested) != 0 || len(s.EventsDelivered) != 0 {
		t.Errorf("after PUT (left-out fields emptied, so nothing requested and nothing delivered) %+v", s)
	}
	// The transmitter-supplied fields, sent back as read, are accepted.
	echo := map[string]any{"stream_id": id, "iss": f.srv.URL, "aud": []string{audience}, "events_supported": EventsSupported,
		"events_requested": []string{EventSessionRevoked, "urn:example:unknown"}, "events_delivered": []string{EventSessionRevoked}}
	if code, b := call(t, http.MethodPatch, url, token, echo); code != http.StatusOK {
		t.Errorf("patch with the transmitter's own fields: %d %s", code, b)
	}
	code, b := call(t, http.MethodGet, url, token, nil)
	var all []streamJSON
	if code != http.StatusOK || json.Unmarshal(b, &all) != nil || len(all) != 2 {
		t.Errorf("list: %d %s", code, b)
	}
	for _, tc := range []struct {
		method string
		body   any
		code   int
		want   string
	}{
		{http.MethodPost, map[string]any{"delivery": map[string]any{"method": "urn:example:sse"}}, 400, "want urn:ietf:rfc:8935 (push) or urn:ietf:rfc:8936 (poll)"},
		{http.MethodPost, map[string]any{"delivery": map[string]any{"method": DeliveryPoll, "endpoint_url": "https://evil.example/poll"}}, 400, "the transmitter supplies it"},
		{http.MethodPost, map[string]any{"delivery": map[string]any{"method": DeliveryPoll, "authorization_header": pushAuth}}, 400, "authorization_header: not used"},
		{http.MethodPost, map[string]any{"delivery": map[string]any{"method": DeliveryPush, "endpoint_url": "ftp://x"}}, 400, "endpoint_url"},
		{http.MethodPost, map[string]any{}, 400, "delivery: required"},
		{http.MethodPost, map[string]any{"stream_id": "mine", "delivery": put["delivery"]}, 400, "stream_id"},
		{http.MethodPatch, map[string]any{"stream_id": id, "iss": "https://evil.example"}, 400, "iss"},
		{http.MethodPatch, map[string]any{"stream_id": id, "aud": "https://evil.example"}, 400, "aud"},
		{http.MethodPatch, map[string]any{"stream_id": id, "aud": []string{audience, "https://evil.example"}}, 400, "aud"},
		{http.MethodPut, map[string]any{"stream_id": id, "delivery": put["delivery"], "events_delivered": []string{"urn:bogus"}}, 400, "events_delivered"},
		{http.MethodPatch, map[string]any{"stream_id": id, "events_requested": []string{EventSessionRevoked}, "events_delivered": EventsSupported}, 400, "events_delivered"},
		{http.MethodPatch, map[string]any{"stream_id": id, "events_supported": []string{EventSessionRevoked}}, 400, "events_supported"},
		{http.MethodPatch, map[string]any{"stream_id": id, "min_verification_interval": 1}, 400, "min_verification_interval"},
		{http.MethodPatch, map[string]any{"stream_id": "nope"}, 404, "no stream"},
		{http.MethodPatch, map[string]any{}, 400, "stream_id: required"},
		{http.MethodPatch, map[string]any{"stream_id": "static", "description": "x"}, 403, "respond.ssf.streams"},
		{http.MethodPost, "not json", 400, "not a JSON object"},
	} {
		code, b := call(t, tc.method, url, token, tc.body)
		if code != tc.code || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s %v: %d %s, want %d naming %q", tc.method, tc.body, code, b, tc.code, tc.want)
		}
	}
	if code, _ := call(t, http.MethodDelete, url+"?stream_id=static", token, nil); code != http.StatusForbidden {
		t.Errorf("delete a configured stream: %d", code)
	}
	if code, _ := call(t, http.MethodDelete, url+"?stream_id="+id, token, nil); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	if code, _ := call(t, http.MethodGet, url+"?stream_id="+id, token, nil); code != http.StatusNotFound {
		t.Errorf("read after delete: %d", code)
	}
}

// TestSubjectsAndVerificationInterval: a removed subject's events stop and
// come back once added; a second verification within
// min_verification_interval is a 429.
func TestSubjectsAndVerificationInterval(t *testing.T) {
	_, ec := keys(t)
	f := newTransmitter(t, ec, func(c *Config) { c.MinVerificationInterval = time.Hour })
	rc := newReceiver(t)
	id := createStream(t, f.srv.URL+PathConfiguration, rc.srv.URL, []string{EventSessionRevoked})
	sub := map[string]any{"stream_id": id, "subject": map[string]any{"format": "complex", "application": map[string]string{"format": "opaque", "id": integration1}}}
	if code, b := call(t, http.MethodPost, f.srv.URL+PathRemoveSubject, token, sub); code != http.StatusNoContent {
		t.Fatalf("remove subject: %d %s", code, b)
	}
	revoke(t, f, "r-removed")
	if code, b := call(t, http.MethodPost, f.srv.URL+PathAddSubject, token, sub); code != http.StatusOK {
		t.Fatalf("add subject: %d %s", code, b)
	}
	revoke(t, f, "r-added")
	got := rc.wait(1)
	time.Sleep(50 * time.Millisecond)
	if len(rc.pushes()) != 1 || !strings.Contains(got[0].body, ".") {
		t.Fatalf("%d pushes, want 1 (the removed subject's SET is not sent)", len(rc.pushes()))
	}
	if code, b := call(t, http.MethodPost, f.srv.URL+PathAddSubject, token, map[string]any{"stream_id": id, "subject": map[string]string{}}); code != http.StatusBadRequest {
		t.Errorf("add a subject without format: %d %s", code, b)
	}
	v := map[string]string{"stream_id": id}
	if code, _ := call(t, http.MethodPost, f.srv.URL+PathVerify, token, v); code != http.StatusNoContent {
		t.Fatalf("verify: %d", code)
	}
	if code, _ := call(t, http.MethodPost, f.srv.URL+PathVerify, token, v); code != http.StatusTooManyRequests {
		t.Errorf("second verify within the interval: %d, want 429", code)
	}
	rc.wait(2)
}

// TestDefaultSubjectsNone: with default_subjects NONE only the subjects a
// receiver added are sent.
func TestDefaultSubjectsNone(t *testing.T) {
	_, ec := keys(t)
	f := newTransmitter(t, ec, func(c *Config) { c.DefaultSubjects = "NONE" })
	rc := newReceiver(t)
	id := createStream(t, f.srv.URL+PathConfiguration, rc.srv.URL, []string{EventSessionRevoked})
	revoke(t, f, "r-not-added")
	add := map[string]any{"stream_id": id, "subject": map[string]any{"format": "complex",
		"user": map[string]string{"format": "email", "email": userEmail}}}
	if code, b := call(t, http.MethodPost, f.srv.URL+PathAddSubject, token, add); code != http.StatusOK {
		t.Fatalf("add subject: %d %s", code, b)
	}
	revoke(t, f, "r-added")
	rc.wait(1)
	time.Sleep(50 * time.Millisecond)
	if n := len(rc.pushes()); n != 1 {
		t.Fatalf("%d pushes, want 1: only the added user's SET", n)
	}
	var md map[string]any
	getJSON(t, f.srv.URL+PathMetadata, &md)
	if md["default_subjects"] != "NONE" {
		t.Errorf("metadata default_subjects %v", md["default_subjects"])
	}
}

// TestStateFileKeepsStreamsAcrossRestart: a stream created through the API,
// its status and subjects, and a configured stream's status come back after
// a restart from state_file; the file is 0600 (it holds the push
// authorization header).
func TestStateFileKeepsStreamsAcrossRestart(t *testing.T) {
	_, ec := keys(t)
	rc := newReceiver(t)
	edit := restartable(t, rc)
	a := newTransmitter(t, ec, edit)
	id := createStream(t, a.srv.URL+PathConfiguration, rc.srv.URL, []string{EventSessionRevoked})
	setStatus(t, a, id, StatusPaused)
	setStatus(t, a, "static", StatusDisabled)
	otherApp := map[string]any{"format": "complex", "application": map[string]any{"format": "opaque", "id": "other-app"}}
	other := map[string]any{"stream_id": id, "subject": otherApp}
	if code, b := call(t, http.MethodPost, a.srv.URL+PathRemoveSubject, token, other); code != http.StatusNoContent {
		t.Fatalf("remove subject: %d %s", code, b)
	}
	state := a.tr.cfg.StateFile
	if st, err := os.Stat(state); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file %v %v, want mode 0600", st, err)
	}

	b := newTransmitter(t, ec, edit) // the restart
	for sid, want := range map[string]string{id: StatusPaused, "static": StatusDisabled} {
		code, body := call(t, http.MethodGet, b.srv.URL+PathStatus+"?stream_id="+sid, token, nil)
		if code != http.StatusOK || !strings.Contains(string(body), `"status":"`+want+`"`) {
			t.Errorf("stream %s after restart: %d %s, want %s", sid, code, body, want)
		}
	}
	b.tr.mu.Lock()
	s := b.tr.streams[id]
	b.tr.mu.Unlock()
	m, _ := complexMembers(otherApp)
	if s == nil || !s.removed.has(m) {
		t.Fatalf("the removed subject did not survive the restart: %+v", s)
	}
	setStatus(t, b, id, StatusEnabled)
	revoke(t, b, "r-after-restart")
	if got := rc.wait(1); got[0].header.Get("Authorization") != pushAuth {
		t.Errorf("Authorization %q after restart, want the stream's authorization_header", got[0].header.Get("Authorization"))
	}
}

// TestSubjectMatchingIsWhole: an added or removed complex subject matches
// an event's only if every member both define is identical (SSF 1.0
// "Subject Matching"); one shared member is not enough, so a subject added
// for one tenant never lets another tenant's events through.
func TestSubjectMatchingIsWhole(t *testing.T) {
	_, ec := keys(t)
	opaque := func(id string) map[string]any { return map[string]any{"format": "opaque", "id": id} }
	alice := map[string]any{"format": "email", "email": userEmail}
	for _, tc := range []struct {
		name     string
		defaults string
		add      bool
		subject  map[string]any
		tenants  []string // one revoke each, for the user and integration1
		want     []string // tenants whose SET is sent
	}{
		{"NONE: added tenant and user, other tenant not sent", "NONE", true,
			map[string]any{"format": "complex", "tenant": opaque("acme"), "user": alice}, []string{"acme", "globex"}, []string{"acme"}},
		{"NONE: added tenant alone matches its events", "NONE", true,
			map[string]any{"format": "complex", "tenant": opaque("acme")}, []string{"acme", "globex"}, []string{"acme"}},
		{"NONE: added user and device, event without device", "NONE", true,
			map[string]any{"format": "complex", "user": alice, "device": opaque("laptop-1")}, []string{"acme"}, []string{"acme"}},
		{"NONE: no member in common", "NONE", true,
			map[string]any{"format": "complex", "group": opaque("admins")}, []string{"acme"}, nil},
		{"ALL: removed tenant and application, other tenant still sent", "ALL", false,
			map[string]any{"format": "complex", "tenant": opaque("acme"), "application": opaque(integration1)}, []string{"acme", "globex"}, []string{"globex"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTransmitter(t, ec, func(c *Config) { c.DefaultSubjects = tc.defaults })
			rc := newReceiver(t)
			id := createStream(t, f.srv.URL+PathConfiguration, rc.srv.URL, []string{EventSessionRevoked})
			path, code := PathAddSubject, http.StatusOK
			if !tc.add {
				path, code = PathRemoveSubject, http.StatusNoContent
			}
			if got, b := call(t, http.MethodPost, f.srv.URL+path, token, map[string]any{"stream_id": id, "subject": tc.subject}); got != code {
				t.Fatalf("%s: %d %s", path, got, b)
			}
			for _, ten := range tc.tenants {
				r := executed()
				r.ID, r.Tenant = "r-"+ten, ten
				if err := f.tr.Record(context.Background(), []schemas.Response{r}); err != nil {
					t.Fatal(err)
				}
			}
			if len(tc.want) > 0 {
				rc.wait(len(tc.want))
			}
			time.Sleep(50 * time.Millisecond)
			var got []string
			for _, p := range rc.pushes() {
				for _, ten := range tc.tenants {
					if strings.Contains(decodeClaims(t, p.body), `"id":"`+ten+`"`) {
						got = append(got, ten)
					}
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("sent for tenants %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSubjectRequests: a simple subject (it would never match tokenwatch's
// complex event subjects) and a malformed complex one are refused; a stream
// holds at most maxSubjectsPerStream subjects.
func TestSubjectRequests(t *testing.T) {
	_, ec := keys(t)
	f := newTransmitter(t, ec, nil)
	rc := newReceiver(t)
	id := createStream(t, f.srv.URL+PathConfiguration, rc.srv.URL, nil)
	for _, tc := range []struct {
		subject any
		want    string
	}{
		{map[string]any{"format": "opaque", "id": integration1}, "complex subjects"},
		{map[string]any{"format": "complex"}, "at least one member"},
		{map[string]any{"format": "complex", "user": "jane"}, "subject.user"},
		{map[string]any{"format": "complex", "user": map[string]any{"email": "x@y"}}, "subject.user"},
	} {
		code, b := call(t, http.MethodPost, f.srv.URL+PathAddSubject, token, map[string]any{"stream_id": id, "subject": tc.subject})
		if code != http.StatusBadRequest || !strings.Contains(string(b), tc.want) {
			t.Errorf("add %v: %d %s, want 400 naming %q", tc.subject, code, b, tc.want)
		}
	}
	sub := func(i int) map[string]any {
		return map[string]any{"stream_id": id, "subject": map[string]any{"format": "complex",
			"application": map[string]any{"format": "opaque", "id": "app-" + strconv.Itoa(i)}}}
	}
	f.tr.mu.Lock()
	s := f.tr.streams[id]
	f.tr.mu.Unlock()
	s.mu.Lock()
	for i := 1; i < maxSubjectsPerStream; i++ { // each add through the API rewrites state_file
		m, _ := complexMembers(sub(i)["subject"].(map[string]any))
		s.added.put(m)
	}
	s.mu.Unlock()
	if code, b := call(t, http.MethodPost, f.srv.URL+PathAddSubject, token, sub(0)); code != http.StatusOK {
		t.Fatalf("add the last one room is left for: %d %s", code, b)
	}
	if code, b := call(t, http.MethodPost, f.srv.URL+PathAddSubject, token, sub(maxSubjectsPerStream)); code != http.StatusBadRequest || !strings.Contains(string(b), "the most") {
		t.Errorf("one subject too many: %d %s", code, b)
	}
	if code, b := call(t, http.MethodPost, f.srv.URL+PathRemoveSubject, token, sub(0)); code != http.StatusNoContent {
		t.Errorf("moving a kept subject from added to removed: %d %s", code, b)
	}
}

// decodeClaims is the payload of a compact JWS, unverified.
func decodeClaims(t *testing.T, set string) string {
	t.Helper()
	parts := strings.Split(set, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", set)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDeliveryIsReplacedWhole: delivery is one property; a PATCH or PUT
// that sends it without authorization_header clears the old header, so the
// push secret never goes to a new endpoint; a PATCH without delivery keeps
// both.
func TestDeliveryIsReplacedWhole(t *testing.T) {
	_, ec := keys(t)
	f := newTransmitter(t, ec, nil)
	old, moved := newReceiver(t), newReceiver(t)
	url := f.srv.URL + PathConfiguration
	for _, tc := range []struct {
		name, method string
		body         map[string]any
		to           *receiver
		auth         string
	}{
		{"PATCH without delivery keeps the header", http.MethodPatch, map[string]any{"description": "x"}, old, pushAuth},
		{"PATCH to a new endpoint without a header clears it", http.MethodPatch,
			map[string]any{"delivery": map[string]any{"method": DeliveryPush, "endpoint_url": moved.srv.URL}}, moved, ""},
		{"PUT without a header clears it", http.MethodPut, map[string]any{"events_requested": []string{EventSessionRevoked},
			"delivery": map[string]any{"method": DeliveryPush, "endpoint_url": old.srv.URL}}, old, ""},
		{"PATCH with a new header sends it", http.MethodPatch, map[string]any{"delivery": map[string]any{"method": DeliveryPush,
			"endpoint_url": moved.srv.URL, "authorization_header": "Bearer new-secret-0123456789"}}, moved, "Bearer new-secret-0123456789"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := createStream(t, url, old.srv.URL, []string{EventSessionRevoked})
			defer call(t, http.MethodDelete, url+"?stream_id="+id, token, nil)
			tc.body["stream_id"] = id
			if code, b := call(t, tc.method, url, token, tc.body); code != http.StatusOK {
				t.Fatalf("%s: %d %s", tc.method, code, b)
			}
			n := len(tc.to.pushes())
			revoke(t, f, "r-"+id)
			got := tc.to.wait(n + 1)[n]
			if a := got.header.Get("Authorization"); a != tc.auth {
				t.Errorf("Authorization %q, want %q", a, tc.auth)
			}
		})
	}
}

// TestEndpointsMustBeReceivers: a stream created through the API pushes
// over https to a host on no network of the transmitter's own (RFC 8935 is
// over TLS; a receiver must not aim the transmitter at cloud metadata or
// the pod network), checked when set and again when dialling.
func TestEndpointsMustBeReceivers(t *testing.T) {
	_, ec := keys(t)
	f := newTransmitter(t, ec, nil) // allow_insecure_http: loopback http allowed
	for _, tc := range []struct{ endpoint, want string }{
		{"http://169.254.169.254/latest", "http only for a loopback host"},
		{"https://169.254.169.254/latest", "link-local"},
		{"https://10.1.2.3/events", "private"},
		{"https://192.168.0.10/events", "private"},
		{"https://100.64.0.1/events", "private"},
		{"https://[fd00::1]/events", "private"},
		{"https://[fe80::1]/events", "link-local"},
		{"https://0.0.0.0/events", "unspecified"},
		{"https://[::]/events", "unspecified"},
		{"ftp://receiver.example/events", "want https"},
	} {
		body := map[string]any{"delivery": map[string]any{"method": DeliveryPush, "endpoint_url": tc.endpoint}}
		if code, b := call(t, http.MethodPost, f.srv.URL+PathConfiguration, token, body); code != http.StatusBadRequest || !strings.Contains(string(b), tc.want) {
			t.Errorf("create to %s: %d %s, want 400 naming %q", tc.endpoint, code, b, tc.want)
		}
	}
	rc := newReceiver(t)
	id := createStream(t, f.srv.URL+PathConfiguration, rc.srv.URL, nil)
	patch := map[string]any{"stream_id": id, "delivery": map[string]any{"method": DeliveryPush, "endpoint_url": "https://169.254.169.254/"}}
	if code, b := call(t, http.MethodPatch, f.srv.URL+PathConfiguration, token, patch); code != http.StatusBadRequest {
		t.Errorf("patch to metadata: %d %s", code, b)
	}

	f.tr.cfg.AllowInsecureHTTP = false // no request is in flight
	for _, tc := range []struct{ endpoint, want string }{
		{rc.srv.URL, "want https"},
		{strings.Replace(rc.srv.URL, "http:", "https:", 1), "loopback"},
	} {
		if err := f.tr.checkEndpoint(context.Background(), tc.endpoint); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("checkEndpoint(%s) without allow_insecure_http: %v, want %q", tc.endpoint, err, tc.want)
		}
	}

	// The dialer refuses after resolution: what a name resolves to when
	// connecting is what counts (DNS rebinding).
	for _, tc := range []struct {
		allowLoopback bool
		ok            bool
	}{{false, false}, {true, true}} {
		resp, err := guardedClient(time.Second, tc.allowLoopback).Get(rc.srv.URL)
		if resp != nil {
			resp.Body.Close()
		}
		if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, errForbiddenAddr)) {
			t.Errorf("guarded dial to loopback, allowLoopback %v: %v", tc.allowLoopback, err)
		}
	}
}

// TestIssuerWithPath: an issuer with a path has its metadata at
// /.well-known/ssf-configuration/<path> (SSF: inserted between host and
// path), the issuer returned exactly as configured, and its endpoints
// below the issuer; nothing is served at the root's well-known path.
func TestIssuerWithPath(t *testing.T) {
	_, ec := keys(t)
	var iss string
	f := newTransmitter(t, ec, func(c *Config) { c.Issuer += "/tenant1"; iss = c.Issuer })
	var md map[string]any
	getJSON(t, f.srv.URL+PathMetadata+"/tenant1", &md)
	if md["issuer"] != iss {
		t.Errorf("issuer %v, want %s exactly", md["issuer"], iss)
	}
	if code, _ := call(t, http.MethodGet, f.srv.URL+PathMetadata, "", nil); code != http.StatusNotFound {
		t.Errorf("metadata at the root: %d, want 404", code)
	}
	if md["configuration_endpoint"] != iss+PathConfiguration {
		t.Errorf("configuration_endpoint %v", md["configuration_endpoint"])
	}
	rc := newReceiver(t)
	createStream(t, md["configuration_endpoint"].(string), rc.srv.URL, nil)
	req, _ := http.NewRequest(http.MethodGet, md["jwks_uri"].(string), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
		t.Errorf("jwks: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}

// TestStateFileOnLoad: a restart drops an API stream whose receiver is no
// longer configured, refuses a state_file with a status it does not know,
// and keeps a configured stream's saved status unless its streams[].status
// changed since (then the config wins).
func TestStateFileOnLoad(t *testing.T) {
	_, ec := keys(t)
	rc := newReceiver(t)
	for _, tc := range []struct {
		name         string
		edit         func(*Config)
		corrupt      bool
		apiKept      bool
		staticStatus string
	}{
		{"same config", nil, false, true, StatusDisabled},
		{"streams[].status changed: the config wins", func(c *Config) { c.Streams[0].Status = StatusPaused }, false, true, StatusPaused},
		{"receiver gone: its stream dropped", func(c *Config) { c.Receivers = c.Receivers[1:] }, false, false, StatusDisabled},
		{"unknown status: refused", nil, true, false, ""},
		{"a file from before version 2: no events_requested was all", nil, false, true, StatusDisabled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := restartable(t, rc)
			a := newTransmitter(t, ec, base)
			id := createStream(t, a.srv.URL+PathConfiguration, rc.srv.URL, nil)
			setStatus(t, a, "static", StatusDisabled)
			legacy := strings.HasPrefix(tc.name, "a file from before")
			if legacy {
				b, _ := os.ReadFile(a.tr.cfg.StateFile)
				old := strings.Replace(string(b), `,"version":2`, "", 1)
				if old == string(b) {
					t.Fatalf("no version in %s", b)
				}
				if err := os.WriteFile(a.tr.cfg.StateFile, []byte(old), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.corrupt {
				state := a.tr.cfg.StateFile
				b, _ := os.ReadFile(state)
				if err := os.WriteFile(state, []byte(strings.Replace(string(b), `"status":"disabled"`, `"status":"off"`, 1)), 0o600); err != nil {
					t.Fatal(err)
				}
				cfg := DefaultConfig()
				cfg.Issuer, cfg.Listen, cfg.KeyID, cfg.SigningKey, cfg.AllowInsecureHTTP = a.srv.URL, "127.0.0.1:1", testKeyID, secret.New(ec), true
				cfg.Receivers = []Receiver{{Audience: audience, Token: secret.New(token)}}
				base(&cfg)
				if _, err := New(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), `status "off"`) {
					t.Errorf("New with an unknown saved status: %v", err)
				}
				return
			}
			b := newTransmitter(t, ec, func(c *Config) {
				base(c)
				if tc.edit != nil {
					tc.edit(c)
				}
			})
			b.tr.mu.Lock()
			api, static := b.tr.streams[id], b.tr.streams["static"]
			b.tr.mu.Unlock()
			if (api != nil) != tc.apiKept {
				t.Errorf("API stream kept %v, want %v", api != nil, tc.apiKept)
			}
			if static.status != tc.staticStatus {
				t.Errorf("configured stream status %s, want %s", static.status, tc.staticStatus)
			}
			if api != nil {
				want := 0
				if legacy {
					want = len(EventsSupported)
				}
				if got := len(b.tr.view(api).EventsDelivered); got != want {
					t.Errorf("API stream created without events_requested delivers %d events, want %d", got, want)
				}
			}
		})
	}
}

// TestVerificationRequests: the 429's Retry-After is what is left of the
// interval; a disabled stream refuses verification (it would send
// nothing); the bearer scheme is case-insensitive.
func TestVerificationRequests(t *testing.T) {
	_, ec := keys(t)
	// The clock is read by the stream's worker too (a queued SET's key is
	// checked when it is sent): guarded.
	var clock sync.Mutex
	now := at1
	f := newTransmitter(t, ec, func(c *Config) { c.MinVerificationInterval = 90 * time.Second })
	f.tr.Now = func() time.Time {
		clock.Lock()
		defer clock.Unlock()
		return now
	}
	rc := newReceiver(t)
	id := createStream(t, f.srv.URL+PathConfiguration, rc.srv.URL, nil)
	f.tr.mu.Lock()
	st := f.tr.streams[id]
	f.tr.mu.Unlock()
	if md := f.tr.view(st); md.MinVerificationInterval != 90 {
		t.Errorf("min_verification_interval %d, want 90", md.MinVerificationInterval)
	}
	verify := func(scheme string) (int, string) {
		b, _ := json.Marshal(map[string]string{"stream_id": id})
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+PathVerify, strings.NewReader(string(b)))
		req.Header.Set("Authorization", scheme+" "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for _, tc := range []struct {
		name, scheme string
		advance      time.Duration
		status       string
		code         int
		retryAfter   string
	}{
		{"first, scheme in lower case", "bearer", 0, "", http.StatusNoContent, ""},
		{"40 s later", "Bearer", 40 * time.Second, "", http.StatusTooManyRequests, "50"},
		{"89.5 s later", "BEARER", 49500 * time.Millisecond, "", http.StatusTooManyRequests, "1"},
		{"90 s later", "Bearer", 500 * time.Millisecond, "", http.StatusNoContent, ""},
		{"disabled", "Bearer", time.Hour, StatusDisabled, http.StatusBadRequest, ""},
	} {
		clock.Lock()
		now = now.Add(tc.advance)
		clock.Unlock()
		if tc.status != "" {
			setStatus(t, f, id, tc.status)
		}
		if code, ra := verify(tc.scheme); code != tc.code || ra != tc.retryAfter {
			t.Errorf("%s: %d Retry-After %q, want %d %q", tc.name, code, ra, tc.code, tc.retryAfter)
		}
	}
}
