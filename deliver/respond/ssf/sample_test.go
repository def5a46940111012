package ssf

import (
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/internal/platform/extensiontest"
	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
)

// TestSampleConfigIsValid decodes sample.yaml strictly, as respond.ssf is
// decoded, and validates it with a real key standing in for the secret.
func TestSampleConfigIsValid(t *testing.T) {
	rk, ec := keys(t)
	t.Setenv("TOKENWATCH_SSF_SIGNING_KEY", ec)
	t.Setenv("TOKENWATCH_SSF_PREVIOUS_KEY", publicPEM(t, rk))
	doc, err := os.ReadFile("sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	extensiontest.FakeEnv(t, doc)
	var n yaml.Node
	if err := yaml.Unmarshal(doc, &n); err != nil {
		t.Fatal(err)
	}
	var s struct {
		SSF Config `yaml:"ssf"`
	}
	if err := yamlstrict.Decode(&n, &s); err != nil {
		t.Fatal(err)
	}
	if s.SSF.StateFile != "/var/lib/tokenwatch/ssf-streams.json" {
		t.Errorf("state_file %q", s.SSF.StateFile)
	}
	s.SSF.StateFile = filepath.Join(t.TempDir(), "ssf-streams.json") // its folder must exist here
	if err := s.SSF.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(s.SSF.Streams) != 1 || len(s.SSF.Streams[0].EventsRequested) != 4 || s.SSF.Retry.MaxAttempts != 6 ||
		len(s.SSF.PreviousKeys) != 1 || s.SSF.PreviousKeys[0].Until.IsZero() {
		t.Errorf("decoded %+v", s.SSF)
	}
}
