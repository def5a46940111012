// Package slack posts alerts to a Slack incoming webhook as Block Kit
// messages, one per alert: a header with severity and title, the integration
// and its owner, observed against baseline as pretty JSON, and a ClickHouse
// query that pulls the evidence events so an analyst can pivot in one paste.
//
// The webhook URL is the credential: it is a secret.Secret and never appears
// in an error (net/http's *url.Error quotes request URLs, so transport errors
// go through deliver.TransportError).
package slack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Kind is the sink kind in config.
const Kind = "slack"

func init() {
	deliver.Register(Kind, func(name string, decode func(any) error) (deliver.Sink, error) {
		cfg := DefaultConfig()
		if err := decode(&cfg); err != nil {
			return nil, fmt.Errorf("slack %s: %w", name, err)
		}
		return New(name, cfg)
	})
}

// Config is the sink's YAML config.
type Config struct {
	// WebhookURL is the incoming webhook (https://hooks.slack.com/services/…),
	// usually "env:NAME" or "file:PATH".
	WebhookURL secret.Secret `yaml:"webhook_url"`
	// Timeout bounds one POST.
	Timeout time.Duration `yaml:"timeout"`
	// EventsTable is the ClickHouse table the evidence query reads.
	EventsTable string `yaml:"events_table"`
	// BotToken (xoxb-…) turns on bot mode: incidents are posted to Channel
	// with chat.postMessage and updated in place with chat.update as they
	// grow. Alerts still go to WebhookURL when it is set, else to Channel.
	BotToken secret.Secret `yaml:"bot_token"`
	// Channel is the channel id (C…) or name the bot posts to.
	Channel string `yaml:"channel"`
	// APIURL is the Web API base (https://slack.com/api).
	APIURL string `yaml:"api_url"`
}

// DefaultAPIURL is Slack's Web API base.
const DefaultAPIURL = "https://slack.com/api"

// DefaultConfig: 10 s timeout, table "events", Slack's Web API.
func DefaultConfig() Config {
	return Config{Timeout: 10 * time.Second, EventsTable: deliver.DefaultEventsTable, APIURL: DefaultAPIURL}
}

// Validate checks cfg without echoing the URL or the token.
func (c Config) Validate() error {
	if c.WebhookURL.IsZero() && c.BotToken.IsZero() {
		return errors.New("webhook_url or bot_token: one is required")
	}
	if !c.BotToken.IsZero() {
		if c.Channel == "" {
			return errors.New("channel: required with bot_token (the channel id the bot posts incidents to)")
		}
		u, err := url.Parse(c.APIURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("api_url %s: not an http(s) URL", deliver.SafeURL(c.APIURL))
		}
	}
	if !c.WebhookURL.IsZero() {
		u, err := url.Parse(c.WebhookURL.Reveal())
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errors.New("webhook_url: not an http(s) URL")
		}
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("timeout %s: must be positive", c.Timeout)
	}
	return deliver.ValidateTable(c.EventsTable)
}

// Sink posts to one Slack webhook.
type Sink struct {
	name   string
	cfg    Config
	client *http.Client
	// redact covers the URL and its path, which a receiver may echo alone.
	redact []secret.Secret

	mu   sync.Mutex
	sent recentSet
	// approvals, when respond.slack names this sink, adds the incident's
	// actions and approval buttons to its messages.
	approvals atomic.Pointer[Approvals]
}

var (
	_ deliver.IncidentSink    = (*Sink)(nil)
	_ deliver.IncidentCapable = (*Sink)(nil)
	_ deliver.Pager           = (*Sink)(nil)
)

