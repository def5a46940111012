package slack

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/internal/platform/slacksig"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// The action_id of the buttons; their value is the response id of the
// request_approval they answer, never anything secret.
const (
	ActionApprove = "tokenwatch_approve"
	ActionDeny    = "tokenwatch_deny"
)

// Decider answers a pending approval: respond.Role.Decide, the path the
// CLI's approve and deny take too.
type Decider interface {
	Decide(ctx context.Context, id string, approve bool, actor, reason string) ([]schemas.Response, error)
}

// ApprovalMetrics count the clicks and the message updates.
type ApprovalMetrics struct {
	interactions *prometheus.CounterVec
	updates      *prometheus.CounterVec
}

// NewApprovalMetrics creates and registers the instruments on reg.
func NewApprovalMetrics(reg prometheus.Registerer) *ApprovalMetrics {
	m := &ApprovalMetrics{
		interactions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_respond_slack_interactions_total",
			Help: "Slack button clicks on approval requests, by result (approved, denied, already_decided, not_approver, membership_unknown, failed, bad_signature, stale, unsigned, replayed, bad_payload, ignored)."},
			[]string{"result"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenwatch_respond_slack_message_updates_total",
			Help: "chat.update of incident messages to show their actions, by result (ok, failed, dropped)."}, []string{"result"}),
	}
	reg.MustRegister(m.interactions, m.updates)
	return m
}

func (m *ApprovalMetrics) click(result string) {
	if m != nil {
		m.interactions.WithLabelValues(result).Inc()
	}
}

func (m *ApprovalMetrics) update(result string) {
	if m != nil {
		m.updates.WithLabelValues(result).Inc()
	}
}

// Approvals puts the respond stage's actions on the Slack sink's incident
// messages and takes the Approve / Deny clicks on them:
//
//   - as a respond.Signaler it hears every incident version and every audit
//     record, and keeps, per incident, the latest state of each action;
//   - attached to the sink (Attach), it adds an Actions section and, per
//     pending request_approval, an actions block with the two buttons to the
//     message the sink renders, and learns the message's channel and ts;
//   - its Run loop re-renders a message with chat.update when an action
//     changes (a decision removes its buttons and names who decided, when);
//   - as an http.Handler it is the app's Interactivity Request URL: it
//     verifies Slack's signature and timestamp, answers 200 at once (Slack
//     wants an answer within 3 s) and decides afterwards, for configured
//     approvers only.
//
// What it keeps is in memory, bounded; with a History (ClickHouse) an
// incident first seen after a restart starts from its recorded actions.
type Approvals struct {
	cfg       respond.SlackApprovals
	approvers map[string]bool
	groups    *groups // respond.slack.approver_groups; nil without
	decider   Decider
	history   History // nil: only what was heard since the start
	metrics   *ApprovalMetrics
	log       *slog.Logger
	now       func() time.Time
	sink      atomic.Pointer[Sink]
	queue     chan string
	work      sync.WaitGroup // clicks being decided

	mu      sync.Mutex
	boards  map[string]*board // by incident id
	order   []string          // incident ids, oldest first, for the bound
	actions map[string]string // action (response) id → incident id
	replays recentSet         // signed requests already taken
}

// board is what one incident's message shows.
type board struct {
	inc     *schemas.Incident
	receipt deliver.Receipt    // "channel|ts", "" until posted
	actions []schemas.Response // the latest record of each action, first seen first
	loaded  bool               // actions include the trail's (History)
}

// History reads every step of the actions on an incident, oldest first
// (ClickHouse responses).
type History interface {
	IncidentResponses(ctx context.Context, incidentID string) ([]schemas.Response, error)
}

// UseHistory makes the boards of incidents not heard of since the start
// begin with their recorded actions; call it before Run.
func (a *Approvals) UseHistory(h History) { a.history = h }

// maxBoards bounds the incidents remembered; the oldest is forgotten.
const maxBoards = 2000

