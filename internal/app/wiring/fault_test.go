package wiring_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/deliver/webhook"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/internal/app/scenario"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
	"github.com/tokenwatch/tokenwatch/internal/platform/chtest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// The fault suite runs ingest, detect and deliver as three processes of
// their own against the embedded broker and a real clickhouse-server, and
// breaks them in a seeded random order: SIGKILL of each role at random
// points (while a file is being published, while a poller is half-way
// through a pass over a vendor API, mid-stream, between a sink's send and
// its receipt), ClickHouse stopped, the broker restarted, the
// webhook sink answering 503. Afterwards, without FINAL anywhere:
//
//   - events count() and the hourly view equal the unique input;
//   - the alert ids and the incident versions equal a clean offline replay's;
//   - the webhook received the final version of every incident, and a
//     repeat only where a deliver process was killed with a send in flight
//     (the sink delivers one incident at a time, so at most one per kill),
//     always under the same Idempotency-Key;
//   - nothing was dead-lettered.
//
// `make fault` runs one short plan; `make soak` runs many rounds with a 60 s
// ClickHouse outage and a sink down for minutes (TOKENWATCH_FAULT_* below).
// The seed is logged; TOKENWATCH_FAULT_SEED replays a plan.

// faultDefaultSeed is the plan `make test` and `make fault` run; `make soak`
// draws its own (TOKENWATCH_FAULT_SEED=random).
const faultDefaultSeed = 1796281630217282964

const (
	faultGitHubSecret = "fault-github-secret"
	faultHookSecret   = "fault-hook-secret"
)

type faultPlan struct {
	seed       uint64
	rounds     int           // rounds over the file (one chunk of pages appended each) and faults
	chOutage   time.Duration // ClickHouse stopped this long
	sinkDown   time.Duration // the webhook answers 503 this long
	deliveries int           // GitHub push deliveries (5 records each)
}

func faultPlanFromEnv(t *testing.T) faultPlan {
	p := faultPlan{seed: faultDefaultSeed, rounds: 6, chOutage: 8 * time.Second, sinkDown: 4 * time.Second, deliveries: 40}
	if v := os.Getenv("TOKENWATCH_FAULT_SEED"); v == "random" {
		p.seed = uint64(time.Now().UnixNano())
	} else if v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("TOKENWATCH_FAULT_SEED %q: %v", v, err)
		}
		p.seed = n
	}
	for _, kv := range []struct {
		env string
		n   *int
	}{{"TOKENWATCH_FAULT_ROUNDS", &p.rounds}, {"TOKENWATCH_FAULT_DELIVERIES", &p.deliveries}} {
		if v := os.Getenv(kv.env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("%s %q: want a positive integer", kv.env, v)
			}
			*kv.n = n
		}
	}
	for _, kv := range []struct {
		env string
		d   *time.Duration
	}{{"TOKENWATCH_FAULT_CH_OUTAGE", &p.chOutage}, {"TOKENWATCH_FAULT_SINK_DOWN", &p.sinkDown}} {
		if v := os.Getenv(kv.env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("%s %q: %v", kv.env, v, err)
			}
			*kv.d = d
		}
	}
	return p
}

