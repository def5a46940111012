package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every depth of the config is strict: an unknown key or a wrongly typed
// value fails `config check` (and every role's start) naming the key path,
// and URLs and addresses are checked.
func TestConfigCheckIsStrictAtEveryDepth(t *testing.T) {
	t.Setenv("TW_TEST_TOKEN", "t0ken")
	hook := func(cfg string) string {
		return "deliver:\n  sinks:\n    - name: soc\n      kind: webhook\n      config: {secret: k, " + cfg + "}\n"
	}
	poller := func(entry string) string {
		return "ingest:\n  pollers:\n    - {source: github, tenant: acme, " + entry + "}\n"
	}
	tests := []struct{ name, yaml, want string }{
		{"detector ok", "detect:\n  detectors:\n    volume.spike: {enabled: true, sigmas: 6}\n", ""},
		{"detector unknown key", "detect:\n  detectors:\n    volume.spike: {sigmaz: 6}\n", "detectors.volume.spike.sigmaz: unknown field"},
		{"detector off, still strict enabled", "detect:\n  detectors:\n    volume.spike: {enabled: maybe}\n", "detectors.volume.spike.enabled"},
		{"detector wrong type", "detect:\n  detectors:\n    volume.spike: {sigmas: lots}\n", "detectors.volume.spike.sigmas: line 3: cannot unmarshal"},
		{"detector not a mapping", "detect:\n  detectors:\n    volume.spike: 6\n", "detectors.volume.spike: line 3: cannot unmarshal"},
		{"sink ok", hook("url: 'https://soc.example/hook'"), ""},
		{"sink entry unknown key", "deliver:\n  sinks:\n    - {name: x, kind: webhook, confg: {}}\n", "deliver.sinks[0].confg: unknown field"},
		{"sink breaker unknown key", "deliver:\n  sinks:\n    - {name: x, kind: webhook, breaker: {failurez: 3}}\n", "deliver.sinks[0].breaker.failurez: unknown field"},
		{"sink config unknown key", hook("url: 'https://soc.example/hook', timeuot: 1s"), "deliver.sinks[0].config.timeuot: unknown field"},
		{"sink config wrong type", hook("url: 'https://soc.example/hook', timeout: soon"), "deliver.sinks[0].config.timeout"},
		{"sink config nested", hook("url: 'https://soc.example/hook', headers: {X-A: [1]}"), "deliver.sinks[0].config.headers.X-A: line 5: cannot unmarshal"},
		{"webhook ftp url", hook("url: 'ftp://x'"), `deliver.sinks[0].config.url: scheme "ftp", want http or https`},
		{"webhook url without scheme", hook("url: 'soc.example/hook'"), "deliver.sinks[0].config.url: scheme"},
		{"pagerduty base_url", "deliver:\n  sinks:\n    - {name: pd, kind: pagerduty, config: {routing_key: k, base_url: 'ftp://pd'}}\n", "deliver.sinks[0].config: pagerduty pd: base_url"},
		{"syslog address", "deliver:\n  sinks:\n    - {name: s, kind: syslog, config: {address: 'siem.example'}}\n", "deliver.sinks[0].config: syslog s: address"},
		{"route unknown key", "deliver:\n  routes:\n    - {sinks: [], min_sev: high}\n", "deliver.routes[0].min_sev: unknown field"},
		{"poller ok", poller("config: {org: example, token: env:TW_TEST_TOKEN}"), ""},
		{"poller entry unknown key", poller("intervall: 1m, config: {org: example, token: env:TW_TEST_TOKEN}"), "ingest.pollers[0].intervall: unknown field"},
		{"poller entry wrong type", poller("max_pages_per_poll: many, config: {org: example, token: env:TW_TEST_TOKEN}"), "ingest.pollers[0].max_pages_per_poll"},
		{"poller config unknown key", poller("config: {org: example, token: env:TW_TEST_TOKEN, per_pgae: 5}"), "ingest.pollers[0].config.per_pgae: unknown field"},
		{"poller base_url", poller("base_url: 'ftp://gh', config: {org: example, token: env:TW_TEST_TOKEN}"), "base_url"},
		{"push source unknown key", "ingest:\n  push:\n    sources:\n      - {source: github, secret: s, tennant: acme}\n", "ingest.push.sources[0].tennant: unknown field"},
		{"push unknown key", "ingest:\n  push:\n    max_body: 1\n", "ingest.push.max_body: unknown field"},
		{"kafka source unknown key", "ingest:\n  kafka_sources:\n    - {source: microsoft, brokers: ['eh:9093'], topic: t, group: g, topik: x}\n", "ingest.kafka_sources[0].topik: unknown field"},
		{"kafka source broker", "ingest:\n  kafka_sources:\n    - {source: microsoft, brokers: ['sb://eh'], topic: t, group: g}\n", "ingest.kafka_sources[0].brokers[0]: \"sb://eh\""},
		{"kafka broker", "kafka: {brokers: ['k1']}\n", "kafka.brokers"},
		{"clickhouse addr", "clickhouse: {addr: [localhost]}\n", "clickhouse.addr[0]"},
		{"clickhouse unknown key", "clickhouse: {adress: [localhost:9000]}\n", "clickhouse.adress: unknown field"},
		{"http listen", "http: {listen: '9464'}\n", "http.listen"},
		{"respond vendor ok", "respond:\n  vendors:\n    google_workspace: {access_token: env:TW_TEST_TOKEN}\n", ""},
		{"respond vendor unknown key", "respond:\n  vendors:\n    google_workspace: {access_token: env:TW_TEST_TOKEN, base_ur: x}\n", "respond.vendors.google_workspace: base_ur: unknown field"},
		{"respond vendor unknown", "respond:\n  vendors:\n    myspace: {}\n", `no revoker for source "myspace"`},
		{"respond rule unknown key", "respond:\n  rules: [{name: r, action: revoke, match: {sourcez: [x]}}]\n", "respond.rules[0].match.sourcez: unknown field"},
		{"top-level wrong type", "kafka: {partitions: many}\n", "kafka.partitions: line 1: cannot unmarshal"},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			if err := os.WriteFile(f, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := tokenwatch(t, "config", "check", f)
			if tc.want == "" {
				if code != 0 {
					t.Fatalf("case %d: exit %d, stderr %q", i, code, errOut)
				}
				return
			}
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q: want it to name %q", code, out, errOut, tc.want)
			}
			if strings.Contains(errOut, "t0ken") {
				t.Fatalf("stderr echoes a secret: %q", errOut)
			}
		})
	}
}

