#!/usr/bin/env bash
# Peer comparison (BENCHMARKS.md, "Peers"): the same 500,000 small events on
# the in-process Kafka broker (as JSON for the peers, on a topic of their own;
# as tokenwatch's ingest writes them on tokenwatch.events, MessagePack unless
# TOKENWATCH_PEERS_ENCODING=json), into a throwaway clickhouse-server, by
#   (a) kcat | clickhouse-client INSERT … FORMAT JSONEachRow   (the raw floor)
#   (b) Telegraf: inputs.kafka_consumer (json_v2) → outputs.sql (clickhouse)
#   (c) tokenwatch's deliver role, (d) tokenwatch's detect + deliver roles.
# Telegraf is built with `go install` OUTSIDE the repository (never vendored,
# never committed) into $TELEGRAF_GOBIN when $TELEGRAF_BIN is not set and no
# binary is there yet: about 8 minutes and 400 MB the first time. When the
# build fails the comparison runs without it and says so.
#
#   internal/app/bench/peers/run.sh            # or: make bench-peers
#
# Knobs: TOKENWATCH_PEERS_EVENTS (500000), TELEGRAF_BIN, TELEGRAF_GOBIN,
# TELEGRAF_VERSION (v1.37.2), TELEGRAF_BATCH (metric_batch_size, 50000),
# TELEGRAF_UNDELIVERED (max_undelivered_messages, 100000), TELEGRAF_FLUSH_MS
# (flush_interval, 200 ms), TELEGRAF_KAFKA_VERSION (3.6.0), TOKENWATCH_PEERS_ONLY
# (e.g. floor,telegraf). Needs kcat, clickhouse-client and clickhouse-server
# (Debian: apt-get install kcat clickhouse-server clickhouse-client).
set -euo pipefail
cd "$(dirname "$0")/../../../.."

TELEGRAF_VERSION=${TELEGRAF_VERSION:-v1.37.2}
if [ -d /work/.cache ]; then default_gobin=/work/.cache/telegraf-bin; else default_gobin=${TMPDIR:-/tmp}/tokenwatch-telegraf-bin; fi
TELEGRAF_GOBIN=${TELEGRAF_GOBIN:-$default_gobin}
if [ -z "${TELEGRAF_BIN:-}" ]; then
	TELEGRAF_BIN=$TELEGRAF_GOBIN/telegraf
	if [ ! -x "$TELEGRAF_BIN" ]; then
		echo "building telegraf $TELEGRAF_VERSION into $TELEGRAF_GOBIN (about 8 minutes, 400 MB)…" >&2
		mkdir -p "$TELEGRAF_GOBIN"
		# From outside the module, so tokenwatch's go.mod is never touched.
		if ! (cd "${TMPDIR:-/tmp}" && GOBIN=$TELEGRAF_GOBIN GOFLAGS=-buildvcs=false nice -n 10 \
			go install "github.com/influxdata/telegraf/cmd/telegraf@$TELEGRAF_VERSION"); then
			echo "telegraf build failed: comparing without it" >&2
		fi
	fi
fi
export TELEGRAF_BIN
for tool in kcat clickhouse-client; do
	command -v "$tool" >/dev/null || echo "$tool not found: that contender is skipped or fails (apt-get install $tool)" >&2
done
exec nice -n 10 go test -run '^$' -bench BenchmarkPeers -benchtime 1x -timeout 60m ./internal/app/bench/
