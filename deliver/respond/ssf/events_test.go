package ssf

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// TestJTIFollowsContent: the jti is a function of everything a SET says but
// iat (RFC 7519 §4.1.7: the same jti never carries different claims), and
// of the issuer.
func TestJTIFollowsContent(t *testing.T) {
	inc := incident(1, schemas.SeverityHigh, schemas.IncidentOpen, at1)
	inc3 := incident(3, schemas.SeverityHigh, schemas.IncidentOpen, at2)
	r := executed()
	sessions := fromResponse(&r, "api-credential")[0]
	jti := func(e event, iss string) string { return e.jti(iss, audience) }
	for _, tc := range []struct {
		name string
		a, b string
		same bool
	}{
		{"the same event, signed twice", jti(sessions, "https://tw.example"), jti(fromResponse(&r, "api-credential")[0], "https://tw.example"), true},
		{"another issuer", jti(sessions, "https://tw.example"), jti(sessions, "https://tw2.example"), false},
		{"risk change with and without previous_level", jti(riskChange(&inc, integration1, ""), ""), jti(riskChange(&inc, integration1, "MEDIUM"), ""), false},
		{"compromise from another version", jti(compromise(&inc, integration1, "x"), ""), jti(compromise(&inc3, integration1, "x"), ""), false},
	} {
		if (tc.a == tc.b) != tc.same {
			t.Errorf("%s: jti %s and %s, want same=%v", tc.name, tc.a, tc.b, tc.same)
		}
	}
}

// TestEventTimes: iat is when the SET is signed; event_timestamp and toe
// are the event's time: for a revocation, when it was carried out (the
// record's recorded_at), not the incident version's time (at).
func TestEventTimes(t *testing.T) {
	signed := at2.Add(48 * time.Hour)
	for _, tc := range []struct {
		name     string
		recorded time.Time
		want     time.Time
	}{
		{"recorded_at", revokedAt, revokedAt},
		{"an old record without recorded_at: at", time.Time{}, at2},
	} {
		r := executed()
		r.RecordedAt = schemas.NewTime(tc.recorded)
		if tc.recorded.IsZero() {
			r.RecordedAt = schemas.Time{}
		}
		for _, e := range fromResponse(&r, "api-credential") {
			c := e.claims("https://tw.example", audience, signed)
			p := c["events"].(map[string]any)[e.typ].(map[string]any)
			if c["iat"] != signed.Unix() || c["toe"] != tc.want.Unix() || p["event_timestamp"] != tc.want.Unix() {
				t.Errorf("%s: %s iat %v toe %v event_timestamp %v, want %d and %d", tc.name, e.typ, c["iat"], c["toe"], p["event_timestamp"], signed.Unix(), tc.want.Unix())
			}
		}
	}
}

// TestNoEventWithoutSubject: an incident or a revoke naming no integration
// (and no user) yields no SET: an empty opaque id names nothing.
func TestNoEventWithoutSubject(t *testing.T) {
	inc := incident(1, schemas.SeverityCritical, schemas.IncidentOpen, at1)
	inc.IntegrationID = ""
	_, ec := keys(t)
	f := newTransmitter(t, ec, nil)
	f.tr.Incident(inc)
	if n := f.tr.seen.Len(); n != 0 {
		t.Errorf("%d incident pairs remembered, want none", n)
	}
	r := executed()
	r.IntegrationID, r.Principal = "", "svc-account"
	if evs := fromResponse(&r, "api-credential"); len(evs) != 0 {
		t.Errorf("%d events for a revoke of no integration", len(evs))
	}
	r.Principal = userEmail
	if evs := fromResponse(&r, "api-credential"); len(evs) != 2 {
		t.Errorf("%d events for a user's revoke, want 2", len(evs))
	}
}

// TestRiskLevelChanges: a first sight at LOW is no change; later moves are,
// with previous_level; and what was told survives a restart through
// state_file (previous_level kept, no second compromise).
func TestRiskLevelChanges(t *testing.T) {
	_, ec := keys(t)
	rc := newReceiver(t)
	edit := restartable(t, rc)
	a := newTransmitter(t, ec, edit)
	low := incident(1, schemas.SeverityLow, schemas.IncidentOpen, at1)
	low.Detectors = []string{"geo.new_country"}
	a.tr.Incident(low)
	high := incident(2, schemas.SeverityCritical, schemas.IncidentOpen, at1.Add(time.Minute))
	a.tr.Incident(high)
	a.tr.saveTold() // what the flush does every toldFlush
	rc.wait(2)      // a's SETs first: two workers push to rc
	a.stop()        // the restart: a is down before b starts

	b := newTransmitter(t, ec, edit)                                                // the restart
	b.tr.Incident(incident(3, schemas.SeverityCritical, schemas.IncidentOpen, at2)) // same level, compromise told
	b.tr.Incident(incident(4, schemas.SeverityHigh, schemas.IncidentResolved, at2.Add(time.Minute)))
	// Each SET once: one whose acknowledgement the stopped transmitter had
	// not written yet is pushed again with the same jti (at least once,
	// RFC 8935), and the receiver takes it once.
	sets := func() []string {
		var kinds []string
		jtis := map[string]bool{}
		for _, p := range rc.pushes() {
			var c struct {
				JTI    string                    `json:"jti"`
				Events map[string]map[string]any `json:"events"`
			}
			if err := json.Unmarshal([]byte(decodeClaims(t, p.body)), &c); err != nil {
				t.Fatal(err)
			}
			if jtis[c.JTI] {
				continue
			}
			jtis[c.JTI] = true
			for typ, ev := range c.Events {
				k := typ[strings.LastIndex(typ, "/")+1:]
				if typ == EventRiskLevelChange {
					k += " " + ev["current_level"].(string)
					if prev, ok := ev["previous_level"].(string); ok {
						k += " from " + prev
					}
				}
				kinds = append(kinds, k)
			}
		}
		return kinds
	}
	for deadline := time.Now().Add(5 * time.Second); len(sets()) < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // and nothing more
	kinds := sets()
	want := "risk-level-change HIGH from LOW,credential-compromise,risk-level-change LOW from HIGH"
	if strings.Join(kinds, ",") != want {
		t.Errorf("SETs %v, want %s", kinds, want)
	}
}
