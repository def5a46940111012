package slack

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/schemas"
)

func withGroups(ids ...string) func(*respond.SlackApprovals) {
	return func(c *respond.SlackApprovals) { c.ApproverGroups = ids }
}

func (f *fixture) record(id, status string) (schemas.Response, bool) {
	for _, r := range f.store.All() {
		if r.ID == id && r.Status == status {
			return r, true
		}
	}
	return schemas.Response{}, false
}

// A member of a listed user group decides as an approver listed by id
// does; someone in no group is refused; the membership is asked once and
// kept, and an approver listed by id needs no lookup.
func TestApproverGroupMemberDecidesAndANonMemberIsRefused(t *testing.T) {
	f := newFixture(t, withGroups("S0NOBODY", "S0SOCONCALL"))
	f.api.members(map[string][]string{"S0NOBODY": {}, "S0SOCONCALL": {"U0CY", "W0DEE"}})
	if w := f.click(t, "U0CY", ActionApprove, "req-ana", f.now.Unix(), signed); w.Code != http.StatusOK {
		t.Fatalf("approve: %d", w.Code)
	}
	if got := strings.Join(f.statuses("req-ana"), ","); got != "planned,approved" || f.hits.Load() != 1 {
		t.Fatalf("req-ana records %s, %d vendor requests", got, f.hits.Load())
	}
	r, _ := f.record("req-ana", schemas.ResponseApproved)
	if r.Actor != "slack:U0CY" || !strings.Contains(r.Reason, "member of user group S0SOCONCALL") {
		t.Errorf("approval recorded as %q / %q", r.Actor, r.Reason)
	}
	lookups := f.api.of("usergroups.users.list")
	if len(lookups) != 2 || lookups[0].Body["usergroup"] != "S0NOBODY" || lookups[1].Body["usergroup"] != "S0SOCONCALL" {
		t.Errorf("lookups %+v", lookups)
	}

	f.now = f.now.Add(time.Second)
	f.click(t, "U0MALLORY", ActionApprove, "req-bo", f.now.Unix(), signed)
	if f.count("not_approver") != 1 || strings.Join(f.statuses("req-bo"), ",") != "planned" {
		t.Errorf("non-member: not_approver %v, req-bo %v", f.count("not_approver"), f.statuses("req-bo"))
	}
	eph := f.api.of("chat.postEphemeral")
	if len(eph) != 1 || eph[0].Body["user"] != "U0MALLORY" || !strings.Contains(eph[0].Raw, "respond.slack.approver_groups") {
		t.Errorf("ephemeral answers %+v", eph)
	}
	f.now = f.now.Add(time.Second)
	f.click(t, "U0ANA", ActionDeny, "req-bo", f.now.Unix(), signed)
	if got := strings.Join(f.statuses("req-bo"), ","); got != "planned,denied" {
		t.Errorf("the approver listed by id: req-bo %s", got)
	}
	if n := len(f.api.of("usergroups.users.list")); n != 2 {
		t.Errorf("%d lookups, want the 2 first ones (cached, and none for a listed approver)", n)
	}
	f.assertNoSecrets(t)
}

// The membership is kept for the TTL: a rotation shows after it, not
// before.
func TestApproverGroupRotationTakesEffectWhenTheCacheExpires(t *testing.T) {
	f := newFixture(t, withGroups("S0SOCONCALL"))
	f.api.members(map[string][]string{"S0SOCONCALL": {"U0CY"}})
	f.click(t, "W0DEE", ActionDeny, "req-bo", f.now.Unix(), signed)
	if f.count("not_approver") != 1 {
		t.Fatalf("W0DEE is not on call yet: not_approver %v", f.count("not_approver"))
	}
	// The rotation: W0DEE is on call now.
	f.api.members(map[string][]string{"S0SOCONCALL": {"W0DEE"}})
	f.now = f.now.Add(groupTTL - time.Second)
	f.click(t, "W0DEE", ActionDeny, "req-bo", f.now.Unix(), signed)
	if f.count("not_approver") != 2 || len(f.api.of("usergroups.users.list")) != 1 {
		t.Fatalf("inside the TTL: not_approver %v, %d lookups", f.count("not_approver"), len(f.api.of("usergroups.users.list")))
	}
	f.now = f.now.Add(2 * time.Second)
	f.click(t, "W0DEE", ActionDeny, "req-bo", f.now.Unix(), signed)
	if got := strings.Join(f.statuses("req-bo"), ","); got != "planned,denied" || len(f.api.of("usergroups.users.list")) != 2 {
		t.Errorf("after the TTL: req-bo %s, %d lookups", got, len(f.api.of("usergroups.users.list")))
	}
}