// child is one role in a process of its own; its log goes to a file.
type child struct {
	role   string
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

func startChild(t *testing.T, role, cfgPath, logPath string) *child {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TOKENWATCH_CHILD_CONFIG="+cfgPath, "TOKENWATCH_CHILD_ROLES="+role, "TOKENWATCH_CHILD_LOG=info",
		"FAULT_GITHUB_SECRET="+faultGitHubSecret, "FAULT_HOOK_SECRET="+faultHookSecret, "FAULT_OKTA_TOKEN="+faultOktaToken)
	cmd.Stderr, cmd.Stdout = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{role: role, cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() { cmd.Wait(); close(c.exited) }()
	return c
}

func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

func (c *child) dead() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// hookReceiver is a webhook endpoint that records incident versions by
// Idempotency-Key, as an idempotent receiver would, and can be made to fail.
type hookReceiver struct {
	failing atomic.Bool
	mu      sync.Mutex
	bodies  map[string][]byte // Idempotency-Key → first body
	repeats map[string]int    // Idempotency-Key → deliveries after the first
	differ  []string          // keys repeated with another body
	latest  map[string]int    // incident id → highest version received
}

func newHookReceiver() *hookReceiver {
	return &hookReceiver{bodies: map[string][]byte{}, repeats: map[string]int{}, latest: map[string]int{}}
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if h.failing.Load() {
		http.Error(w, "down for the fault suite", http.StatusServiceUnavailable)
		return
	}
	ts, _ := strconv.ParseInt(r.Header.Get(webhook.HeaderTimestamp), 10, 64)
	if r.Header.Get(webhook.HeaderSignature) != webhook.Sign([]byte(faultHookSecret), ts, body) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	h.mu.Lock()
	defer h.mu.Unlock()
	if prev, ok := h.bodies[key]; ok {
		h.repeats[key]++
		if !bytes.Equal(prev, body) {
			h.differ = append(h.differ, key)
		}
		return
	}
	h.bodies[key] = body
	if r.Header.Get(webhook.HeaderKind) == "incident" {
		id, v, _ := strings.Cut(key, "/v")
		n, _ := strconv.Atoi(v)
		h.latest[id] = max(h.latest[id], n)
	}
}

// gitHubDeliveries builds n push deliveries of five GitHub audit-log
// records each (the fields of ingest/github/testdata/records.jsonl, with
// new _document_ids), dated after the scenario so they follow it in event
// time as they follow it on Kafka.
func gitHubDeliveries(t *testing.T, n int, after time.Time) [][]byte {
	t.Helper()
	templates := recordTemplates(t, "ingest/github/testdata/records.jsonl")
	base := after.Add(24 * time.Hour).Truncate(time.Hour).UnixMilli()
	out := make([][]byte, n)
	for d := range out {
		recs := make([]map[string]any, 5)
		for i := range recs {
			k := d*5 + i
			m := map[string]any{}
			for f, v := range templates[k%len(templates)] {
				m[f] = v
			}
			ms := base + int64(k)*90_000
			m["@timestamp"], m["created_at"] = ms, ms
			m["_document_id"] = fmt.Sprintf("fault-%05d", k)
			recs[i] = m
		}
		out[d], _ = json.Marshal(recs)
	}
	return out
}

// pagesOf reads the scenario's pages (one JSON page per line), oldest
// first: the file lists newest first, as the Reports API does, and a log
// that grows appends what happened last.
func pagesOf(t *testing.T) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "testdata/scenarios/google_oauth_theft", scenario.PagesFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var pages [][]byte
	sc := bufio.NewScanner(z)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		pages = append(pages, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(pages)
	return pages
}

func uniqueEvents(evs []schemas.Event) int {
	type key struct{ tenant, integ, id string }
	seen := map[key]bool{}
	for _, e := range evs {
		seen[key{e.Tenant, e.Integration.ID, e.EventID}] = true
	}
	return len(seen)
}

func deadLetters(t *testing.T, ctx context.Context, cfg broker.Config) int64 {
	t.Helper()
	var n int64
	for _, topic := range []string{schemas.TopicDeadLetter, schemas.TopicAlertDeadLetter} {
		for part := 0; part < cfg.Partitions; part++ {
			end, err := broker.EndOffset(ctx, cfg, topic, part)
			if err != nil {
				t.Fatal(err)
			}
			n += end
		}
	}
	return n
}

func TestFaultSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: child processes, ClickHouse and broker restarts")
	}
	plan := faultPlanFromEnv(t)
	t.Logf("fault plan: seed %d, %d rounds, ClickHouse down %s, sink down %s, %d push deliveries (TOKENWATCH_FAULT_SEED=%d replays it)",
		plan.seed, plan.rounds, plan.chOutage, plan.sinkDown, plan.deliveries, plan.seed)
	rng := rand.New(rand.NewPCG(plan.seed, 0x7a11))
	budget := 10 * time.Minute
	if d, ok := t.Deadline(); ok {
		budget = time.Until(d) - time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	until := func(limit time.Duration, cond func() bool) bool { return wiring.WaitFor(ctx, limit, cond) }

	// The input and what a clean run makes of it.
	pages := pagesOf(t)
	fileRecs, err := ingest.ReadFile(filepath.Join(root, "testdata/scenarios/google_oauth_theft", scenario.PagesFile))
	if err != nil {
		t.Fatal(err)
	}
	gw, _ := ingest.NewNormalizer("google_workspace", "")
	fileEvs := ingest.NormalizeRecords(gw, "scenario", fileRecs).Events
	var last time.Time
	for _, e := range fileEvs {
		if e.Time.After(last) {
			last = e.Time.Time
		}
	}
	oktaRecs, oktaTimes := oktaRecords(t, 20*faultOktaLimit, last)
	okta := newOktaLog(oktaRecs, oktaTimes)
	oktaRaw := make([]ingest.RawRecord, len(oktaRecs))
	for i, r := range oktaRecs {
		oktaRaw[i] = ingest.RawRecord{Data: r}
	}
	on, _ := ingest.NewNormalizer("okta", "acme")
	ob := ingest.NormalizeRecords(on, "poll", oktaRaw)
	if len(ob.Dead) > 0 || len(ob.Events) == 0 {
		t.Fatalf("okta log: %d events, %d records the normalizer refuses", len(ob.Events), len(ob.Dead))
	}
	oktaEvs := ob.Events
	deliveries := gitHubDeliveries(t, plan.deliveries, oktaTimes[len(oktaTimes)-1])
	gh, _ := ingest.NewNormalizer("github", "acme")
	var pushEvs []schemas.Event
	for _, d := range deliveries {
		var recs []json.RawMessage
		json.Unmarshal(d, &recs)
		raw := make([]ingest.RawRecord, len(recs))
		for i, r := range recs {
			raw[i] = ingest.RawRecord{Data: r}
		}
		nb := ingest.NormalizeRecords(gh, "push", raw)
		if len(nb.Dead) > 0 {
			t.Fatalf("push delivery %d: %d records the normalizer refuses: %s", len(pushEvs), len(nb.Dead), nb.Dead[0].Reason)
		}
		pushEvs = append(pushEvs, nb.Events...) // records of people, not integrations, are no events
	}
	// In event time and on Kafka: the file, then the Okta log, then the pushes.
	all := slices.Concat(fileEvs, oktaEvs, pushEvs)
	wantAlerts, wantIncidents := cleanRun(t, all)
	fileUnique, wantEvents := uniqueEvents(fileEvs), uniqueEvents(all)
	polledUnique := uniqueEvents(slices.Concat(fileEvs, oktaEvs))
	if len(pushEvs) == 0 || len(wantIncidents) == 0 {
		t.Fatalf("input: %d push events for %d deliveries, %d incidents in the clean run", len(pushEvs), plan.deliveries, len(wantIncidents))
	}

	// The parts: ClickHouse, the broker (restartable on its data dir), the webhook.
	srv := chtest.New(t)
	brokerDir, brokerPort := t.TempDir(), freePort(t)
	b, err := embedded.StartOn(4, brokerDir, brokerPort)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Close() }()
	cfg := scaleConfig(b.Addrs())
	cfg.ClickHouse.Addr = []string{srv.TCPAddr}
	if err := broker.EnsureTopics(ctx, cfg.Kafka, broker.AllTopics...); err != nil {
		t.Fatal(err)
	}
	if _, err := clickhouse.Migrate(ctx, cfg.ClickHouse); err != nil {
		t.Fatal(err)
	}
	hook := newHookReceiver()
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()
	oktaSrv := httptest.NewServer(okta)
	defer oktaSrv.Close()

	dir := t.TempDir()
	input := filepath.Join(dir, "token_activity.jsonl")
	if err := os.WriteFile(input, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The sinks' retries outlast their outages: the webhook down for minutes,
	// and the ClickHouse alerts sink through back-to-back ClickHouse rounds
	// (it is up only between them): a long outage delays deliveries, it does
	// not dead-letter them.
	attempts := 8 + int((plan.sinkDown+time.Duration(plan.rounds)*plan.chOutage)/(4*time.Second))
	ports := map[string]int{"ingest": freePort(t), "detect": freePort(t), "deliver": freePort(t)}
	cfgPath := map[string]string{}
	for role, port := range ports {
		yml := fmt.Sprintf(`http: {listen: "127.0.0.1:%d"}
kafka: {brokers: [%s]}
clickhouse: {addr: [%s]}
geoip: {city: %s, asn: %s}
ingest:
  files:
    - {source: google_workspace, path: %s}
  pollers:
    - source: okta
      tenant: acme
      base_url: %s
      poll_interval: 1s
      initial_lookback: 4000h
      retry_max_elapsed: 1s
      config: {token: "env:FAULT_OKTA_TOKEN", limit: %d}
  push:
    sources:
      - {source: github, tenant: acme, secret: "env:FAULT_GITHUB_SECRET"}
detect: {batch_size: 100, flush_interval: 5ms, checkpoint_interval: 100ms}
deliver:
  batch_size: 300
  flush_interval: 10ms
  retry: {max_attempts: %d, initial_interval: 250ms, max_interval: 4s}
  sinks:
    - name: fault-hook
      kind: webhook
      config: {url: "%s", secret: "env:FAULT_HOOK_SECRET"}
`, port, strings.Join(cfg.Kafka.Brokers, ", "), srv.TCPAddr, geoCity, geoASN, input, oktaSrv.URL, faultOktaLimit, attempts, hookSrv.URL)
		cfgPath[role] = filepath.Join(dir, role+".yaml")
		if err := os.WriteFile(cfgPath[role], []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	procs := map[string]*child{}
	start := func(role string) { procs[role] = startChild(t, role, cfgPath[role], filepath.Join(dir, role+".log")) }
	// Prometheus's view of the run (faultrules_test.go).
	prom, metricsURL := newPromStore(), map[string]string{}
	for role, port := range ports {
		metricsURL[role] = fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	}
	scrapeCtx, stopScrape := context.WithCancel(ctx)
	scraped := make(chan struct{})
	go func() { defer close(scraped); prom.run(scrapeCtx, metricsURL, 250*time.Millisecond) }()
	defer stopScrape()
	roleGroups := map[string][]string{
		"detect": {cfg.Kafka.Group("detect"), cfg.Kafka.Group("detect-source_ip")},
		"deliver": {cfg.Kafka.Group("sink-clickhouse-events"), cfg.Kafka.Group("sink-clickhouse-alerts"), cfg.Kafka.Group("sink-clickhouse-incidents"),
			cfg.Kafka.Group("sink-fault-hook"), cfg.Kafka.Group("incidents-fault-hook")},
	}
	kills, killedAt := map[string]int{}, map[string][]time.Time{}
	kill := func(role string) {
		if procs[role].dead() {
			t.Fatalf("%s exited on its own before it was killed:\n%s", role, logTail(procs[role].log))
		}
		// Killed mid-stream, not mid-join: kfake never expires a member
		// that died while its JoinGroup or SyncGroup was pending, and its
		// partitions would stay unread (docs/reliability.md). A real
		// broker expires it after the session timeout.
		if groups := roleGroups[role]; len(groups) > 0 && !until(time.Minute, func() bool { return joined(ctx, cfg.Kafka, groups) }) {
			t.Fatalf("%s: its consumer groups did not settle to one member each within a minute:\n%s", role, pipelineState(ctx, cfg.Kafka, input))
		}
		procs[role].kill()
		killedAt[role] = append(killedAt[role], time.Now())
		prom.scrape(role, metricsURL[role]) // the scrape that finds it gone
		kills[role]++
	}
	var chDown [][2]time.Time // ClickHouse outages: stopped, back
	defer func() {
		for _, c := range procs {
			c.kill()
		}
	}()
	t.Cleanup(func() { // after the kills, before the temp dir goes
		if !t.Failed() {
			return
		}
		keep := filepath.Join(os.TempDir(), fmt.Sprintf("tokenwatch-fault-%d", plan.seed))
		os.MkdirAll(keep, 0o755)
		for _, r := range []string{"ingest", "detect", "deliver"} {
			b, _ := os.ReadFile(filepath.Join(dir, r+".log"))
			os.WriteFile(filepath.Join(keep, r+".log"), b, 0o644)
			t.Logf("%s log (all of it in %s):\n%s", r, keep, logTail(filepath.Join(dir, r+".log")))
		}
	})
	sleep := func(lo, hi time.Duration) { time.Sleep(lo + time.Duration(rng.Int64N(int64(hi-lo)+1))) }

	c, err := clickhouse.Open(ctx, cfg.ClickHouse)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	count := func(q string) uint64 {
		var n uint64
		if err := c.Conn().QueryRow(ctx, q).Scan(&n); err != nil {
			return 0 // ClickHouse is down in one phase
		}
		return n
	}

	// Phase 1: the file grows by a chunk of pages each round; ingest is
	// killed at a random point after each start (before, while or after it
	// publishes), and one other fault hits per round.
	start("detect")
	start("deliver")
	faults := []string{"detect", "deliver", "clickhouse", "broker", "all"}
	rng.Shuffle(len(faults), func(i, j int) { faults[i], faults[j] = faults[j], faults[i] })
	per := (len(pages) + plan.rounds - 1) / plan.rounds
	var did []string
	for round := 0; round < plan.rounds; round++ {
		fault := faults[round%len(faults)]
		if round >= len(faults) {
			fault = faults[rng.IntN(len(faults))]
		}
		var stopped time.Time
		if fault == "clickhouse" {
			// Down before the chunk is published, so the writer has a batch
			// in hand for the whole outage (what the metrics must show).
			srv.Stop()
			stopped = time.Now()
		}
		if lo := round * per; lo < len(pages) {
			f, err := os.OpenFile(input, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pages[lo:min(lo+per, len(pages))] {
				f.Write(append(p, '\n'))
			}
			f.Close()
		}
		start("ingest")
		sleep(0, 900*time.Millisecond)
		kill("ingest")
		start("ingest") // publishes what the killed one did not
		sleep(100*time.Millisecond, 1500*time.Millisecond)
		switch fault {
		case "detect", "deliver":
			kill(fault)
			start(fault)
		case "all":
			for _, r := range []string{"ingest", "detect", "deliver"} {
				kill(r)
			}
			for _, r := range []string{"detect", "deliver", "ingest"} {
				start(r)
			}
		case "clickhouse":
			time.Sleep(time.Until(stopped.Add(plan.chOutage)))
			if err := srv.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			chDown = append(chDown, [2]time.Time{stopped, time.Now()})
		case "broker":
			b.Close()
			time.Sleep(500 * time.Millisecond)
			if b, err = embedded.StartOn(4, brokerDir, brokerPort); err != nil {
				t.Fatal(err)
			}
		}
		did = append(did, fault)
		sleep(200*time.Millisecond, time.Second)
		kill("ingest") // the next chunk is appended while no ingest reads the file
	}
	start("ingest")
	if !until(budget/3, func() bool { return count("SELECT count() FROM events") >= uint64(fileUnique) }) {
		t.Fatalf("after %v: %d of %d file events in ClickHouse\n%s\ningest:\n%s", did, count("SELECT count() FROM events"), fileUnique,
			pipelineState(ctx, cfg.Kafka, input), logTail(procs["ingest"].log))
	}

	// Phase 2: the Okta System Log gains its records and the poller reads
	// them in one pass of many pages. Ingest is killed mid-pass, each time
	// after a later page: the restart resumes from the page cursor it saved,
	// and a page fetched but not yet saved is read again (an overlap the
	// event-id dedup absorbs).
	okta.open.Store(true)
	midPass := 0
	for _, at := range midPassKills(rng.IntN, 3, len(oktaRecs)/faultOktaLimit) {
		if !until(time.Minute, func() bool { return okta.pages.Load() >= int64(at) }) {
			t.Fatalf("okta poller: %d pages served, waited for %d\ningest:\n%s", okta.pages.Load(), at, logTail(procs["ingest"].log))
		}
		sleep(0, 30*time.Millisecond)
		if okta.end.Load() < int64(len(oktaRecs)) {
			midPass++
		}
		kill("ingest")
		start("ingest")
		did = append(did, "poller")
	}
	if midPass == 0 {
		t.Errorf("no ingest kill landed while the poller was mid-pass (%d pages served)", okta.pages.Load())
	}
	if !until(budget/3, func() bool { return count("SELECT count() FROM events") >= uint64(polledUnique) }) {
		t.Fatalf("after the poller kills: %d of %d file and Okta events in ClickHouse (okta pages served %d, furthest record %d of %d)\n%s\ningest:\n%s",
			count("SELECT count() FROM events"), polledUnique, okta.pages.Load(), okta.end.Load(), len(oktaRecs),
			pipelineState(ctx, cfg.Kafka, input), logTail(procs["ingest"].log))
	}

	// The vendor down for as long as the sink will be: each failed cycle is
	// counted (what the poll error rules read), and the poller carries on
	// from its cursor once the API answers again.
	okta.failing.Store(true)
	vendorDown := [2]time.Time{time.Now()}
	time.Sleep(plan.sinkDown)
	okta.failing.Store(false)
	vendorDown[1] = time.Now()
	did = append(did, "vendor")

	// Phase 3: GitHub pushes, retried by the sender until answered 2xx and
	// sometimes sent twice (a vendor redelivery), while ingest is killed
	// twice, the sink goes down and deliver and detect are killed.
	pushURL := fmt.Sprintf("http://127.0.0.1:%d/ingest/github", ports["ingest"])
	sign := func(body []byte) string {
		m := hmac.New(sha256.New, []byte(faultGitHubSecret))
		m.Write(body)
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	var pushed, refused atomic.Int64
	pushDone := make(chan struct{})
	redeliver := rand.New(rand.NewPCG(plan.seed, 2))
	go func() {
		defer close(pushDone)
		send := func(i int) {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, pushURL, bytes.NewReader(deliveries[i]))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "audit_log")
				req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("fault-delivery-%d", i))
				req.Header.Set("X-Hub-Signature-256", sign(deliveries[i]))
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode/100 == 2 {
						pushed.Add(1)
						return
					}
				}
				refused.Add(1) // unreachable (ingest killed) or refused: the sender retries, as vendors do
				time.Sleep(100 * time.Millisecond)
			}
		}
		for i := range deliveries {
			send(i)
			if redeliver.IntN(4) == 0 {
				send(i)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for _, fault := range []string{"ingest", "sink", "deliver", "ingest", "detect"} {
		sleep(100*time.Millisecond, 700*time.Millisecond)
		switch fault {
		case "sink":
			hook.failing.Store(true)
			time.Sleep(plan.sinkDown)
			hook.failing.Store(false)
		default:
			kill(fault)
			start(fault)
		}
		did = append(did, fault)
	}
	select {
	case <-pushDone:
	case <-ctx.Done():
		t.Fatalf("pushes: %d answered 2xx of %d deliveries before the deadline", pushed.Load(), len(deliveries))
	}

	// Everything settles to the clean run, counted without FINAL.
	alertIDs := func() map[string]int {
		out := map[string]int{}
		rows, err := c.Conn().Query(ctx, "SELECT id FROM alerts")
		if err != nil {
			return out
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			rows.Scan(&id)
			out[id]++
		}
		return out
	}
	incidentVersions := func() map[string][]int {
		out := map[string][]int{}
		rows, err := c.Conn().Query(ctx, "SELECT id, version FROM incidents ORDER BY id, version")
		if err != nil {
			return out
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var v uint32
			rows.Scan(&id, &v)
			out[id] = append(out[id], int(v))
		}
		return out
	}
	settled := func() bool {
		if count("SELECT count() FROM events") < uint64(wantEvents) || len(alertIDs()) < len(wantAlerts) {
			return false
		}
		got := incidentVersions()
		for id, v := range wantIncidents {
			if vs := got[id]; len(vs) == 0 || vs[len(vs)-1] < v {
				return false
			}
		}
		hook.mu.Lock()
		defer hook.mu.Unlock()
		for id, v := range wantIncidents {
			if hook.latest[id] < v {
				return false
			}
		}
		return true
	}
	ok := until(budget/2, settled)
	time.Sleep(2 * time.Second) // anything still to come (a late duplicate) lands before the counts
	events, hourly := count("SELECT count() FROM events"), count("SELECT countMerge(events) FROM integration_activity_hourly")
	t.Logf("faults %v; kills %v (%d mid-pass of the poller, which served %d pages of %d); pushes answered 2xx %d (refused or unreachable %d); events %d (unique input %d), hourly view %d",
		did, kills, midPass, okta.pages.Load(), len(oktaRecs)/faultOktaLimit, pushed.Load(), refused.Load(), events, wantEvents, hourly)
	if !ok {
		t.Errorf("did not settle to the clean run within %s", budget/2)
	}
	if events != uint64(wantEvents) || hourly != uint64(wantEvents) {
		t.Errorf("events count() %d, hourly view %d: want the %d unique input events", events, hourly, wantEvents)
	}
	if in, topic := lateArrivals(all), topicLateArrivals(t, ctx, cfg.Kafka); topic != in {
		t.Errorf("events arriving after a later hour of their integration: %d on %s, %d in the input order: a crash reordered an integration's events", topic, schemas.TopicEvents, in)
	}
	got := alertIDs()
	for id, n := range got {
		if !wantAlerts[id] {
			var det, integ, summary string
			var first time.Time
			c.Conn().QueryRow(ctx, "SELECT detector, integration_id, summary, first_seen FROM alerts WHERE id = ? LIMIT 1", id).Scan(&det, &integ, &summary, &first)
			inHour := 0 // what the input holds for that integration in that hour
			for _, e := range all {
				if e.Integration.ID == integ && e.Time.Time.Truncate(time.Hour).Equal(first.Truncate(time.Hour)) {
					inHour++
				}
			}
			t.Errorf("alert %s is not in the clean run: %s on %s at %s: %s (the input has %d events of it in that hour)",
				id, det, integ, first.Format(time.RFC3339), summary, inHour)
		}
		if n != 1 {
			t.Errorf("alert %s stored %d times", id, n)
		}
	}
	for id := range wantAlerts {
		if got[id] == 0 {
			t.Errorf("alert %s of the clean run is missing", id)
		}
	}
	for id, vs := range incidentVersions() {
		want, ok := wantIncidents[id]
		if !ok {
			t.Errorf("incident %s is not in the clean run", id)
			continue
		}
		for i, v := range vs {
			if v != i+1 {
				t.Errorf("incident %s versions %v: want 1..%d, each once", id, vs, want)
				break
			}
		}
		if len(vs) != want {
			t.Errorf("incident %s versions %v: the clean run has %d", id, vs, want)
		}
	}
	hook.mu.Lock()
	repeats := 0
	for _, n := range hook.repeats {
		repeats += n
	}
	if len(hook.differ) > 0 {
		t.Errorf("webhook: repeated Idempotency-Keys with a different body: %v", hook.differ)
	}
	if killedDeliver := kills["deliver"]; repeats > killedDeliver {
		t.Errorf("webhook received %d repeats (%v) for %d deliver kills: at most one in-flight send per kill may repeat", repeats, hook.repeats, killedDeliver)
	}
	t.Logf("webhook: %d incident versions received, %d repeated (same key, same body) across %d deliver kills", len(hook.bodies), repeats, kills["deliver"])
	hook.mu.Unlock()
	if n := deadLetters(t, ctx, cfg.Kafka); n != 0 {
		t.Errorf("%d records dead-lettered; the input has no bad record", n)
	}
	stopScrape()
	<-scraped
	checkShippedRules(t, prom, killedAt, chDown, vendorDown)
}

// checkShippedRules asserts that the shipped rules said what happened: a
// killed role is down, a ClickHouse outage shows as failing writes and as
// lag of the events writer, and the rules about loss stayed quiet because
// nothing was lost.
func checkShippedRules(t *testing.T, prom *promStore, killedAt map[string][]time.Time, chDown [][2]time.Time, vendorDown [2]time.Time) {
	t.Helper()
	rules := shippedRules(t)
	// Not shipped rules: the lag gauge itself must read the outage (it
	// once read 0 until a write succeeded), and the poll error counter the
	// vendor's (TokenwatchPollErrors wants more than 5 in 15 minutes, which
	// only make soak's longer outage reaches).
	rules["events writer lag > 0"] = `max(tokenwatch_kafka_consumer_lag{topic="tokenwatch.events",group=~".*sink-clickhouse-events"}) > 0`
	rules["okta poll errors counted"] = `sum(increase(tokenwatch_poll_errors_total{source="okta"}[1m])) > 0`
	fired := evalRules(t, prom, rules)
	if !fired["okta poll errors counted"].during(vendorDown[0], vendorDown[1].Add(5*time.Second)) {
		t.Errorf("no failed poll counted while the Okta API answered 503 (%s–%s)", vendorDown[0].Format(time.TimeOnly), vendorDown[1].Format(time.TimeOnly))
	}
	if vendorDown[1].Sub(vendorDown[0]) >= 90*time.Second && !fired["TokenwatchPollErrors"].during(vendorDown[0], vendorDown[1].Add(5*time.Second)) {
		t.Errorf("TokenwatchPollErrors did not hold during a %s Okta outage", vendorDown[1].Sub(vendorDown[0]).Round(time.Second))
	}
	instants := prom.instants()
	for role, at := range killedAt {
		for _, k := range at {
			if !fired["TokenwatchDown"].during(k, k.Add(2*time.Second)) {
				t.Errorf("TokenwatchDown did not hold after %s was killed at %s", role, k.Format(time.TimeOnly))
			}
		}
		if !fired["TokenwatchDown"].named("role", role) {
			t.Errorf("TokenwatchDown never named role %s: %s", role, fired["TokenwatchDown"].summary())
		}
	}
	for _, w := range chDown {
		for _, r := range []string{"TokenwatchClickHouseWritesFailing", "events writer lag > 0"} {
			if !fired[r].during(w[0], w[1].Add(5*time.Second)) {
				t.Errorf("%s did not hold during the ClickHouse outage %s–%s", r, w[0].Format(time.TimeOnly), w[1].Format(time.TimeOnly))
			}
		}
	}
	for _, r := range []string{"TokenwatchAlertsDeadLettered", "TokenwatchSinkFailures", "TokenwatchDeadLettersGrowing"} {
		if len(fired[r].at) > 0 {
			t.Errorf("%s held at %d instants (%s): nothing was lost, it must stay quiet", r, len(fired[r].at), fired[r].summary())
		}
	}
	names := make([]string, 0, len(fired))
	for n := range fired {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "\n  %-36s held at %4d of %d instants, longest %6s %s", n, len(fired[n].at), len(instants),
			fired[n].longest(instants).Round(time.Millisecond), fired[n].summary())
	}
	t.Logf("shipped rules evaluated on the scraped metrics:%s", b.String())
}

// lateArrivals counts events (first occurrences) that arrive after an event
// of their integration from a later hour: what order-sensitive detectors
// (volume.spike folds a late event into the open hour) see differently.
func lateArrivals(evs []schemas.Event) int {
	type key struct{ tenant, integ, id string }
	seen, latest, late := map[key]bool{}, map[string]int64{}, 0
	for _, e := range evs {
		k := key{e.Tenant, e.Integration.ID, e.EventID}
		if seen[k] {
			continue
		}
		seen[k] = true
		h := e.Time.Time.Unix() / 3600
		ik := e.Tenant + "/" + e.Integration.ID
		if h < latest[ik] {
			late++
		}
		latest[ik] = max(latest[ik], h)
	}
	return late
}

// topicLateArrivals is lateArrivals over tokenwatch.events in partition order;
// it also checks each integration lives on one partition.
func topicLateArrivals(t *testing.T, ctx context.Context, cfg broker.Config) int {
	t.Helper()
	late, home := 0, map[string]int{}
	for part := 0; part < cfg.Partitions; part++ {
		var evs []schemas.Event
		err := broker.ReadPartition(ctx, cfg, schemas.TopicEvents, part, func(m kafka.Message) {
			var e schemas.Event
			if err := broker.DecodeEvent(m, &e); err != nil {
				t.Errorf("%s: %v", broker.Where(m), err)
				return
			}
			evs = append(evs, e)
		})
		if err != nil {
			t.Fatal(err)
		}
		late += lateArrivals(evs)
		for _, e := range evs {
			ik := e.Tenant + "/" + e.Integration.ID
			if q, ok := home[ik]; ok && q != part {
				t.Errorf("integration %s has events on partitions %d and %d of %s: keyed records moved", ik, q, part, schemas.TopicEvents)
				home[ik] = part // once per move
			} else if !ok {
				home[ik] = part
			}
		}
	}
	return late
}

// joined reports whether each group is stable with exactly one member: the
// one process of its role has joined and holds every partition.
func joined(ctx context.Context, cfg broker.Config, groups []string) bool {
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 5 * time.Second}
	dg, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: groups})
	if err != nil || len(dg.Groups) != len(groups) {
		return false
	}
	for _, g := range dg.Groups {
		if g.Error != nil || g.GroupState != "Stable" || len(g.Members) != 1 {
			return false
		}
	}
	return true
}

