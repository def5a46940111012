package all

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/poll"
	"github.com/tokenwatch/tokenwatch/internal/platform/extensiontest"
)

// checklist is what a source connector folder holds: code registering it, a
// test, README.md with the endpoint, the auth and the field mapping, a
// sample.yaml (one ingest.pollers entry), and its line in all.go.
var checklist = extensiontest.Checklist{
	Root:     "..",
	Module:   "github.com/tokenwatch/tokenwatch/ingest/",
	AllGo:    "ingest/all/all.go",
	Headings: [][]string{{"endpoint", "auth"}, {"config"}, {"field mapping"}},
}

func sourceFolders(t *testing.T) []string { return extensiontest.Folders(t, "..", "ingest.Register(") }

// TestEverySourceFolderIsComplete is the checklist for a new connector.
func TestEverySourceFolderIsComplete(t *testing.T) {
	imports := extensiontest.Imports(t, "all.go")
	for _, dir := range sourceFolders(t) {
		t.Run(dir, func(t *testing.T) { checklist.Check(t, dir, imports) })
	}
}

// plainPoller is poll.Config without its UnmarshalYAML (defaults and
// validation), so that a strict decoder sees its keys: the config loader's
// decode does not reject unknown keys inside a poller entry.
type plainPoller poll.Config

// TestSampleConfigsBuildRegisteredSources decodes each sample.yaml as the
// config file's ingest.pollers does (poll.Config: defaults, validation),
// rejecting unknown keys at every level, and builds the source from it;
// every registered source has such a sample, a normalizer for the offline
// tools, and a row in the README's catalogue, which lists nothing else.
func TestSampleConfigsBuildRegisteredSources(t *testing.T) {
	sampled := map[string]string{} // source → folder
	for _, dir := range sourceFolders(t) {
		abs, err := filepath.Abs(filepath.Join("..", filepath.FromSlash(dir)))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := os.ReadFile(filepath.Join(abs, "sample.yaml"))
		if err != nil {
			continue // reported by TestEverySourceFolderIsComplete
		}
		t.Run(dir, func(t *testing.T) {
			t.Chdir(abs) // samples may name files relative to their folder
			extensiontest.FakeEnv(t, doc)
			var strict struct {
				Pollers []plainPoller `yaml:"pollers"`
			}
			dec := yaml.NewDecoder(bytes.NewReader(doc))
			dec.KnownFields(true)
			if err := dec.Decode(&strict); err != nil {
				t.Fatalf("sample.yaml: %v", err)
			}
			var cfg struct {
				Pollers []poll.Config `yaml:"pollers"`
			}
			if err := yaml.Unmarshal(doc, &cfg); err != nil {
				t.Fatalf("sample.yaml rejected as ingest.pollers: %v", err)
			}
			if len(cfg.Pollers) != 1 {
				t.Fatalf("sample.yaml has %d entries under pollers:, want 1", len(cfg.Pollers))
			}
			pc := cfg.Pollers[0]
			sampled[pc.Source] = "ingest/" + dir
			src, err := pc.NewSource(nil)
			if err != nil {
				t.Fatalf("sample config rejected: %v", err)
			}
			if src.Name() != pc.Source {
				t.Errorf("built source says Name %q, the sample names %q", src.Name(), pc.Source)
			}
			// The connector's own keys, strictly.
			opt := ingest.Options{Tenant: pc.Tenant, BaseURL: pc.BaseURL}
			if _, err := ingest.New(pc.Source, extensiontest.StrictDecode(&pc.Connector), opt); err != nil {
				t.Fatalf("sample config: %v", err)
			}
		})
	}
	registered := map[string]string{}
	for _, name := range ingest.Names() {
		registered[name] = sampled[name]
		if sampled[name] == "" {
			t.Errorf("registered source %s has no folder with a sample.yaml naming it", name)
		}
		if _, err := ingest.NewNormalizer(name, "acme"); err != nil {
			t.Errorf("registered source %s has no normalizer (ingest.RegisterNormalizer): %v", name, err)
		}
	}
	for name, dir := range sampled {
		if _, ok := registered[name]; !ok {
			t.Errorf("%s/sample.yaml names source %q, which nothing registers", dir, name)
		}
	}
	extensiontest.CheckCatalogue(t, filepath.Join("..", "..", "README.md"), "Sources", registered)
}
