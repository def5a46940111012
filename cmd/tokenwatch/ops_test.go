package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/enrich/inventory"
)

func TestConfigCheck(t *testing.T) {
	t.Setenv("TOKENWATCH_CLICKHOUSE_PASSWORD", "pw")
	t.Setenv("TOKENWATCH_WEBHOOK_URL", "http://127.0.0.1:1/hook")
	t.Setenv("TOKENWATCH_WEBHOOK_SECRET", "k")
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	os.Chdir("../..") // the example's paths are relative to the repository root
	code, out, errOut := tokenwatch(t, "config", "check", "deploy/tokenwatch.example.yaml")
	if code != 0 || !strings.Contains(out, "ok (") {
		t.Fatalf("example config: exit %d out %q err %q", code, out, errOut)
	}
	dir := t.TempDir()
	bad := map[string]string{
		"unknown detector": "detect:\n  detectors:\n    geo.teleport: {}\n",
		"bad detector cfg": "detect:\n  detectors:\n    volume.spike: {sigmas: -1}\n",
		"unknown sink":     "deliver:\n  sinks:\n    - {name: x, kind: carrier-pigeon}\n",
		"sink without url": "deliver:\n  sinks:\n    - {name: x, kind: webhook, config: {secret: s}}\n",
		"unknown poller":   "ingest:\n  pollers:\n    - {source: myspace, tenant: t}\n",
	}
	for name, y := range bad {
		f := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		os.WriteFile(f, []byte(y), 0o644)
		code, _, errOut := tokenwatch(t, "config", "check", f)
		if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q (want one line, non-zero)", name, code, errOut)
		}
	}
	if code, _, _ := tokenwatch(t, "config", "lint"); code == 0 {
		t.Error("config lint accepted")
	}
}

func TestInventoryReportSections(t *testing.T) {
	cat, err := inventory.Parse([]byte(`integrations:
  - id: crm
    name: CRM Sync
    owner: revops@example.com
    expires_at: 2026-10-01
    reviewed_at: 2026-06-01
    review_every: 90d
    identities: [{source: google_workspace, id: c1}]
  - id: old-backup
    name: Old Backup
    owner: it@example.com
    reviewed_at: 2026-11-01
    review_every: 90d
    identities: [{source: google_workspace, id: c2}]
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	rows := []clickhouse.IntegrationRow{
		{Tenant: "t", IntegrationID: "crm", Name: "CRM Sync", Owner: "revops@example.com", Catalogued: true, LastSeen: now.Add(-time.Hour)},
		{Tenant: "t", IntegrationID: "shadow-app", Name: "Shadow", LastSeen: now.Add(-100 * 24 * time.Hour), Sources: []string{"google_workspace"}},
	}
	r := BuildInventoryReport(cat, rows, now, 90*24*time.Hour)
	if len(r.Catalogued) != 1 || len(r.Discovered) != 1 || len(r.Unowned) != 1 || len(r.Expired) != 1 || len(r.Stale) != 1 || len(r.NeverSeen) != 1 ||
		len(r.ReviewOverdue) != 1 {
		t.Fatalf("sections: %+v", r)
	}
	if r.Expired[0].ID != "crm" || r.Stale[0].ID != "shadow-app" || r.NeverSeen[0].ID != "old-backup" || r.ReviewOverdue[0].ID != "crm" {
		t.Fatalf("wrong integrations in sections: %+v", r)
	}
	var b bytes.Buffer
	r.Print(&b)
	for _, want := range []string{"1 discovered", "Stale (candidates for revocation)", "unused 100 days", "expired 2026-10-01, still used",
		"1 review overdue", "review due 2026-08-30, 88 days overdue"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
