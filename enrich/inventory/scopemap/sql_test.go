package scopemap

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch/schemas"
)

var updateSQL = flag.Bool("update-sql", false, "rewrite the generated INSERT in the newest schemas/migrations file that fills api_method_scopes (the cluster layout copies it)")

const schemaDir = "../../../schemas/"

// TestMigrationHoldsTheMap: the ClickHouse table is filled with the same
// data as the CLI reads, on both layouts. The newest migration inserting
// into api_method_scopes, single-server and cluster, must equal SQLInsert.
func TestMigrationHoldsTheMap(t *testing.T) {
	m := embedded(t)
	cluster, err := schemas.ClusterMigrations("c")
	if err != nil {
		t.Fatal(err)
	}
	single, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSuffix(m.SQLInsert(), ";")
	for dir, migs := range map[string][]schemas.Migration{"migrations/": single, "cluster/": cluster} {
		var got, file string
		for _, mg := range migs {
			for _, st := range mg.Statements {
				if strings.HasPrefix(strings.TrimSpace(st), "INSERT INTO api_method_scopes") {
					got = strings.TrimSuffix(strings.TrimSpace(st), ";")
					file = mg.Name
				}
			}
		}
		if file == "" {
			t.Errorf("no %s file fills api_method_scopes", dir)
			continue
		}
		if got == want {
			continue
		}
		if !*updateSQL || dir != "migrations/" {
			t.Errorf("%s%s does not insert the map (go test ./enrich/inventory/scopemap/ -update-sql rewrites it)", dir, file)
			continue
		}
		rewrite(t, m, schemaDir+dir, file)
	}
}

// rewrite replaces the generated block of the migration named file in dir.
func rewrite(t *testing.T, m *Map, dir, file string) {
	paths, _ := os.ReadDir(dir)
	for _, p := range paths {
		if !strings.Contains(p.Name(), file) {
			continue
		}
		b, err := os.ReadFile(dir + p.Name())
		if err != nil {
			t.Fatal(err)
		}
		block := regexp.MustCompile(`(?s)(-- BEGIN generated[^\n]*\n).*?(-- END generated)`)
		if !block.Match(b) {
			t.Fatalf("%s has no BEGIN/END generated block", p.Name())
		}
		out := block.ReplaceAllLiteral(b, []byte(strings.SplitN(block.FindString(string(b)), "\n", 2)[0]+"\n"+m.SQLInsert()+"\n-- END generated"))
		if err := os.WriteFile(dir+p.Name(), out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no migration file for %q in %s", file, dir)
}

// TestSQLKeysAgreeWithTheGoMatcher: a Graph request, keyed as the view
// keys it, finds the same entry as Call does, whatever the version prefix,
// the id or /me; and the view repeats SQLCollections verbatim.
func TestSQLKeysAgreeWithTheGoMatcher(t *testing.T) {
	m := embedded(t)
	seen := map[string]string{}
	for _, e := range m.Entries() {
		if prev, dup := seen[e.Source+" "+e.SQLKey()]; dup {
			t.Errorf("%q and %q share the key %q", prev, e.Call, e.SQLKey())
		}
		seen[e.Source+" "+e.SQLKey()] = e.Call
		if e.Source != Microsoft {
			continue
		}
		method, path, _ := strings.Cut(e.Call, " ")
		var routes []string
		for _, id := range []string{"{id}", "ana@acme.test", "AAMkAGI2TG93AAA=", "inbox"} {
			r := strings.ReplaceAll(path, "{id}", id)
			routes = append(routes, "/v1.0"+r, "/beta"+r+"/")
			if rest, ok := strings.CutPrefix(r, "/users/"+id+"/"); ok {
				routes = append(routes, "/v1.0/me/"+rest)
			}
		}
		for _, r := range routes {
			if k := SQLCallKey(method, r); k != e.SQLKey() {
				t.Errorf("%s %s: the view keys it %q, want %q", method, r, k, e.SQLKey())
			}
			if _, got := m.Call(graphCall(method, r)); got != e {
				t.Errorf("Call(%s %s) = %v, want %q", method, r, got, e.Call)
			}
		}
	}
	// The view as each layout creates it (the cluster's copies the
	// single-server statement).
	cluster, err := schemas.ClusterMigrations("c")
	if err != nil {
		t.Fatal(err)
	}
	single, err := schemas.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for layout, migs := range map[string][]schemas.Migration{"single-server": single, "cluster": cluster} {
		var view string
		for _, mg := range migs {
			for _, st := range mg.Statements {
				if strings.HasPrefix(st, "CREATE VIEW IF NOT EXISTS integration_scope_usage") {
					view = st
				}
			}
		}
		if !strings.Contains(view, "'/("+SQLCollections+")/[^/]+'") {
			t.Errorf("the %s integration_scope_usage does not rewrite routes with SQLCollections %q", layout, SQLCollections)
		}
	}
}
