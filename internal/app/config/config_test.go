package config

import (
	"os"
	"strings"
	"testing"
)

func TestExampleConfigIsValid(t *testing.T) {
	t.Setenv("TOKENWATCH_CLICKHOUSE_PASSWORD", "pw")
	t.Setenv("TOKENWATCH_WEBHOOK_URL", "http://127.0.0.1:1/hook")
	t.Setenv("TOKENWATCH_WEBHOOK_SECRET", "k")
	b, err := os.ReadFile("../../../deploy/tokenwatch.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Paths in the example are relative to the repository root.
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	os.Chdir("../../..")
	cfg, err := Parse(b, "example")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClickHouse.Password.Reveal() != "pw" || len(cfg.Deliver.Sinks) != 1 || len(cfg.Detect.Detectors) != 3 {
		t.Fatalf("decoded %+v", cfg)
	}
	if s := cfg.ClickHouse.Password.String(); strings.Contains(s, "pw") {
		t.Fatalf("secret prints as %q", s)
	}
}

func TestValidationNamesEachBadField(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"log: {level: loud}", "log.level"},
		{"log: {format: xml}", "log.format"},
		{"kafka: {partitions: 0}", "kafka.partitions"},
		{"kafka: {brokers: [nohostport]}", "kafka.brokers"},
		{"clickhouse: {addr: [a:1], database: 'x;drop'}", "clickhouse.database"},
		{"geoip: {city: /nonexistent.mmdb}", "geoip.city"},
		{"ingest: {files: [{path: x}]}", "ingest.files[0]"},
		{"deliver: {retry: {max_attempts: 0}}", "deliver.retry.max_attempts"},
		{"deliver: {sinks: [{kind: webhook}]}", "deliver.sinks[0].name"},
		{"deliver: {sinks: [{name: a, kind: webhook}, {name: a, kind: webhook}]}", "duplicate"},
		{"detect: {flush_interval: 0s}", "flush_interval"},
		{"unknown_key: 1", "unknown_key"},
		{"detect: {rules: {shiped: true}}", "shiped"},
		{"clickhouse: {password: env:TW_SURELY_UNSET}", "TW_SURELY_UNSET"},
		{"respond: {rules: [{name: r, action: revoke, mode: now}]}", "respond.rules[0].mode"},
		{"respond: {rules: [{name: r, action: revoke, match: {severity: high}}]}", "severity"},
		{"respond: {max_revocation_per_hour: 3}", "max_revocation_per_hour"},
		{"respond: {ssf: {isuer: https://tw.example}}", "respond.ssf.isuer"},
		{"respond: {ssf: {streams: [{id: s, endpoint: https://rp.example}]}}", "respond.ssf.streams[0].endpoint"},
		{"respond: {ssf: {retry: {max_atempts: 2}}}", "max_atempts"},
		{"respond: {ssf: {listen: ':1'}}", "respond.ssf.issuer"},
		{"respond: {ssf: {issuer: https://tw.example, listen: ':1'}}", "respond.ssf.signing_key"},
		{"respond: {ssf: {signing_key: not-a-pem}}", "respond.ssf.signing_key: not a PEM block"},
		{"respond: {ssf: {streams: [{id: s, audience: a, endpoint_url: 'ftp://x'}]}}", "respond.ssf.streams[0].endpoint_url"},
		{"respond: {ssf: {streams: [{id: s, audience: a, endpoint_url: 'https://x', events_requested: [urn:x]}]}}", "respond.ssf.streams[0].events_requested[0]"},
		{"respond: {ssf: {receivers: [{audience: a, token: short}]}}", "respond.ssf.receivers[0].token"},
		{"respond: {ssf: {default_subjects: SOME}}", "respond.ssf.default_subjects"},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.yaml), "t")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to name %q", tc.yaml, err, tc.want)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("TOKENWATCH_KAFKA_BROKERS", "k1:9092,k2:9092")
	t.Setenv("TOKENWATCH_CLICKHOUSE_ADDR", "ch:9000")
	cfg, err := Parse([]byte(""), "empty")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Kafka.Brokers) != 2 || cfg.ClickHouse.Addr[0] != "ch:9000" || !cfg.ClickHouseEnabled() {
		t.Fatalf("%+v %+v", cfg.Kafka, cfg.ClickHouse)
	}
}

func TestRulesDefaultToShipped(t *testing.T) {
	cfg, err := Parse([]byte("detect: {rules: {paths: [/srv/rules]}}"), "t")
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Program().Rules; !r.Shipped || len(r.Paths) != 1 {
		t.Fatalf("rules %+v", r)
	}
	cfg, err = Parse([]byte("detect: {rules: {shipped: false}}"), "t")
	if err != nil || cfg.Program().Rules.Shipped {
		t.Fatalf("shipped: false gave %+v, %v", cfg.Detect.Rules, err)
	}
}

func TestRespondSectionAbsentIsOffPresentGetsDefaults(t *testing.T) {
	cfg, err := Parse([]byte("log: {level: info}"), "t")
	if err != nil || cfg.Respond != nil {
		t.Fatalf("absent respond: %v %+v", err, cfg.Respond)
	}
	cfg, err = Parse([]byte("respond:\n  rules: [{name: r, action: revoke}]\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Respond; r == nil || r.MaxRevocationsPerHour != 10 || r.Timeout <= 0 || r.Rules[0].Mode != "dry_run" {
		t.Fatalf("respond defaults: %+v", cfg.Respond)
	}
}

// respond.slack names the field at fault, at every depth and across the
// sections it needs.
func TestRespondSlackNeedsItsSinkListenerAndClickHouse(t *testing.T) {
	t.Setenv("TW_TEST_SLACK_SIGNING", "not-in-any-error")
	base := "clickhouse: {addr: [\"ch:9000\"]}\ndeliver:\n  sinks:\n    - {name: soc, kind: slack, config: {bot_token: xoxb-1, channel: C0SOC}}\n    - {name: hook, kind: webhook, config: {url: \"https://example.com/h\"}}\n"
	slack := func(extra string) string {
		return "respond:\n  slack: {sink: soc, signing_secret: env:TW_TEST_SLACK_SIGNING, approvers: [U0ANA]" + extra + "}\n"
	}
	for _, tc := range []struct{ doc, want string }{
		{base + slack(", approver: [U0BO]"), "approver"},
		{base + slack(", path: /metrics"), "respond.slack.path"},
		{base + strings.Replace(slack(""), "sink: soc", "sink: nope", 1), `respond.slack.sink "nope": no deliver.sinks entry`},
		{base + strings.Replace(slack(""), "sink: soc", "sink: hook", 1), "want kind slack"},
		{base + "http: {listen: \"\"}\n" + slack(""), "needs http.listen"},
		{strings.Replace(base, "clickhouse: {addr: [\"ch:9000\"]}\n", "", 1) + slack(""), "needs clickhouse.addr"},
	} {
		_, err := Parse([]byte(tc.doc), "t")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\n→ %v, want an error naming %s", tc.doc, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "not-in-any-error") {
			t.Errorf("the signing secret is in the error: %v", err)
		}
	}
	if _, err := Parse([]byte(base+slack("")), "t"); err != nil {
		t.Errorf("valid respond.slack: %v", err)
	}
}