// New validates cfg and builds the sink; no network.
func New(name string, cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("slack %s: %w", name, err)
	}
	var redact []secret.Secret
	if !cfg.WebhookURL.IsZero() {
		u, _ := url.Parse(cfg.WebhookURL.Reveal())
		redact = append(redact, cfg.WebhookURL, secret.New(u.EscapedPath()), secret.New(u.Path), secret.New(u.RawQuery))
	}
	if !cfg.BotToken.IsZero() {
		redact = append(redact, cfg.BotToken)
	}
	return &Sink{
		name:   name,
		cfg:    cfg,
		client: &http.Client{Timeout: cfg.Timeout},
		redact: redact,
		sent:   newRecentSet(4096),
	}, nil
}

// TakesIncidents implements deliver.IncidentCapable: incidents need bot
// mode (an incoming webhook cannot update a message).
func (s *Sink) TakesIncidents() bool { return !s.cfg.BotToken.IsZero() }

// Pages implements deliver.Pager: in bot mode the channel gets one message
// per incident, and alerts only where config asks for them.
func (s *Sink) Pages() bool { return !s.cfg.BotToken.IsZero() }

// Name implements deliver.Sink.
func (s *Sink) Name() string { return s.name }

// Send posts one message per alert, in order, stopping at the first failure.
// Slack cannot deduplicate, so the sink remembers the last few thousand
// messages it delivered and skips an identical one when the runner retries
// the batch: a retry does not repost the alerts before the one that failed.
func (s *Sink) Send(ctx context.Context, alerts []schemas.Alert) error {
	for i := range alerts {
		a := &alerts[i]
		// The catalog's owner (on the alert) wins over an "owner" field in
		// the alert's observed data.
		owner := a.Owner
		if owner == "" {
			owner = OwnerFromObserved(a.Observed)
		}
		body, err := json.Marshal(BuildMessage(a, owner, s.cfg.EventsTable))
		if err != nil {
			return &deliver.PermanentError{Err: fmt.Errorf("slack %s: encode alert %s: %w", s.name, a.ID, err)}
		}
		sum := sha256.Sum256(body)
		if s.seen(sum) {
			continue
		}
		if s.cfg.WebhookURL.IsZero() {
			_, err = s.api(ctx, "chat.postMessage", botMessage{Channel: s.cfg.Channel, Message: BuildMessage(a, owner, s.cfg.EventsTable)})
		} else {
			err = s.post(ctx, body)
		}
		if err != nil {
			return fmt.Errorf("slack %s: alert %s: %w", s.name, a.ID, err)
		}
		s.remember(sum)
	}
	return nil
}

func (s *Sink) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.WebhookURL.Reveal(), bytes.NewReader(body))
	if err != nil {
		return &deliver.PermanentError{Err: deliver.TransportError(err, s.redact...)}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "tokenwatch")
	resp, err := s.client.Do(req)
	if err != nil {
		return deliver.TransportError(err, s.redact...)
	}
	return deliver.CheckResponse(resp, s.redact...)
}

// SendIncident implements deliver.IncidentSink in bot mode: the first
// version is chat.postMessage to the channel, and the receipt is the
// channel id and message ts Slack answers with ("C…|1700000000.000100");
// every later version is chat.update of that message, so the channel shows
// one message per incident that grows with it. If the message is gone
// (deleted), a new one is posted and its receipt replaces the old.
func (s *Sink) SendIncident(ctx context.Context, inc schemas.Incident, prev deliver.Receipt) (deliver.Receipt, error) {
	if s.cfg.BotToken.IsZero() {
		return "", &deliver.PermanentError{Err: fmt.Errorf("slack %s: incidents need bot_token and channel", s.name)}
	}
	msg := BuildIncidentMessage(&inc)
	a := s.approvals.Load()
	if a != nil {
		msg = a.render(ctx, &inc)
	}
	if channel, ts, ok := strings.Cut(string(prev), "|"); ok && ts != "" {
		_, err := s.api(ctx, "chat.update", botMessage{Channel: channel, TS: ts, Message: msg})
		var ae *APIError
		if err == nil {
			if a != nil {
				a.delivered(inc, prev)
			}
			return prev, nil
		}
		if !errors.As(err, &ae) || (ae.Code != "message_not_found" && ae.Code != "cant_update_message") {
			return "", fmt.Errorf("slack %s: update incident %s v%d: %w", s.name, inc.ID, inc.Version, err)
		}
	}
	r, err := s.api(ctx, "chat.postMessage", botMessage{Channel: s.cfg.Channel, Message: msg})
	if err != nil {
		return "", fmt.Errorf("slack %s: post incident %s v%d: %w", s.name, inc.ID, inc.Version, err)
	}
	if r.TS == "" || r.Channel == "" {
		return "", &deliver.PermanentError{Err: fmt.Errorf("slack %s: chat.postMessage answered without channel and ts", s.name)}
	}
	receipt := deliver.Receipt(r.Channel + "|" + r.TS)
	if a != nil {
		a.delivered(inc, receipt)
	}
	return receipt, nil
}

