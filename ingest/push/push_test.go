package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	_ "github.com/tokenwatch/tokenwatch/ingest/github"
	_ "github.com/tokenwatch/tokenwatch/ingest/slack"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// testNormalizer is a stable stand-in for a connector: {"id","time"} → one
// event; a record without id is dead-lettered.
type testNormalizer struct{ tenant string }

func (n testNormalizer) Name() string { return "push_test" }
func (n testNormalizer) Normalize(raw json.RawMessage) ([]schemas.Event, error) {
	var r struct {
		ID   string    `json:"id"`
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	if r.ID == "" {
		return nil, errors.New("push_test: no id")
	}
	return []schemas.Event{{EventID: r.ID, Source: "push_test", Tenant: n.tenant, Time: schemas.NewTime(r.Time), Raw: raw}}, nil
}

func init() {
	ingest.RegisterNormalizer("push_test", func(tenant string) ingest.Normalizer { return testNormalizer{tenant} })
}

type recorder struct {
	mu     sync.Mutex
	events []schemas.Event
	dead   []schemas.DeadLetter
	fail   error
}

func (r *recorder) Events(_ context.Context, evs []schemas.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, evs...)
	return nil
}

func (r *recorder) DeadLetters(_ context.Context, dls []schemas.DeadLetter) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.dead = append(r.dead, dls...)
	return nil
}

func (r *recorder) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events), len(r.dead)
}

const (
	ghSecret    = "gh-webhook-secret"
	slackSecret = "8f742231b10e8888abcd99yyyzzz85a5"
)