// NewApprovals builds the component from a validated respond.slack.
func NewApprovals(cfg respond.SlackApprovals, d Decider, m *ApprovalMetrics, log *slog.Logger) *Approvals {
	approvers := map[string]bool{}
	for _, a := range cfg.Approvers {
		approvers[a] = true
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var g *groups
	if len(cfg.ApproverGroups) > 0 {
		g = newGroups(cfg.ApproverGroups)
	}
	return &Approvals{cfg: cfg, approvers: approvers, groups: g, decider: d, metrics: m, log: log.With("component", "slack-approvals"),
		now: time.Now, queue: make(chan string, 256), boards: map[string]*board{}, actions: map[string]string{}, replays: newRecentSet(4096)}
}

// Attach makes s the sink whose incident messages carry the actions and
// whose bot token updates them.
func (a *Approvals) Attach(s *Sink) {
	a.sink.Store(s)
	s.approvals.Store(a)
}

// Path is where the handler is served.
func (a *Approvals) Path() string { return a.cfg.Path }

// Incident implements respond.Signaler: the latest version is what a
// refresh renders.
func (a *Approvals) Incident(inc schemas.Incident) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.boardLocked(inc.ID)
	if b.inc == nil || inc.Version >= b.inc.Version {
		b.inc = &inc
	}
}

// Record implements respond.Recorder (and so respond.Signaler): it keeps
// the latest state of each action and queues a refresh of its message. It
// does not block the stage.
func (a *Approvals) Record(_ context.Context, rs []schemas.Response) error {
	touched := map[string]bool{}
	a.mu.Lock()
	for _, r := range rs {
		b := a.boardLocked(r.IncidentID)
		a.actions[r.ID] = r.IncidentID
		b.actions = merge(b.actions, r)
		touched[r.IncidentID] = true
	}
	a.mu.Unlock()
	for id := range touched {
		a.enqueue(id)
	}
	return nil
}

// merge puts r, the latest record of its action, into actions.
func merge(actions []schemas.Response, r schemas.Response) []schemas.Response {
	for i := range actions {
		if actions[i].ID == r.ID {
			actions[i] = r
			return actions
		}
	}
	return append(actions, r)
}

// load fills an incident's board from the trail once (after a restart the
// board starts empty while the message still shows pending requests); the
// records heard live since are newer and win. A failed read is retried at
// the next render.
func (a *Approvals) load(ctx context.Context, incidentID string) {
	if a.history == nil {
		return
	}
	a.mu.Lock()
	b, ok := a.boards[incidentID]
	done := ok && b.loaded
	a.mu.Unlock()
	if done {
		return
	}
	steps, err := a.history.IncidentResponses(ctx, incidentID)
	if err != nil {
		a.log.Warn("could not read the incident's actions", "incident_id", incidentID, "err", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	b = a.boardLocked(incidentID)
	var actions []schemas.Response
	for _, r := range steps {
		actions = merge(actions, r)
		a.actions[r.ID] = incidentID
	}
	for _, r := range b.actions {
		actions = merge(actions, r)
	}
	b.actions, b.loaded = actions, true
}

func (a *Approvals) boardLocked(incidentID string) *board {
	if b, ok := a.boards[incidentID]; ok {
		return b
	}
	if len(a.order) >= maxBoards {
		old := a.order[0]
		a.order = a.order[1:]
		for _, r := range a.boards[old].actions {
			delete(a.actions, r.ID)
		}
		delete(a.boards, old)
	}
	b := &board{}
	a.boards[incidentID] = b
	a.order = append(a.order, incidentID)
	return b
}

func (a *Approvals) enqueue(incidentID string) {
	select {
	case a.queue <- incidentID:
	default:
		// The next record or version of the incident refreshes it again.
		a.metrics.update("dropped")
		a.log.Warn("message refresh queue full, dropped", "incident_id", incidentID)
	}
}

// render is what the sink posts for inc: the incident and its actions.
func (a *Approvals) render(ctx context.Context, inc *schemas.Incident) Message {
	a.load(ctx, inc.ID)
	a.mu.Lock()
	var actions []schemas.Response
	if b, ok := a.boards[inc.ID]; ok {
		actions = append(actions, b.actions...)
	}
	a.mu.Unlock()
	return BuildIncidentMessageWithActions(inc, actions)
}

// delivered is the sink telling where inc's message is; a refresh follows
// when actions are known, in case they changed while the sink rendered.
func (a *Approvals) delivered(inc schemas.Incident, r deliver.Receipt) {
	a.mu.Lock()
	b := a.boardLocked(inc.ID)
	b.receipt = r
	if b.inc == nil || inc.Version >= b.inc.Version {
		b.inc = &inc
	}
	again := len(b.actions) > 0
	a.mu.Unlock()
	if again {
		a.enqueue(inc.ID)
	}
}

// Run updates messages as their actions change, until ctx ends.
func (a *Approvals) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			a.work.Wait()
			return nil
		case id := <-a.queue:
			a.refresh(ctx, id)
		}
	}
}

