package slack

import (
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/deliver/respond/respondtest"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

func newRevoker(t *testing.T, base string) respond.Revoker {
	r, err := New(Config{EnterpriseID: "E0123ABCD", Token: secret.New("xoxp-org-admin-secret"), BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Slack answers errors inside HTTP 200 (https://docs.slack.dev/reference/methods/admin.apps.uninstall)
// and rate limits with 429 and Retry-After.
func TestUninstallAgainstTheSlackAdminAPI(t *testing.T) {
	respondtest.Run(t, respondtest.Suite{
		New: newRevoker, Secret: "xoxp-org-admin-secret",
		Target: respond.Target{Source: Source, IntegrationID: "A0KRD7HC3", VendorID: "A0KRD7HC3"},
		Method: "POST", Path: "/admin.apps.uninstall", Auth: "Bearer xoxp-org-admin-secret",
		Body:   `{"app_id":"A0KRD7HC3","enterprise_id":"E0123ABCD"}`,
		InBody: true, OK: `{"ok":true}`,
		NotFound:      `{"ok":false,"error":"app_not_found"}`,
		Forbidden:     `{"ok":false,"error":"missing_scope","needed":"admin.apps:write","provided":"$SECRET"}`,
		TooMany:       `{"ok":false,"error":"ratelimited"}`,
		ForbiddenHint: "admin.apps:write",
	})
}

func TestUnknownSlackErrorsFail(t *testing.T) {
	r := newRevoker(t, "https://slack.com/api")
	for body, want := range map[string]string{`{"ok":true}`: "", `{"ok":false,"error":"can_not_uninstall"}`: "slack: can_not_uninstall", `<html>`: "unreadable"} {
		err := r.(*Revoker).CheckBody([]byte(body))
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}
