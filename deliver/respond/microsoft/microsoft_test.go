package microsoft

import (
	"testing"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/deliver/respond/respondtest"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

const appID = "4a1c2b3d-1111-2222-3333-444455556666"

func newRevoker(t *testing.T, base string) respond.Revoker {
	r, err := New(Config{AccessToken: secret.New("eyJ0eXAiOiJKV1Qi.graph-secret"), BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Graph's error bodies (https://learn.microsoft.com/en-us/graph/errors).
func TestServicePrincipalDisableAgainstGraph(t *testing.T) {
	for name, tc := range map[string]struct{ id, path string }{
		"by app id":    {appID, "/servicePrincipals(appId='" + appID + "')"},
		"by object id": {"sp:" + appID, "/servicePrincipals/" + appID},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRevoker(t, "https://x")
			vid, ok := r.Resolve(tc.id)
			if !ok {
				t.Fatalf("%s not resolved", tc.id)
			}
			respondtest.Run(t, respondtest.Suite{
				New: newRevoker, Secret: "eyJ0eXAiOiJKV1Qi.graph-secret",
				Target: respond.Target{Source: Source, IntegrationID: tc.id, VendorID: vid},
				Method: "PATCH", Path: tc.path, Auth: "Bearer eyJ0eXAiOiJKV1Qi.graph-secret", Body: `{"accountEnabled": false}`,
				NotFound:      `{"error":{"code":"Request_ResourceNotFound","message":"Resource '` + appID + `' does not exist or one of its queried reference-property objects are not present."}}`,
				Forbidden:     `{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation. $SECRET"}}`,
				TooMany:       `{"error":{"code":"TooManyRequests","message":"Too many requests"}}`,
				ForbiddenHint: "Application.ReadWrite.All",
			})
		})
	}
}

func TestOnlyGraphIdsResolve(t *testing.T) {
	r := newRevoker(t, "https://x")
	for id, want := range map[string]bool{appID: true, "sp:" + appID: true, "crm-sync": false, "sp:nope": false, "": false} {
		if _, ok := r.Resolve(id); ok != want {
			t.Errorf("Resolve(%q) = %v, want %v", id, ok, want)
		}
	}
}
