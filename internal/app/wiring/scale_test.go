package wiring_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/googleworkspace"
	"github.com/tokenwatch/tokenwatch/ingest/publish"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/scenario"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker/embedded"
	"github.com/tokenwatch/tokenwatch/internal/platform/chtest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// TestMain doubles as the child process of the crash test: with
// TOKENWATCH_CHILD_CONFIG set it runs `tokenwatch run` roles and never
// returns on its own (the test SIGKILLs it).
func TestMain(m *testing.M) {
	if path := os.Getenv("TOKENWATCH_CHILD_CONFIG"); path != "" {
		cfg, err := config.Load(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		level := slog.LevelWarn
		if os.Getenv("TOKENWATCH_CHILD_LOG") == "info" { // the fault suite keeps info logs for a failed run
			level = slog.LevelInfo
		}
		p, closeFn, err := wiring.Build(context.Background(), cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		defer closeFn()
		if err := p.Run(context.Background(), strings.Split(os.Getenv("TOKENWATCH_CHILD_ROLES"), ",")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var geoCity, geoASN = filepath.Join(root, "testdata/geoip/test-city.mmdb"), filepath.Join(root, "testdata/geoip/test-asn.mmdb")

// scenarioEvents normalizes the bundled scenario and computes, offline, the
// alert ids a single-instance run raises.
func scenarioEvents(t testing.TB) ([]schemas.Event, map[string]bool) {
	t.Helper()
	recs, err := ingest.ReadFile(filepath.Join(root, "testdata/scenarios/google_oauth_theft", scenario.PagesFile))
	if err != nil {
		t.Fatal(err)
	}
	b := ingest.NormalizeRecords(googleworkspace.NewNormalizer(""), "scenario", recs)
	want, _ := cleanRun(t, b.Events)
	if len(want) == 0 {
		t.Fatal("the scenario raises no alerts offline")
	}
	return b.Events, want
}

// cleanRun is what one uninterrupted offline replay of the same input
// raises: alert ids, and every incident's versions.
func cleanRun(t testing.TB, evs []schemas.Event) (alerts map[string]bool, incidents map[string]int) {
	t.Helper()
	prog, err := program.Build(program.Config{GeoIP: geoip.Config{City: geoCity, ASN: geoASN}}, program.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	alerts, incidents = map[string]bool{}, map[string]int{}
	r := prog.NewReplay()
	r.OnAlert = func(a schemas.Alert, _ schemas.Time) { alerts[a.ID] = true }
	r.OnIncident = func(inc schemas.Incident, _ schemas.Time) { incidents[inc.ID] = max(incidents[inc.ID], inc.Version) }
	for i := range evs {
		ev := evs[i]
		r.Observe(&ev)
	}
	return alerts, incidents
}

func scaleConfig(brokers []string) config.Config {
	cfg := config.Default()
	cfg.Kafka.Brokers = brokers
	cfg.HTTP.Listen = ""
	cfg.GeoIP.City, cfg.GeoIP.ASN = geoCity, geoASN
	// Small batches and frequent checkpoints so a run lasts long enough to
	// be interrupted mid-stream.
	cfg.Detect.BatchSize = 100
	cfg.Detect.FlushInterval = 5 * time.Millisecond
	cfg.Detect.CheckpointInterval = 100 * time.Millisecond
	cfg.Deliver.BatchSize = 300
	cfg.Deliver.FlushInterval = 10 * time.Millisecond
	return cfg
}

// alertCounts reads every alert on tokenwatch.alerts: id → times produced.
func alertCounts(t *testing.T, ctx context.Context, cfg config.Config) map[string]int {
	t.Helper()
	out, err := tryAlertCounts(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tryAlertCounts is alertCounts for a broker that may be restarting: its
// error is the caller's to retry.
func tryAlertCounts(ctx context.Context, cfg config.Config) (map[string]int, error) {
	out := map[string]int{}
	for part := 0; part < cfg.Kafka.Partitions; part++ {
		end, err := broker.EndOffset(ctx, cfg.Kafka, schemas.TopicAlerts, part)
		if err != nil {
			return nil, err
		}
		if end == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Kafka.Brokers, Topic: schemas.TopicAlerts, Partition: part, MaxWait: 50 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				return nil, err
			}
			var a schemas.Alert
			json.Unmarshal(m.Value, &a)
			out[a.ID]++
			if m.Offset+1 >= end {
				break
			}
		}
		r.Close()
	}
	return out, nil
}

func startBroker(t *testing.T) ([]string, config.Config) {
	t.Helper()
	b, err := embedded.Start(4, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cfg := scaleConfig(b.Addrs())
	if err := broker.EnsureTopics(context.Background(), cfg.Kafka, broker.AllTopics...); err != nil {
		t.Fatal(err)
	}
	return b.Addrs(), cfg
}

func publishAll(t *testing.T, ctx context.Context, cfg config.Config, evs []schemas.Event) {
	t.Helper()
	pub := publish.New(cfg.Kafka)
	defer pub.Close()
	for i := 0; i < len(evs); i += 2000 {
		if err := pub.Events(ctx, evs[i:min(i+2000, len(evs))]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestThreeDetectInstancesOneStoppedMidStreamRaiseTheSingleRunAlerts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	evs, want := scenarioEvents(t)
	_, cfg := startBroker(t)
	half := len(evs) / 2 // the first ten days: baselines learned, no attack yet

	type instance struct {
		p    *wiring.Pipeline
		stop context.CancelFunc
		done chan error
	}
	startInstance := func() *instance {
		p, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(closeFn)
		ictx, stop := context.WithCancel(ctx)
		in := &instance{p: p, stop: stop, done: make(chan error, 1)}
		go func() { in.done <- p.Run(ictx, []string{wiring.RoleDetect}) }()
		return in
	}
	// Instance A learns every baseline from the first half.
	publishAll(t, ctx, cfg, evs[:half])
	a := startInstance()
	if !wiring.WaitFor(ctx, time.Minute, func() bool { return a.p.Stats.EventsDetected.Load() >= int64(half) }) {
		t.Fatalf("instance A detected %d of %d", a.p.Stats.EventsDetected.Load(), half)
	}
	// B and C join the group, then A stops: all its partitions, and the
	// baselines in them, move to B and C.
	b, c := startInstance(), startInstance()
	time.Sleep(2 * time.Second)
	a.stop()
	if err := <-a.done; err != nil {
		t.Fatal(err)
	}
	publishAll(t, ctx, cfg, evs[half:])
	later := func() int64 { return b.p.Stats.EventsDetected.Load() + c.p.Stats.EventsDetected.Load() }
	var got map[string]int
	ok := wiring.WaitFor(ctx, 2*time.Minute, func() bool {
		if later() < int64(len(evs)-half) {
			return false
		}
		got = alertCounts(t, ctx, cfg)
		return len(got) >= len(want)
	})
	time.Sleep(500 * time.Millisecond) // anything late would be a duplicate
	got = alertCounts(t, ctx, cfg)
	for _, in := range []*instance{b, c} {
		in.stop()
		<-in.done
	}
	if !ok {
		t.Fatalf("alerts: %d of %d; B and C detected %d of the second half's %d events", len(got), len(want), later(), len(evs)-half)
	}
	var missing, extra, doubled []string
	for id := range want {
		if got[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range got {
		if !want[id] {
			extra = append(extra, id)
		}
		if n > 1 {
			doubled = append(doubled, id)
		}
	}
	if len(missing)+len(extra)+len(doubled) > 0 {
		t.Fatalf("vs single run: missing %v, extra %v, doubled %v", missing, extra, doubled)
	}
	if b.p.Stats.EventsDetected.Load() == 0 || c.p.Stats.EventsDetected.Load() == 0 {
		t.Errorf("B detected %d, C %d: the partitions did not spread", b.p.Stats.EventsDetected.Load(), c.p.Stats.EventsDetected.Load())
	}
}

func TestSIGKILLMidStreamThenRestartLosesNothing(t *testing.T) {
	srv := chtest.New(t)
	// The waits below are on conditions (rows in ClickHouse, a child that
	// died), bounded only by a generous deadline: the test's own, less a
	// minute to report, so a slow machine takes longer rather than fails.
	budget := 8 * time.Minute
	if d, ok := t.Deadline(); ok {
		budget = time.Until(d) - time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	evs, want := scenarioEvents(t)
	_, cfg := startBroker(t)
	cfg.ClickHouse.Addr = []string{srv.TCPAddr}
	if _, err := clickhouse.Migrate(ctx, cfg.ClickHouse); err != nil {
		t.Fatal(err)
	}
	c, err := clickhouse.Open(ctx, cfg.ClickHouse)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	publishAll(t, ctx, cfg, evs)

	path := filepath.Join(t.TempDir(), "tokenwatch.yaml")
	yml := fmt.Sprintf(`http: {listen: ""}
kafka: {brokers: [%s]}
clickhouse: {addr: [%s]}
geoip: {city: %s, asn: %s}
detect: {batch_size: 100, flush_interval: 5ms, checkpoint_interval: 100ms}
deliver: {batch_size: 300, flush_interval: 10ms}
`, strings.Join(cfg.Kafka.Brokers, ", "), srv.TCPAddr, geoCity, geoASN)
	os.WriteFile(path, []byte(yml), 0o644)
	// child starts the roles in a process of their own; exited is closed
	// when it ends (killed, or crashed: then waiting for it is pointless).
	child := func() (cmd *exec.Cmd, exited chan struct{}) {
		cmd = exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "TOKENWATCH_CHILD_CONFIG="+path, "TOKENWATCH_CHILD_ROLES=detect,deliver")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited = make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		return cmd, exited
	}
	isDone := func(ch chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	until := func(cond func() bool) bool { return wiring.WaitFor(ctx, budget, cond) } // ctx ends it first
	count := func(q string) uint64 {
		var n uint64
		c.Conn().QueryRow(ctx, q).Scan(&n)
		return n
	}
	first, firstExited := child()
	// Killed mid-stream, once its consumer groups have settled: kfake never
	// expires a member killed mid-join (see the fault suite's kill), which a
	// slow run (-race) would otherwise hit, and the restart would wait on
	// that member's partitions forever.
	killed := until(func() bool {
		return isDone(firstExited) || (count("SELECT count() FROM events") >= 1500 && everyGroupJoined(ctx, cfg.Kafka))
	})
	crashed := isDone(firstExited)
	first.Process.Signal(syscall.SIGKILL)
	<-firstExited
	if !killed || crashed {
		t.Fatalf("the first run wrote %d events to ClickHouse before it was killed (exited on its own: %v)", count("SELECT count() FROM events"), crashed)
	}
	partial := count("SELECT count() FROM events")
	if partial >= uint64(len(evs)) {
		t.Fatalf("the kill came too late: %d of %d events already written", partial, len(evs))
	}
	second, secondExited := child()
	defer func() { second.Process.Signal(syscall.SIGKILL); <-secondExited }()
	caughtUp := func() bool {
		return count("SELECT count() FROM events") == uint64(len(evs)) && count("SELECT count() FROM alerts") >= uint64(len(want))
	}
	done := until(func() bool { return isDone(secondExited) || caughtUp() }) && caughtUp()
	events := count("SELECT count() FROM events")
	if !done || events != uint64(len(evs)) {
		t.Fatalf("after restart: %d events in ClickHouse (want %d, killed at %d), %d alerts (want %d); the restarted run exited on its own: %v",
			events, len(evs), partial, count("SELECT count() FROM alerts"), len(want), isDone(secondExited))
	}
	rows, err := c.Conn().Query(ctx, "SELECT id FROM alerts")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		got = append(got, id)
	}
	rows.Close()
	sort.Strings(got)
	if len(got) != len(want) {
		t.Fatalf("alerts %v, want %d ids", got, len(want))
	}
	for _, id := range got {
		if !want[id] {
			t.Errorf("unexpected alert %s", id)
		}
	}
}

func TestClickHouseOutageBackpressuresThenCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s outage")
	}
	srv := chtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	evs, _ := scenarioEvents(t)
	_, cfg := startBroker(t)
	cfg.ClickHouse.Addr = []string{srv.TCPAddr}
	cfg.Deliver.EventsToClickHouse = true
	if _, err := clickhouse.Migrate(ctx, cfg.ClickHouse); err != nil {
		t.Fatal(err)
	}
	p, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx, []string{wiring.RoleDetect, wiring.RoleDeliver}) }()
	defer func() { stop(); <-done }()

	srv.Stop()
	publishAll(t, ctx, cfg, evs)
	// While ClickHouse is down, nothing is written and memory stays bounded:
	// the writer retries one batch and stops fetching.
	var peak uint64
	var mu sync.Mutex
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		peak = max(peak, ms.HeapInuse)
		mu.Unlock()
		time.Sleep(500 * time.Millisecond)
	}
	if w := p.Stats.EventsWritten.Load(); w != 0 {
		t.Fatalf("%d events written while ClickHouse was down", w)
	}
	if peak > 512<<20 {
		t.Errorf("heap in use peaked at %d MiB during the outage", peak>>20)
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := clickhouse.Open(ctx, cfg.ClickHouse)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var n uint64
	ok := wiring.WaitFor(ctx, 2*time.Minute, func() bool {
		c.Conn().QueryRow(ctx, "SELECT count() FROM events").Scan(&n)
		return n == uint64(len(evs))
	})
	if !ok {
		t.Fatalf("after ClickHouse came back: %d of %d events", n, len(evs))
	}
	t.Logf("heap in use peaked at %d MiB during a 30 s outage with %d events queued in Kafka", peak>>20, len(evs))
}

func TestBrokerFaultsAndRestartLoseNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	evs, want := scenarioEvents(t)
	dataDir := t.TempDir()
	port := freePort(t)
	b, err := embedded.StartOn(4, dataDir, port)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Close() }()
	cfg := scaleConfig(b.Addrs())
	if err := broker.EnsureTopics(ctx, cfg.Kafka, broker.AllTopics...); err != nil {
		t.Fatal(err)
	}
	// Faults while producing the input and while detecting: dropped produce
	// and fetch requests are retried by the clients.
	b.Fail(0, 3)
	publishAll(t, ctx, cfg, evs)
	p, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx, []string{wiring.RoleDetect}) }()
	b.Fail(1, 5)
	b.Fail(0, 3)
	// Mid-stream, the broker restarts on its data dir.
	if !wiring.WaitFor(ctx, time.Minute, func() bool { return p.Stats.EventsDetected.Load() > 3000 }) {
		t.Fatalf("detect did not start (%d)", p.Stats.EventsDetected.Load())
	}
	b.Close()
	time.Sleep(500 * time.Millisecond)
	if b, err = embedded.StartOn(4, dataDir, port); err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	ok := wiring.WaitFor(ctx, 2*time.Minute, func() bool {
		// The restarted broker may drop the first requests (EOF): retried.
		c, err := tryAlertCounts(ctx, cfg)
		if err == nil {
			got = c
		}
		return len(got) >= len(want)
	})
	stop()
	<-done
	if !ok {
		t.Fatalf("alerts %d of %d after faults (detected %d events)", len(got), len(want), p.Stats.EventsDetected.Load())
	}
	for id := range want {
		if got[id] == 0 {
			t.Errorf("missing alert %s", id)
		}
	}
	for id := range got {
		if !want[id] {
			t.Errorf("unexpected alert %s", id)
		}
	}
}

// freePort returns a port free now for a listener the test starts later.
// It is below Linux's ephemeral range (32768–60999): a port the kernel
// handed out for ":0" and freed at once is soon handed to the next ":0"
// bind or outgoing connection (the in-process broker's, a client's), and the
// test's own listener then fails with "address already in use".
func freePort(t *testing.T) int {
	t.Helper()
	for range 200 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port in 20000-31999")
	return 0
}

// TestSharedIPAcrossIntegrationsThroughTheSecondStage: three integrations on
// three partitions' worth of keys, one host: only the IP-keyed stage sees it.
func TestSharedIPAcrossIntegrationsThroughTheSecondStage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, cfg := startBroker(t)
	base := time.Date(2026, 10, 20, 2, 0, 0, 0, time.UTC)
	var evs []schemas.Event
	for i, app := range []string{"crm-sync", "hr-bot", "drive-backup", "calendar-bridge"} {
		for j := 0; j < 5; j++ {
			evs = append(evs, schemas.Event{EventID: fmt.Sprintf("%s-%d", app, j), Source: "okta", Tenant: "acme",
				Time:        schemas.NewTime(base.Add(time.Duration(i*10+j) * time.Minute)),
				Integration: schemas.Integration{ID: app}, Action: schemas.Action{Name: "token", Category: "access"},
				Network: schemas.Network{IP: "45.76.10.20"}})
		}
	}
	publishAll(t, ctx, cfg, evs)
	p, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx, []string{wiring.RoleDetect}) }()
	var ids map[string]int
	ok := wiring.WaitFor(ctx, time.Minute, func() bool {
		ids = alertCounts(t, ctx, cfg)
		return len(ids) > 0
	})
	time.Sleep(300 * time.Millisecond)
	ids = alertCounts(t, ctx, cfg)
	stop()
	<-done
	want := schemas.AlertID("chain.shared_ip", "acme", "ip:45.76.10.20", "2026-10-20")
	if !ok || ids[want] != 1 || len(ids) != 1 {
		t.Fatalf("alerts %v, want exactly %s once", ids, want)
	}
}