// botMessage is a chat.postMessage or chat.update body.
type botMessage struct {
	Channel string `json:"channel"`
	TS      string `json:"ts,omitempty"`
	Message
}

// apiResponse is the part of a Web API answer the sink reads.
type apiResponse struct {
	OK      bool     `json:"ok"`
	Error   string   `json:"error"`
	Needed  string   `json:"needed"` // with missing_scope: the scope the method wants
	Channel string   `json:"channel"`
	TS      string   `json:"ts"`
	Users   []string `json:"users"` // usergroups.users.list
}

// APIError is a Web API answer with ok: false. Needed is the scope Slack
// names with missing_scope (a scope name, never the token).
type APIError struct{ Method, Code, Needed string }

func (e *APIError) Error() string {
	if e.Needed != "" {
		return "slack " + e.Method + ": " + e.Code + " (needs scope " + e.Needed + ")"
	}
	return "slack " + e.Method + ": " + e.Code
}

// retryableAPIErrors are the Web API error codes a retry can fix.
var retryableAPIErrors = map[string]bool{"internal_error": true, "fatal_error": true, "ratelimited": true,
	"service_unavailable": true, "request_timeout": true}

// api calls a Web API method with the bot token, the arguments as a JSON
// body (POST).
func (s *Sink) api(ctx context.Context, method string, body any) (apiResponse, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return apiResponse{}, &deliver.PermanentError{Err: fmt.Errorf("encode %s: %w", method, err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(s.cfg.APIURL, "/")+"/"+method, bytes.NewReader(b))
	if err != nil {
		return apiResponse{}, &deliver.PermanentError{Err: deliver.TransportError(err, s.redact...)}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	return s.do(req, method)
}

// apiGet calls a read method with the arguments in the query string, for
// the methods that take no JSON (usergroups.users.list: "querystring or
// POST body", GET preferred). The token stays in the Authorization header.
func (s *Sink) apiGet(ctx context.Context, method string, args url.Values) (apiResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.cfg.APIURL, "/")+"/"+method+"?"+args.Encode(), nil)
	if err != nil {
		return apiResponse{}, &deliver.PermanentError{Err: deliver.TransportError(err, s.redact...)}
	}
	return s.do(req, method)
}

// do sends req with the bot token; HTTP errors follow
// deliver.CheckResponse (429 with Retry-After), ok: false is permanent
// unless the code says otherwise. No error carries the token.
func (s *Sink) do(req *http.Request, method string) (apiResponse, error) {
	var r apiResponse
	req.Header.Set("Authorization", "Bearer "+s.cfg.BotToken.Reveal())
	req.Header.Set("User-Agent", "tokenwatch")
	resp, err := s.client.Do(req)
	if err != nil {
		return r, deliver.TransportError(err, s.redact...)
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return r, deliver.CheckResponse(resp, s.redact...)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return r, fmt.Errorf("slack %s: unreadable answer: %w", method, err)
	}
	if !r.OK {
		err := &APIError{Method: method, Code: r.Error, Needed: r.Needed}
		if retryableAPIErrors[r.Error] {
			return r, err
		}
		return r, &deliver.PermanentError{Err: err}
	}
	return r, nil
}

