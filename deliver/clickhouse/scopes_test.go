package clickhouse_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// TestScopeUsageSetsHeldAgainstNeeded runs integration_scope_usage on the
// real server: a Google planner holding full mail and calendar that only
// lists events (and calls one method the map lacks, and fails one call), and
// an app-only Graph archiver whose Sites role serves none of its calls (one
// through /me/ with a well-known folder name for an id, one unmapped).
func TestScopeUsageSetsHeldAgainstNeeded(t *testing.T) {
	ctx, _, c := migrated(t)

	now := time.Now().UTC().Truncate(time.Second)
	const mail, cal = "https://mail.google.com/", "https://www.googleapis.com/auth/calendar"
	n := 0
	ev := func(src, integ string, ago time.Duration) schemas.Event {
		n++
		return schemas.Event{EventID: fmt.Sprintf("e%d", n), Source: src, Tenant: "acme", Time: schemas.NewTime(now.Add(-ago)),
			Integration: schemas.Integration{ID: integ, SourceAppID: integ}, Outcome: "success", Raw: json.RawMessage(`{}`)}
	}
	gcall := func(method string, ago time.Duration) schemas.Event {
		e := ev("google_workspace", "planner", ago)
		e.Resource = schemas.Resource{Type: "api_method", ID: method}
		return e
	}
	grant := ev("google_workspace", "planner", 72*time.Hour)
	grant.Action, grant.Scopes = schemas.Action{Name: "authorize", Category: schemas.CategoryAuthorize}, []string{mail, cal}
	failed := gcall("gmail.users.messages.get", time.Hour)
	failed.Outcome = "failure"
	old := gcall("gmail.users.messages.send", 40*24*time.Hour) // outside the 30 days
	events := []schemas.Event{grant, gcall("calendar.events.list", 48*time.Hour), gcall("calendar.events.list", 24*time.Hour),
		gcall("tasks.tasks.list", 2*time.Hour), failed, old}
	graph := func(method, route string, ago time.Duration) schemas.Event {
		e := ev("microsoft", "archiver", ago)
		e.HTTP = &schemas.HTTP{Method: method, Route: route, StatusCode: 200}
		e.Delegation = schemas.DelegationAppOnly
		e.Scopes = []string{"Mail.ReadWrite", "User.Read.All", "Sites.ReadWrite.All"}
		return e
	}
	events = append(events, graph("GET", "/v1.0/users", 3*time.Hour), graph("GET", "/v1.0/users/{id}/messages", 2*time.Hour),
		graph("GET", "/v1.0/users/{id}/messages", time.Hour), graph("GET", "/v1.0/me/mailFolders/inbox/messages/", time.Hour),
		graph("GET", "/v1.0/print/printers", time.Hour))
	if err := c.WriteEvents(ctx, events); err != nil {
		t.Fatal(err)
	}

	rows, err := c.Conn().Query(ctx, `SELECT integration_id, source, arraySort(held), calls, mapped_calls, unmapped_calls,
		arraySort(needed), arraySort(unused_held), arraySort(unmapped_methods) FROM integration_scope_usage WHERE tenant = 'acme'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id, src string
		var held, needed, unused, unmapped []string
		var calls, mapped, unmappedN uint64
		if err := rows.Scan(&id, &src, &held, &calls, &mapped, &unmappedN, &needed, &unused, &unmapped); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s held=%s calls=%d mapped=%d unmapped=%d needed=%s unused=%s unmapped_methods=%s", id, src,
			strings.Join(held, ","), calls, mapped, unmappedN, strings.Join(needed, ","), strings.Join(unused, ","), strings.Join(unmapped, ",")))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"archiver microsoft held=Mail.ReadWrite,Sites.ReadWrite.All,User.Read.All calls=5 mapped=4 unmapped=1 needed=Mail.Read,User.Read.All unused=Sites.ReadWrite.All unmapped_methods=get /print/printers",
		"planner google_workspace held=" + mail + "," + cal + " calls=3 mapped=2 unmapped=1 needed=https://www.googleapis.com/auth/calendar.events.readonly unused=" + mail + " unmapped_methods=tasks.tasks.list",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("integration_scope_usage:\n got %q\nwant %q", got, want)
	}
}
