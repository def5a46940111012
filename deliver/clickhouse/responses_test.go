package clickhouse_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/deliver/respond/googleworkspace"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// TestResponsesRecordTheTrailAndAnswerWhatWasDone writes the steps of three
// actions and reads back which are complete (the executor's restart guard)
// and where each stands (response_state).
func TestResponsesRecordTheTrailAndAnswerWhatWasDone(t *testing.T) {
	ctx, _, c := migrated(t)
	at := schemas.NewTime(time.Date(2026, 10, 20, 2, 0, 0, 0, time.UTC))
	step := func(id, status string, sec int) schemas.Response {
		return schemas.Response{ID: id, IncidentID: "inc", IncidentVersion: 2, Tenant: "acme", Source: "google_workspace", IntegrationID: "crm",
			Target: "123.apps.googleusercontent.com", Principal: "ana@acme.example", Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce,
			Status: status, Rule: "r", Requests: []string{"DELETE https://admin.googleapis.com/x"}, At: at,
			RecordedAt: schemas.NewTime(at.Add(time.Duration(sec) * time.Second))}
	}
	failed := step("c", schemas.ResponseFailed, 3)
	failed.Error = "HTTP 403: scope missing"
	if err := c.Record(ctx, []schemas.Response{
		step("a", schemas.ResponsePlanned, 1), step("a", schemas.ResponseExecuted, 2),
		step("b", schemas.ResponsePlanned, 1), step("b", schemas.ResponseAlreadyDone, 2),
		step("c", schemas.ResponsePlanned, 1), failed,
		{ID: "d", IncidentID: "inc", Action: schemas.ActionNotify, Mode: schemas.ModeDryRun, Status: schemas.ResponseSkipped, At: at, RecordedAt: at},
	}); err != nil {
		t.Fatal(err)
	}
	done, err := c.Completed(ctx, []string{"a", "b", "c", "d", "nope"})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 2 || !done["a"] || !done["b"] {
		t.Fatalf("completed %v, want a and b", done)
	}
	rs, err := c.Conn().Query(ctx, "SELECT id, toString(status), error FROM response_state ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for rs.Next() {
		var id, status, e string
		if err := rs.Scan(&id, &status, &e); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, []string{id, status, e})
	}
	rs.Close()
	want := [][]string{{"a", "executed", ""}, {"b", "already_done", ""}, {"c", "failed", "HTTP 403: scope missing"}, {"d", "skipped", ""}}
	if len(rows) != len(want) {
		t.Fatalf("response_state: %v", rows)
	}
	for i := range want {
		for j := range want[i] {
			if rows[i][j] != want[i][j] {
				t.Errorf("response_state row %d: %v, want %v", i, rows[i], want[i])
			}
		}
	}
}

// TestExecutorDoesNotRevokeTwiceAcrossARestart runs the respond executor
// with the responses table as its store and trail: a second executor (a
// restart) given the same plan sends nothing.
func TestExecutorDoesNotRevokeTwiceAcrossARestart(t *testing.T) {
	ctx, _, c := migrated(t)
	var hits atomic.Int32
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer vendor.Close()
	gws, err := googleworkspace.New(googleworkspace.Config{AccessToken: secret.New("tok"), BaseURL: vendor.URL})
	if err != nil {
		t.Fatal(err)
	}
	target := respond.Target{Source: gws.Source(), IntegrationID: "c", VendorID: "123.apps.googleusercontent.com", Principal: "ana@acme.example"}
	reqs, err := gws.Plan(target)
	if err != nil {
		t.Fatal(err)
	}
	at := schemas.NewTime(time.Date(2026, 10, 20, 2, 0, 0, 0, time.UTC))
	plan := []respond.Planned{{Target: target, Requests: reqs, Response: schemas.Response{
		ID: schemas.ResponseID("inc", 1, schemas.ActionRevoke, "google_workspace/123/ana"), IncidentID: "inc", IncidentVersion: 1,
		Source: target.Source, IntegrationID: "c", Target: target.VendorID, Principal: target.Principal,
		Action: schemas.ActionRevoke, Mode: schemas.ModeEnforce, Status: schemas.ResponsePlanned, Rule: "r", At: at}}}
	for run := 1; run <= 2; run++ {
		ex := &respond.Executor{Revokers: map[string]respond.Revoker{gws.Source(): gws}, Sender: respond.NewHTTPSender(time.Second),
			Store: c, Audit: []respond.Recorder{c}}
		if _, err := ex.Execute(ctx, plan); err != nil {
			t.Fatal(err)
		}
		if hits.Load() != 1 {
			t.Fatalf("run %d: the vendor got %d revocations, want 1", run, hits.Load())
		}
	}
	var steps uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count() FROM responses WHERE id = ?", plan[0].Response.ID).Scan(&steps); err != nil {
		t.Fatal(err)
	}
	if steps != 2 {
		t.Errorf("%d steps recorded, want planned and executed once", steps)
	}
}

