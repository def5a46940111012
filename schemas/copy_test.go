package schemas

import (
	"strings"
	"testing"
)

// A cluster file's copy directive takes the one single-server statement it
// names, with ON CLUSTER after the name; a directive that names none (or a
// missing file) is an error naming the cluster file.
func TestCopyDirective(t *testing.T) {
	got, err := copyStatements("cluster/x.sql", "-- a view\n-- copy: migrations/0018_incident_timeline.sql CREATE VIEW IF NOT EXISTS incident_timeline\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(strings.TrimPrefix(got, "-- a view\n"), "CREATE VIEW IF NOT EXISTS incident_timeline ON CLUSTER '{cluster}' AS") || !strings.HasSuffix(strings.TrimSpace(got), ";") {
		t.Fatalf("copied:\n%s", got)
	}
	for _, bad := range []string{
		"-- copy: migrations/0018_incident_timeline.sql CREATE VIEW IF NOT EXISTS incident_timelines",
		"-- copy: migrations/9999_none.sql CREATE VIEW IF NOT EXISTS x",
	} {
		if _, err := copyStatements("cluster/x.sql", bad+"\n"); err == nil || !strings.Contains(err.Error(), "cluster/x.sql") {
			t.Errorf("%s: %v, want an error naming the file", bad, err)
		}
	}
}
