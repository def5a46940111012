package inventory

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

func mustLoad(t *testing.T) *Catalog {
	t.Helper()
	c, err := Load("testdata/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoadNormalizesTheSampleCatalog(t *testing.T) {
	c := mustLoad(t)
	if len(c.Entries) != 2 {
		t.Fatalf("%d entries", len(c.Entries))
	}
	crm, ok := c.Entry("acme-crm-sync")
	if !ok {
		t.Fatal("acme-crm-sync missing")
	}
	if want := []string{"US", "IE"}; !slices.Equal(crm.ApprovedCountries, want) {
		t.Errorf("countries = %v, want %v", crm.ApprovedCountries, want)
	}
	if want := time.Date(2027, 3, 31, 0, 0, 0, 0, time.UTC); crm.Expires() == nil || !crm.Expires().Equal(want) {
		t.Errorf("date expiry = %v, want %v", crm.Expires(), want)
	}
	inv := crm.Inventory()
	if !inv.Catalogued || inv.Owner != "revops@acme.test" || inv.Criticality != "high" || len(inv.ApprovedScopes) != 3 {
		t.Errorf("inventory view = %+v", inv)
	}
	backup, _ := c.Entry("backup-robot")
	if want := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC); !backup.Expires().Equal(want) {
		t.Errorf("RFC 3339 expiry = %v, want %v", backup.Expires(), want)
	}
	if backup.Inventory().Owner != "" {
		t.Errorf("backup-robot has no owner in the file")
	}
	if e, ok := c.Lookup("salesforce", "0H4Ao000000crmSync"); !ok || e != crm {
		t.Errorf("salesforce identity does not resolve to acme-crm-sync")
	}
}

