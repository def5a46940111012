package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenwatch/tokenwatch/deliver/delivertest"
	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/deliver/respond/googleworkspace"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/internal/platform/slacksig"
	"github.com/tokenwatch/tokenwatch/schemas"
)

const (
	signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	botToken      = "xoxb-approvals-secret"
	vendorToken   = "ya29.vendor-secret"
	gwsClient     = "1234567890-abc.apps.googleusercontent.com"
)

// webAPI is a fake Slack Web API that keeps every call it got.
type webAPI struct {
	t     *testing.T
	mu    sync.Mutex
	calls []apiCall
	// usergroups answers usergroups.users.list for a group; nil answers
	// no_such_subteam.
	usergroups func(w http.ResponseWriter, group string)
}

type apiCall struct {
	Method string // chat.update, chat.postMessage, chat.postEphemeral
	Body   map[string]any
	Raw    string
}

func (f *webAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/usergroups.users.list" {
		f.usergroupsUsersList(w, r)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer "+botToken ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		f.t.Errorf("Slack API got %s %s auth %q type %q", r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"))
	}
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		f.t.Errorf("Slack API body: %v", err)
	}
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	f.mu.Lock()
	f.calls = append(f.calls, apiCall{Method: method, Body: body, Raw: string(raw)})
	f.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": "C0SOC", "ts": "1700000000.000100"})
}

// usergroupsUsersList takes the request as Slack documents it
// (api.slack.com/methods/usergroups.users.list): GET, the token in the
// Authorization header (never in the query), usergroup=S….
func (f *webAPI) usergroupsUsersList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.Method != http.MethodGet || r.Header.Get("Authorization") != "Bearer "+botToken || q.Get("token") != "" ||
		!strings.HasPrefix(q.Get("usergroup"), "S") || strings.Contains(r.URL.RawQuery, botToken) {
		f.t.Errorf("usergroups.users.list got %s %s auth %q", r.Method, r.URL.RawQuery, r.Header.Get("Authorization"))
	}
	f.mu.Lock()
	f.calls = append(f.calls, apiCall{Method: "usergroups.users.list", Body: map[string]any{"usergroup": q.Get("usergroup")}, Raw: r.URL.RawQuery})
	answer := f.usergroups
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if answer == nil {
		io.WriteString(w, `{"ok":false,"error":"no_such_subteam"}`)
		return
	}
	answer(w, q.Get("usergroup"))
}