// BuildIncidentMessage renders one incident version as a Block Kit message:
// a header with severity, risk and title, status and version, the
// integrations, owner and tenant, the summary, the blast radius, the
// timeline of signals, the next steps and the ClickHouse query of its
// evidence. Pure; vendor data is escaped.
func BuildIncidentMessage(inc *schemas.Incident) Message {
	return BuildIncidentMessageWithActions(inc, nil)
}

// BuildIncidentMessageWithActions is BuildIncidentMessage with the
// respond stage's actions on the incident (the latest record of each)
// before the evidence: their states, who decided and when, and Approve /
// Deny buttons for each request_approval still pending.
func BuildIncidentMessageWithActions(inc *schemas.Incident, actions []schemas.Response) Message {
	sev := strings.ToUpper(string(inc.Severity))
	status := inc.Status
	if status == schemas.IncidentResolved || status == schemas.IncidentSuppressed {
		status = "✅ " + status
	}
	header := truncate(fmt.Sprintf("%s [%s] risk %.0f · %s", severityEmoji(inc.Severity), sev, inc.RiskScore, inc.Title), maxHeader)
	fields := []Text{
		mrkdwn("*Status*\n" + escape(status) + fmt.Sprintf(" (v%d)", inc.Version)),
		mrkdwn("*Integration*\n`" + escape(strings.Join(inc.IntegrationIDs, "`, `")) + "`"),
	}
	if len(inc.IntegrationIDs) == 0 {
		fields[1] = mrkdwn("*Integration*\n`" + escape(inc.IntegrationID) + "`")
	}
	if inc.Owner != "" {
		fields = append(fields, mrkdwn("*Owner*\n"+escape(inc.Owner)))
	}
	fields = append(fields, mrkdwn("*Tenant*\n"+escape(inc.Tenant)),
		mrkdwn("*Seen*\n"+inc.FirstSeen.UTC().Format(time.RFC3339)+" → "+inc.LastSeen.UTC().Format(time.RFC3339)))
	for i := range fields {
		fields[i].Text = truncate(fields[i].Text, maxField)
	}
	blocks := []Block{{Type: "header", Text: &Text{Type: "plain_text", Text: header}}, {Type: "section", Fields: fields}}
	if inc.Summary != "" {
		blocks = append(blocks, section(escape(inc.Summary)))
	}
	br := inc.Blast
	blast := fmt.Sprintf("*Blast radius*: %d events, %d bytes, %d records", br.Events, br.Bytes, br.Records)
	for _, l := range []struct {
		name string
		v    []string
	}{{"apps", br.Apps}, {"scopes", br.Scopes}, {"principals", br.Principals}, {"IPs", br.IPs}} {
		if len(l.v) > 0 {
			blast += "\n" + l.name + ": " + escape(strings.Join(l.v, ", "))
		}
	}
	blocks = append(blocks, section(blast))
	if len(inc.Timeline) > 0 {
		var tl strings.Builder
		tl.WriteString("*Timeline*")
		for _, sg := range inc.Timeline {
			fmt.Fprintf(&tl, "\n• %s `%s` %s (+%.0f risk)", sg.Time.UTC().Format(time.RFC3339), escape(sg.Detector), escape(sg.Title), sg.Risk)
		}
		blocks = append(blocks, section(tl.String()))
	}
	if len(inc.Next) > 0 {
		var nx strings.Builder
		nx.WriteString("*Next*")
		for i, n := range inc.Next {
			fmt.Fprintf(&nx, "\n%d. %s", i+1, escape(n))
		}
		blocks = append(blocks, section(nx.String()))
	}
	blocks = append(blocks, actionBlocks(actions)...)
	q := "SELECT * FROM incident_events WHERE incident_id = '" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(inc.ID) + "' ORDER BY time"
	blocks = append(blocks, section(codeBlock("*Evidence*, in ClickHouse:", q)))
	blocks = append(blocks, Block{Type: "context", Elements: []Text{mrkdwn(fmt.Sprintf("tokenwatch incident `%s` v%d", escape(inc.ID), inc.Version))}})
	return Message{
		Text:   truncate(fmt.Sprintf("[%s] %s (%s, risk %.0f, %s)", sev, inc.Title, inc.IntegrationID, inc.RiskScore, inc.Status), maxSection),
		Blocks: blocks,
	}
}

