package clickhouse_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// analystQuery is one fenced block of docs/analyst-queries.md and the
// heading above it.
type analystQuery struct {
	heading string
	sql     string
	admin   bool // ```sql-admin: changes data, not an investigation
}

const analystQueriesDoc = "../../docs/analyst-queries.md"

// parseAnalystQueries reads the ```sql and ```sql-admin blocks in order.
func parseAnalystQueries(t *testing.T, path string) []analystQuery {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []analystQuery
	var heading string
	var cur *analystQuery
	var body strings.Builder
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.sql = strings.TrimSpace(body.String())
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		case line == "```sql" || line == "```sql-admin":
			if heading == "" {
				t.Fatalf("%s:%d: sql block before any ### heading", path, n)
			}
			cur = &analystQuery{heading: heading, admin: line == "```sql-admin"}
			body.Reset()
		case strings.HasPrefix(line, "### "):
			heading = strings.TrimPrefix(line, "### ")
		case strings.HasPrefix(line, "```sql"):
			t.Fatalf("%s:%d: fence %q: use ```sql or ```sql-admin", path, n, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s: unterminated block under %q", path, cur.heading)
	}
	return out
}

var placeholder = regexp.MustCompile(`\{([a-z_]+)\}`)

// fixturePlaceholders are the documented placeholders and the fixture values
// the test puts in their place.
var fixturePlaceholders = map[string]string{
	"integration_id": "crm-sync",
	"alert_id":       "a-crm-country",
	"incident_id":    "inc-crm",
}