func TestParseRejectsBadEntriesNamingEntryAndField(t *testing.T) {
	const ok = "  - id: good\n    identities: [{source: slack, id: A1}]\n"
	tests := []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"missing id", "integrations:\n  - name: x\n    identities: [{source: slack, id: A1}]\n",
			[]string{`integrations[0] (id "")`, "id: required"}},
		{"bad criticality", "integrations:\n" + ok + "  - id: crm\n    criticality: severe\n    identities: [{source: slack, id: A2}]\n",
			[]string{`integrations[1] (id "crm")`, `criticality "severe"`}},
		{"bad expiry", "integrations:\n  - id: crm\n    expires_at: next tuesday\n    identities: [{source: slack, id: A2}]\n",
			[]string{`(id "crm")`, `expires_at "next tuesday"`}},
		{"bad country", "integrations:\n  - id: crm\n    approved_countries: [Germany]\n    identities: [{source: slack, id: A2}]\n",
			[]string{`(id "crm")`, `approved_countries[0] "GERMANY"`}},
		{"no identities", "integrations:\n  - id: crm\n", []string{`(id "crm")`, "identities: at least one"}},
		{"identity without id", "integrations:\n  - id: crm\n    identities: [{source: slack}]\n",
			[]string{`(id "crm")`, "identities[0].id: required"}},
		{"identity with bad source", "integrations:\n  - id: crm\n    identities: [{source: Google Workspace, id: x}]\n",
			[]string{`(id "crm")`, `identities[0].source "Google Workspace"`}},
		{"duplicate id", "integrations:\n" + ok + "  - id: good\n    identities: [{source: slack, id: A2}]\n",
			[]string{`integrations[1] (id "good")`, "id: duplicate"}},
		{"identity claimed twice", "integrations:\n" + ok + "  - id: other\n    identities: [{source: slack, id: A1}]\n",
			[]string{`integrations[1] (id "other")`, `slack "A1" is already listed under "good"`}},
		{"typo in a key", "integrations:\n  - id: crm\n    owners: me\n    identities: [{source: slack, id: A2}]\n",
			[]string{"owners"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatal("Parse accepted a bad catalog")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseAcceptsAnEmptyCatalog(t *testing.T) {
	c, err := Parse(nil)
	if err != nil || len(c.Entries) != 0 {
		t.Fatalf("Parse(empty) = %v, %v", c, err)
	}
}

func TestEnrichMapsSourceIdentitiesToOneIntegration(t *testing.T) {
	e := New(mustLoad(t), Options{})
	tests := []struct {
		name                     string
		source, appID, origName  string
		wantID, wantName, wantOw string
		catalogued               bool
	}{
		{"google client id", "google_workspace", "1234567890-crm.apps.googleusercontent.com", "", "acme-crm-sync", "Acme CRM Sync", "revops@acme.test", true},
		{"salesforce app of the same vendor", "salesforce", "0H4Ao000000crmSync", "", "acme-crm-sync", "Acme CRM Sync", "revops@acme.test", true},
		{"connector's name is kept", "salesforce", "0H4Ao000000crmSync", "CRM (SF)", "acme-crm-sync", "CRM (SF)", "revops@acme.test", true},
		{"same id in another source does not match", "slack", "0H4Ao000000crmSync", "", "0H4Ao000000crmSync", "", "", false},
		{"uncatalogued", "google_workspace", "stranger.apps.googleusercontent.com", "Stranger", "stranger.apps.googleusercontent.com", "Stranger", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := schemas.Event{Source: tc.source, Integration: schemas.Integration{ID: tc.appID, SourceAppID: tc.appID, Name: tc.origName}}
			e.Enrich(&ev)
			if ev.Inventory == nil {
				t.Fatal("Inventory not set")
			}
			if ev.Integration.ID != tc.wantID || ev.Integration.Name != tc.wantName || ev.Integration.SourceAppID != tc.appID {
				t.Errorf("integration = %+v, want id %q name %q", ev.Integration, tc.wantID, tc.wantName)
			}
			if ev.Inventory.Catalogued != tc.catalogued || ev.Inventory.Owner != tc.wantOw {
				t.Errorf("inventory = %+v", ev.Inventory)
			}
		})
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

const (
	catalogV1 = "integrations:\n  - id: crm\n    owner: alice\n    identities: [{source: slack, id: A1}]\n"
	catalogV2 = "integrations:\n  - id: crm\n    owner: bob@acme.test\n    identities: [{source: slack, id: A1}, {source: github, id: '42'}]\n"
)

func ownerOf(e *Enricher, source, app string) string {
	ev := schemas.Event{Source: source, Integration: schemas.Integration{ID: app, SourceAppID: app}}
	e.Enrich(&ev)
	return ev.Inventory.Owner
}

func TestReloadSwapsInAChangedCatalog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	writeFile(t, path, catalogV1)
	e, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := e.Reload(); changed || err != nil {
		t.Fatalf("Reload of an unchanged file = %v, %v", changed, err)
	}
	writeFile(t, path, catalogV2)
	if changed, err := e.Reload(); !changed || err != nil {
		t.Fatalf("Reload after edit = %v, %v", changed, err)
	}
	if o := ownerOf(e, "slack", "A1"); o != "bob@acme.test" {
		t.Errorf("owner after reload = %q", o)
	}
	if o := ownerOf(e, "github", "42"); o != "bob@acme.test" {
		t.Errorf("new identity not live: owner %q", o)
	}
}

func TestReloadOfABadFileKeepsTheOldCatalog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	writeFile(t, path, catalogV1)
	var reports []error
	e, err := Open(path, Options{OnReload: func(_ *Catalog, err error) { reports = append(reports, err) }})
	if err != nil {
		t.Fatal(err)
	}
	old := e.Catalog()
	writeFile(t, path, catalogV1+"  - id: broken\n    criticality: extreme\n")
	changed, err := e.Reload()
	if changed || err == nil || !strings.Contains(err.Error(), `integrations[1] (id "broken")`) {
		t.Fatalf("Reload of a bad file = %v, %v", changed, err)
	}
	if e.Catalog() != old || ownerOf(e, "slack", "A1") != "alice" {
		t.Fatal("a bad file replaced the catalog")
	}
	// The same bad file is reported once, not on every poll.
	if _, err := e.Reload(); err != nil {
		t.Errorf("second poll of the same bad file reported again: %v", err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
	if ownerOf(e, "slack", "A1") != "alice" {
		t.Fatal("a missing file dropped the catalog")
	}
	writeFile(t, path, catalogV2)
	if changed, err := e.Reload(); !changed || err != nil {
		t.Fatalf("fixed file: %v, %v", changed, err)
	}
	if len(reports) != 3 || reports[0] == nil || reports[1] == nil || reports[2] != nil {
		t.Errorf("OnReload saw %v, want bad, missing, ok", reports)
	}
}

func TestOpenRejectsABadCatalog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	writeFile(t, path, "integrations:\n  - id: x\n")
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open = %v, want an error naming the file", err)
	}
}

func TestWatchReloadsUntilCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	writeFile(t, path, catalogV1)
	reloaded := make(chan error, 4)
	e, err := Open(path, Options{OnReload: func(_ *Catalog, err error) { reloaded <- err }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Watch(ctx, 5*time.Millisecond); close(done) }()
	writeFile(t, path, catalogV2)
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatalf("reload error: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not pick up the change")
	}
	if o := ownerOf(e, "slack", "A1"); o != "bob@acme.test" {
		t.Errorf("owner = %q after Watch reload", o)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
}

func TestReviewSchedule(t *testing.T) {
	c, err := Parse([]byte("integrations:\n  - id: a\n    reviewed_at: 2026-09-01\n    review_every: 90d\n    identities: [{source: slack, id: A1}]\n  - id: b\n    reviewed_at: \"2026-09-01T12:00:00Z\"\n    review_every: 24h\n    identities: [{source: slack, id: A2}]\n  - id: c\n    identities: [{source: slack, id: A3}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Entry("a")
	if due, ok := a.ReviewDue(); !ok || !due.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("a due %v %v", due, ok)
	}
	if a.ReviewOverdue(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)) || !a.ReviewOverdue(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("a overdue wrong")
	}
	// Events carry the due date, for inventory.review_overdue.
	if v := a.Inventory().ReviewDueAt; v == nil || !v.Time.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("a's inventory review_due_at = %v", v)
	}
	b, _ := c.Entry("b")
	if due, _ := b.ReviewDue(); !due.Equal(time.Date(2026, 9, 2, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("b due %v", due)
	}
	cc, _ := c.Entry("c")
	if _, ok := cc.ReviewDue(); ok || cc.ReviewOverdue(time.Now()) || cc.Inventory().ReviewDueAt != nil {
		t.Error("c has no schedule")
	}
	for y, want := range map[string]string{
		"    reviewed_at: soon\n    review_every: 90d\n":       `reviewed_at "soon"`,
		"    reviewed_at: 2026-09-01\n    review_every: -1h\n": `review_every "-1h"`,
		"    reviewed_at: 2026-09-01\n    review_every: 0d\n":  `review_every "0d"`,
		"    reviewed_at: 2026-09-01\n":                        "give both or neither",
	} {
		_, err := Parse([]byte("integrations:\n  - id: x\n" + y + "    identities: [{source: slack, id: A1}]\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", y, err, want)
		}
	}
}