func (s *Sink) seen(sum [32]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent.has(sum)
}

func (s *Sink) remember(sum [32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent.add(sum)
}

// recentSet is a bounded set that forgets its oldest entries.
type recentSet struct {
	m    map[[32]byte]struct{}
	ring [][32]byte
	next int
}

func newRecentSet(n int) recentSet {
	return recentSet{m: make(map[[32]byte]struct{}, n), ring: make([][32]byte, 0, n)}
}

func (r *recentSet) has(k [32]byte) bool { _, ok := r.m[k]; return ok }

func (r *recentSet) add(k [32]byte) {
	if r.has(k) {
		return
	}
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, k)
	} else {
		delete(r.m, r.ring[r.next])
		r.ring[r.next] = k
		r.next = (r.next + 1) % len(r.ring)
	}
	r.m[k] = struct{}{}
}

// Message is a Slack incoming-webhook payload. Text is the notification
// fallback; Blocks is what the channel shows.
type Message struct {
	Text   string  `json:"text"`
	Blocks []Block `json:"blocks"`
}

// Block is the subset of Block Kit the sink uses: header, section, context,
// divider, and actions (buttons).
type Block struct {
	Type     string `json:"type"`
	BlockID  string `json:"block_id,omitempty"`
	Text     *Text  `json:"text,omitempty"`
	Fields   []Text `json:"fields,omitempty"`
	Elements []Text `json:"elements,omitempty"`
	// Buttons are an actions block's elements.
	Buttons []Button `json:"-"`
}

// MarshalJSON writes an actions block's Buttons as its elements.
func (b Block) MarshalJSON() ([]byte, error) {
	type plain Block
	if b.Type != "actions" {
		return json.Marshal(plain(b))
	}
	return json.Marshal(struct {
		Type     string   `json:"type"`
		BlockID  string   `json:"block_id,omitempty"`
		Elements []Button `json:"elements"`
	}{b.Type, b.BlockID, b.Buttons})
}

// Button is a Block Kit button element
// (api.slack.com/reference/block-kit/block-elements#button): a click sends
// action_id and value to the app's Interactivity Request URL.
type Button struct {
	Type     string `json:"type"` // "button"
	Text     Text   `json:"text"` // plain_text, at most 75 characters
	ActionID string `json:"action_id"`
	Value    string `json:"value"`
	Style    string `json:"style,omitempty"` // primary, danger
	// Confirm asks "are you sure?" before the click is sent.
	Confirm *Confirm `json:"confirm,omitempty"`
}

// Confirm is a Block Kit confirmation dialog
// (api.slack.com/reference/block-kit/composition-objects#confirm).
type Confirm struct {
	Title   Text   `json:"title"`   // plain_text, at most 100 characters
	Text    Text   `json:"text"`    // at most 300 characters
	Confirm Text   `json:"confirm"` // plain_text
	Deny    Text   `json:"deny"`    // plain_text
	Style   string `json:"style,omitempty"`
}

// Text is a Block Kit text object ("plain_text" or "mrkdwn").
type Text struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Block Kit limits (api.slack.com/reference/block-kit/blocks).
const (
	maxHeader  = 150
	maxSection = 3000
	maxField   = 2000
)

