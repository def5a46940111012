package scopemap

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

func embedded(t *testing.T) *Map {
	t.Helper()
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestEmbeddedMap: the shipped map parses, and stays a small but real
// table for both vendors.
func TestEmbeddedMap(t *testing.T) {
	m := embedded(t)
	n := map[string]int{}
	for _, e := range m.Entries() {
		n[e.Source]++
	}
	for _, src := range []string{Google, Microsoft} {
		if n[src] < 20 || n[src] > 50 {
			t.Errorf("%s: %d entries, want 20 to 50", src, n[src])
		}
	}
}

func TestParseRejectsBadEntries(t *testing.T) {
	for name, y := range map[string]string{
		"needs not a full scope":  "google_workspace:\n  - {method: a.b, needs: x, scopes: [y], doc: https://d}\n",
		"duplicate method":        "google_workspace:\n  - {method: a.b, needs: x, scopes: [x], doc: https://d}\n  - {method: a.b, needs: x, scopes: [x], doc: https://d}\n",
		"graph call without path": "microsoft:\n  - {call: GET, needs: X, scopes: [X], doc: https://d}\n",
		"no doc":                  "microsoft:\n  - {call: GET /x, needs: X, scopes: [X]}\n",
		"full and partial":        "microsoft:\n  - {call: GET /x, needs: X, scopes: [X], partial: [X], doc: https://d}\n",
		"unknown key":             "microsoft:\n  - {call: GET /x, need: X, scopes: [X], doc: https://d}\n",
	} {
		if _, err := Parse([]byte(y)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func googleCall(method string) *schemas.Event {
	return &schemas.Event{Source: Google, Resource: schemas.Resource{Type: "api_method", ID: method}}
}

func graphCall(method, path string) *schemas.Event {
	return &schemas.Event{Source: Microsoft, HTTP: &schemas.HTTP{Method: method, Route: path}, Resource: schemas.Resource{Type: "graph_path", ID: "/v1.0/users/ana@acme.test/raw"}}
}

func TestCall(t *testing.T) {
	m := embedded(t)
	for _, tc := range []struct {
		name      string
		ev        *schemas.Event
		call, hit string // hit: the entry's Call, "" for unmapped
	}{
		{"google method", googleCall("gmail.users.messages.get"), "gmail.users.messages.get", "gmail.users.messages.get"},
		{"google unknown method", googleCall("tasks.tasks.list"), "tasks.tasks.list", ""},
		{"graph path with ids", graphCall("GET", "/v1.0/users/{id}/messages"), "GET /users/{id}/messages", "GET /users/{id}/messages"},
		{"graph path case and trailing slash", graphCall("get", "/v1.0/Users/{id}/MailFolders/"), "GET /Users/{id}/MailFolders", "GET /users/{id}/mailFolders"},
		{"me is the signed-in user", graphCall("GET", "/v1.0/me/messages/AAMkAGI2"), "GET /me/messages/AAMkAGI2", "GET /users/{id}/messages/{id}"},
		{"me alone has its own entry", graphCall("GET", "/v1.0/me"), "GET /me", "GET /me"},
		{"a literal segment beats {id}", graphCall("GET", "/beta/users/{id}/mailFolders"), "GET /users/{id}/mailFolders", "GET /users/{id}/mailFolders"},
		{"$ref", graphCall("POST", "/v1.0/groups/{id}/members/$ref"), "POST /groups/{id}/members/$ref", "POST /groups/{id}/members/$ref"},
		{"graph unknown path", graphCall("GET", "/v1.0/print/printers"), "GET /print/printers", ""},
		{"not a call", &schemas.Event{Source: Google, Scopes: []string{"https://mail.google.com/"}}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call, e := m.Call(tc.ev)
			hit := ""
			if e != nil {
				hit = e.Call
			}
			if call != tc.call || hit != tc.hit {
				t.Errorf("Call = %q, %q; want %q, %q", call, hit, tc.call, tc.hit)
			}
		})
	}
}

var t0 = time.Date(2026, 10, 5, 9, 0, 0, 0, time.UTC)

func event(src, integ string, at time.Duration) schemas.Event {
	return schemas.Event{Source: src, Tenant: "acme", Time: schemas.NewTime(t0.Add(at)), Integration: schemas.Integration{ID: integ, Name: integ}, Outcome: "success"}
}

func TestUsage(t *testing.T) {
	m := embedded(t)
	const mail, cal = "https://mail.google.com/", "https://www.googleapis.com/auth/calendar"
	var evs []schemas.Event
	// planner: catalogued with full mail and calendar, signs users in, only
	// ever reads calendars (and calls one method the map lacks).
	grant := event(Google, "planner", 0)
	grant.Scopes = []string{"openid", "https://www.googleapis.com/auth/userinfo.email", mail, cal}
	evs = append(evs, grant)
	for i := 1; i <= 3; i++ {
		e := event(Google, "planner", time.Duration(i)*time.Hour)
		e.Resource = schemas.Resource{Type: "api_method", ID: "calendar.events.list"}
		e.Inventory = &schemas.Inventory{Catalogued: true, Name: "Shift Planner", ApprovedScopes: []string{mail, cal}}
		evs = append(evs, e)
	}
	tasks := event(Google, "planner", 4*time.Hour)
	tasks.Resource = schemas.Resource{Type: "api_method", ID: "tasks.tasks.list"}
	failed := event(Google, "planner", 5*time.Hour)
	failed.Resource, failed.Outcome = schemas.Resource{Type: "api_method", ID: "gmail.users.messages.get"}, "failure"
	early := event(Google, "planner", -48*time.Hour) // before the window
	early.Resource = schemas.Resource{Type: "api_method", ID: "gmail.users.messages.send"}
	evs = append(evs, tasks, failed, early)
	// archiver: an app-only Graph token with write and site roles that lists
	// users and reads mail; one call its roles do not cover.
	graph := func(at time.Duration, method, path string) schemas.Event {
		e := event(Microsoft, "archiver", at)
		e.HTTP = &schemas.HTTP{Method: method, Route: path}
		e.Delegation = schemas.DelegationAppOnly
		e.Scopes = []string{"Mail.ReadWrite", "User.Read.All", "Sites.ReadWrite.All"}
		return e
	}
	evs = append(evs, graph(time.Hour, "GET", "/v1.0/users"), graph(2*time.Hour, "GET", "/v1.0/users/{id}/messages"),
		graph(3*time.Hour, "GET", "/v1.0/users/{id}/messages"), graph(4*time.Hour, "GET", "/v1.0/auditLogs/signIns"))

	b := NewBuilder(m)
	b.From, b.To = t0.Add(-time.Hour), t0.Add(24*time.Hour)
	for i := range evs {
		b.Add(&evs[i])
	}
	got := b.Usage()
	// archiver's GET /users is app-only: it needs User.Read.All, as the
	// page's Application row does not list User.ReadBasic.All.
	want := []Usage{{
		Tenant: "acme", IntegrationID: "archiver", Name: "archiver", Source: Microsoft,
		Held:      []string{"Mail.ReadWrite", "Sites.ReadWrite.All", "User.Read.All"},
		Needed:    []string{"AuditLog.Read.All", "Mail.Read", "User.Read.All"},
		Exercised: []string{"Mail.ReadWrite", "User.Read.All"},
		Unused:    []string{"Sites.ReadWrite.All"},
		Narrower:  []Narrowing{{"Mail.ReadWrite", []string{"Mail.Read"}}},
		Uncovered: []Count{{"GET /auditLogs/signIns", 1}},
		Calls:     4, Mapped: 4, Unmapped: []Count{}, From: b.From, To: b.To,
	}, {
		Tenant: "acme", IntegrationID: "planner", Name: "Shift Planner", Source: Google,
		Held:      []string{mail, cal},
		Needed:    []string{"https://www.googleapis.com/auth/calendar.events.readonly"},
		Exercised: []string{cal},
		Unused:    []string{mail},
		Narrower:  []Narrowing{{cal, []string{"https://www.googleapis.com/auth/calendar.events.readonly"}}},
		Uncovered: []Count{},
		Calls:     4, Mapped: 3, Unmapped: []Count{{"tasks.tasks.list", 1}}, Failed: 1, From: b.From, To: b.To,
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("usage\n got %+v\nwant %+v", got, want)
	}
}

// TestPartialScopesCountOnlyWithoutAFullOne: drive.file serves files.list on
// the app's own files only; it is credited when nothing broader is held.
func TestPartialScopesCountOnlyWithoutAFullOne(t *testing.T) {
	m := embedded(t)
	for _, tc := range []struct {
		held []string
		want string
	}{
		{[]string{"drive.file"}, "https://www.googleapis.com/auth/drive.file"},
		{[]string{"drive.file", "drive"}, "https://www.googleapis.com/auth/drive"},
	} {
		b := NewBuilder(m)
		e := event(Google, "x", 0)
		e.Resource = schemas.Resource{Type: "api_method", ID: "drive.files.list"}
		for _, s := range tc.held {
			e.Scopes = append(e.Scopes, Canonical(Google, s))
		}
		b.Add(&e)
		if u := b.Usage(); len(u[0].Exercised) != 1 || u[0].Exercised[0] != tc.want {
			t.Errorf("held %v: exercised %v, want %s", tc.held, u[0].Exercised, tc.want)
		}
	}
	if !strings.HasPrefix(Canonical(Google, "gmail.readonly"), googleScopePrefix) || Canonical(Microsoft, "Mail.Read") != "Mail.Read" {
		t.Error("Canonical")
	}
}

// TestCheckedEntries pins entries corrected against the vendor pages
// (docs/scopes.md, "How the map was checked"): the scope to request for a
// delegated and an app-only token, and a scope each page lists as serving
// part of the data only.
func TestCheckedEntries(t *testing.T) {
	m := embedded(t)
	byCall := map[string]*Entry{}
	for _, e := range m.Entries() {
		byCall[e.Source+" "+e.Call] = e
	}
	g := func(s string) string { return Canonical(Google, s) }
	for _, tc := range []struct {
		call, needs, needsApp, partial string
	}{
		{"google_workspace calendar.calendarList.list", g("calendar.calendarlist.readonly"), g("calendar.calendarlist.readonly"), ""},
		{"google_workspace calendar.events.list", g("calendar.events.readonly"), g("calendar.events.readonly"), g("calendar.events.owned.readonly")},
		{"google_workspace gmail.users.messages.get", g("gmail.readonly"), g("gmail.readonly"), g("gmail.addons.current.message.readonly")},
		{"google_workspace drive.files.list", g("drive.metadata.readonly"), g("drive.metadata.readonly"), g("drive.meet.readonly")},
		{"microsoft GET /users", "User.ReadBasic.All", "User.Read.All", ""},
		{"microsoft GET /users/{id}", "User.ReadBasic.All", "User.Read.All", "User.Read"},
		{"microsoft PATCH /users/{id}", "User.ReadWrite.All", "User.ReadWrite.All", "User.ReadWrite"},
		{"microsoft GET /applications", "Application.Read.All", "Application.Read.All", "Application.ReadWrite.OwnedBy"},
		{"microsoft GET /chats/{id}/messages", "Chat.Read", "Chat.Read.All", "ChatMessage.Read.Chat"},
	} {
		e := byCall[tc.call]
		if e == nil {
			t.Errorf("%s: not in the map", tc.call)
			continue
		}
		if e.Needs != tc.needs || e.NeedsApp != tc.needsApp {
			t.Errorf("%s: needs %q / %q, want %q / %q", tc.call, e.Needs, e.NeedsApp, tc.needs, tc.needsApp)
		}
		if tc.partial != "" && !slices.Contains(e.Partial, tc.partial) {
			t.Errorf("%s: partial %v lacks %q", tc.call, e.Partial, tc.partial)
		}
	}
}