// Produce requests refused without retry while detect runs (alerts,
// re-keyed records, incidents, checkpoints alike): each refusal fails a
// batch, which is retried. The retry must send what the batch raised, not
// run it again: the engine would take its events for repeats and raise
// nothing.
func TestRefusedProducesInDetectLoseNoAlert(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	evs, want := scenarioEvents(t)
	b, err := embedded.Start(4, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := scaleConfig(b.Addrs())
	if err := broker.EnsureTopics(ctx, cfg.Kafka, broker.AllTopics...); err != nil {
		t.Fatal(err)
	}
	publishAll(t, ctx, cfg, evs)
	p, closeFn, err := wiring.Build(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx, []string{wiring.RoleDetect}) }()
	// The first alert produces are refused (INVALID_RECORD: the client does
	// not retry it), and a few of any kind (re-keyed records, checkpoints).
	for i := 0; i < 4; i++ {
		b.RejectProduce(schemas.TopicAlerts, 0, 87)
	}
	refused := 4
	for p.Stats.EventsDetected.Load() < int64(len(evs)) && ctx.Err() == nil && refused < 24 {
		b.RejectProduce("", 0, 87)
		refused++
		time.Sleep(50 * time.Millisecond)
	}
	var got map[string]int
	ok := wiring.WaitFor(ctx, 2*time.Minute, func() bool {
		got = alertCounts(t, ctx, cfg)
		return len(got) >= len(want) && p.Stats.EventsDetected.Load() >= int64(len(evs))
	})
	stop()
	<-done
	t.Logf("%d produce requests refused; %d of %d alerts", refused, len(got), len(want))
	if !ok {
		t.Errorf("alerts %d of %d after refused produces (detected %d events)", len(got), len(want), p.Stats.EventsDetected.Load())
	}
	for id := range want {
		if got[id] == 0 {
			t.Errorf("missing alert %s", id)
		}
	}
	for id := range got {
		if !want[id] {
			t.Errorf("unexpected alert %s", id)
		}
	}
}