// members makes usergroups.users.list answer with the current members of
// each group.
func (f *webAPI) members(groups map[string][]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.usergroups = func(w http.ResponseWriter, group string) {
		users, ok := groups[group]
		if !ok {
			io.WriteString(w, `{"ok":false,"error":"no_such_subteam"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"ok": true, "users": users})
	}
}

func (f *webAPI) of(method string) []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []apiCall
	for _, c := range f.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type fixture struct {
	a      *Approvals
	api    *webAPI
	store  *respond.MemoryStore
	hits   *atomic.Int32
	reg    *prometheus.Registry
	logs   *bytes.Buffer
	now    time.Time
	cancel func()
}

func newFixture(t *testing.T, opts ...func(*respond.SlackApprovals)) *fixture {
	t.Helper()
	f := &fixture{api: &webAPI{t: t}, store: &respond.MemoryStore{}, hits: &atomic.Int32{}, reg: prometheus.NewRegistry(),
		logs: &bytes.Buffer{}, now: time.Unix(1_700_000_500, 0)}
	slackSrv := httptest.NewServer(f.api)
	t.Cleanup(slackSrv.Close)
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		if r.Method != http.MethodDelete || r.URL.Path != "/admin/directory/v1/users/ana@acme.example/tokens/"+gwsClient ||
			r.Header.Get("Authorization") != "Bearer "+vendorToken {
			t.Errorf("vendor got %s %s", r.Method, r.URL.Path)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(vendor.Close)
	gws, err := googleworkspace.New(googleworkspace.Config{AccessToken: secret.New(vendorToken), BaseURL: vendor.URL})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.BotToken, cfg.Channel, cfg.APIURL = secret.New(botToken), "C0SOC", slackSrv.URL+"/api"
	sink, err := New("soc-slack", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ac := respond.SlackApprovals{Sink: "soc-slack", SigningSecret: secret.New(signingSecret), Approvers: []string{"U0ANA"}}
	for _, o := range opts {
		o(&ac)
	}
	if err := ac.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ex := &respond.Executor{Revokers: map[string]respond.Revoker{gws.Source(): gws}, Sender: respond.NewHTTPSender(5 * time.Second),
		Store: f.store, Log: log}
	d := &respond.Decider{Lookup: f.store, Executor: ex}
	f.a = NewApprovals(ac, d, NewApprovalMetrics(f.reg), log)
	f.a.now = func() time.Time { return f.now }
	ex.Audit = []respond.Recorder{f.store, f.a} // as the role's Signal does
	f.a.Attach(sink)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.a.Run(ctx); close(done) }()
	f.cancel = func() { cancel(); <-done }
	t.Cleanup(f.cancel)

	// The incident and two pending approvals, as the respond stage records
	// them; then the sink posts the incident message.
	inc := delivertest.Incident(2, schemas.IncidentOpen)
	inc.Source = gws.Source()
	f.a.Incident(inc)
	pending := func(id, principal string) schemas.Response {
		return schemas.Response{ID: id, IncidentID: inc.ID, IncidentVersion: inc.Version, Source: gws.Source(), IntegrationID: gwsClient,
			Target: gwsClient, Principal: principal, Action: schemas.ActionRequestApproval, Mode: schemas.ModeEnforce,
			Status: schemas.ResponsePlanned, Rule: "revoke-high", Reason: "integration is on respond.allow_list"}
	}
	rs := []schemas.Response{pending("req-ana", "ana@acme.example"), pending("req-bo", "bo@acme.example")}
	f.store.Record(context.Background(), rs)
	f.a.Record(context.Background(), rs)
	if _, err := sink.SendIncident(context.Background(), inc, ""); err != nil {
		t.Fatal(err)
	}
	return f
}

// click POSTs a block_actions payload as Slack does, signed at ts.
func (f *fixture) click(t *testing.T, user, actionID, responseID string, ts int64, sign func(ts string, body []byte) string) *httptest.ResponseRecorder {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"type":         "block_actions",
		"user":         map[string]string{"id": user, "username": strings.ToLower(user)},
		"actions":      []map[string]string{{"action_id": actionID, "block_id": "tokenwatch_approval:" + responseID, "value": responseID, "type": "button"}},
		"container":    map[string]any{"type": "message", "message_ts": "1700000000.000100", "channel_id": "C0SOC"},
		"response_url": "https://hooks.slack.com/actions/T0/1/never-called",
	})
	body := []byte("payload=" + url.QueryEscape(string(payload)))
	req := httptest.NewRequest(http.MethodPost, "/slack/interactions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	s := strconv.FormatInt(ts, 10)
	req.Header.Set("X-Slack-Request-Timestamp", s)
	req.Header.Set("X-Slack-Signature", sign(s, body))
	w := httptest.NewRecorder()
	f.a.ServeHTTP(w, req)
	f.a.work.Wait()
	return w
}

func signed(ts string, body []byte) string { return slacksig.Sign(secret.New(signingSecret), ts, body) }

func (f *fixture) statuses(id string) []string {
	var out []string
	for _, r := range f.store.All() {
		if r.ID == id || (id == "revoke" && r.Action == schemas.ActionRevoke) {
			out = append(out, r.Status)
		}
	}
	return out
}

func (f *fixture) count(result string) float64 {
	fams, _ := f.reg.Gather()
	for _, fam := range fams {
		if fam.GetName() != "tokenwatch_respond_slack_interactions_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// lastUpdate is the latest chat.update body, once there are n of them.
func (f *fixture) lastUpdate(t *testing.T, n int) string {
	t.Helper()
	waitFor(t, strconv.Itoa(n)+" chat.update calls", func() bool { return len(f.api.of("chat.update")) >= n })
	u := f.api.of("chat.update")
	return u[len(u)-1].Raw
}

func TestIncidentMessageCarriesApproveAndDenyPerPendingAction(t *testing.T) {
	f := newFixture(t)
	posts := f.api.of("chat.postMessage")
	if len(posts) != 1 {
		t.Fatalf("%d posts", len(posts))
	}
	var msg struct {
		Blocks []struct {
			Type     string `json:"type"`
			BlockID  string `json:"block_id"`
			Elements []struct {
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
				Style    string `json:"style"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	json.Unmarshal([]byte(posts[0].Raw), &msg)
	var got []string
	for _, b := range msg.Blocks {
		if b.Type == "actions" {
			for _, e := range b.Elements {
				got = append(got, b.BlockID+" "+e.ActionID+" "+e.Value+" "+e.Style)
			}
		}
	}
	want := []string{
		"tokenwatch_approval:req-ana tokenwatch_approve req-ana primary", "tokenwatch_approval:req-ana tokenwatch_deny req-ana danger",
		"tokenwatch_approval:req-bo tokenwatch_approve req-bo primary", "tokenwatch_approval:req-bo tokenwatch_deny req-bo danger",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("buttons:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(posts[0].Raw, `"confirm":{"title":{"type":"plain_text","text":"Revoke access?"}`) {
		t.Errorf("Approve asks for no confirmation: %s", posts[0].Raw)
	}
	if !strings.Contains(posts[0].Raw, "awaiting approval") || !strings.Contains(posts[0].Raw, "*Blast radius*") {
		t.Errorf("the message lacks the incident or its actions: %s", posts[0].Raw)
	}
}

func TestApproverClickApprovesOnceAndUpdatesTheMessage(t *testing.T) {
	f := newFixture(t)
	ts := f.now.Unix()
	if w := f.click(t, "U0ANA", ActionApprove, "req-ana", ts, signed); w.Code != http.StatusOK {
		t.Fatalf("approve: %d %s", w.Code, w.Body)
	}
	if f.hits.Load() != 1 {
		t.Fatalf("vendor got %d revoke requests, want 1", f.hits.Load())
	}
	if got := strings.Join(f.statuses("req-ana"), ","); got != "planned,approved" {
		t.Errorf("req-ana records %s", got)
	}
	if got := strings.Join(f.statuses("revoke"), ","); got != "planned,executed" {
		t.Errorf("revoke records %s", got)
	}
	// The message shows who decided, and req-ana's buttons are gone while
	// req-bo's stay.
	waitFor(t, "the decision on the message", func() bool {
		u := f.api.of("chat.update")
		return len(u) > 0 && strings.Contains(u[len(u)-1].Raw, "executed")
	})
	u := f.lastUpdate(t, 1)
	for _, want := range []string{`"channel":"C0SOC"`, `"ts":"1700000000.000100"`, "approved: google_workspace " + gwsClient + " / ana@acme.example by \\u003c@U0ANA\\u003e at ", "tokenwatch_approval:req-bo"} {
		if !strings.Contains(u, want) {
			t.Errorf("chat.update lacks %s:\n%s", want, u)
		}
	}
	if strings.Contains(u, "tokenwatch_approval:req-ana") {
		t.Errorf("req-ana's buttons are still there:\n%s", u)
	}
	// A repeated click is refused, told to the user alone, and revokes
	// nothing more.
	f.now = f.now.Add(time.Second)
	if w := f.click(t, "U0ANA", ActionApprove, "req-ana", f.now.Unix(), signed); w.Code != http.StatusOK {
		t.Fatalf("second approve: %d", w.Code)
	}
	if f.hits.Load() != 1 || f.count("already_decided") != 1 || f.count("approved") != 1 {
		t.Errorf("second click: %d vendor requests, already_decided %v approved %v", f.hits.Load(), f.count("already_decided"), f.count("approved"))
	}
	eph := f.api.of("chat.postEphemeral")
	if len(eph) != 1 || eph[0].Body["user"] != "U0ANA" || !strings.Contains(eph[0].Raw, "approved by slack:U0ANA, not a pending approval request") {
		t.Errorf("ephemeral answers %+v", eph)
	}
	f.assertNoSecrets(t)
}

func TestClicksRefusedOrDenied(t *testing.T) {
	for _, tc := range []struct {
		name      string
		user      string
		action    string
		ts        func(now time.Time) int64
		sign      func(ts string, body []byte) string
		code      int
		result    string
		statuses  string // of req-bo
		ephemeral string
	}{
		{"bad signature", "U0ANA", ActionApprove, func(n time.Time) int64 { return n.Unix() },
			func(ts string, body []byte) string { return slacksig.Sign(secret.New("not-the-secret"), ts, body) },
			http.StatusUnauthorized, "bad_signature", "planned", ""},
		{"stale timestamp", "U0ANA", ActionApprove, func(n time.Time) int64 { return n.Add(-6 * time.Minute).Unix() }, signed,
			http.StatusUnauthorized, "stale", "planned", ""},
		{"unsigned", "U0ANA", ActionApprove, func(n time.Time) int64 { return n.Unix() }, func(string, []byte) string { return "" },
			http.StatusUnauthorized, "unsigned", "planned", ""},
		{"not an approver", "U0MALLORY", ActionApprove, func(n time.Time) int64 { return n.Unix() }, signed,
			http.StatusOK, "not_approver", "planned", "Only the approvers"},
		{"deny", "U0ANA", ActionDeny, func(n time.Time) int64 { return n.Unix() }, signed,
			http.StatusOK, "denied", "planned,denied", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			w := f.click(t, tc.user, tc.action, "req-bo", tc.ts(f.now), tc.sign)
			if w.Code != tc.code {
				t.Fatalf("answered %d, want %d", w.Code, tc.code)
			}
			if f.count(tc.result) != 1 {
				t.Errorf("%s not counted", tc.result)
			}
			if got := strings.Join(f.statuses("req-bo"), ","); got != tc.statuses {
				t.Errorf("req-bo records %s, want %s", got, tc.statuses)
			}
			if f.hits.Load() != 0 || len(f.statuses("revoke")) != 0 {
				t.Errorf("revoked: %d vendor requests", f.hits.Load())
			}
			eph := f.api.of("chat.postEphemeral")
			if tc.ephemeral == "" && len(eph) > 0 || tc.ephemeral != "" && (len(eph) != 1 || !strings.Contains(eph[0].Raw, tc.ephemeral)) {
				t.Errorf("ephemeral answers %+v", eph)
			}
			if tc.result == "denied" {
				waitFor(t, "the denial on the message", func() bool {
					u := f.api.of("chat.update")
					return len(u) > 0 && strings.Contains(u[len(u)-1].Raw, "denied: google_workspace "+gwsClient+" / bo@acme.example by \\u003c@U0ANA\\u003e at ")
				})
				if u := f.lastUpdate(t, 1); strings.Contains(u, "tokenwatch_approval:req-bo") {
					t.Errorf("req-bo's buttons are still there:\n%s", u)
				}
			}
			if tc.code == http.StatusUnauthorized && !strings.Contains(f.logs.String(), "refused an interaction not signed by Slack") {
				t.Errorf("refusal not logged:\n%s", f.logs)
			}
			f.assertNoSecrets(t)
		})
	}
}

// A byte-identical replay of a signed click inside the window is ignored.
func TestReplayedClickIsIgnored(t *testing.T) {
	f := newFixture(t)
	payload := `{"type":"block_actions","user":{"id":"U0ANA"},"actions":[{"action_id":"tokenwatch_deny","value":"req-bo"}],"container":{"channel_id":"C0SOC","message_ts":"1700000000.000100"}}`
	body := []byte("payload=" + url.QueryEscape(payload))
	ts := strconv.FormatInt(f.now.Unix(), 10)
	for i := 0; i < 2; i++ {
		req := httptest.NewRequest(http.MethodPost, "/slack/interactions", bytes.NewReader(body))
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", signed(ts, body))
		f.a.ServeHTTP(httptest.NewRecorder(), req)
		f.a.work.Wait()
	}
	if f.count("denied") != 1 || f.count("replayed") != 1 || f.count("already_decided") != 0 {
		t.Errorf("denied %v replayed %v already_decided %v", f.count("denied"), f.count("replayed"), f.count("already_decided"))
	}
}

// What is not a signed block_actions POST is answered without deciding.
func TestOtherRequestsAreAnsweredWithoutDeciding(t *testing.T) {
	for _, tc := range []struct {
		name, method, body, result string
		code                       int
	}{
		{"GET", http.MethodGet, "", "", http.StatusMethodNotAllowed},
		{"no payload field", http.MethodPost, "text=hello", "bad_payload", http.StatusBadRequest},
		{"payload not JSON", http.MethodPost, "payload=%7Bnope", "bad_payload", http.StatusBadRequest},
		{"another payload type", http.MethodPost, "payload=" + url.QueryEscape(`{"type":"view_submission"}`), "ignored", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ts := strconv.FormatInt(f.now.Unix(), 10)
			req := httptest.NewRequest(tc.method, "/slack/interactions", strings.NewReader(tc.body))
			req.Header.Set("X-Slack-Request-Timestamp", ts)
			req.Header.Set("X-Slack-Signature", signed(ts, []byte(tc.body)))
			w := httptest.NewRecorder()
			f.a.ServeHTTP(w, req)
			f.a.work.Wait()
			if w.Code != tc.code || tc.result != "" && f.count(tc.result) != 1 {
				t.Errorf("answered %d (want %d), %s counted %v", w.Code, tc.code, tc.result, f.count(tc.result))
			}
			if got := strings.Join(f.statuses("req-bo"), ","); got != "planned" || f.hits.Load() != 0 {
				t.Errorf("decided: req-bo %s, %d vendor requests", got, f.hits.Load())
			}
		})
	}
}

func (f *fixture) assertNoSecrets(t *testing.T) {
	t.Helper()
	for _, s := range []string{signingSecret, botToken, vendorToken} {
		if strings.Contains(f.logs.String(), s) {
			t.Errorf("a secret is in the logs:\n%s", f.logs)
		}
		for _, c := range f.api.of("chat.update") {
			if strings.Contains(c.Raw, s) {
				t.Errorf("a secret is in a Slack message")
			}
		}
	}
}

type historyFunc func(ctx context.Context, incidentID string) ([]schemas.Response, error)

func (h historyFunc) IncidentResponses(ctx context.Context, id string) ([]schemas.Response, error) {
	return h(ctx, id)
}

// After a restart the boards are empty: the next version of an incident
// starts from its recorded actions, so pending buttons stay on the message.
func TestAfterARestartTheMessageKeepsItsRecordedActions(t *testing.T) {
	f := newFixture(t)
	sink := f.a.sink.Load()
	restarted := NewApprovals(f.a.cfg, nil, nil, nil)
	restarted.UseHistory(historyFunc(func(_ context.Context, id string) ([]schemas.Response, error) {
		var out []schemas.Response
		for _, r := range f.store.All() {
			if r.IncidentID == id {
				out = append(out, r)
			}
		}
		return out, nil
	}))
	restarted.Attach(sink)
	inc := delivertest.Incident(3, schemas.IncidentOpen)
	if _, err := sink.SendIncident(context.Background(), inc, "C0SOC|1700000000.000100"); err != nil {
		t.Fatal(err)
	}
	// The first board's own refresh of v2 may land too: find v3's update.
	var u string
	waitFor(t, "the v3 update", func() bool {
		for _, c := range f.api.of("chat.update") {
			if strings.Contains(c.Raw, "(v3)") {
				u = c.Raw
			}
		}
		return u != ""
	})
	for _, want := range []string{"tokenwatch_approval:req-ana", "tokenwatch_approval:req-bo"} {
		if !strings.Contains(u, want) {
			t.Errorf("the update after a restart lacks %s:\n%s", want, u)
		}
	}
}

// A click on a message of an incident not heard of since the start is
// decided, and the user is told the message catches up later.
func TestClickOnAnIncidentNotHeardOfSinceTheStart(t *testing.T) {
	f := newFixture(t)
	f.a.mu.Lock()
	delete(f.a.boards, "5b1e0c9a7d3f4e2a8c6b0d1f3e5a7c9b")
	f.a.order = nil
	f.a.actions = map[string]string{}
	f.a.mu.Unlock()
	if w := f.click(t, "U0ANA", ActionDeny, "req-bo", f.now.Unix(), signed); w.Code != http.StatusOK {
		t.Fatalf("deny: %d", w.Code)
	}
	if got := strings.Join(f.statuses("req-bo"), ","); got != "planned,denied" {
		t.Errorf("req-bo records %s", got)
	}
	eph := f.api.of("chat.postEphemeral")
	if len(eph) != 1 || !strings.Contains(eph[0].Raw, "Recorded: denied") || !strings.Contains(eph[0].Raw, "tokenwatch incident timeline 5b1e0c9a7d3f4e2a8c6b0d1f3e5a7c9b") {
		t.Errorf("ephemeral answers %+v", eph)
	}
}

// A request_approval asked by a dry_run rule: its Approve button and
// confirmation say it is a dry run, and the click records the approval and
// a dry-run revoke, sends nothing to the vendor, and the message says so.
func TestApprovingADryRunRequestSendsNothing(t *testing.T) {
	f := newFixture(t)
	rs := f.store.All()
	dry := rs[0]
	dry.ID, dry.Principal, dry.Mode, dry.Rule = "req-dee", "dee@acme.example", schemas.ModeDryRun, "rehearse"
	f.store.Record(context.Background(), []schemas.Response{dry})
	f.a.Record(context.Background(), []schemas.Response{dry})
	blocks, _ := json.Marshal(actionBlocks([]schemas.Response{dry}))
	for _, want := range []string{"Approve (dry run) " + gwsClient, "Approve the dry run?", "nothing is sent to the vendor"} {
		if !strings.Contains(string(blocks), want) {
			t.Errorf("the dry-run request's buttons lack %q:\n%s", want, blocks)
		}
	}
	if w := f.click(t, "U0ANA", ActionApprove, "req-dee", f.now.Unix(), signed); w.Code != http.StatusOK {
		t.Fatalf("approve: %d %s", w.Code, w.Body)
	}
	if got := strings.Join(f.statuses("req-dee"), ","); got != "planned,approved" {
		t.Errorf("req-dee records %s", got)
	}
	if got := strings.Join(f.statuses("revoke"), ","); got != "planned" {
		t.Errorf("revoke records %s, want one planned (dry run)", got)
	}
	waitFor(t, "the dry-run revoke on the message", func() bool {
		u := f.api.of("chat.update")
		return len(u) > 0 && strings.Contains(u[len(u)-1].Raw, "(dry run: nothing sent)")
	})
	if f.hits.Load() != 0 {
		t.Errorf("approving a dry_run request sent %d requests to the vendor, want 0", f.hits.Load())
	}
}