func newServer(t *testing.T, pub Publisher, mutate func(*Config)) (*httptest.Server, *Handler) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Sources = []SourceConfig{
		{Source: "push_test", Path: "gh", Tenant: "acme", Verify: StyleGitHub, Secret: secret.New(ghSecret)},
		{Source: "push_test", Path: "sl", Tenant: "acme", Verify: StyleSlack, Secret: secret.New(slackSecret)},
		{Source: "github", Tenant: "acme", Secret: secret.New(ghSecret)},
		{Source: "slack", Tenant: "acme", Secret: secret.New(slackSecret)},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := New(cfg, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, h
}

func post(t *testing.T, url string, body []byte, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func ghHeaders(body []byte, delivery string) map[string]string {
	return map[string]string{"X-Hub-Signature-256": GitHub{Secret: secret.New(ghSecret)}.sign(body), "X-GitHub-Delivery": delivery, "X-GitHub-Event": "audit_log"}
}

func slackHeaders(body []byte, ts time.Time) map[string]string {
	s := strconv.FormatInt(ts.Unix(), 10)
	return map[string]string{"X-Slack-Signature": Slack{Secret: secret.New(slackSecret)}.sign(s, body), "X-Slack-Request-Timestamp": s}
}

func rec(id string) string { return fmt.Sprintf(`{"id":%q,"time":"2026-10-27T02:13:07Z"}`, id) }

func TestPushStatusCodes(t *testing.T) {
	pub := &recorder{}
	srv, _ := newServer(t, pub, func(c *Config) { c.MaxBodyBytes = 4096 })
	one := []byte(rec("e1"))
	page := []byte(`{"entries":[` + rec("p1") + `,` + rec("p2") + `],"response_metadata":{"next_cursor":""}}`)
	arr := []byte(`[` + rec("a1") + `,{"nope":1}]`)
	big := []byte(`[` + strings.Repeat(rec("x")+",", 200) + rec("y") + `]`)
	now := time.Now()
	tests := []struct {
		name         string
		path         string
		body         []byte
		hdr          map[string]string
		want         int
		events, dead int
	}{
		{"github one record", "gh", one, ghHeaders(one, "d-1"), 200, 1, 0},
		{"github redelivery", "gh", one, ghHeaders(one, "d-1"), 200, 0, 0},
		{"same record, new delivery id", "gh", one, ghHeaders(one, "d-2"), 200, 0, 0},
		{"github array with a dead record", "gh", arr, ghHeaders(arr, "d-3"), 200, 1, 1},
		{"slack page", "sl", page, slackHeaders(page, now), 200, 2, 0},
		{"github bad signature", "gh", one, ghHeaders([]byte("other"), "d-4"), 401, 0, 0},
		{"github unsigned", "gh", one, map[string]string{"X-GitHub-Delivery": "d-5"}, 401, 0, 0},
		{"github wrong prefix", "gh", one, map[string]string{"X-Hub-Signature-256": "sha1=00"}, 401, 0, 0},
		{"github signature for another secret", "gh", one, map[string]string{"X-Hub-Signature-256": GitHub{Secret: secret.New("x")}.sign(one)}, 401, 0, 0},
		{"slack stale", "sl", one, slackHeaders(one, now.Add(-6*time.Minute)), 401, 0, 0},
		{"slack from the future", "sl", one, slackHeaders(one, now.Add(6*time.Minute)), 401, 0, 0},
		{"slack signed with another timestamp", "sl", one, map[string]string{"X-Slack-Signature": slackHeaders(one, now)["X-Slack-Signature"],
			"X-Slack-Request-Timestamp": strconv.FormatInt(now.Unix()-1, 10)}, 401, 0, 0},
		{"unknown source", "okta", one, ghHeaders(one, "d-6"), 404, 0, 0},
		{"too large", "gh", big, ghHeaders(big, "d-7"), 413, 0, 0},
		{"malformed JSON", "gh", []byte(`{"id":`), ghHeaders([]byte(`{"id":`), "d-8"), 400, 0, 0},
		{"not records", "gh", []byte(`[1,2]`), ghHeaders([]byte(`[1,2]`), "d-9"), 400, 0, 0},
		{"empty", "gh", []byte(``), ghHeaders(nil, "d-10"), 400, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e0, d0 := pub.counts()
			code, body := post(t, srv.URL+"/ingest/"+tc.path, tc.body, tc.hdr)
			if code != tc.want {
				t.Fatalf("status %d (%s), want %d", code, body, tc.want)
			}
			e1, d1 := pub.counts()
			if e1-e0 != tc.events || d1-d0 != tc.dead {
				t.Fatalf("produced %d events and %d dead letters, want %d and %d", e1-e0, d1-d0, tc.events, tc.dead)
			}
		})
	}
	// GET is not a route.
	resp, err := http.Get(srv.URL + "/ingest/gh")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

func TestPushAnswers500AndKeepsNothingWhenPublishFails(t *testing.T) {
	pub := &recorder{fail: errors.New("kafka down")}
	srv, _ := newServer(t, pub, nil)
	body := []byte(rec("retry-me"))
	if code, _ := post(t, srv.URL+"/ingest/gh", body, ghHeaders(body, "r-1")); code != 500 {
		t.Fatalf("publish failure answered %d, want 500", code)
	}
	// The vendor retries the same delivery once Kafka is back: it must be
	// stored, not treated as a redelivery of something we never kept.
	pub.mu.Lock()
	pub.fail = nil
	pub.mu.Unlock()
	code, out := post(t, srv.URL+"/ingest/gh", body, ghHeaders(body, "r-1"))
	if e, _ := pub.counts(); code != 200 || e != 1 {
		t.Fatalf("retry: %d %s, %d events", code, out, e)
	}
}

func TestPushNormalizesWithTheRegisteredConnectors(t *testing.T) {
	pub := &recorder{}
	srv, _ := newServer(t, pub, nil)
	gh := []byte(`{"@timestamp":1761531187412,"_document_id":"yq3Gkz0Y8PqPt1bE4mT2Dw","action":"repo.download_zip","actor":"crm-sync[bot]","actor_id":139201,"actor_ip":"102.89.0.1","org":"example","org_id":7701,"repo":"example/payments","created_at":1761531187412,"operation_type":"access","programmatic_access_type":"GitHub App server-to-server token","integration":"crm-sync","token_id":98123,"hashed_token":"k4fV2n4o8xTeS0cEw0e1mQ1cN2W8wB7kL2p9oZ0yq3A="}`)
	if code, out := post(t, srv.URL+"/ingest/github", gh, ghHeaders(gh, "g-1")); code != 200 {
		t.Fatalf("github: %d %s", code, out)
	}
	sl := []byte(`{"entries":[{"id":"0123a45b-6c7d-8e9f-a0b1-c2d3e4f5a6b7","date_create":1793067187,"action":"app_installed","actor":{"type":"user","user":{"id":"W123AB456","name":"Sales Ops","email":"sales-ops@example.com","team":"T013B5CHGLV"}},"entity":{"type":"app","app":{"id":"A0W1CRMSYNC","name":"Pipeline CRM Sync","scopes":["chat:write"]}},"context":{"ip_address":"198.51.100.7"}}]}`)
	if code, out := post(t, srv.URL+"/ingest/slack", sl, slackHeaders(sl, time.Now())); code != 200 {
		t.Fatalf("slack: %d %s", code, out)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	sources := map[string]int{}
	for _, ev := range pub.events {
		sources[ev.Source]++
	}
	if sources["github"] != 1 || sources["slack"] != 1 || len(pub.dead) != 0 {
		t.Fatalf("events by source %v, dead letters %d: %+v", sources, len(pub.dead), pub.dead)
	}
}

func TestPushConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
		want string
	}{
		{"no secret", func(c *Config) { c.Sources = []SourceConfig{{Source: "github"}} }, "secret: required"},
		{"unknown style", func(c *Config) {
			c.Sources = []SourceConfig{{Source: "okta", Verify: "hmac", Secret: secret.New("s")}}
		}, "verify"},
		{"no style for a source without a default", func(c *Config) {
			c.Sources = []SourceConfig{{Source: "okta", Secret: secret.New("s")}}
		}, "verify"},
		{"duplicate path", func(c *Config) {
			c.Sources = []SourceConfig{{Source: "github", Secret: secret.New("s")}, {Source: "github", Secret: secret.New("s")}}
		}, "duplicate"},
		{"unregistered source", func(c *Config) {
			c.Sources = []SourceConfig{{Source: "nope", Verify: "github", Secret: secret.New("s")}}
		}, "unknown source"},
		{"body limit", func(c *Config) { c.MaxBodyBytes = 0 }, "max_body_bytes"},
	} {
		cfg := DefaultConfig()
		tc.cfg(&cfg)
		_, err := New(cfg, &recorder{}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s\"") {
			t.Errorf("%s: the secret is in the error: %v", tc.name, err)
		}
	}
}