// BuildMessage renders a as a Block Kit message. Pure: owner is resolved by
// the caller ("" leaves it out) and table names the ClickHouse events table
// for the evidence query. Everything from vendor data is escaped so a title
// like "<!channel>" cannot ping a channel.
func BuildMessage(a *schemas.Alert, owner, table string) Message {
	sev := strings.ToUpper(string(a.Severity))
	header := truncate(fmt.Sprintf("%s [%s] %s", severityEmoji(a.Severity), sev, a.Title), maxHeader)
	fields := []Text{
		mrkdwn("*Severity*\n" + escape(sev)),
		mrkdwn("*Detector*\n`" + escape(a.Detector) + "`"),
		mrkdwn("*Integration*\n`" + escape(a.IntegrationID) + "`"),
	}
	if owner != "" {
		fields = append(fields, mrkdwn("*Owner*\n"+escape(owner)))
	}
	fields = append(fields,
		mrkdwn("*Tenant*\n"+escape(a.Tenant)),
		mrkdwn("*Seen*\n"+a.FirstSeen.UTC().Format(time.RFC3339)+" → "+a.LastSeen.UTC().Format(time.RFC3339)),
	)
	for i := range fields {
		fields[i].Text = truncate(fields[i].Text, maxField)
	}
	blocks := []Block{
		{Type: "header", Text: &Text{Type: "plain_text", Text: header}},
		{Type: "section", Fields: fields},
	}
	if a.Summary != "" {
		blocks = append(blocks, section(escape(a.Summary)))
	}
	if len(a.Observed) > 0 {
		blocks = append(blocks, section(codeBlock("*Observed*", prettyJSON(a.Observed))))
	}
	if len(a.Baseline) > 0 {
		blocks = append(blocks, section(codeBlock("*Baseline*", prettyJSON(a.Baseline))))
	}
	if len(a.EventIDs) > 0 {
		title := fmt.Sprintf("*Evidence* (%d events), in ClickHouse:", len(a.EventIDs))
		// Leave room for the title, the fences and a truncation note; the
		// escaping of & < > can grow the query, hence the margin.
		q, n := deliver.EvidenceQuery(table, a.EventIDs, maxSection-400)
		text := codeBlock(title, q)
		if n < len(a.EventIDs) {
			text += fmt.Sprintf("\n_first %d of %d event ids; the alert lists all_", n, len(a.EventIDs))
		}
		blocks = append(blocks, section(text))
	}
	blocks = append(blocks, Block{Type: "context", Elements: []Text{mrkdwn("tokenwatch alert `" + escape(a.ID) + "`")}})
	return Message{
		Text:   truncate(fmt.Sprintf("[%s] %s (%s)", sev, a.Title, a.IntegrationID), maxSection),
		Blocks: blocks,
	}
}

// OwnerFromObserved reads a string "owner" field from an alert's observed
// data, where enrichment may have put it.
func OwnerFromObserved(observed json.RawMessage) string {
	var v struct {
		Owner any `json:"owner"`
	}
	if json.Unmarshal(observed, &v) != nil {
		return ""
	}
	s, _ := v.Owner.(string)
	return s
}

func mrkdwn(s string) Text { return Text{Type: "mrkdwn", Text: s} }

func section(s string) Block {
	t := mrkdwn(truncate(s, maxSection))
	return Block{Type: "section", Text: &t}
}

// codeBlock puts body in a ``` fence under title, cutting the body (not the
// fence) to fit a section.
func codeBlock(title, body string) string {
	body = escape(body)
	room := maxSection - len(title) - len("\n```\n```") - len("\n…")
	if len(body) > room {
		body = truncate(body, room)
	}
	return title + "\n```" + body + "```"
}

func prettyJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// escape applies Slack's three mandatory escapes for mrkdwn.
var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escape(s string) string { return escaper.Replace(s) }

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

func severityEmoji(s schemas.Severity) string {
	switch s {
	case schemas.SeverityCritical:
		return "🔴"
	case schemas.SeverityHigh:
		return "🟠"
	case schemas.SeverityMedium:
		return "🟡"
	case schemas.SeverityLow:
		return "🔵"
	}
	return "⚪"
}