// Migration 0018: incident_timeline shows an incident's alerts and the
// steps of the actions taken on it, in order, with who decided.
func TestIncidentTimelineJoinsAlertsAndResponses(t *testing.T) {
	c, _ := loadAnalystFixture(t)
	ctx := context.Background()
	at := schemas.NewTime(time.Now().UTC().Truncate(time.Second))
	step := func(id, action, status string, sec int) schemas.Response {
		return schemas.Response{ID: id, IncidentID: "inc-crm", IncidentVersion: 2, Tenant: "acme", Source: "google_workspace", IntegrationID: "crm-sync",
			Target: "123.apps.googleusercontent.com", Principal: "ana@acme.example", Action: action, Mode: schemas.ModeEnforce,
			Status: status, Rule: "r", At: at, RecordedAt: schemas.NewTime(at.Add(time.Duration(sec) * time.Second))}
	}
	approved := step("req", schemas.ActionRequestApproval, schemas.ResponseApproved, 2)
	approved.Actor = "slack:U0ANA"
	if err := c.Record(ctx, []schemas.Response{
		step("req", schemas.ActionRequestApproval, schemas.ResponsePlanned, 1), approved,
		step("rev", schemas.ActionRevoke, schemas.ResponsePlanned, 2), step("rev", schemas.ActionRevoke, schemas.ResponseExecuted, 3),
		{ID: "other", IncidentID: "inc-shadow", Action: schemas.ActionNotify, Mode: schemas.ModeDryRun, Status: schemas.ResponsePlanned, At: at, RecordedAt: at},
	}); err != nil {
		t.Fatal(err)
	}
	rows, err := queryRows(ctx, c.Conn(), `SELECT kind, what, state, detail, actor FROM incident_timeline WHERE incident_id = 'inc-crm' ORDER BY time, seq`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, strings.TrimSpace(r["kind"]+" "+r["what"]+" "+r["state"]+" "+r["actor"]))
	}
	want := []string{"alert geo.new_country high", "alert lifecycle.use_after_revoke critical",
		"response request_approval planned", "response request_approval approved slack:U0ANA", "response revoke planned", "response revoke executed"}
	if !slices.Equal(got, want) {
		t.Fatalf("incident_timeline:\n got %q\nwant %q", got, want)
	}
	if d := rows[len(rows)-1]["detail"]; d != "google_workspace 123.apps.googleusercontent.com / ana@acme.example" {
		t.Errorf("detail %q", d)
	}
	steps, err := c.IncidentResponses(ctx, "inc-crm")
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, r := range steps {
		got = append(got, r.ID+" "+r.Status)
	}
	if want := []string{"req planned", "req approved", "rev planned", "rev executed"}; !slices.Equal(got, want) {
		t.Errorf("IncidentResponses %q, want %q", got, want)
	}
}
