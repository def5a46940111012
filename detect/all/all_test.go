package all

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/internal/platform/extensiontest"
)

const module = "github.com/tokenwatch/tokenwatch/detect/"

// detectorDirs lists the folders under detect/ (relative, slash-separated)
// whose non-test Go files call detect.Register.
func detectorDirs(t *testing.T) []string {
	t.Helper()
	return extensiontest.Folders(t, "..", "detect.Register(")
}

func allImports(t *testing.T) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "all.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		out[p] = true
	}
	return out
}

// TestEveryDetectorFolderIsComplete is the checklist for a new detector:
// README.md, sample.yaml, a test, and its line in all.go.
func TestEveryDetectorFolderIsComplete(t *testing.T) {
	imports := allImports(t)
	for _, dir := range detectorDirs(t) {
		t.Run(dir, func(t *testing.T) {
			abs := filepath.Join("..", filepath.FromSlash(dir))
			for _, f := range []string{"README.md", "sample.yaml"} {
				if _, err := os.Stat(filepath.Join(abs, f)); err != nil {
					t.Errorf("missing %s", f)
				}
			}
			if tests, _ := filepath.Glob(filepath.Join(abs, "*_test.go")); len(tests) == 0 {
				t.Error("missing a _test.go")
			}
			if !imports[module+dir] {
				t.Errorf("detect/all/all.go lacks _ %q", module+dir)
			}
		})
	}
}

// TestSampleConfigsBuildRegisteredDetectors checks each sample.yaml names a
// registered detector and configures it without error, and that every
// registered detector has a folder with a sample.
func TestSampleConfigsBuildRegisteredDetectors(t *testing.T) {
	sampled := map[string]string{}
	for _, dir := range detectorDirs(t) {
		abs, err := filepath.Abs(filepath.Join("..", filepath.FromSlash(dir)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(abs, "sample.yaml"))
		if err != nil {
			continue // reported by TestEveryDetectorFolderIsComplete
		}
		var doc map[string]yaml.Node
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Errorf("%s/sample.yaml: %v", dir, err)
			continue
		}
		for id, node := range doc {
			sampled[id] = dir
			spec, err := detect.Lookup(id)
			if err != nil {
				t.Errorf("%s/sample.yaml: %v", dir, err)
				continue
			}
			t.Run(id, func(t *testing.T) {
				t.Chdir(abs) // samples may name files relative to their folder
				d, err := spec.New(func(v any) error {
					dec := yaml.NewDecoder(strings.NewReader(mustEncode(t, &node)))
					dec.KnownFields(true)
					return dec.Decode(v)
				})
				if err != nil {
					t.Fatalf("sample config rejected: %v", err)
				}
				if d.ID() != id {
					t.Errorf("built detector says ID %q", d.ID())
				}
				if !strings.HasPrefix(id, strings.SplitN(dir, "/", 2)[0]+".") {
					t.Errorf("id %q is not in family folder %q", id, dir)
				}
			})
		}
	}
	for _, s := range detect.Specs() {
		if _, ok := sampled[s.ID]; !ok {
			t.Errorf("registered detector %s has no sample.yaml section", s.ID)
		}
	}
}

func mustEncode(t *testing.T, n *yaml.Node) string {
	t.Helper()
	b, err := yaml.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDetectorCatalogueListsEveryDetector keeps docs/detectors.md in step with
// the registry: every registered id has a row in its table.
func TestDetectorCatalogueListsEveryDetector(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "detectors.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range detect.Specs() {
		if !strings.Contains(string(b), "| `"+s.ID+"` |") {
			t.Errorf("docs/detectors.md has no catalogue row for %s", s.ID)
		}
	}
}

// Every detector says what it maps to in ATT&CK, how to answer it and how
// far it is trusted: the catalogue and every alert carry it.
func TestEveryDetectorHasMetadata(t *testing.T) {
	tech := regexp.MustCompile(`^T\d{4}(\.\d{3})?$`)
	for _, s := range detect.Specs() {
		m := s.Meta
		switch m.Status {
		case detect.StatusExperimental, detect.StatusTest, detect.StatusStable:
		default:
			t.Errorf("%s: status %q", s.ID, m.Status)
		}
		if len(m.Techniques) == 0 || m.Runbook == "" || len(m.FalsePositives) == 0 {
			t.Errorf("%s: techniques %v, runbook %q, false positives %v", s.ID, m.Techniques, m.Runbook, m.FalsePositives)
		}
		for _, id := range m.Techniques {
			if !tech.MatchString(id) {
				t.Errorf("%s: technique %q is not an ATT&CK id", s.ID, id)
			}
		}
	}
}
