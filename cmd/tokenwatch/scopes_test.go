package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateScopes = flag.Bool("update-scopes", false, "rewrite testdata/scopes/*.golden")

// TestInventoryScopes pins `tokenwatch inventory --scopes` on raw records:
// a planner catalogued with full mail and calendar access that only reads
// calendars, a Drive reporter holding drive beside drive.readonly, and an
// app-only Graph archiver with a write role it only reads with, a role it
// never uses and a call the map lacks. The window is the input's own (30
// days before its last event), so the August gmail call is out of it.
func TestInventoryScopes(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "tokenwatch.yaml")
	catalog, _ := filepath.Abs("testdata/scopes/catalog.yaml")
	if err := os.WriteFile(cfg, []byte("inventory:\n  path: "+catalog+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"google.golden", []string{"--config", cfg, "--source", "google_workspace", "testdata/scopes/google.jsonl"}},
		{"microsoft.golden", []string{"--source", "microsoft", "testdata/scopes/microsoft.jsonl"}},
		{"microsoft.json.golden", []string{"--json", "--source", "microsoft", "testdata/scopes/microsoft.jsonl"}},
		{"google.since.golden", []string{"--config", cfg, "--source", "google_workspace", "--since", "2026-08-01", "--until", "2026-10-05", "testdata/scopes/google.jsonl"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			code, out, errOut := tokenwatch(t, append([]string{"inventory", "--scopes"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			path := filepath.Join("testdata/scopes", tc.golden)
			if *updateScopes {
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if out != string(want) {
				t.Errorf("output differs from %s (-update-scopes rewrites it):\n%s", path, out)
			}
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"inventory", "--scopes", "testdata/scopes/google.jsonl"}, "--scopes needs --source"},
		{[]string{"inventory", "--scopes", "--source", "google_workspace"}, "no input files"},
		{[]string{"inventory", "--scopes", "--source", "google_workspace", "--window", "soon", "testdata/scopes/google.jsonl"}, "--window"},
		{[]string{"inventory", "--scopes", "--source", "google_workspace", "--since", "yesterday", "testdata/scopes/google.jsonl"}, "--since"},
		{[]string{"inventory", "testdata/scopes/google.jsonl"}, "--scopes only"},
	} {
		if code, _, errOut := tokenwatch(t, tc.args...); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %s; want an error naming %q", tc.args[1:], code, errOut, tc.want)
		}
	}
}
