package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/internal/platform/chtest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// The approval loop: two pending request_approval actions are listed;
// approving one records the approval and revokes through the vendor (once,
// however often it is approved); denying the other records it and sends
// nothing; neither is pending afterwards.
func TestRespondApproveAndDeny(t *testing.T) {
	srv := chtest.New(t)
	var hits atomic.Int32
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Method != http.MethodDelete || r.URL.Path != "/admin/directory/v1/users/ana@acme.example/tokens/"+gwsClient {
			t.Errorf("vendor got %s %s", r.Method, r.URL.Path)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer vendor.Close()
	t.Setenv("TW_TEST_GWS_TOKEN", "ya29.approve-secret")
	cfgPath := filepath.Join(t.TempDir(), "tokenwatch.yaml")
	doc := fmt.Sprintf("clickhouse: {addr: [%q]}\nrespond:\n  vendors:\n    google_workspace: {access_token: env:TW_TEST_GWS_TOKEN, base_url: %q}\n", srv.TCPAddr, vendor.URL)
	if err := os.WriteFile(cfgPath, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := clickhouse.DefaultConfig()
	cfg.Addr = []string{srv.TCPAddr}
	if _, err := clickhouse.Migrate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	c, err := clickhouse.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	at := schemas.NewTime(time.Date(2026, 10, 20, 2, 0, 0, 0, time.UTC))
	pending := func(id, principal string) schemas.Response {
		return schemas.Response{ID: id, IncidentID: "inc", IncidentVersion: 3, Tenant: "acme", Source: "google_workspace", IntegrationID: gwsClient,
			Target: gwsClient, Principal: principal, Action: schemas.ActionRequestApproval, Mode: schemas.ModeEnforce, Status: schemas.ResponsePlanned,
			Rule: "r", Reason: "integration is on respond.allow_list", At: at, RecordedAt: at}
	}
	dryRun := pending("req-cy", "cy@acme.example")
	dryRun.Mode, dryRun.Rule = schemas.ModeDryRun, "rehearse"
	if err := c.Record(ctx, []schemas.Response{pending("req-ana", "ana@acme.example"), pending("req-bo", "bo@acme.example"), dryRun}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := tokenwatch(t, "respond", "list", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "req-ana") || !strings.Contains(out, "req-bo") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = tokenwatch(t, "respond", "approve", "req-ana", "--config", cfgPath, "--actor", "ana-admin", "--reason", "confirmed theft")
	if code != 0 || !strings.Contains(out, "executed\t"+gwsClient+"\tana@acme.example") {
		t.Fatalf("approve: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := tokenwatch(t, "respond", "approve", "req-ana", "--config", cfgPath, "--actor", "x"); code == 0 || !strings.Contains(errOut, "not a pending approval") {
		t.Errorf("second approve: exit %d %s", code, errOut)
	}
	if code, out, errOut := tokenwatch(t, "respond", "deny", "req-bo", "--config", cfgPath, "--actor", "ana-admin"); code != 0 || !strings.Contains(out, "nothing sent") {
		t.Fatalf("deny: exit %d\n%s%s", code, out, errOut)
	}
	// The dry_run rule's request: approved and recorded, nothing sent.
	code, out, errOut = tokenwatch(t, "respond", "approve", "req-cy", "--config", cfgPath, "--actor", "ana-admin")
	if code != 0 || !strings.Contains(out, "rule rehearse is dry_run") || !strings.Contains(out, "nothing sent") ||
		!strings.Contains(out, "DELETE "+vendor.URL+"/admin/directory/v1/users/cy@acme.example/tokens/"+gwsClient) {
		t.Fatalf("approve a dry_run request: exit %d\n%s%s", code, out, errOut)
	}
	if hits.Load() != 1 {
		t.Errorf("the vendor got %d requests, want the one approved enforce revoke", hits.Load())
	}
	code, out, _ = tokenwatch(t, "respond", "list", "--config", cfgPath)
	if code != 0 || strings.Contains(out, "req-") {
		t.Errorf("still pending after the decisions:\n%s", out)
	}
	approved, err := c.Response(ctx, "req-ana")
	if err != nil {
		t.Fatal(err)
	}
	denied, err := c.Response(ctx, "req-bo")
	if err != nil {
		t.Fatal(err)
	}
	if approved.Status != schemas.ResponseApproved || approved.Actor != "ana-admin" || approved.Reason != "confirmed theft" || denied.Status != schemas.ResponseDenied {
		t.Errorf("decisions recorded as %+v and %+v", approved, denied)
	}
	revoke := schemas.ResponseID("inc", 3, schemas.ActionRevoke, "google_workspace/"+gwsClient+"/ana@acme.example")
	if r, err := c.Response(ctx, revoke); err != nil || r.Status != schemas.ResponseExecuted || r.Actor != "ana-admin" {
		t.Errorf("the approved revoke: %+v %v", r, err)
	}
	dryRevoke := schemas.ResponseID("inc", 3, schemas.ActionRevoke, "google_workspace/"+gwsClient+"/cy@acme.example")
	if r, err := c.Response(ctx, dryRevoke); err != nil || r.Status != schemas.ResponsePlanned || r.Mode != schemas.ModeDryRun || len(r.Requests) != 1 {
		t.Errorf("the approved dry-run revoke: %+v %v", r, err)
	}
	if strings.Contains(out+errOut, "approve-secret") {
		t.Error("the admin token appears in the output")
	}
}
