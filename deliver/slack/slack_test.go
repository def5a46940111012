package slack

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/delivertest"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

//go:embed sample.yaml
var sample []byte

const token = "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"

func newSink(t *testing.T, base string) *Sink {
	t.Helper()
	cfg := DefaultConfig()
	cfg.WebhookURL = secret.New(base + "/services/" + token)
	s, err := New("soc-slack", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSampleConfigBuildsThroughTheRegistry(t *testing.T) {
	t.Setenv("TOKENWATCH_SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/"+token)
	kind, name, decode := delivertest.Sample(t, sample)
	s, err := deliver.New(kind, name, decode)
	if err != nil {
		t.Fatal(err)
	}
	got := s.(*Sink)
	if got.Name() != "soc-slack" || got.cfg.Timeout != 10*time.Second || got.cfg.EventsTable != "events" {
		t.Fatalf("decoded %+v", got.cfg)
	}
}

func TestConfigValidationNeverEchoesTheURL(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
	}{
		{"missing url", func(c *Config) { c.WebhookURL = secret.Secret{} }},
		{"not a url", func(c *Config) { c.WebhookURL = secret.New("hooks.slack.com/" + token) }},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }},
		{"bad table", func(c *Config) { c.EventsTable = "events; DROP TABLE x" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.WebhookURL = secret.New("https://hooks.slack.com/services/" + token)
			tt.cfg(&cfg)
			_, err := New("x", cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "XXXXXXXX") {
				t.Fatalf("leaks: %v", err)
			}
		})
	}
}

func TestHTTPContract(t *testing.T) {
	delivertest.HTTPContract(t, func(t *testing.T, base string) deliver.Sink { return newSink(t, base) },
		token, "XXXXXXXXXXXXXXXXXXXXXXXX")
}

func TestSendPostsBlockKitToTheWebhook(t *testing.T) {
	srv := delivertest.NewServer(t)
	s := newSink(t, srv.URL)
	a := delivertest.Alert()
	a.Owner = "Jane Roe (inventory)" // the catalog's, carried on the alert
	if err := s.Send(context.Background(), []schemas.Alert{a}); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/services/"+token || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("request %s %s %v", r.Method, r.Path, r.Header)
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type   string `json:"type"`
			Text   *Text  `json:"text"`
			Fields []Text `json:"fields"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(r.Body, &msg); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, b := range msg.Blocks {
		types = append(types, b.Type)
	}
	if got := strings.Join(types, ","); got != "header,section,section,section,section,section,context" {
		t.Fatalf("block types %s", got)
	}
	h := msg.Blocks[0].Text
	if h.Type != "plain_text" || !strings.Contains(h.Text, "[HIGH] Integration used from a new country: BR") {
		t.Errorf("header %+v", h)
	}
	var fields []string
	for _, f := range msg.Blocks[1].Fields {
		if f.Type != "mrkdwn" {
			t.Errorf("field type %s", f.Type)
		}
		fields = append(fields, f.Text)
	}
	joined := strings.Join(fields, "|")
	for _, want := range []string{"*Owner*\nJane Roe (inventory)", "`gws:1234567890.apps.googleusercontent.com`", "`geo.new_country`"} {
		if !strings.Contains(joined, want) {
			t.Errorf("fields %q lack %q", joined, want)
		}
	}
	body := string(r.Body)
	for _, want := range []string{
		`\"country\": \"BR\"`, // observed, pretty-printed
		`\"days\": 90`,        // baseline
		`SELECT * FROM events WHERE event_id IN ('evt-001', 'evt-002', 'evt-003') ORDER BY time_ms, event_id`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("message lacks %s:\n%s", want, body)
		}
	}
	if !strings.Contains(msg.Text, "[HIGH]") {
		t.Errorf("fallback text %q", msg.Text)
	}
}

