package file

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/delivertest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

//go:embed sample.yaml
var sample []byte

func TestSampleConfigBuildsThroughTheRegistry(t *testing.T) {
	kind, name, decode := delivertest.Sample(t, sample)
	s, err := deliver.New(kind, name, decode)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.(*Sink).cfg; got.Format != "ocsf" || got.Mode != 0o600 || !got.Fsync {
		t.Fatalf("decoded %+v", got)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no path":  {Format: "json", Mode: 0o600},
		"bad fmt":  {Path: "x", Format: "xml", Mode: 0o600},
		"bad mode": {Path: "x", Format: "json", Mode: 0o4777},
	} {
		if _, err := New("f", cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	return out
}

func TestAppendsAlertsAndIncidentVersionsAsJSONLines(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(dir, "tokenwatch.jsonl")
	s, err := New("f", cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, b := delivertest.Alert(), delivertest.Alert()
	b.ID = "second"
	if err := s.Send(ctx, []schemas.Alert{a, b}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendIncident(ctx, delivertest.Incident(1, schemas.IncidentOpen), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendIncident(ctx, delivertest.Incident(2, schemas.IncidentResolved), ""); err != nil {
		t.Fatal(err)
	}
	got := lines(t, cfg.Path)
	if len(got) != 4 {
		t.Fatalf("%d lines", len(got))
	}
	var l [4]Line
	for i := range got {
		if err := json.Unmarshal(got[i], &l[i]); err != nil {
			t.Fatal(err)
		}
	}
	if l[0].Kind != "alert" || l[0].Alert.ID != a.ID || l[1].Alert.ID != "second" || l[2].Kind != "incident" ||
		l[2].Incident.Version != 1 || l[3].Incident.Version != 2 || l[3].Incident.Status != "resolved" {
		t.Fatalf("lines %+v", l)
	}
	if fi, _ := os.Stat(cfg.Path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
}

func TestOCSFLinesValidateAgainstTheDetectionFindingSchema(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path, cfg.Format = filepath.Join(t.TempDir(), "ocsf.jsonl"), "ocsf"
	s, _ := New("f", cfg)
	ctx := context.Background()
	if err := s.Send(ctx, []schemas.Alert{delivertest.Alert()}); err != nil {
		t.Fatal(err)
	}
	for v, st := range []string{schemas.IncidentOpen, schemas.IncidentAcknowledged, schemas.IncidentResolved} {
		if _, err := s.SendIncident(ctx, delivertest.Incident(v+1, st), ""); err != nil {
			t.Fatal(err)
		}
	}
	var activities []float64
	for _, line := range lines(t, cfg.Path) {
		delivertest.ValidateOCSF(t, line)
		var m map[string]any
		json.Unmarshal(line, &m)
		activities = append(activities, m["activity_id"].(float64))
	}
	if len(activities) != 4 || activities[1] != 1 || activities[2] != 2 || activities[3] != 3 {
		t.Fatalf("activities %v, want create (alert), create, update, close", activities)
	}
}

func TestMissingDirectoryIsPermanent(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "nope", "x.jsonl")
	s, _ := New("f", cfg)
	if err := s.Send(context.Background(), []schemas.Alert{delivertest.Alert()}); !deliver.IsPermanent(err) {
		t.Fatalf("err %v, want permanent", err)
	}
}
