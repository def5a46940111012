package wiring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	_ "github.com/tokenwatch/tokenwatch/deliver/respond/okta"
	_ "github.com/tokenwatch/tokenwatch/deliver/slack"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/chtest"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/internal/platform/slacksig"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// TestRunWithSlackApprovals: `run` (deliver role) with respond.slack posts
// the incident to Slack, adds Approve / Deny for the request_approval the
// policy planned, and a signed click from an approver on the HTTP listener
// revokes once through the vendor and updates the message.
func TestRunWithSlackApprovals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ch := chtest.New(t)
	chCfg := clickhouse.DefaultConfig()
	chCfg.Addr = []string{ch.TCPAddr}
	if _, err := clickhouse.Migrate(ctx, chCfg); err != nil {
		t.Fatal(err)
	}
	var revokes atomic.Int32
	okta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		revokes.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer okta.Close()
	var mu sync.Mutex
	var calls []string // "method body"
	slackAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, strings.TrimPrefix(r.URL.Path, "/api/")+" "+string(b))
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": "C0SOC", "ts": "1700000000.000100"})
	}))
	defer slackAPI.Close()
	find := func(method, sub string) string {
		mu.Lock()
		defer mu.Unlock()
		for i := len(calls) - 1; i >= 0; i-- {
			if strings.HasPrefix(calls[i], method+" ") && strings.Contains(calls[i], sub) {
				return calls[i]
			}
		}
		return ""
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // below the ephemeral ports the broker takes
	t.Setenv("TW_TEST_SLACK_SIGNING", "signing-secret-0123456789")
	cfg, err := config.Parse([]byte(`
http: {listen: "`+addr+`"}
clickhouse: {addr: ["`+ch.TCPAddr+`"]}
deliver:
  sinks:
    - {name: soc-slack, kind: slack, config: {bot_token: xoxb-wiring-token, channel: C0SOC, api_url: "`+slackAPI.URL+`/api"}}
respond:
  rules: [{name: ask, match: {min_severity: medium}, action: request_approval, mode: enforce}]
  vendors: {okta: {org_url: `+okta.URL+`, api_token: okta-admin-token}}
  slack: {sink: soc-slack, signing_secret: env:TW_TEST_SLACK_SIGNING, approvers: [U0ANA]}
`), "t")
	if err != nil {
		t.Fatal(err)
	}
	p, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	inc := schemas.Incident{ID: "inc-slack", Version: 1, Status: schemas.IncidentOpen, Tenant: "t", IntegrationID: "0oa1234567890abcdefg", Source: "okta",
		Severity: schemas.SeverityHigh, Title: "okta app used from a new country", UpdatedAt: schemas.NewTime(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)),
		Detectors: []string{"geo.new_country"}}
	v, _ := json.Marshal(inc)
	w := broker.NewWriter(p.Cfg.Kafka, schemas.TopicIncidents)
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(inc.ID), Value: v}); err != nil {
		t.Fatal(err)
	}
	w.Close()

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx, []string{wiring.RoleDeliver}) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	value := regexp.MustCompile(`"action_id":"tokenwatch_approve","value":"([0-9a-f]+)"`)
	var id string
	if !wiring.WaitFor(ctx, time.Minute, func() bool {
		if m := value.FindStringSubmatch(find("chat.update", "tokenwatch_approve")); m != nil {
			id = m[1]
		}
		return id != ""
	}) {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("no message with an Approve button; Slack calls:\n%s", strings.Join(calls, "\n"))
	}

	payload, _ := json.Marshal(map[string]any{"type": "block_actions", "user": map[string]string{"id": "U0ANA", "username": "ana"},
		"actions":   []map[string]string{{"action_id": "tokenwatch_approve", "value": id}},
		"container": map[string]string{"channel_id": "C0SOC", "message_ts": "1700000000.000100"}})
	body := []byte("payload=" + url.QueryEscape(string(payload)))
	click := func(sig string) int {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/slack/interactions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		if sig == "" {
			sig = slacksig.Sign(secret.New("signing-secret-0123456789"), ts, body)
		}
		req.Header.Set("X-Slack-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := click("v0=00"); code != http.StatusUnauthorized {
		t.Fatalf("a bad signature got %d", code)
	}
	if code := click(""); code != http.StatusOK {
		t.Fatalf("a signed click got %d", code)
	}
	if !wiring.WaitFor(ctx, time.Minute, func() bool {
		return revokes.Load() == 1 && find("chat.update", "executed") != "" && !strings.Contains(find("chat.update", "executed"), "tokenwatch_approve")
	}) {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d revokes; Slack calls:\n%s", revokes.Load(), strings.Join(calls, "\n"))
	}
	if u := find("chat.update", "executed"); !strings.Contains(u, `approved: okta`) || !strings.Contains(u, `\u003c@U0ANA\u003e`) {
		t.Errorf("the message does not say who approved:\n%s", u)
	}
	if r, err := p.CH.Response(ctx, id); err != nil || r.Status != schemas.ResponseApproved || r.Actor != "slack:U0ANA" {
		t.Errorf("ClickHouse has %+v, %v; want the request approved by slack:U0ANA", r, err)
	}
}