// When Slack cannot tell the membership the click is refused, told why,
// nothing is recorded, and the failure is logged once per kind, naming
// the scope when the token lacks it and never the token.
func TestApproverGroupLookupFailureRefusesTheClick(t *testing.T) {
	for _, tc := range []struct {
		name, kind, log string
		answer          func(w http.ResponseWriter, group string)
		lookups         int // after two clicks
	}{
		{"missing scope", "missing_scope", "usergroups:read", func(w http.ResponseWriter, _ string) {
			io.WriteString(w, `{"ok":false,"error":"missing_scope","needed":"usergroups:read","provided":"chat:write"}`)
		}, 2},
		{"bad token", "invalid_auth", "refused the sink's bot token", func(w http.ResponseWriter, _ string) {
			io.WriteString(w, `{"ok":false,"error":"invalid_auth"}`)
		}, 2},
		{"no such group", "no_such_subteam", "respond.slack.approver_groups", nil, 2},
		{"rate limited", "ratelimited", "Retry-After", func(w http.ResponseWriter, _ string) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		}, 1},
		{"server error", "http_503", "could not answer", func(w http.ResponseWriter, _ string) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}, 2},
		{"timeout", "timeout", "did not answer in time", func(w http.ResponseWriter, _ string) {
			time.Sleep(300 * time.Millisecond)
			io.WriteString(w, `{"ok":true,"users":["U0CY"]}`)
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, withGroups("S0SOCONCALL"))
			f.a.groups.timeout = 50 * time.Millisecond
			if tc.answer != nil {
				f.api.mu.Lock()
				f.api.usergroups = tc.answer
				f.api.mu.Unlock()
			}
			for i := 0; i < 2; i++ {
				f.now = f.now.Add(time.Second)
				if w := f.click(t, "U0CY", ActionApprove, "req-ana", f.now.Unix(), signed); w.Code != http.StatusOK {
					t.Fatalf("click: %d", w.Code)
				}
			}
			if got := strings.Join(f.statuses("req-ana"), ","); got != "planned" || f.hits.Load() != 0 || len(f.statuses("revoke")) != 0 {
				t.Errorf("recorded on an unknown membership: req-ana %s, %d vendor requests", got, f.hits.Load())
			}
			if f.count("membership_unknown") != 2 || f.count("approved") != 0 {
				t.Errorf("membership_unknown %v approved %v", f.count("membership_unknown"), f.count("approved"))
			}
			eph := f.api.of("chat.postEphemeral")
			if len(eph) != 2 || eph[0].Body["user"] != "U0CY" || !strings.Contains(eph[0].Raw, "could not ask Slack") || !strings.Contains(eph[0].Raw, "("+tc.kind+")") {
				t.Errorf("ephemeral answers %+v", eph)
			}
			if n := len(f.api.of("usergroups.users.list")); n != tc.lookups {
				t.Errorf("%d lookups, want %d", n, tc.lookups)
			}
			logs := f.logs.String()
			if n := strings.Count(logs, "could not ask Slack who is in an approver user group"); n != 1 {
				t.Errorf("the failure is logged %d times, want once:\n%s", n, logs)
			}
			if !strings.Contains(logs, "kind="+tc.kind) || !strings.Contains(logs, tc.log) {
				t.Errorf("the log lacks kind=%s or %q:\n%s", tc.kind, tc.log, logs)
			}
			for _, e := range eph {
				if strings.Contains(e.Raw, botToken) {
					t.Errorf("the token is in an ephemeral message")
				}
			}
			f.assertNoSecrets(t)
		})
	}
}

// A failed lookup is not remembered as a no: once Slack answers, the
// member decides, and a later failure is logged again.
func TestApproverGroupLookupRecovers(t *testing.T) {
	f := newFixture(t, withGroups("S0SOCONCALL"))
	f.api.mu.Lock()
	f.api.usergroups = func(w http.ResponseWriter, _ string) {
		io.WriteString(w, `{"ok":false,"error":"missing_scope","needed":"usergroups:read","provided":"chat:write"}`)
	}
	f.api.mu.Unlock()
	f.click(t, "U0CY", ActionDeny, "req-bo", f.now.Unix(), signed)
	if f.count("membership_unknown") != 1 {
		t.Fatalf("membership_unknown %v", f.count("membership_unknown"))
	}
	// The scope is added; the next click asks again and is decided.
	f.api.members(map[string][]string{"S0SOCONCALL": {"U0CY"}})
	f.now = f.now.Add(time.Second)
	f.click(t, "U0CY", ActionDeny, "req-bo", f.now.Unix(), signed)
	if got := strings.Join(f.statuses("req-bo"), ","); got != "planned,denied" {
		t.Fatalf("after the fix: req-bo %s", got)
	}
	// The cache expires and the scope is gone again: refused, logged anew.
	f.api.mu.Lock()
	f.api.usergroups = func(w http.ResponseWriter, _ string) { io.WriteString(w, `{"ok":false,"error":"missing_scope"}`) }
	f.api.mu.Unlock()
	f.now = f.now.Add(groupTTL + time.Second)
	f.click(t, "U0CY", ActionApprove, "req-ana", f.now.Unix(), signed)
	if got := strings.Join(f.statuses("req-ana"), ","); got != "planned" || f.count("membership_unknown") != 2 {
		t.Errorf("an expired membership was used on an error: req-ana %s, membership_unknown %v", got, f.count("membership_unknown"))
	}
	if n := strings.Count(f.logs.String(), "could not ask Slack who is in an approver user group"); n != 2 {
		t.Errorf("logged %d times, want 2 (once per outage)", n)
	}
}