// refresh re-renders incident id's message with chat.update, when the
// message and the incident are known.
func (a *Approvals) refresh(ctx context.Context, id string) {
	s := a.sink.Load()
	a.mu.Lock()
	b, ok := a.boards[id]
	var inc *schemas.Incident
	var receipt deliver.Receipt
	if ok {
		inc, receipt = b.inc, b.receipt
	}
	a.mu.Unlock()
	channel, ts, posted := strings.Cut(string(receipt), "|")
	if s == nil || inc == nil || !posted {
		return // the sink renders the actions when it posts the message
	}
	if _, err := s.api(ctx, "chat.update", botMessage{Channel: channel, TS: ts, Message: a.render(ctx, inc)}); err != nil {
		a.metrics.update("failed")
		a.log.Warn("could not update the incident message with its actions", "incident_id", id, "err", err)
		return
	}
	a.metrics.update("ok")
}

// interaction is the part of a block_actions payload read here
// (docs.slack.dev/reference/interaction-payloads/block_actions-payload).
type interaction struct {
	Type string `json:"type"`
	User struct {
		ID       string `json:"id"`
		Username string `json:"username"`
	} `json:"user"`
	Actions []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
	} `json:"actions"`
	Container struct {
		MessageTS string `json:"message_ts"`
		ChannelID string `json:"channel_id"`
	} `json:"container"`
}

// maxInteraction bounds a request body: the payload carries the whole
// message, at most 50 blocks of a few KB.
const maxInteraction = 1 << 20