// queryRows runs q and renders every row as column → value text.
func queryRows(ctx context.Context, conn driver.Conn, q string) ([]map[string]string, error) {
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols := rows.ColumnTypes()
	var out []map[string]string
	for rows.Next() {
		dest := make([]any, len(cols))
		for i, c := range cols {
			dest[i] = reflect.New(c.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		row := map[string]string{}
		for i, c := range cols {
			v := reflect.ValueOf(dest[i]).Elem().Interface()
			if tm, ok := v.(time.Time); ok {
				v = tm.UTC().Format(time.RFC3339)
			}
			row[c.Name()] = fmt.Sprint(v)
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

func TestAnalystQueriesRunAndAnswerTheFixture(t *testing.T) {
	queries := parseAnalystQueries(t, analystQueriesDoc)
	doc, err := os.ReadFile(analystQueriesDoc)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := loadAnalystFixture(t)
	ctx := context.Background()

	results := map[string][]map[string]string{} // by heading
	var investigations int
	var admin []analystQuery
	for _, q := range queries {
		for _, m := range placeholder.FindAllStringSubmatch(q.sql, -1) {
			if _, ok := fixturePlaceholders[m[1]]; !ok {
				t.Errorf("%q: placeholder %s is not one the test knows", q.heading, m[0])
			}
			if !strings.Contains(string(doc), "`"+m[0]+"`") {
				t.Errorf("%q: placeholder %s is not documented in the placeholder table", q.heading, m[0])
			}
		}
		sql := placeholder.ReplaceAllStringFunc(q.sql, func(p string) string {
			return fixturePlaceholders[strings.Trim(p, "{}")]
		})
		if q.admin {
			admin = append(admin, analystQuery{heading: q.heading, sql: sql, admin: true})
			continue
		}
		investigations++
		if _, dup := results[q.heading]; dup {
			t.Errorf("two queries under %q: one query per heading", q.heading)
		}
		rows, err := queryRows(ctx, c.Conn(), sql)
		if err != nil {
			t.Errorf("query %q failed: %v\n%s", q.heading, err, sql)
			continue
		}
		results[q.heading] = rows
	}
	if investigations < 15 {
		t.Fatalf("%d investigation queries in %s, want at least 15", investigations, analystQueriesDoc)
	}
	if t.Failed() {
		t.FailNow()
	}

	// find returns the result of the one query whose heading contains s, so a
	// renamed heading fails here rather than silently dropping a check.
	find := func(s string) []map[string]string {
		t.Helper()
		var hits []string
		for h := range results {
			if strings.Contains(h, s) {
				hits = append(hits, h)
			}
		}
		if len(hits) != 1 {
			t.Fatalf("want one query heading containing %q, found %q", s, hits)
		}
		return results[hits[0]]
	}
	pick := func(rows []map[string]string, cols ...string) []string {
		var out []string
		for _, r := range rows {
			var parts []string
			for _, c := range cols {
				parts = append(parts, r[c])
			}
			out = append(out, strings.Join(parts, " "))
		}
		return out
	}
	checks := []struct {
		heading string
		cols    []string
		want    []string
		sorted  bool // compare as a set
	}{
		{"mail scopes were used from hosting networks", []string{"integration_id", "as_org", "events", "bytes"},
			[]string{"crm-sync DIGITALOCEAN-ASN 4 200000"}, false},
		{"used after they were revoked", []string{"integration_id", "credential_id", "uses_after_revoke", "countries"},
			[]string{"crm-sync cred-crm-1 4 [NG]"}, false},
		{"acted from a new country this week", []string{"integration_id", "country", "events"},
			[]string{"crm-sync NG 4", "shadow-bot US 3"}, true},
		{"acted from a new network (ASN) this week", []string{"integration_id", "asn"},
			[]string{"crm-sync 14061", "hr-export 16509", "shadow-bot 16509"}, true},
		{"evidence of alert", []string{"event_id", "country", "ip"},
			[]string{"crm-attack-0 NG 203.0.113.66", "crm-attack-1 NG 203.0.113.66", "crm-attack-2 NG 203.0.113.66", "crm-attack-3 NG 203.0.113.66"}, false},
		{"are new this week", []string{"integration_id", "events", "countries"},
			[]string{"shadow-bot 3 [US]"}, false},
		{"still active", []string{"integration_id", "events_30d"}, []string{"shadow-bot 3"}, false},
		{"most high and critical alerts", []string{"integration_id", "critical", "high"}, []string{"crm-sync 1 1"}, false},
		{"unusually many principals", []string{"integration_id", "principals"}, []string{"crm-sync 3"}, false},
		{"new-country alerts", []string{"country", "alerts"}, []string{"NG 1"}, false},
		{"carry the most risk", []string{"id", "risk_score", "alerts"}, []string{"inc-crm 85 2", "inc-shadow 30 1"}, false},
		{"learn of most recently", []string{"id"}, []string{"inc-crm", "inc-shadow"}, true},
		{"make up incident", []string{"alert_id", "event_id"}, []string{"a-crm-country crm-attack-0", "a-crm-country crm-attack-1",
			"a-crm-country crm-attack-2", "a-crm-country crm-attack-3", "a-crm-revoked crm-attack-0", "a-crm-revoked crm-revoke"}, true},
		{"first time this week", []string{"integration_id", "user_agent"},
			[]string{"crm-sync Mozilla/5.0", "crm-sync python-requests/2.31", "shadow-bot curl/8.0"}, true},
	}
	for _, ck := range checks {
		got := pick(find(ck.heading), ck.cols...)
		if ck.sorted {
			slices.Sort(got)
		}
		if !slices.Equal(got, ck.want) {
			t.Errorf("%q: got %q, want %q", ck.heading, got, ck.want)
		}
	}

	// The top talker is the stolen token: 200 000 bytes against about 929 a day.
	talkers := find("far more bytes")
	if len(talkers) == 0 || talkers[0]["integration_id"] != "crm-sync" || talkers[0]["bytes_24h"] != "200000" {
		t.Errorf("top talkers: got %v, want crm-sync first with 200000 bytes", talkers)
	}
	// What crm-sync touched in the last day: the revoke and the four reads.
	touched := find("What did integration")
	var events, bytes int
	for _, r := range touched {
		var n, b int
		fmt.Sscan(r["events"], &n)
		fmt.Sscan(r["bytes"], &b)
		events, bytes = events+n, bytes+b
	}
	if len(touched) != 5 || events != 5 || bytes != 200000 {
		t.Errorf("touched in 24h: %d rows, %d events, %d bytes; want 5, 5, 200000", len(touched), events, bytes)
	}

	// The maintenance statements rebuild the hourly table to what events hold
	// (and drop the re-polled duplicate the materialized view counted).
	if len(admin) == 0 {
		t.Fatal("no sql-admin block: the hourly backfill is documented there")
	}
	for _, q := range admin {
		if err := c.Conn().Exec(ctx, q.sql); err != nil {
			t.Fatalf("admin statement under %q: %v\n%s", q.heading, err, q.sql)
		}
	}
	var hourly, final uint64
	if err := c.Conn().QueryRow(ctx, "SELECT countMerge(events) FROM integration_activity_hourly").Scan(&hourly); err != nil {
		t.Fatal(err)
	}
	if err := c.Conn().QueryRow(ctx, "SELECT count() FROM events FINAL").Scan(&final); err != nil {
		t.Fatal(err)
	}
	if hourly != final || final == 0 {
		t.Fatalf("after the backfill the hourly table counts %d events, events FINAL %d", hourly, final)
	}
}