// everyGroupJoined reports whether every consumer group on the broker is
// stable with exactly one member: a test that kills the one process of its
// roles waits for it, since kfake never expires a member killed mid-join.
func everyGroupJoined(ctx context.Context, cfg broker.Config) bool {
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 5 * time.Second}
	lg, err := client.ListGroups(ctx, &kafka.ListGroupsRequest{})
	if err != nil || lg.Error != nil || len(lg.Groups) == 0 {
		return false
	}
	ids := make([]string, len(lg.Groups))
	for i, g := range lg.Groups {
		ids[i] = g.GroupID
	}
	return joined(ctx, cfg, ids)
}

// pipelineState says where a stalled run's events stopped: how many unique
// events the topic holds, how far the ClickHouse writer's group committed,
// and the file cursor ingest saved against the file's records.
func pipelineState(ctx context.Context, cfg broker.Config, input string) string {
	var b strings.Builder
	type key struct{ tenant, integ, id string }
	seen := map[key]bool{}
	var total int64
	for part := 0; part < cfg.Partitions; part++ {
		err := broker.ReadPartition(ctx, cfg, schemas.TopicEvents, part, func(m kafka.Message) {
			total++
			var e schemas.Event
			if broker.DecodeEvent(m, &e) == nil { // a diagnostic dump: every record it can read
				seen[key{e.Tenant, e.Integration.ID, e.EventID}] = true
			}
		})
		if err != nil {
			fmt.Fprintf(&b, "read %s[%d]: %v\n", schemas.TopicEvents, part, err)
		}
	}
	fmt.Fprintf(&b, "%s holds %d records, %d unique events\n", schemas.TopicEvents, total, len(seen))
	for _, g := range []string{"sink-clickhouse-events", "detect"} {
		lag, err := broker.GroupLag(ctx, cfg, cfg.Group(g), schemas.TopicEvents)
		fmt.Fprintf(&b, "group %s lag on %s: %d (err %v)\n", cfg.Group(g), schemas.TopicEvents, lag, err)
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second}
	if lg, err := client.ListGroups(ctx, &kafka.ListGroupsRequest{}); err == nil {
		var ids []string
		for _, g := range lg.Groups {
			ids = append(ids, g.GroupID)
		}
		if dg, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: ids}); err == nil {
			for _, g := range dg.Groups {
				fmt.Fprintf(&b, "group %s %s, %d members:", g.GroupID, g.GroupState, len(g.Members))
				for _, m := range g.Members {
					fmt.Fprintf(&b, " [%s %s %v]", m.MemberID[len(m.MemberID)-8:], m.ClientHost, m.MemberAssignments.Topics)
				}
				b.WriteString("\n")
			}
		}
	}
	recs, _ := ingest.ReadFile(input)
	fmt.Fprintf(&b, "input file: %d records\n", len(recs))
	for part := 0; part < cfg.Partitions; part++ {
		broker.ReadPartition(ctx, cfg, schemas.TopicCursors, part, func(m kafka.Message) {
			fmt.Fprintf(&b, "cursor %s = %s\n", m.Key, m.Value)
		})
	}
	return b.String()
}

func logTail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}