func TestBuildMessage(t *testing.T) {
	many := make([]string, 500)
	for i := range many {
		many[i] = "event-id-with-some-length-" + strings.Repeat("x", 10)
	}
	tests := []struct {
		name  string
		alter func(*schemas.Alert)
		owner string
		check func(t *testing.T, m Message, raw string)
	}{
		{"no owner field without owner", nil, "", func(t *testing.T, m Message, raw string) {
			for _, f := range m.Blocks[1].Fields {
				if strings.HasPrefix(f.Text, "*Owner*") {
					t.Errorf("owner field present: %q", f.Text)
				}
			}
		}},
		{"mentions are escaped", func(a *schemas.Alert) { a.Summary = "<!channel> pwned & <@U123>" }, "", func(t *testing.T, m Message, raw string) {
			if got := m.Blocks[2].Text.Text; got != "&lt;!channel&gt; pwned &amp; &lt;@U123&gt;" {
				t.Errorf("summary not escaped: %s", got)
			}
		}},
		{"long title fits the header", func(a *schemas.Alert) { a.Title = strings.Repeat("é", 200) }, "", func(t *testing.T, m Message, raw string) {
			h := m.Blocks[0].Text.Text
			if len(h) > maxHeader || !strings.HasSuffix(h, "…") {
				t.Errorf("header %d bytes: %q", len(h), h)
			}
		}},
		{"many event ids keep a valid query within the section limit", func(a *schemas.Alert) { a.EventIDs = many }, "", func(t *testing.T, m Message, raw string) {
			for _, b := range m.Blocks {
				if b.Text != nil && len(b.Text.Text) > maxSection {
					t.Errorf("%s block of %d bytes", b.Type, len(b.Text.Text))
				}
			}
			ev := m.Blocks[len(m.Blocks)-2].Text.Text
			if !strings.Contains(ev, "ORDER BY time_ms, event_id```") || !strings.Contains(ev, "of 500 event ids") {
				t.Errorf("evidence block: %s", ev)
			}
		}},
		{"no observed, baseline or evidence", func(a *schemas.Alert) { a.Observed, a.Baseline, a.EventIDs, a.Summary = nil, nil, nil, "" }, "", func(t *testing.T, m Message, raw string) {
			if len(m.Blocks) != 3 {
				t.Errorf("%d blocks, want header, fields, context", len(m.Blocks))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := delivertest.Alert()
			if tt.alter != nil {
				tt.alter(&a)
			}
			m := BuildMessage(&a, tt.owner, "events")
			raw, _ := json.Marshal(m)
			tt.check(t, m, string(raw))
		})
	}
}

func TestSendFallsBackToTheOwnerInObserved(t *testing.T) {
	srv := delivertest.NewServer(t)
	s := newSink(t, srv.URL)
	// The alert carries no catalog owner: the integration is not catalogued.
	if err := s.Send(context.Background(), []schemas.Alert{delivertest.Alert()}); err != nil {
		t.Fatal(err)
	}
	var m Message
	json.Unmarshal(srv.Requests()[0].Body, &m)
	if got := m.Blocks[1].Fields[3].Text; got != "*Owner*\ndata-platform@acme.example" {
		t.Fatalf("owner field %q", got)
	}
}

func TestOwnerFromObserved(t *testing.T) {
	for raw, want := range map[string]string{
		`{"owner":"ops@acme"}`: "ops@acme",
		`{"owner":42}`:         "",
		`{}`:                   "",
		``:                     "",
	} {
		if got := OwnerFromObserved(json.RawMessage(raw)); got != want {
			t.Errorf("%s: %q, want %q", raw, got, want)
		}
	}
}

func TestRetryDoesNotRepostDeliveredAlerts(t *testing.T) {
	// The second alert fails once: the runner's retry must post only it again.
	srv := delivertest.NewServer(t,
		delivertest.Response{Status: 200, Body: "ok"},
		delivertest.Response{Status: 500, Body: "rollup_error"},
		delivertest.Response{Status: 200, Body: "ok"})
	a, b := delivertest.Alert(), delivertest.Alert()
	b.ID, b.Title = "other", "Another alert"
	attempts, err := deliver.SendWithRetry(context.Background(), newSink(t, srv.URL), []schemas.Alert{a, b}, delivertest.FastRetry)
	if err != nil || attempts != 2 {
		t.Fatalf("attempts %d, err %v", attempts, err)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d posts, want 3 (a, b failed, b)", len(reqs))
	}
	if !strings.Contains(string(reqs[2].Body), "Another alert") {
		t.Errorf("retry posted %s", reqs[2].Body)
	}
}

// slackAPI is a fake Slack Web API: chat.postMessage answers a new ts,
// chat.update must name a message it posted.
type slackAPI struct {
	mu    sync.Mutex
	calls []string // "method channel ts version"
	posts int
	gone  map[string]bool // ts deleted by someone
}

func (f *slackAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer xoxb-test-token" {
		json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	var m struct {
		Channel string `json:"channel"`
		TS      string `json:"ts"`
		Text    string `json:"text"`
		Blocks  []Block
	}
	json.NewDecoder(r.Body).Decode(&m)
	ver := ""
	for _, b := range m.Blocks {
		if b.Type == "context" && len(b.Elements) > 0 {
			ver = b.Elements[0].Text[strings.LastIndex(b.Elements[0].Text, " ")+1:]
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/api/chat.postMessage":
		f.posts++
		ts := fmt.Sprintf("1700000000.%06d", f.posts)
		f.calls = append(f.calls, "post "+m.Channel+" "+ts+" "+ver)
		json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": "C0123", "ts": ts})
	case "/api/chat.update":
		if f.gone[m.TS] {
			json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "message_not_found"})
			return
		}
		f.calls = append(f.calls, "update "+m.Channel+" "+m.TS+" "+ver)
		json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS})
	default:
		http.NotFound(w, r)
	}
}

