package all

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/delivertest"
	"github.com/tokenwatch/tokenwatch/internal/platform/extensiontest"
)

// checklist is what a sink folder holds: code registering its kind, a test,
// README.md saying what it sends (an example of it) and its config, a
// sample.yaml (one deliver.sinks entry), and its line in all.go.
var checklist = extensiontest.Checklist{
	Root:     "..",
	Module:   "github.com/tokenwatch/tokenwatch/deliver/",
	AllGo:    "deliver/all/all.go",
	Headings: [][]string{{"config"}, {"example"}},
}

func sinkFolders(t *testing.T) []string { return extensiontest.Folders(t, "..", "deliver.Register(") }

// TestEverySinkFolderIsComplete is the checklist for a new sink.
func TestEverySinkFolderIsComplete(t *testing.T) {
	imports := extensiontest.Imports(t, "all.go")
	for _, dir := range sinkFolders(t) {
		t.Run(dir, func(t *testing.T) { checklist.Check(t, dir, imports) })
	}
}

// TestSampleConfigsBuildRegisteredSinks decodes each sample.yaml as the
// config file's deliver.sinks does, rejecting unknown keys in the entry and
// in its config:, and builds the sink through the registry; every registered
// kind (read from the registry) has such a sample and a row in the README's
// catalogue, which lists nothing else.
func TestSampleConfigsBuildRegisteredSinks(t *testing.T) {
	sampled := map[string]string{} // kind → folder
	for _, dir := range sinkFolders(t) {
		abs, err := filepath.Abs(filepath.Join("..", filepath.FromSlash(dir)))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := os.ReadFile(filepath.Join(abs, "sample.yaml"))
		if err != nil {
			continue // reported by TestEverySinkFolderIsComplete
		}
		t.Run(dir, func(t *testing.T) {
			t.Chdir(abs) // samples may name files relative to their folder
			extensiontest.FakeEnv(t, doc)
			kind, name, decode := delivertest.Sample(t, doc)
			sampled[kind] = "deliver/" + dir
			s, err := deliver.New(kind, name, decode)
			if err != nil {
				t.Fatalf("sample config rejected: %v", err)
			}
			if s.Name() != name {
				t.Errorf("built sink says Name %q, the sample names %q", s.Name(), name)
			}
			if c, ok := s.(deliver.Closer); ok {
				c.Close()
			}
		})
	}
	registered := map[string]string{}
	for _, kind := range deliver.Kinds() {
		registered[kind] = sampled[kind]
		if sampled[kind] == "" {
			t.Errorf("registered sink kind %s has no folder with a sample.yaml naming it", kind)
		}
	}
	for kind, dir := range sampled {
		if _, ok := registered[kind]; !ok {
			t.Errorf("%s/sample.yaml names kind %q, which nothing registers", dir, kind)
		}
	}
	extensiontest.CheckCatalogue(t, filepath.Join("..", "..", "README.md"), "Sinks", registered)
}
