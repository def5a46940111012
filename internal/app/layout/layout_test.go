package layout

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/tokenwatch/tokenwatch/"

// imports maps each package directory (slash-separated, from the repo root)
// to the module packages its non-test files import.
func imports(t *testing.T, root string) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		if out[pkg] == nil {
			out[pkg] = map[string]bool{}
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if rest, ok := strings.CutPrefix(p, module); ok {
				out[pkg][rest] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func under(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

var stages = []string{"ingest", "enrich", "detect", "deliver"}

func stageOf(pkg string) string {
	for _, s := range stages {
		if under(pkg, s) {
			return s
		}
	}
	return ""
}

// allowed reports whether package pkg may import dep, and why not.
func allowed(pkg, dep string) (bool, string) {
	switch {
	case under(pkg, "schemas"):
		return false, "schemas imports nothing of the module"
	case under(pkg, "internal/platform"):
		if stageOf(dep) != "" || under(dep, "internal/app") || under(dep, "cmd") {
			return false, "the foundation sits below the stages"
		}
	case stageOf(pkg) != "":
		if under(dep, "internal/app") || under(dep, "cmd") {
			return false, "a stage does not know the wiring above it"
		}
		from, to := stageOf(pkg), stageOf(dep)
		if to == "" || to == from || to == "enrich" {
			return true, ""
		}
		if pkg == "detect/detecttest" && to == "ingest" {
			return true, "" // scenarios are written as vendor records
		}
		return false, "stages do not import each other (" + from + " → " + to + ")"
	}
	return true, ""
}

func TestArrowsPointDown(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal("not at the repository root:", err)
	}
	all := imports(t, root)
	if len(all) < 30 {
		t.Fatalf("found %d packages: is the walk rooted at the repository?", len(all))
	}
	for pkg, deps := range all {
		for dep := range deps {
			if ok, why := allowed(pkg, dep); !ok {
				t.Errorf("%s imports %s: %s", pkg, dep, why)
			}
		}
	}
}

func TestRulesCatchWrongArrows(t *testing.T) {
	for _, tc := range []struct{ pkg, dep string }{
		{"internal/platform/broker", "detect/engine"},
		{"detect/engine", "internal/app/config"},
		{"ingest/okta", "detect"},
		{"deliver/slack", "detect/program"},
		{"enrich/geoip", "ingest"},
		{"schemas", "internal/platform/broker"},
	} {
		if ok, _ := allowed(tc.pkg, tc.dep); ok {
			t.Errorf("%s → %s allowed", tc.pkg, tc.dep)
		}
	}
	for _, tc := range []struct{ pkg, dep string }{
		{"detect/stream", "internal/platform/broker"},
		{"deliver/dispatch", "enrich/inventory"},
		{"detect/detecttest", "ingest"},
		{"internal/app/wiring", "detect/program"},
	} {
		if ok, why := allowed(tc.pkg, tc.dep); !ok {
			t.Errorf("%s → %s refused: %s", tc.pkg, tc.dep, why)
		}
	}
}