// ServeHTTP takes Slack's interactivity POST (application/x-www-form-
// urlencoded, the JSON in field "payload"; api.slack.com/interactivity/handling).
// A request not signed with the signing secret, or signed outside the
// replay window, is answered 401; a signed one 200 at once, and its clicks
// are decided afterwards.
func (a *Approvals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInteraction))
	if err != nil {
		a.metrics.click("bad_payload")
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	key, err := slacksig.Verify(a.cfg.SigningSecret, a.cfg.ReplayWindow, r.Header, body, a.now())
	if err != nil {
		result := "bad_signature"
		switch {
		case errors.Is(err, slacksig.ErrStale):
			result = "stale"
		case errors.Is(err, slacksig.ErrUnsigned):
			result = "unsigned"
		}
		a.metrics.click(result)
		a.log.Warn("refused an interaction not signed by Slack", "result", result, "err", err, "remote", r.RemoteAddr)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if a.replayed(key) {
		a.metrics.click("replayed")
		a.log.Warn("ignored a replayed interaction", "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusOK)
		return
	}
	form, err := url.ParseQuery(string(body))
	var ia interaction
	if err == nil {
		err = json.Unmarshal([]byte(form.Get("payload")), &ia)
	}
	if err != nil {
		a.metrics.click("bad_payload")
		a.log.Warn("unreadable interaction payload", "err", err)
		http.Error(w, "no payload field with a JSON interaction", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	if ia.Type != "block_actions" {
		a.metrics.click("ignored")
		return
	}
	a.work.Add(1)
	go func() {
		defer a.work.Done()
		// Not the request's context: it ends with the 200 already sent.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		a.handle(ctx, ia)
	}()
}

func (a *Approvals) replayed(key string) bool {
	sum := sha256.Sum256([]byte(key))
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.replays.has(sum) {
		return true
	}
	a.replays.add(sum)
	return false
}

// handle decides each of ia's clicks on tokenwatch's buttons.
func (a *Approvals) handle(ctx context.Context, ia interaction) {
	var receipt deliver.Receipt // the clicked message, when the payload names it
	if ia.Container.ChannelID != "" && ia.Container.MessageTS != "" {
		receipt = deliver.Receipt(ia.Container.ChannelID + "|" + ia.Container.MessageTS)
	}
	for _, act := range ia.Actions {
		if act.ActionID != ActionApprove && act.ActionID != ActionDeny {
			continue
		}
		log := a.log.With("response_id", act.Value, "slack_user", ia.User.ID, "action", act.ActionID)
		reason := "decided in Slack by @" + ia.User.Username
		if !a.approvers[ia.User.ID] {
			group, unknown := a.groupOf(ctx, ia.User.ID)
			switch {
			case unknown != nil:
				// Fail closed: the lookup's failure is logged once per kind.
				a.metrics.click("membership_unknown")
				log.Debug("refused a decision: the approver groups' membership is unknown", "usergroup", unknown.Group, "kind", unknown.Kind)
				a.ephemeral(ctx, ia, "Not recorded: tokenwatch could not ask Slack whether you are in respond.slack.approver_groups ("+unknown.Kind+"), and it never decides on an unknown membership. Try again in a minute, or ask an approver listed in respond.slack.approvers.")
				continue
			case group == "":
				a.metrics.click("not_approver")
				log.Warn("refused a decision from a Slack user who is not in respond.slack.approvers or respond.slack.approver_groups")
				a.ephemeral(ctx, ia, "Only the approvers listed in tokenwatch's respond.slack.approvers, or members of its respond.slack.approver_groups, can approve or deny. Nothing was recorded.")
				continue
			}
			reason += " (member of user group " + group + ")"
		}
		a.adopt(act.Value, receipt)
		approve := act.ActionID == ActionApprove
		out, err := a.decider.Decide(ctx, act.Value, approve, "slack:"+ia.User.ID, reason)
		switch {
		case errors.Is(err, respond.ErrNotPending):
			a.metrics.click("already_decided")
			log.Info("refused a decision on an action already decided", "err", err)
			a.ephemeral(ctx, ia, "Not recorded: "+err.Error()+".")
			if id, ok := a.incidentOf(act.Value); ok {
				a.enqueue(id)
			}
			continue
		case err != nil && len(out) == 0:
			a.metrics.click("failed")
			log.Error("could not record the decision", "err", err)
			a.ephemeral(ctx, ia, "Not recorded: "+err.Error())
			continue
		case err != nil:
			log.Error("decision recorded, the revoke failed", "err", err)
		}
		result := "denied"
		if approve {
			result = "approved"
		}
		a.metrics.click(result)
		log.Info("decision recorded", "result", result)
		if len(out) > 0 {
			incID := out[0].IncidentID
			a.mu.Lock()
			b := a.boardLocked(incID)
			if b.receipt == "" && receipt != "" {
				b.receipt = receipt
			}
			known := b.inc != nil
			a.mu.Unlock()
			if !known {
				// Not heard of since the start: there is nothing to render the
				// message from until the incident's next version.
				a.ephemeral(ctx, ia, fmt.Sprintf("Recorded: %s. The message shows it with the incident's next version; `tokenwatch incident timeline %s` shows it now.", result, incID))
			}
			a.enqueue(incID)
		}
	}
}

// groupOf is the approver group user is in, "" when in none; an error when
// Slack could not tell (never a yes).
func (a *Approvals) groupOf(ctx context.Context, user string) (string, *lookupError) {
	if a.groups == nil {
		return "", nil
	}
	return a.groups.member(ctx, a.sink.Load(), user, a.now(), func(e *lookupError) {
		a.log.Error("could not ask Slack who is in an approver user group: its members' clicks are refused until Slack answers",
			"usergroup", e.Group, "kind", e.Kind, "hint", e.hint(), "err", e.Err)
	})
}

// adopt learns an action's message from a click on it, for a board that
// has the incident but not yet its receipt.
func (a *Approvals) adopt(actionID string, r deliver.Receipt) {
	if r == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if id, ok := a.actions[actionID]; ok {
		if b := a.boards[id]; b != nil && b.receipt == "" {
			b.receipt = r
		}
	}
}

func (a *Approvals) incidentOf(actionID string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, ok := a.actions[actionID]
	return id, ok
}

// ephemeral tells the clicking user alone (chat.postEphemeral).
func (a *Approvals) ephemeral(ctx context.Context, ia interaction, text string) {
	s := a.sink.Load()
	if s == nil || ia.Container.ChannelID == "" {
		return
	}
	body := struct {
		Channel string `json:"channel"`
		User    string `json:"user"`
		Text    string `json:"text"`
	}{ia.Container.ChannelID, ia.User.ID, escape(text)}
	if _, err := s.api(ctx, "chat.postEphemeral", body); err != nil {
		a.log.Warn("could not answer the clicking user", "err", err)
	}
}

// maxPendingButtons leaves room under Block Kit's 50 blocks a message.
const maxPendingButtons = 20

// actionBlocks renders an incident's actions: a section listing each with
// its state (the incident's response timeline), and per pending
// request_approval an actions block with Approve and Deny.
func actionBlocks(actions []schemas.Response) []Block {
	if len(actions) == 0 {
		return nil
	}
	var sb strings.Builder
	sb.WriteString("*Actions*")
	var pending []schemas.Response
	for _, r := range actions {
		fmt.Fprintf(&sb, "\n• `%s` %s: %s %s", escape(r.Action), statusWord(r), escape(r.Source), escape(orID(r)))
		if r.Principal != "" {
			sb.WriteString(" / " + escape(r.Principal))
		}
		if r.Mode == schemas.ModeDryRun && r.Action == schemas.ActionRevoke {
			sb.WriteString(" (dry run: nothing sent)")
		}
		if r.Actor != "" && (r.Status == schemas.ResponseApproved || r.Status == schemas.ResponseDenied) {
			sb.WriteString(" by " + actorText(r.Actor) + " at " + r.RecordedAt.UTC().Format(time.RFC3339))
		}
		switch {
		case r.Error != "":
			sb.WriteString(" — " + escape(r.Error))
		case r.Action == schemas.ActionRevoke && r.Actor != "":
			sb.WriteString(" — approved by " + actorText(r.Actor))
		case r.Reason != "" && r.Status != schemas.ResponseApproved && r.Status != schemas.ResponseDenied:
			sb.WriteString(" — " + escape(r.Reason))
		}
		if r.Action == schemas.ActionRequestApproval && r.Status == schemas.ResponsePlanned {
			pending = append(pending, r)
		}
	}
	blocks := []Block{section(sb.String())}
	for i, r := range pending {
		if i == maxPendingButtons {
			blocks = append(blocks, section(fmt.Sprintf("_%d more pending: `tokenwatch respond list`_", len(pending)-i)))
			break
		}
		label, confirm := "Approve revoke ", &Confirm{Title: Text{Type: "plain_text", Text: "Revoke access?"},
			// A revoke cuts an integration off: one more look first.
			Text:    mrkdwn(truncate("Revoke "+escape(r.Source)+" `"+escape(orID(r)+principalSuffix(r))+"` through the vendor's admin API now. It is recorded with your name.", 300)),
			Confirm: Text{Type: "plain_text", Text: "Revoke"}, Deny: Text{Type: "plain_text", Text: "Cancel"}, Style: "danger"}
		if respond.ApprovalMode(r) == schemas.ModeDryRun {
			// The rule that asked is dry_run: approving records a dry-run
			// revoke and sends nothing (respond.Decider).
			label = "Approve (dry run) "
			confirm = &Confirm{Title: Text{Type: "plain_text", Text: "Approve the dry run?"},
				Text:    mrkdwn(truncate("Rule `"+escape(r.Rule)+"` is in dry_run mode: the revoke of "+escape(r.Source)+" `"+escape(orID(r)+principalSuffix(r))+"` is recorded with your name and nothing is sent to the vendor.", 300)),
				Confirm: Text{Type: "plain_text", Text: "Approve"}, Deny: Text{Type: "plain_text", Text: "Cancel"}}
		}
		blocks = append(blocks, Block{Type: "actions", BlockID: "tokenwatch_approval:" + r.ID, Buttons: []Button{
			{Type: "button", Text: Text{Type: "plain_text", Text: truncate(label+orID(r)+principalSuffix(r), 75)}, ActionID: ActionApprove, Value: r.ID, Style: "primary",
				Confirm: confirm},
			{Type: "button", Text: Text{Type: "plain_text", Text: "Deny"}, ActionID: ActionDeny, Value: r.ID, Style: "danger"},
		}})
	}
	return blocks
}

func statusWord(r schemas.Response) string {
	switch r.Status {
	case schemas.ResponsePlanned:
		if r.Action == schemas.ActionRequestApproval {
			return "⏳ awaiting approval"
		}
		return "planned"
	case schemas.ResponseApproved:
		return "✅ approved"
	case schemas.ResponseDenied:
		return "🚫 denied"
	case schemas.ResponseExecuted:
		return "✅ executed"
	case schemas.ResponseAlreadyDone:
		return "✅ already done"
	case schemas.ResponseFailed:
		return "❌ failed"
	}
	return escape(r.Status)
}

func orID(r schemas.Response) string {
	if r.Target != "" {
		return r.Target
	}
	return r.IntegrationID
}

func principalSuffix(r schemas.Response) string {
	if r.Principal == "" {
		return ""
	}
	return " / " + r.Principal
}

// actorText shows a Slack decider as a mention, anyone else as recorded.
func actorText(actor string) string {
	if id, ok := strings.CutPrefix(actor, "slack:"); ok && slackID(id) {
		return "<@" + id + ">"
	}
	return escape(actor)
}

func slackID(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
