package scenario

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

const dir = "../../../testdata/scenarios/google_oauth_theft"

func TestCommittedScenarioIsTheGeneratorOutput(t *testing.T) {
	s, err := Generate(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, PagesFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	committed, _ := io.ReadAll(zr)
	if !bytes.Equal(committed, s.Pages) {
		t.Fatal("committed scenario differs from the generator: go run ./internal/app/scenario/gen")
	}
	exp, _ := os.ReadFile(filepath.Join(dir, ExpectedFile))
	want, err := ReadExpected(exp)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != len(s.Expected) {
		t.Fatalf("expected alerts: committed %d, generated %d", len(want), len(s.Expected))
	}
	again, _ := Generate(DefaultOptions())
	if !bytes.Equal(again.Pages, s.Pages) {
		t.Fatal("same seed, different output")
	}
}

func TestScenarioHasRhythmAndAttack(t *testing.T) {
	s, err := Generate(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if s.Records < 5000 {
		t.Errorf("only %d records", s.Records)
	}
	if !bytes.Contains(s.Pages, []byte(`"ipAddress":"102.89.0.1"`)) || s.Attack.Events < 100 {
		t.Error("attack missing")
	}
	other := DefaultOptions()
	other.Seed++
	o, _ := Generate(other)
	if bytes.Equal(o.Pages, s.Pages) {
		t.Error("the seed changes nothing")
	}
}
