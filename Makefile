# tokenwatch — the two commands are `make demo` and `make test`.
GO        ?= go
PKGS      := ./...
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build demo test race fault soak test-short bench lint fuzz clickhouse scenario geoip-testdata clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/tokenwatch ./cmd/tokenwatch

## demo: replay the bundled attack through the whole pipeline on an in-process broker.
demo: build
	./bin/tokenwatch demo

## test: every test; installs clickhouse-server from the OS packages when missing.
test: clickhouse
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 15m $(PKGS)

## race: the race detector on the concurrency-heavy packages, the wiring
## tests (every role in one process, faults, restarts) among them: about 9 min
## on 2 cores. The fault suite is left to make test, which runs it: it kills
## child processes in windows sized for a normal build (about 10× longer under
## -race, and its plan would cover far fewer records per kill).
RACE_PKGS ?= ./ingest/poll/ ./ingest/push/ ./ingest/intake/ ./deliver/ ./deliver/dispatch/ ./deliver/slack/ ./deliver/respond/ ./deliver/respond/ssf/ ./detect/stream/ ./internal/app/wiring/
race: clickhouse
	$(GO) test -race -count=1 -timeout 30m -skip TestFaultSuite $(RACE_PKGS)

## fault: the fault suite alone (about 1 min; make test runs it too): child
## processes SIGKILLed, ClickHouse and the broker restarted, the shipped
## alert rules evaluated on the scraped metrics (docs/reliability.md).
fault: clickhouse
	$(GO) test -count=1 -run '^TestFaultSuite$$' -timeout 15m -v ./internal/app/wiring/

## soak: the fault suite (internal/app/wiring/fault_test.go) for many rounds:
## SIGKILLs of every role, a 60 s ClickHouse outage, a sink down for 2 min,
## broker restarts. make fault runs it once at a size that fits.
SOAK_ROUNDS ?= 30
soak: clickhouse
	TOKENWATCH_FAULT_SEED=random TOKENWATCH_FAULT_ROUNDS=$(SOAK_ROUNDS) TOKENWATCH_FAULT_CH_OUTAGE=60s TOKENWATCH_FAULT_SINK_DOWN=2m TOKENWATCH_FAULT_DELIVERIES=400 \
		$(GO) test -count=1 -run '^TestFaultSuite$$' -timeout 120m -v ./internal/app/wiring/

## test-short: unit tests only (no ClickHouse install).
test-short:
	$(GO) test -count=1 -short $(PKGS)

## clickhouse: make sure clickhouse-server is on this machine (Debian/Ubuntu packages).
clickhouse:
	@command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || { \
		echo "installing clickhouse-server from the OS packages…"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null; }

## bench: Go benchmarks of the hot paths; figures go to BENCHMARKS.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./detect/engine/ ./detect/program/ ./enrich/geoip/ ./schemas/ | tee bench.txt
	$(GO) test -run '^$$' -bench BenchmarkEndToEnd -benchtime 1x -timeout 60m ./internal/app/bench/ | tee -a bench.txt

## bench-peers: the same 500,000 events through kcat | clickhouse-client and Telegraf (as JSON) and tokenwatch (as its ingest writes them).
.PHONY: bench-peers
bench-peers: clickhouse
	./internal/app/bench/peers/run.sh

## lint: go vet and gofmt.
lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## fuzz: a short run of every fuzz target (seed corpora live in testdata/fuzz).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "$$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 10s $$pkg || exit 1; \
		done; \
	done

## eval: generate the labelled multi-source corpus into a temp dir and score every detector on it.
.PHONY: eval
eval: build
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	./bin/tokenwatch eval --generate "$$dir" && \
	./bin/tokenwatch eval --geoip-city testdata/geoip/test-city.mmdb --geoip-asn testdata/geoip/test-asn.mmdb "$$dir"

## scenario, geoip-testdata: regenerate the committed test data.
scenario:
	$(GO) run ./internal/app/scenario/gen -out testdata/scenarios/google_oauth_theft
geoip-testdata:
	$(GO) run ./enrich/geoip/gen/mmdbgen -out testdata/geoip

clean:
	rm -rf bin bench.txt
