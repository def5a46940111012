package all

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/internal/platform/extensiontest"
	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
)

// checklist is what a vendor folder holds: code registering its revoker, a
// test (the respondtest suite), README.md with the lever chosen and why, its
// limits and its config, citing the vendor's documentation, a sample.yaml
// (one respond.vendors entry), and its line in all.go.
var checklist = extensiontest.Checklist{
	Root:     "..",
	Module:   "github.com/tokenwatch/tokenwatch/deliver/respond/",
	AllGo:    "deliver/respond/all/all.go",
	Headings: [][]string{{"lever"}, {"limits"}, {"config"}, {"errors"}},
}

func vendorFolders(t *testing.T) []string { return extensiontest.Folders(t, "..", "respond.Register(") }

// docURL is a citation of the vendor's own documentation.
var docURL = regexp.MustCompile(`https://(developers\.google\.com|learn\.microsoft\.com|developer\.okta\.com|docs\.github\.com|api\.slack\.com|developer\.salesforce\.com|help\.salesforce\.com)/\S+`)

// TestEveryVendorFolderIsComplete is the checklist for a new revoker.
func TestEveryVendorFolderIsComplete(t *testing.T) {
	imports := extensiontest.Imports(t, "all.go")
	for _, dir := range vendorFolders(t) {
		t.Run(dir, func(t *testing.T) {
			checklist.Check(t, dir, imports)
			b, _ := os.ReadFile(filepath.Join("..", dir, "README.md"))
			if !docURL.Match(b) {
				t.Error("README.md cites no vendor documentation URL for the API it calls")
			}
		})
	}
}

// TestSampleConfigsBuildRegisteredRevokers decodes each sample.yaml as the
// config's respond.vendors does (strictly) and builds its revoker; every
// registered source has a sample and a row in docs/response.md's catalogue.
func TestSampleConfigsBuildRegisteredRevokers(t *testing.T) {
	sampled := map[string]string{}
	for _, dir := range vendorFolders(t) {
		doc, err := os.ReadFile(filepath.Join("..", dir, "sample.yaml"))
		if err != nil {
			continue // reported by TestEveryVendorFolderIsComplete
		}
		t.Run(dir, func(t *testing.T) {
			extensiontest.FakeEnv(t, doc)
			var n yaml.Node
			if err := yaml.Unmarshal(doc, &n); err != nil {
				t.Fatal(err)
			}
			var s struct {
				Vendors map[string]yaml.Node `yaml:"vendors"`
			}
			if err := yamlstrict.Decode(&n, &s); err != nil {
				t.Fatal(err)
			}
			if len(s.Vendors) != 1 {
				t.Fatalf("sample.yaml has %d vendors entries, want one", len(s.Vendors))
			}
			for source, node := range s.Vendors {
				sampled[source] = "deliver/respond/" + dir
				rv, err := respond.New(source, yamlstrict.Func(&node))
				if err != nil {
					t.Fatalf("sample config rejected: %v", err)
				}
				if rv.Source() != source {
					t.Errorf("revoker says Source %q, the sample names %q", rv.Source(), source)
				}
			}
		})
	}
	registered := map[string]string{}
	for _, s := range respond.Sources() {
		registered[s] = sampled[s]
		if sampled[s] == "" {
			t.Errorf("registered revoker %s has no folder with a sample.yaml naming it", s)
		}
	}
	extensiontest.CheckCatalogue(t, filepath.Join("..", "..", "..", "docs", "response.md"), "Vendors", registered)
}
