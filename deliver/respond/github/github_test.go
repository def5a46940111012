package github

import (
	"testing"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/deliver/respond/respondtest"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

func newRevoker(t *testing.T, base string) respond.Revoker {
	r, err := New(Config{Org: "acme", Token: secret.New("ghs_installation_secret"), BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// GitHub's error bodies (https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api).
func TestPATRevokeAgainstGitHub(t *testing.T) {
	respondtest.Run(t, respondtest.Suite{
		New: newRevoker, Secret: "ghs_installation_secret",
		Target: respond.Target{Source: Source, IntegrationID: "pat:25381", VendorID: "25381"},
		Method: "POST", Path: "/orgs/acme/personal-access-tokens/25381", Auth: "Bearer ghs_installation_secret", Body: `{"action":"revoke"}`,
		NotFound:      `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/orgs/personal-access-tokens#update-the-access-a-fine-grained-personal-access-token-has-to-organization-resources"}`,
		Forbidden:     `{"message":"Resource not accessible by integration $SECRET","documentation_url":"https://docs.github.com/rest"}`,
		TooMany:       `{"message":"You have exceeded a secondary rate limit."}`,
		ForbiddenHint: "Personal access tokens",
	})
}

func TestOnlyNumericPATsResolve(t *testing.T) {
	r := newRevoker(t, "https://api.github.com")
	for id, want := range map[string]bool{"pat:25381": true, "pat:hAbC123=": false, "github_app:crm-sync": false, "oauth_app:99": false} {
		if _, ok := r.Resolve(id); ok != want {
			t.Errorf("Resolve(%q) = %v, want %v", id, ok, want)
		}
	}
}
