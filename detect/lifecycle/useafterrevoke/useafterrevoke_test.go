package useafterrevoke

import (
	_ "embed"
	"slices"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/detecttest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

//go:embed sample.yaml
var sample []byte

func newDetector(t *testing.T) detect.Detector {
	t.Helper()
	d, err := New(detecttest.Config(t, sample, ID))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func act(id string, at time.Duration, cred, category string) schemas.Event {
	ev := detecttest.Event(id, at)
	ev.Credential.ID = cred
	ev.Action = schemas.Action{Name: category + ".call", Category: category}
	return ev
}

func failed(ev schemas.Event) schemas.Event { ev.Outcome = "failure"; return ev }

func TestUseAfterRevoke(t *testing.T) {
	const (
		access    = schemas.CategoryAccess
		modify    = schemas.CategoryModify
		admin     = schemas.CategoryAdmin
		revoke    = schemas.CategoryRevoke
		authorize = schemas.CategoryAuthorize
	)
	h := time.Hour
	tests := []struct {
		name   string
		events []schemas.Event
		want   []string
	}{
		{"access after revoke alerts once per revocation", []schemas.Event{
			act("e1", 0, "c1", access), act("e2", h, "c1", revoke),
			act("e3", 2*h, "c1", access), act("e4", 3*h, "c1", modify),
		}, []string{"c1@2026-10-05T01:00:00.000Z"}},
		{"admin after revoke alerts", []schemas.Event{
			act("e1", h, "c1", revoke), act("e2", 2*h, "c1", admin),
		}, []string{"c1@2026-10-05T01:00:00.000Z"}},
		{"re-authorize clears the revocation", []schemas.Event{
			act("e1", h, "c1", revoke), act("e2", 2*h, "c1", authorize), act("e3", 3*h, "c1", access),
		}, nil},
		{"failed calls after revoke are the revoke working", []schemas.Event{
			act("e1", h, "c1", revoke), failed(act("e2", 2*h, "c1", access)),
		}, nil},
		{"a failed revoke revokes nothing", []schemas.Event{
			failed(act("e1", h, "c1", revoke)), act("e2", 2*h, "c1", access),
		}, nil},
		{"use within the grace period is tolerated", []schemas.Event{
			act("e1", h, "c1", revoke), act("e2", h+30*time.Second, "c1", access),
		}, nil},
		{"a late event from before the revoke is not use after it", []schemas.Event{
			act("e1", h, "c1", revoke), act("e2", h-time.Minute, "c1", access),
		}, nil},
		{"other credentials are unaffected", []schemas.Event{
			act("e1", h, "c1", revoke), act("e2", 2*h, "c2", access),
		}, nil},
		{"auth failures and further revokes are not use", []schemas.Event{
			act("e1", h, "c1", revoke), act("e2", 2*h, "c1", schemas.CategoryAuthFailure),
		}, nil},
		{"integration-wide revoke covers every credential", []schemas.Event{
			act("e1", h, "", revoke), act("e2", 2*h, "c7", access), act("e3", 3*h, "c8", access),
		}, []string{"*@2026-10-05T01:00:00.000Z"}},
		{"a second revoke after re-authorize is a new alert", []schemas.Event{
			act("e1", h, "c1", revoke), act("e2", 2*h, "c1", access),
			act("e3", 3*h, "c1", authorize), act("e4", 4*h, "c1", revoke), act("e5", 5*h, "c1", access),
		}, []string{"c1@2026-10-05T01:00:00.000Z", "c1@2026-10-05T04:00:00.000Z"}},
		{"revocations are forgotten after remember_for", []schemas.Event{
			act("e1", h, "c1", revoke), act("e2", 91*24*h, "c2", revoke), act("e3", 92*24*h, "c1", access),
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := detecttest.Run(t, newDetector(t), tc.events)
			if g := detecttest.Keys(got); !slices.Equal(g, tc.want) {
				t.Fatalf("keys = %v, want %v", g, tc.want)
			}
			for _, f := range got {
				if f.Severity != schemas.SeverityHigh || len(f.EventIDs) != 2 || !f.FirstSeen.Before(f.LastSeen) {
					t.Errorf("finding %s: severity %s evidence %v %s..%s", f.Key, f.Severity, f.EventIDs, f.FirstSeen, f.LastSeen)
				}
			}
		})
	}
}

func TestUseAfterRevokeStateRoundTrip(t *testing.T) {
	d := newDetector(t)
	st := d.NewState()
	rev := act("e1", time.Hour, "c1", schemas.CategoryRevoke)
	d.Observe(&rev, st)
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back := d.NewState()
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if b2, _ := back.MarshalBinary(); string(b) != string(b2) {
		t.Fatalf("round trip changed state:\n%s\n%s", b, b2)
	}
	use := act("e2", 2*time.Hour, "c1", schemas.CategoryAccess)
	fs := d.Observe(&use, back)
	if len(fs) != 1 || !slices.Equal(fs[0].EventIDs, []string{"e1", "e2"}) {
		t.Errorf("restored state lost the revocation: %+v", fs)
	}
}

func TestUseAfterRevokeRejectsBadConfig(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"negative grace":     func(c *Config) { c.Grace = -time.Second },
		"memory under grace": func(c *Config) { c.RememberFor = time.Second },
		"bad severity":       func(c *Config) { c.Severity = "P1" },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(func(v any) error { mod(v.(*Config)); return nil }); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}

// A state without revocations holds no map (a quiet integration's), yet
// writes the bytes the state always did, and reads back every form one was
// ever written in; a revoke after a restore still records and fires.
func TestUseAfterRevokeStateWithoutRevocations(t *testing.T) {
	d := newDetector(t)
	quiet := d.NewState()
	use := act("e0", time.Hour, "c1", schemas.CategoryAccess)
	d.Observe(&use, quiet)
	grant := act("e1", time.Hour, "c1", schemas.CategoryAuthorize)
	d.Observe(&grant, quiet)
	if quiet.(*State).Revoked != nil {
		t.Fatalf("a state without revocations made its map: %v", quiet.(*State).Revoked)
	}
	for _, tc := range []struct{ name, in string }{
		{"new", ""},
		{"empty map", `{"revoked":{}}`},
		{"null", `{"revoked":null}`},
		{"no field", `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := quiet
			if tc.in != "" {
				st = d.NewState()
				if err := st.UnmarshalBinary([]byte(tc.in)); err != nil {
					t.Fatal(err)
				}
			}
			b, err := st.MarshalBinary()
			if err != nil || string(b) != `{"revoked":{}}` {
				t.Fatalf("wrote %s (%v), want {\"revoked\":{}}", b, err)
			}
			if st.(*State).Revoked != nil {
				t.Fatalf("read back a map: %v", st.(*State).Revoked)
			}
			st = d.NewState()
			_ = st.UnmarshalBinary(b)
			rev := act("e2", 2*time.Hour, "c1", schemas.CategoryRevoke)
			d.Observe(&rev, st)
			after := act("e3", 3*time.Hour, "c1", schemas.CategoryAccess)
			if fs := d.Observe(&after, st); len(fs) != 1 || !slices.Equal(fs[0].EventIDs, []string{"e2", "e3"}) {
				t.Fatalf("a revoke after the restore: %+v", fs)
			}
		})
	}
}
