package okta

import (
	"testing"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/deliver/respond/respondtest"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

func newRevoker(t *testing.T, base string) respond.Revoker {
	r, err := New(Config{OrgURL: base, APIToken: secret.New("00abcSSWS-okta-secret")})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Okta's error objects (https://developer.okta.com/docs/reference/error-codes/).
func TestDeactivateAndRevokeAgainstOkta(t *testing.T) {
	for name, tc := range map[string]struct{ id, method, path string }{
		"oauth app": {"0oa1b2c3d4e5f6g7h8i9", "POST", "/api/v1/apps/0oa1b2c3d4e5f6g7h8i9/lifecycle/deactivate"},
		"api token": {"api_token:00T1b2c3d4e5f6g7h8i9", "DELETE", "/api/v1/api-tokens/00T1b2c3d4e5f6g7h8i9"},
	} {
		t.Run(name, func(t *testing.T) {
			respondtest.Run(t, respondtest.Suite{
				New: newRevoker, Secret: "00abcSSWS-okta-secret",
				Target: respond.Target{Source: Source, IntegrationID: tc.id, VendorID: tc.id},
				Method: tc.method, Path: tc.path, Auth: "SSWS 00abcSSWS-okta-secret",
				NotFound:      `{"errorCode":"E0000007","errorSummary":"Not found: Resource not found: 0oa1b2c3d4e5f6g7h8i9 (AppInstance)","errorCauses":[]}`,
				Forbidden:     `{"errorCode":"E0000006","errorSummary":"You do not have permission to perform the requested action $SECRET","errorCauses":[]}`,
				TooMany:       `{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests.","errorCauses":[]}`,
				ForbiddenHint: "okta.apps.manage",
			})
		})
	}
}

func TestOnlyOktaIdsResolve(t *testing.T) {
	r := newRevoker(t, "https://acme.okta.com")
	for id, want := range map[string]bool{"0oa1b2c3d4e5f6g7h8i9": true, "api_token:00T1b2c3d4e5f6g7h8i9": true, "api_token:x": false, "crm sync": false} {
		if _, ok := r.Resolve(id); ok != want {
			t.Errorf("Resolve(%q) = %v, want %v", id, ok, want)
		}
	}
}