// migrate reads only the clickhouse block: secrets of sinks and pollers it
// does not use need not be set (it fails on the connection, not the config).
func TestMigrateNeedsOnlyClickHouseSettings(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.yaml")
	doc := "clickhouse: {addr: ['127.0.0.1:1'], dial_timeout: 200ms}\n" +
		"deliver:\n  sinks:\n    - {name: soc, kind: webhook, config: {url: env:TW_SURELY_UNSET_URL, secret: env:TW_SURELY_UNSET_SECRET}}\n" +
		"ingest:\n  pollers:\n    - {source: github, tenant: acme, config: {org: example, token: env:TW_SURELY_UNSET_TOKEN}}\n"
	os.WriteFile(f, []byte(doc), 0o644)
	code, _, errOut := tokenwatch(t, "migrate", "--config", f)
	if code == 0 || strings.Contains(errOut, "TW_SURELY_UNSET") || strings.Contains(errOut, "config") && strings.Contains(errOut, "not set") {
		t.Fatalf("exit %d stderr %q: want a connection error, not a config one", code, errOut)
	}
	// The clickhouse block itself is still strict.
	os.WriteFile(f, []byte("clickhouse: {adress: ['127.0.0.1:1']}\n"), 0o644)
	if code, _, errOut = tokenwatch(t, "migrate", "--config", f); code == 0 || !strings.Contains(errOut, "clickhouse.adress: unknown field") {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
}