func TestIncidentIsPostedOnceThenUpdatedInPlace(t *testing.T) {
	api := &slackAPI{gone: map[string]bool{}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.BotToken, cfg.Channel, cfg.APIURL = secret.New("xoxb-test-token"), "#soc", srv.URL+"/api"
	s, err := New("soc-slack", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !deliver.TakesIncidents(s) || !deliver.Pages(s) {
		t.Fatal("bot mode takes incidents and pages")
	}
	ctx := context.Background()
	inc := delivertest.Incident(1, schemas.IncidentOpen)
	r1, err := s.SendIncident(ctx, inc, "")
	if err != nil || r1 != "C0123|1700000000.000001" {
		t.Fatalf("first version: receipt %q err %v", r1, err)
	}
	inc.Version = 2
	r2, err := s.SendIncident(ctx, inc, r1)
	if err != nil || r2 != r1 {
		t.Fatalf("second version: receipt %q err %v", r2, err)
	}
	// Someone deleted the message: the next version is posted anew.
	api.gone["1700000000.000001"] = true
	inc.Version, inc.Status = 3, schemas.IncidentResolved
	r3, err := s.SendIncident(ctx, inc, r2)
	if err != nil || r3 != "C0123|1700000000.000002" {
		t.Fatalf("after deletion: receipt %q err %v", r3, err)
	}
	want := []string{"post #soc 1700000000.000001 v1", "update C0123 1700000000.000001 v2", "post #soc 1700000000.000002 v3"}
	if !slices.Equal(api.calls, want) {
		t.Fatalf("calls %q, want %q", api.calls, want)
	}
	// A bad token is permanent, and never quoted.
	cfg.BotToken = secret.New("xoxb-wrong-token")
	bad, _ := New("soc-slack", cfg)
	_, err = bad.SendIncident(ctx, inc, "")
	if !deliver.IsPermanent(err) || strings.Contains(err.Error(), "xoxb-wrong") {
		t.Fatalf("bad token: %v", err)
	}
	// Without a bot token the sink keeps to alerts.
	hook, _ := New("hook", Config{WebhookURL: secret.New(srv.URL), Timeout: time.Second, EventsTable: "events"})
	if deliver.TakesIncidents(hook) || deliver.Pages(hook) {
		t.Fatal("webhook mode takes no incidents")
	}
	if _, err := New("x", Config{BotToken: secret.New("xoxb-1"), Timeout: time.Second, EventsTable: "events", APIURL: DefaultAPIURL}); err == nil {
		t.Fatal("bot_token without channel accepted")
	}
}
