package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch/internal/app/corpus"
)

func TestEvalGeneratesAndScoresACorpus(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "corpus")
	// A small corpus (the default one is `make eval`'s): every source, every scenario.
	code, out, errOut := tokenwatch(t, "eval", "--generate", "--integrations", "60", "--days", "40", dir)
	if code != 0 || !strings.Contains(out, "8 labelled attacks") {
		t.Fatalf("generate: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, src := range corpus.Sources {
		if _, err := os.Stat(filepath.Join(dir, corpus.FileName(src))); err != nil {
			t.Error(err)
		}
	}
	args := []string{"eval", "--geoip-city", city, "--geoip-asn", asn, dir}
	code, out, errOut = tokenwatch(t, args...)
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"precision", "recall", "median TTD", "FP/1k int-days", "geo.new_country", "volume.spike",
		corpus.ScenarioDriftTokenTheft, corpus.ScenarioUseAfterRevoke, "benign false alerts:", "0 dead letters"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, again, _ := tokenwatch(t, args...); again != out {
		t.Error("two evaluations of the same corpus differ")
	}
	// Without GeoIP it still runs, and says the geo detectors are blind.
	code, _, errOut = tokenwatch(t, "eval", dir)
	if code != 0 || !strings.Contains(errOut, "geo detectors cannot fire") {
		t.Errorf("eval without GeoIP: exit %d, stderr %q", code, errOut)
	}
}

func TestEvalBadInvocations(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"eval"}, 2, "want exactly one corpus directory"},
		{[]string{"eval", "a", "b"}, 2, "want exactly one corpus directory"},
		{[]string{"eval", "--nope", "x"}, 2, "flag provided but not defined"},
		{[]string{"eval", "/nonexistent-corpus"}, 1, "no such file"},
		{[]string{"eval", t.TempDir()}, 1, "labels.json"},
		{[]string{"eval", "--generate", "--days", "7", t.TempDir()}, 1, "need at least 40"},
	}
	for _, tt := range tests {
		code, _, errOut := tokenwatch(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
}
