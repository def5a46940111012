package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/ingest/publish"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
	kafkabroker "github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/internal/platform/chtest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// peerColumns are what the raw floor and Telegraf keep of each event: its
// top-level scalars (tokenwatch's events table keeps 30 columns, enriched).
const peerColumns = `event_id String, source String, tenant String, time String, target_app String, outcome String, bytes UInt64`

// telegrafBinary finds Telegraf: $TELEGRAF_BIN, then the go install target
// internal/app/bench/peers/run.sh uses, then PATH.
func telegrafBinary() (string, error) {
	for _, p := range []string{os.Getenv("TELEGRAF_BIN"), "/work/.cache/telegraf-bin/telegraf"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return exec.LookPath("telegraf")
}

// telegrafConfig is the Telegraf pipeline: inputs.kafka_consumer with the
// json_v2 parser picking the peer columns, outputs.sql with the clickhouse
// driver and batched transactions. The knobs are the tuning the brief asks
// for (max_undelivered_messages, metric_batch_size, flush_interval).
func telegrafConfig(brokers []string, chAddr, table string, batch, undelivered int, flush time.Duration, kafkaVersion string) string {
	return fmt.Sprintf(`[agent]
  interval = "1s"
  round_interval = false
  metric_batch_size = %[4]d
  metric_buffer_limit = 2000000
  flush_interval = "%[6]s"
  flush_jitter = "0s"
  omit_hostname = true
  quiet = true

[[inputs.kafka_consumer]]
  brokers = ["%[1]s"]
  topics = ["%[7]s"]
  consumer_group = "telegraf-bench"
  offset = "oldest"
  max_undelivered_messages = %[5]d
  kafka_version = "%[8]s"
  data_format = "json_v2"
  [[inputs.kafka_consumer.json_v2]]
    measurement_name = "%[3]s"
    [[inputs.kafka_consumer.json_v2.tag]]
      path = "tenant"
    [[inputs.kafka_consumer.json_v2.field]]
      path = "event_id"
      type = "string"
    [[inputs.kafka_consumer.json_v2.field]]
      path = "source"
      optional = true
      type = "string"
    [[inputs.kafka_consumer.json_v2.field]]
      path = "time"
      optional = true
      type = "string"
    [[inputs.kafka_consumer.json_v2.field]]
      path = "target_app"
      optional = true
      type = "string"
    [[inputs.kafka_consumer.json_v2.field]]
      path = "outcome"
      optional = true
      type = "string"
    [[inputs.kafka_consumer.json_v2.field]]
      path = "bytes"
      optional = true
      type = "uint"

[[outputs.sql]]
  driver = "clickhouse"
  data_source_name = "clickhouse://%[2]s/peers"
  table_template = "CREATE TABLE {TABLE}({COLUMNS}) ENGINE = MergeTree() ORDER BY ({TAG_COLUMN_NAMES}, {TIMESTAMP_COLUMN_NAME})"
  batch_transactions = true
  [outputs.sql.convert]
    conversion_style = "literal"
    integer          = "Int64"
    text             = "String"
    timestamp        = "DateTime"
    defaultvalue     = "String"
    unsigned         = "UInt64"
    bool             = "UInt8"
    real             = "Float64"
`, strings.Join(brokers, `", "`), chAddr, table, batch, undelivered, flush, peersJSONTopic, kafkaVersion)
}

// peerRun is one contender's result.
type peerRun struct {
	key, name, what string
	elapsed         time.Duration
	// first is when the first row was visible (0: not observable, e.g. one
	// streaming INSERT): elapsed - first excludes start-up and group joins.
	first   time.Duration
	skipped string
	// CPU used while it ran: by clickhouse-server, by this process (the
	// in-process broker serves every contender, so it is in each), by
	// child processes (kcat, clickhouse-client, Telegraf).
	server, self, children time.Duration
}

// profile writes a CPU profile of one contender's run to
// $TOKENWATCH_PEERS_CPUPROFILE-<key>.cpu when that is set (go test's
// -cpuprofile would mix in the workload's generation); the returned func
// stops it.
func profile(b *testing.B, key string) func() {
	prefix := os.Getenv("TOKENWATCH_PEERS_CPUPROFILE")
	if prefix == "" {
		return func() {}
	}
	f, err := os.Create(prefix + "-" + key + ".cpu")
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// cpuMark is the CPU used so far by the server, this process and its
// waited-for children.
type cpuMark struct{ server, self, children time.Duration }

func markCPU(b *testing.B, srv *chtest.Server) cpuMark {
	var m cpuMark
	var err error
	if m.server, err = srv.CPUTime(); err != nil {
		b.Fatal(err)
	}
	m.self, m.children = cpuTime(), rusageCPU(syscall.RUSAGE_CHILDREN)
	return m
}

// since records the CPU used since m on r.
func (r *peerRun) since(b *testing.B, srv *chtest.Server, m cpuMark) {
	n := markCPU(b, srv)
	r.server, r.self, r.children = n.server-m.server, n.self-m.self, n.children-m.children
}

// BenchmarkPeers feeds the same 500,000 small events (normalized tokenwatch
// events without their raw record, ~0.5 KB each as JSON) on the in-process
// broker to each contender in turn, each reading them from the beginning
// into ClickHouse: the peers as JSON, tokenwatch from tokenwatch.events in
// the encoding its ingest writes (TOKENWATCH_PEERS_ENCODING=json for the
// JSON it wrote before MessagePack; TOKENWATCH_PEERS_COMPRESSION=none for
// uncompressed batches on every topic, as before lz4 was the default): the raw floor (kcat | clickhouse-client
// INSERT … FORMAT JSONEachRow), Telegraf (kafka_consumer + json_v2 →
// outputs.sql, clickhouse driver; skipped when no binary), tokenwatch's
// deliver role alone (events → enrich → events table) and tokenwatch's
// detect + deliver roles (every event detected and written, alerts too). It
// reports events/s and the ratio to the floor. TOKENWATCH_PEERS_EVENTS
// changes the count, TOKENWATCH_PEERS_ONLY (e.g. "floor,telegraf") runs a
// subset; TELEGRAF_BIN, TELEGRAF_BATCH, TELEGRAF_UNDELIVERED,
// TELEGRAF_FLUSH_MS and TELEGRAF_KAFKA_VERSION (3.6.0: sarama's default
// fetch request gets EOF from the in-process broker) point at and tune Telegraf. internal/app/bench/peers/run.sh
// builds Telegraf and runs this.
//
//	go test -run '^$' -bench BenchmarkPeers -benchtime 1x -timeout 60m ./internal/app/bench/
func BenchmarkPeers(b *testing.B) {
	ctx := context.Background()
	srv := chtest.New(b)
	n := envInt("TOKENWATCH_PEERS_EVENTS", 500_000)
	w, err := NewWorkload((n + 17_000) / 17_000)
	if err != nil {
		b.Fatal(err)
	}
	evs := w.SmallEvents(n)
	w = nil
	if len(evs) != n {
		b.Fatalf("workload has %d events, want %d", len(evs), n)
	}
	s := newStack(b, ctx, srv, "peers_tw")
	// tokenwatch.events holds the events as tokenwatch's ingest writes them
	// (kafka.encoding, MessagePack unless TOKENWATCH_PEERS_ENCODING says
	// json); the peers, which can read only JSON, read the same events,
	// keys and partitions as JSON from a topic of their own.
	if enc := os.Getenv("TOKENWATCH_PEERS_ENCODING"); enc != "" {
		s.cfg.Kafka.Encoding = enc
	}
	if c := os.Getenv("TOKENWATCH_PEERS_COMPRESSION"); c != "" { // of every topic, the peers' too
		s.cfg.Kafka.Compression = c
	}
	if err := s.cfg.Kafka.Validate(); err != nil {
		b.Fatal(err)
	}
	if err := kafkabroker.EnsureTopics(ctx, s.cfg.Kafka, peersJSONTopic); err != nil {
		b.Fatal(err)
	}
	pub, peersPub := publish.New(s.cfg.Kafka), kafkabroker.NewWriter(s.cfg.Kafka, peersJSONTopic)
	var twBytes, jsonBytes int64
	for i := 0; i < n; i += 5000 {
		part := evs[i:min(i+5000, n)]
		if err := pub.Events(ctx, part); err != nil {
			b.Fatal(err)
		}
		msgs := make([]kafka.Message, len(part))
		for j := range part {
			m, err := kafkabroker.EventMessage(schemas.EncodingJSON, publish.Key(&part[j]), &part[j])
			if err != nil {
				b.Fatal(err)
			}
			msgs[j] = m
			jsonBytes += int64(len(m.Value))
			tw, _ := schemas.AppendEvent(nil, s.cfg.Kafka.Encoding, &part[j])
			twBytes += int64(len(tw))
		}
		// In the slices publish.Events sends, so both topics hold record
		// batches of the same sizes.
		if _, err := publish.WriteInSlices(ctx, peersPub, msgs); err != nil {
			b.Fatal(err)
		}
	}
	pub.Close()
	peersPub.Close()
	evs = nil
	c, err := clickhouse.Open(ctx, s.cfg.ClickHouse)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	count := func(table string) uint64 {
		var v uint64
		if err := c.Conn().QueryRow(ctx, "SELECT count() FROM "+table).Scan(&v); err != nil {
			return 0
		}
		return v
	}
	exec1 := func(q string) {
		if err := c.Conn().Exec(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	exec1("CREATE DATABASE IF NOT EXISTS peers")
	chPort := srv.TCPAddr[strings.LastIndex(srv.TCPAddr, ":")+1:]
	broker := s.cfg.Kafka.Brokers[0]
	only := os.Getenv("TOKENWATCH_PEERS_ONLY") // e.g. "floor,telegraf" while tuning
	skip := func(key string) bool { return only != "" && !strings.Contains(","+only+",", ","+key+",") }
	b.ResetTimer()
	var runs []peerRun

	// (a) The raw floor: kcat reads every partition to its end, one
	// clickhouse-client INSERT streams the lines in.
	exec1("CREATE TABLE peers.kcat (" + peerColumns + ") ENGINE = MergeTree() ORDER BY (tenant, time, event_id)")
	kc := peerRun{key: "floor", name: "kcat | clickhouse-client (raw floor)", what: "7 top-level columns, no parsing beyond ClickHouse's JSONEachRow"}
	if _, err := exec.LookPath("kcat"); err != nil {
		kc.skipped = "kcat not installed"
	} else if skip(kc.key) {
		kc.skipped = "not in TOKENWATCH_PEERS_ONLY"
	} else {
		m0, t0 := markCPU(b, srv), time.Now()
		cmd := exec.CommandContext(ctx, "bash", "-c", fmt.Sprintf(
			"set -o pipefail; kcat -C -b %s -t %s -o beginning -e -q | clickhouse-client --host 127.0.0.1 --port %s --input_format_skip_unknown_fields=1 --query 'INSERT INTO peers.kcat FORMAT JSONEachRow'",
			broker, peersJSONTopic, chPort))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("kcat | clickhouse-client: %v: %s", err, out)
		}
		kc.elapsed = time.Since(t0)
		kc.since(b, srv, m0)
		if got := count("peers.kcat"); got != uint64(n) {
			b.Fatalf("kcat floor wrote %d rows, want %d", got, n)
		}
	}
	runs = append(runs, kc)

	// (b) Telegraf.
	tg := peerRun{key: "telegraf", name: "Telegraf (kafka_consumer json_v2 → outputs.sql clickhouse)", what: "same 7 columns (tenant as tag) + timestamp"}
	if bin, err := telegrafBinary(); err != nil {
		tg.skipped = "no telegraf binary (run internal/app/bench/peers/run.sh, or set TELEGRAF_BIN)"
	} else if skip(tg.key) {
		tg.skipped = "not in TOKENWATCH_PEERS_ONLY"
	} else {
		// Defaults: the best of the settings tried (BENCHMARKS.md lists them).
		batch, undelivered := envInt("TELEGRAF_BATCH", 50000), envInt("TELEGRAF_UNDELIVERED", 100000)
		flush := time.Duration(envInt("TELEGRAF_FLUSH_MS", 200)) * time.Millisecond
		tg.what += fmt.Sprintf("; metric_batch_size %d, max_undelivered_messages %d, flush_interval %s, batch_transactions", batch, undelivered, flush)
		dir := b.TempDir()
		conf := filepath.Join(dir, "telegraf.conf")
		version := os.Getenv("TELEGRAF_KAFKA_VERSION")
		if version == "" {
			version = "3.6.0"
		}
		os.WriteFile(conf, []byte(telegrafConfig(s.cfg.Kafka.Brokers, srv.TCPAddr, "telegraf", batch, undelivered, flush, version)), 0o644)
		logf, _ := os.Create(filepath.Join(dir, "telegraf.log"))
		m0, t0 := markCPU(b, srv), time.Now()
		cmd := exec.Command(bin, "--config", conf)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(time.Duration(envInt("TELEGRAF_TIMEOUT_S", 1200)) * time.Second)
		for got := uint64(0); got < uint64(n); got = count("peers.telegraf") {
			if got > 0 && tg.first == 0 {
				tg.first = time.Since(t0)
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				log, _ := os.ReadFile(logf.Name())
				b.Fatalf("telegraf: %d of %d rows by the deadline; log:\n%s", count("peers.telegraf"), n, tail(string(log), 20))
			}
			time.Sleep(50 * time.Millisecond)
		}
		tg.elapsed = time.Since(t0)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		tg.since(b, srv, m0)
		logf.Close()
	}
	runs = append(runs, tg)

	// (c) tokenwatch's deliver role: the ClickHouse events writer (and the
	// alerts sink, idle) in consumer groups of its own.
	tw := peerRun{key: "tw-deliver", name: "tokenwatch deliver role (events writer)", what: "decode, GeoIP enrich, 30 columns (events table)"}
	if skip(tw.key) {
		tw.skipped = "not in TOKENWATCH_PEERS_ONLY"
	} else {
		s.cfg.Kafka.GroupPrefix = "bench-deliver"
		unprofile := profile(b, tw.key)
		m0, t0 := markCPU(b, srv), time.Now()
		p, stop := s.start(b, ctx, wiring.RoleDeliver)
		if !wiring.WaitFor(ctx, 20*time.Minute, func() bool {
			if tw.first == 0 && p.Stats.EventsWritten.Load() > 0 {
				tw.first = time.Since(t0)
			}
			return p.Stats.EventsWritten.Load() >= int64(n)
		}) {
			b.Fatalf("tokenwatch deliver: %d of %d events written", p.Stats.EventsWritten.Load(), n)
		}
		tw.elapsed = time.Since(t0)
		tw.since(b, srv, m0)
		unprofile()
		stop()
	}
	runs = append(runs, tw)

	// (d) tokenwatch detect + deliver: every event enriched and through every
	// detector, alerts produced and written, every event written.
	full := peerRun{key: "tw-full", name: "tokenwatch detect + deliver roles", what: "(c) plus enrich + all detectors, alerts to ClickHouse"}
	if skip(full.key) {
		full.skipped = "not in TOKENWATCH_PEERS_ONLY"
	} else {
		s.cfg.Kafka.GroupPrefix = "bench-full"
		s.cfg.ClickHouse.Database = "peers_twfull"
		if _, err := clickhouse.Migrate(ctx, s.cfg.ClickHouse); err != nil {
			b.Fatal(err)
		}
		unprofile := profile(b, full.key)
		m0, t0 := markCPU(b, srv), time.Now()
		p, stop := s.start(b, ctx, wiring.RoleDetect, wiring.RoleDeliver)
		if !wiring.WaitFor(ctx, 20*time.Minute, func() bool {
			if full.first == 0 && p.Stats.EventsWritten.Load() > 0 {
				full.first = time.Since(t0)
			}
			return p.Stats.EventsWritten.Load() >= int64(n) && p.Stats.EventsDetected.Load() >= int64(n) &&
				p.Stats.Delivered(wiring.ClickHouseAlertSink) >= p.Stats.AlertsProduced.Load()
		}) {
			b.Fatalf("tokenwatch detect+deliver: %d written, %d detected of %d", p.Stats.EventsWritten.Load(), p.Stats.EventsDetected.Load(), n)
		}
		full.elapsed = time.Since(t0)
		full.since(b, srv, m0)
		unprofile()
		stop()
	}
	runs = append(runs, full)
	b.StopTimer()

	floor := 0.0
	if runs[0].skipped == "" {
		floor = float64(n) / runs[0].elapsed.Seconds()
	}
	b.Logf("%d small events (4 partitions, in-process broker, %s compression): the peers read them as JSON from %s (%.0f B an event), tokenwatch as %s from %s (%.0f B an event); ClickHouse %s",
		n, s.cfg.Kafka.Compression, peersJSONTopic, float64(jsonBytes)/float64(n), s.cfg.Kafka.Encoding, schemas.TopicEvents, float64(twBytes)/float64(n), srv.TCPAddr)
	for _, r := range runs {
		if r.skipped != "" {
			b.Logf("%-60s skipped: %s", r.name, r.skipped)
			continue
		}
		rate := float64(n) / r.elapsed.Seconds()
		ratio := "n/a"
		if floor > 0 {
			ratio = fmt.Sprintf("%.2f", rate/floor)
		}
		steady := ""
		if r.first > 0 {
			steady = fmt.Sprintf("; first row after %.1fs, %.0f events/s from it", r.first.Seconds(), float64(n)/(r.elapsed-r.first).Seconds())
		}
		b.Logf("%-60s %6.1fs %9.0f events/s  ×%s of floor  (%s%s)", r.name, r.elapsed.Seconds(), rate, ratio, r.what, steady)
		b.Logf("%-60s CPU: clickhouse-server %.2fs, this process (broker included) %.2fs, child processes %.2fs; %.1f µs of CPU an event", "",
			r.server.Seconds(), r.self.Seconds(), r.children.Seconds(), float64((r.server+r.self+r.children).Microseconds())/float64(n))
		b.ReportMetric(rate, r.key+"-events/s")
	}
}

// peersJSONTopic holds the benchmark's events as JSON for the peers.
const peersJSONTopic = "peers.events.json"

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}
