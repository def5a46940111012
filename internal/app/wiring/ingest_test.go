package wiring_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/scenario"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
)

// TestRunPollsGoogleAndReceivesGitHubPushes drives the ingest role as
// `tokenwatch run` does, from YAML: a Google Reports API poller against a fake
// API that checks the bearer token and pages, and a signed GitHub push.
func TestRunPollsGoogleAndReceivesGitHubPushes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recs, err := ingest.ReadFile(filepath.Join(root, "testdata/scenarios/google_oauth_theft", scenario.PagesFile))
	if err != nil {
		t.Fatal(err)
	}
	items := make([]json.RawMessage, 0, 250)
	for _, r := range recs[:250] {
		items = append(items, r.Data)
	}
	var served atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer test-token" {
			http.Error(w, `{"error":{"code":401}}`, http.StatusUnauthorized)
			return
		}
		// Like the Reports API: only records at or after startTime.
		start, _ := time.Parse(time.RFC3339Nano, r.URL.Query().Get("startTime"))
		var match []json.RawMessage
		for _, it := range items {
			var a struct {
				ID struct{ Time time.Time } `json:"id"`
			}
			json.Unmarshal(it, &a)
			if !a.ID.Time.Before(start) {
				match = append(match, it)
			}
		}
		page := 0
		fmt.Sscan(r.URL.Query().Get("pageToken"), &page)
		lo, hi := min(page*100, len(match)), min(page*100+100, len(match))
		resp := map[string]any{"kind": "admin#reports#activities", "items": match[lo:hi]}
		if hi < len(match) {
			resp["nextPageToken"] = fmt.Sprint(page + 1)
		}
		served.Add(int32(hi - lo))
		json.NewEncoder(w).Encode(resp)
	}))
	defer api.Close()

	_, bcfg := startBroker(t)
	port := freePort(t)
	yml := fmt.Sprintf(`http: {listen: "127.0.0.1:%d"}
kafka: {brokers: [%s]}
geoip: {city: %s, asn: %s}
ingest:
  pollers:
    - source: google_workspace
      tenant: C03az79cb
      base_url: %s
      poll_interval: 1s
      initial_lookback: 2000h
      config: {token: test-token, max_results: 100}
    - source: google_workspace
      tenant: revoked-tenant
      base_url: %s
      poll_interval: 1s
      retry_max_elapsed: 1s
      config: {token: revoked-token}
  push:
    sources:
      - {source: github, tenant: example, secret: hook-secret}
`, port, bcfg.Kafka.Brokers[0], geoCity, geoASN, api.URL, api.URL)
	path := filepath.Join(t.TempDir(), "tw.yaml")
	os.WriteFile(path, []byte(yml), 0o644)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx, []string{wiring.RoleIngest, wiring.RoleDetect}) }()
	defer func() { stop(); <-done }()

	// Every polled record becomes an event exactly once, and is detected.
	if !wiring.WaitFor(ctx, time.Minute, func() bool { return p.Stats.EventsDetected.Load() >= 250 }) {
		t.Fatalf("polled events detected: %d of 250 (served %d)", p.Stats.EventsDetected.Load(), served.Load())
	}
	time.Sleep(2500 * time.Millisecond) // two more poll cycles re-read the overlap
	if n := p.Stats.EventsPublished.Load(); n != 250 {
		t.Fatalf("published %d events for 250 records (overlap re-reads must dedup)", n)
	}

	// A signed GitHub push: a bad signature is refused, a good one accepted.
	body, _ := os.ReadFile(filepath.Join(root, "ingest/github/testdata/records.jsonl"))
	first := bytes.SplitN(body, []byte("\n"), 2)[0]
	post := func(sig string) int {
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/ingest/github", port), bytes.NewReader(first))
		req.Header.Set("X-Hub-Signature-256", sig)
		req.Header.Set("X-GitHub-Delivery", "d-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	wiring.WaitFor(ctx, 10*time.Second, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	if code := post("sha256=00"); code != http.StatusUnauthorized {
		t.Fatalf("bad signature: HTTP %d", code)
	}
	m := hmac.New(sha256.New, []byte("hook-secret"))
	m.Write(first)
	if code := post("sha256=" + hex.EncodeToString(m.Sum(nil))); code/100 != 2 {
		t.Fatalf("good signature: HTTP %d", code)
	}
	if !wiring.WaitFor(ctx, 30*time.Second, func() bool { return p.Stats.EventsDetected.Load() >= 251 }) {
		t.Fatalf("pushed event not detected (%d)", p.Stats.EventsDetected.Load())
	}

	// The poller whose token the API refuses never completes a cycle: after
	// three intervals and its retry budget, /readyz says so, and the error
	// counter moved.
	var ready string
	stalled := wiring.WaitFor(ctx, 20*time.Second, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ready = string(b)
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if !stalled || !strings.Contains(ready, "poller google_workspace/revoked-tenant stalled") || strings.Contains(ready, "C03az79cb") {
		t.Fatalf("/readyz: %q", ready)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `tokenwatch_poll_errors_total{source="google_workspace",tenant="revoked-tenant"}`) {
		t.Error("poll errors not counted")
	}
}
