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
	"net/http"
	"net/url"
	"strings"
	"sync"
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
}

// DefaultConfig: 10 s timeout, table "events".
func DefaultConfig() Config {
	return Config{Timeout: 10 * time.Second, EventsTable: deliver.DefaultEventsTable}
}

// Validate checks cfg without echoing the URL.
func (c Config) Validate() error {
	if c.WebhookURL.IsZero() {
		return errors.New("webhook_url: required")
	}
	u, err := url.Parse(c.WebhookURL.Reveal())
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("webhook_url: not an http(s) URL")
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
}

var _ deliver.Sink = (*Sink)(nil)

// New validates cfg and builds the sink; no network.
func New(name string, cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("slack %s: %w", name, err)
	}
	u, _ := url.Parse(cfg.WebhookURL.Reveal())
	return &Sink{
		name:   name,
		cfg:    cfg,
		client: &http.Client{Timeout: cfg.Timeout},
		redact: []secret.Secret{cfg.WebhookURL, secret.New(u.EscapedPath()), secret.New(u.Path), secret.New(u.RawQuery)},
		sent:   newRecentSet(4096),
	}, nil
}

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
		if err := s.post(ctx, body); err != nil {
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
// divider.
type Block struct {
	Type     string `json:"type"`
	Text     *Text  `json:"text,omitempty"`
	Fields   []Text `json:"fields,omitempty"`
	Elements []Text `json:"elements,omitempty"`
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
