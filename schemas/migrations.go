package schemas

import (
	"embed"
	"fmt"
	"io/fs"
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
		m := Migration{Version: v, Name: name}
		for _, st := range splitSQL(string(b)) {
			m.Statements = append(m.Statements, st)
		}
		if len(out) > 0 && out[len(out)-1].Version == v {
			return nil, fmt.Errorf("migration %s: duplicate version %d", f, v)
		}
		out = append(out, m)
	}
	return out, nil
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
