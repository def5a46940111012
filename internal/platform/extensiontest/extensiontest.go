// Package extensiontest is the checklist the extension points hold their
// folders to, shared by the meta-tests of sources (ingest/all) and sinks
// (deliver/all): which folders register an extension, that each has a README
// with the sections readers look for, a sample.yaml and a test, that all.go
// links it into the binary, and that the catalogue table in the top-level
// README.md lists exactly the registered kinds. It also decodes sample
// configs strictly and stands in for the environment variables they name.
// Test code only: nothing in the binary imports it.
package extensiontest

import (
	"bytes"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Folders lists the folders below root (relative to it, slash-separated)
// whose non-test Go files contain call, e.g. "ingest.Register(".
func Folders(t testing.TB, root, call string) []string {
	t.Helper()
	dirs := map[string]bool{}
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
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(call)) {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			dirs[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, 0, len(dirs))
	for d := range dirs {
		out = append(out, d)
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatalf("no folder below %s calls %s: is the walk rooted right?", root, call)
	}
	return out
}

// Imports returns the import paths of the Go file at path.
func Imports(t testing.TB, path string) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
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

// Checklist is what every folder of one extension point must hold.
type Checklist struct {
	// Root is the extension point's folder as seen from the test ("..").
	Root string
	// Module is Root's import path with a trailing slash.
	Module string
	// AllGo is the file that blank-imports every folder ("all.go").
	AllGo string
	// Headings are the README sections required: for each entry, some
	// heading must contain every one of its words (case-insensitive).
	Headings [][]string
}

// Check reports what the folder dir (relative to Root) lacks.
func (c Checklist) Check(t *testing.T, dir string, imports map[string]bool) {
	t.Helper()
	abs := filepath.Join(c.Root, filepath.FromSlash(dir))
	if heads, err := headings(filepath.Join(abs, "README.md")); err != nil {
		t.Errorf("missing README.md")
	} else {
		for _, want := range c.Headings {
			if !hasHeading(heads, want) {
				t.Errorf("README.md has no section heading with %q", strings.Join(want, " … "))
			}
		}
	}
	if _, err := os.Stat(filepath.Join(abs, "sample.yaml")); err != nil {
		t.Errorf("missing sample.yaml")
	}
	if tests, _ := filepath.Glob(filepath.Join(abs, "*_test.go")); len(tests) == 0 {
		t.Error("missing a _test.go")
	}
	if !imports[c.Module+dir] {
		t.Errorf("%s lacks _ %q", c.AllGo, c.Module+dir)
	}
}

// headings returns the lower-cased text of the Markdown headings in a file.
func headings(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	fence := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		if !fence && strings.HasPrefix(line, "#") {
			out = append(out, strings.ToLower(strings.TrimLeft(line, "# ")))
		}
	}
	return out, nil
}

func hasHeading(heads, words []string) bool {
	for _, h := range heads {
		all := true
		for _, w := range words {
			all = all && strings.Contains(h, strings.ToLower(w))
		}
		if all {
			return true
		}
	}
	return false
}

// Catalogue reads the first Markdown table after the heading titled heading
// in the file at path: its first column (a `kind`) → its second (a `folder/`),
// backticks and trailing slashes trimmed.
func Catalogue(t testing.TB, path, heading string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	in, table := false, false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			if table {
				break
			}
			in = strings.EqualFold(strings.TrimSpace(strings.TrimLeft(line, "#")), heading)
			continue
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if table {
				break
			}
			continue
		}
		table = true
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if len(cells) < 2 || !strings.HasPrefix(strings.TrimSpace(cells[0]), "`") {
			continue // the header or the rule under it
		}
		kind := strings.Trim(strings.TrimSpace(cells[0]), "`")
		rows[kind] = strings.TrimSuffix(strings.Trim(strings.TrimSpace(cells[1]), "`"), "/")
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no catalogue table under a heading %q", path, heading)
	}
	return rows
}

// CheckCatalogue compares the catalogue table under heading in the Markdown
// file at path with registered (kind → folder, relative to the repository
// root; "" when no folder was found): every registered kind has a row naming
// its folder, and every row names a registered kind.
func CheckCatalogue(t *testing.T, path, heading string, registered map[string]string) {
	t.Helper()
	rows := Catalogue(t, path, heading)
	for kind, folder := range registered {
		got, ok := rows[kind]
		switch {
		case !ok:
			t.Errorf("%s, %s: no catalogue row for registered %q", path, heading, kind)
		case folder != "" && got != folder:
			t.Errorf("%s, %s: %q is in folder %s, the catalogue says %s", path, heading, kind, folder, got)
		}
	}
	for kind := range rows {
		if _, ok := registered[kind]; !ok {
			t.Errorf("%s, %s: catalogue lists %q, which nothing registers", path, heading, kind)
		}
	}
}

// StrictDecode returns a decode function that fills v from n and rejects keys
// v has no field for. (yaml.Node.Decode alone ignores unknown keys.)
func StrictDecode(n *yaml.Node) func(any) error {
	return func(v any) error {
		if n == nil || n.Kind == 0 {
			return nil
		}
		b, err := yaml.Marshal(n)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		return dec.Decode(v)
	}
}

// FakeEnv sets every environment variable that the YAML doc references as
// "env:NAME" and the environment lacks to a stand-in value, for the test's
// duration: a URL for names ending in _URL, an opaque string otherwise.
func FakeEnv(t *testing.T, doc []byte) {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal(doc, &n); err != nil {
		t.Fatal(err)
	}
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if name, ok := strings.CutPrefix(n.Value, "env:"); ok && n.Kind == yaml.ScalarNode && name != "" {
			if _, set := os.LookupEnv(name); !set {
				v := "sample-" + strings.ToLower(name)
				if strings.HasSuffix(name, "_URL") {
					v = "https://sample.example/" + strings.ToLower(name)
				}
				t.Setenv(name, v)
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&n)
}
