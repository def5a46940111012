package schemas

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql cluster/*.sql
var migrationFS embed.FS

// Migration is one versioned ClickHouse schema step (schemas/migrations/NNNN_name.sql).
type Migration struct {
	Version int
	Name    string
	// Statements are the file's SQL statements, split on ';' at line ends.
	Statements []string
}

// Migrations returns the embedded single-server migrations in version order.
func Migrations() ([]Migration, error) { return load("migrations") }

// ClusterMigrations returns the optional cluster layout (ReplicatedMergeTree
// shards under Distributed tables) with {cluster} replaced by cluster.
func ClusterMigrations(cluster string) ([]Migration, error) {
	ms, err := load("cluster")
	if err != nil {
		return nil, err
	}
	for i := range ms {
		for j, st := range ms[i].Statements {
			ms[i].Statements[j] = strings.ReplaceAll(st, "{cluster}", cluster)
		}
	}
	return ms, nil
}

func load(dir string) ([]Migration, error) {
	files, err := fs.Glob(migrationFS, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Migration
	for _, f := range files {
		base := strings.TrimSuffix(strings.TrimPrefix(f, dir+"/"), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", f)
		}
		b, err := migrationFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		text := string(b)
		if dir == "cluster" {
			if text, err = copyStatements(f, text); err != nil {
				return nil, err
			}
		}
		m := Migration{Version: v, Name: name}
		for _, st := range splitSQL(text) {
			m.Statements = append(m.Statements, st)
		}
		if len(out) > 0 && out[len(out)-1].Version == v {
			return nil, fmt.Errorf("migration %s: duplicate version %d", f, v)
		}
		out = append(out, m)
	}
	return out, nil
}

// copyDirective is a cluster file's line `-- copy: migrations/FILE.sql HEAD`:
// the single-server statement of FILE that starts with HEAD (`CREATE VIEW IF
// NOT EXISTS name`, `INSERT INTO name`), placed here with ON CLUSTER after
// the name. A view whose body is the same on both layouts is written once.
var copyDirective = regexp.MustCompile(`(?m)^-- copy: (migrations/\S+\.sql) (.+)$`)

// copyStatements replaces the copy directives of cluster file f.
func copyStatements(f, text string) (string, error) {
	var err error
	out := copyDirective.ReplaceAllStringFunc(text, func(line string) string {
		g := copyDirective.FindStringSubmatch(line)
		src, head := g[1], strings.TrimSpace(g[2])
		b, rerr := migrationFS.ReadFile(src)
		if rerr != nil {
			err = errors.Join(err, fmt.Errorf("migration %s: copy from %s: %w", f, src, rerr))
			return line
		}
		var found []string
		for _, st := range splitSQL(string(b)) {
			if rest, ok := strings.CutPrefix(st, head); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\n' || rest[0] == '(') {
				found = append(found, st)
			}
		}
		if len(found) != 1 {
			err = errors.Join(err, fmt.Errorf("migration %s: copy: %d statements of %s start with %q, want one", f, len(found), src, head))
			return line
		}
		st := found[0]
		if strings.HasPrefix(head, "CREATE ") {
			st = head + " ON CLUSTER '{cluster}'" + strings.TrimPrefix(st, head)
		}
		return st + ";"
	})
	return out, err
}

// splitSQL splits on semicolons that end a line and drops comment-only chunks.
func splitSQL(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "--") || t == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(t, ";") {
			st := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			out = append(out, st)
			cur.Reset()
		}
	}
	if st := strings.TrimSpace(cur.String()); st != "" {
		out = append(out, st)
	}
	return out
}
