package respond_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/deliver/respond/googleworkspace"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// The Decider (the CLI's and the Slack buttons' one path): an approval is
// recorded and revokes once however often it is given; a denial sends
// nothing; a decided action refuses another decision, naming who decided.
func TestDeciderApprovesOnceAndRefusesDecided(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	gws, err := googleworkspace.New(googleworkspace.Config{AccessToken: secret.New("tok"), BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	store := &respond.MemoryStore{}
	pending := func(id, principal string) schemas.Response {
		return schemas.Response{ID: id, IncidentID: "inc", IncidentVersion: 2, Source: gws.Source(), IntegrationID: client, Target: client,
			Principal: principal, Action: schemas.ActionRequestApproval, Mode: schemas.ModeEnforce, Status: schemas.ResponsePlanned, Rule: "r"}
	}
	ctx := context.Background()
	// c was approved, but the process stopped before its revoke ran.
	approvedC := pending("c", "cy@acme.example")
	approvedC.Status, approvedC.Actor = schemas.ResponseApproved, "U0ANA"
	store.Record(ctx, []schemas.Response{pending("a", "ana@acme.example"), pending("b", "bo@acme.example"), pending("c", "cy@acme.example"), approvedC})
	d := &respond.Decider{Lookup: store, Executor: &respond.Executor{Revokers: map[string]respond.Revoker{gws.Source(): gws},
		Sender: respond.NewHTTPSender(0), Store: store, Audit: []respond.Recorder{store}}}
	d.Executor.Sender.Client = srv.Client()

	for _, tc := range []struct {
		name, id string
		approve  bool
		statuses []string
		err      string
	}{
		{"approve", "a", true, []string{"approved", "planned", "executed"}, ""},
		{"approve again", "a", true, nil, "request_approval approved by U0ANA, not a pending approval request"},
		{"deny", "b", false, []string{"denied"}, ""},
		{"approve denied", "b", true, nil, "request_approval denied by U0ANA"},
		{"unknown", "zz", true, nil, "no response zz"},
		{"approve again after a crash resumes the revoke", "c", true, []string{"planned", "executed"}, ""},
		{"then it is decided", "c", true, nil, "request_approval approved by U0ANA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := d.Decide(ctx, tc.id, tc.approve, "U0ANA", "seen it")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				if tc.id != "zz" && !errors.Is(err, respond.ErrNotPending) {
					t.Errorf("%v is not ErrNotPending", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range out {
				got = append(got, r.Status)
				if r.Actor != "U0ANA" {
					t.Errorf("%s %s: actor %q", r.Action, r.Status, r.Actor)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.statuses, ",") {
				t.Errorf("records %v, want %v", got, tc.statuses)
			}
		})
	}
	if hits.Load() != 2 {
		t.Errorf("the vendor got %d requests, want the two approved revokes", hits.Load())
	}
}

func TestSlackApprovalsConfigIsStrictAndNamesTheField(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"slack: {sink: s, signing_secret: x, approvers: [U0ANA], pathh: /x}", "pathh"},
		{"slack: {signing_secret: x, approvers: [U0ANA]}", "respond.slack.sink"},
		{"slack: {sink: s, approvers: [U0ANA]}", "respond.slack.signing_secret"},
		{"slack: {sink: s, signing_secret: x}", "respond.slack.approvers"},
		{"slack: {sink: s, signing_secret: x, approvers: [ana]}", "respond.slack.approvers[0]"},
		{"slack: {sink: s, signing_secret: x, approvers: [], approver_groups: []}", "respond.slack.approver_groups"},
		{"slack: {sink: s, signing_secret: x, approver_groups: [soc-oncall]}", "respond.slack.approver_groups[0]"},
		{"slack: {sink: s, signing_secret: x, approver_groups: [U0ANA]}", "respond.slack.approver_groups[0]"},
		{"slack: {sink: s, signing_secret: x, approver_group: [S0SOC]}", "approver_group"},
		{"slack: {sink: s, signing_secret: x, approvers: [U0ANA], path: slack}", "respond.slack.path"},
		{"slack: {sink: s, signing_secret: x, approvers: [U0ANA], replay_window: 2h}", "respond.slack.replay_window"},
	} {
		var c respond.Config
		err := yaml.Unmarshal([]byte(tc.doc), &c)
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.doc, err, tc.want)
		}
	}
	var c respond.Config
	if err := yaml.Unmarshal([]byte("slack: {sink: s, signing_secret: x, approvers: [U0ANA]}"), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil || c.Slack.Path != respond.DefaultSlackPath || c.Slack.ReplayWindow.Minutes() != 5 {
		t.Errorf("defaults: %v %+v", err, c.Slack)
	}
	// A user group alone is enough.
	c = respond.Config{}
	if err := yaml.Unmarshal([]byte("slack: {sink: s, signing_secret: x, approver_groups: [S0SOCONCALL]}"), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil || len(c.Slack.ApproverGroups) != 1 {
		t.Errorf("approver_groups alone: %v %+v", err, c.Slack)
	}
}

// Approving a request_approval honours the mode of the rule that asked: a
// dry_run request records the approval and a dry-run revoke with its
// requests and sends nothing (approving it again is refused as decided);
// an enforce request sends the revoke. A request recorded without a mode is
// a dry run, the policy's default.
func TestDeciderApprovalKeepsTheRuleMode(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	gws, err := googleworkspace.New(googleworkspace.Config{AccessToken: secret.New("tok"), BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	store := &respond.MemoryStore{}
	request := func(id, mode, principal string) schemas.Response {
		return schemas.Response{ID: id, IncidentID: "inc-" + id, IncidentVersion: 1, Source: gws.Source(), IntegrationID: client, Target: client,
			Principal: principal, Action: schemas.ActionRequestApproval, Mode: mode, Status: schemas.ResponsePlanned, Rule: "rule-" + id}
	}
	ctx := context.Background()
	store.Record(ctx, []schemas.Response{request("dry", schemas.ModeDryRun, "ana@acme.example"),
		request("nomode", "", "bo@acme.example"), request("enf", schemas.ModeEnforce, "cy@acme.example")})
	d := &respond.Decider{Lookup: store, Executor: &respond.Executor{Revokers: map[string]respond.Revoker{gws.Source(): gws},
		Sender: respond.NewHTTPSender(0), Store: store, Audit: []respond.Recorder{store}}}
	d.Executor.Sender.Client = srv.Client()

	for _, id := range []string{"dry", "nomode"} {
		out, err := d.Decide(ctx, id, true, "ana", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 2 || out[0].Status != schemas.ResponseApproved || out[1].Action != schemas.ActionRevoke ||
			out[1].Mode != schemas.ModeDryRun || out[1].Status != schemas.ResponsePlanned {
			t.Fatalf("%s: records %+v, want approved then a dry_run revoke planned", id, out)
		}
		if len(out[1].Requests) != 1 || !strings.HasPrefix(out[1].Requests[0], "DELETE "+srv.URL) {
			t.Errorf("%s: the dry-run revoke records requests %v", id, out[1].Requests)
		}
		if !strings.Contains(out[1].Reason, "nothing sent") {
			t.Errorf("%s: reason %q does not say nothing was sent", id, out[1].Reason)
		}
		if _, err := d.Decide(ctx, id, true, "ana", ""); !errors.Is(err, respond.ErrNotPending) {
			t.Errorf("%s: approving a decided dry-run request again: %v", id, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("approving dry_run requests sent %d requests, want 0", n)
	}
	out, err := d.Decide(ctx, "enf", true, "ana", "")
	if err != nil {
		t.Fatal(err)
	}
	if last := out[len(out)-1]; last.Mode != schemas.ModeEnforce || last.Status != schemas.ResponseExecuted {
		t.Errorf("enforce: last record %+v, want an enforce revoke executed", last)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("approving an enforce request sent %d requests, want 1", n)
	}
}
