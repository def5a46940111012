package googleworkspace

import (
	"testing"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/deliver/respond/respondtest"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

const client = "1234567890-abc.apps.googleusercontent.com"

// Error bodies as the Admin SDK documents its JSON errors
// (https://developers.google.com/workspace/admin/directory/v1/limits,
// https://cloud.google.com/apis/design/errors).
func TestTokensDeleteAgainstTheDirectoryAPI(t *testing.T) {
	respondtest.Run(t, respondtest.Suite{
		New: func(t *testing.T, base string) respond.Revoker {
			r, err := New(Config{AccessToken: secret.New("ya29.admin-token-xyz"), BaseURL: base})
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
		Secret: "ya29.admin-token-xyz",
		Target: respond.Target{Source: Source, IntegrationID: client, VendorID: client, Principal: "ana@acme.example"},
		Method: "DELETE", Path: "/admin/directory/v1/users/ana@acme.example/tokens/" + client, Auth: "Bearer ya29.admin-token-xyz",
		NotFound:      `{"error":{"code":404,"message":"Resource Not Found: clientId","errors":[{"reason":"notFound"}]}}`,
		Forbidden:     `{"error":{"code":403,"message":"Not Authorized to access this resource/api ($SECRET)","errors":[{"reason":"forbidden"}]}}`,
		TooMany:       `{"error":{"code":429,"message":"Quota exceeded","errors":[{"reason":"rateLimitExceeded"}]}}`,
		ForbiddenHint: "admin.directory.user.security",
	})
}

func TestDryRunLinesAreTheDocumentedURL(t *testing.T) {
	r, err := New(Config{AccessToken: secret.New("t")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		principal, want string
		err             bool
	}{
		{"ana@acme.example", "DELETE https://admin.googleapis.com/admin/directory/v1/users/ana@acme.example/tokens/" + client, false},
		{"", "", true},
	} {
		reqs, err := r.Plan(respond.Target{Source: Source, VendorID: client, Principal: tc.principal})
		if tc.err != (err != nil) || (err == nil && (len(reqs) != 1 || reqs[0].String() != tc.want)) {
			t.Errorf("%q: %v %v, want %q", tc.principal, reqs, err, tc.want)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("no access_token accepted")
	}
}
