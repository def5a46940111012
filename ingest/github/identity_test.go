package github

import (
	"testing"

	"github.com/tokenwatch/tokenwatch/ingest/ingesttest"
)

// TestIdentityIsStable: one app or token, one credential → one integration id
// and one credential id, whatever optional fields a record carries.
func TestIdentityIsStable(t *testing.T) {
	groups := []struct {
		name, integration, credential string
		records                       []string
	}{
		{"an installation token, with and without token_id, integration and actor_is_bot", "github_app:crm-sync", "aW5zdA==", []string{
			`{"@timestamp":1761531200000,"action":"git.clone","actor":"crm-sync[bot]","programmatic_access_type":"GitHub App server-to-server token","token_id":0,"hashed_token":"aW5zdA=="}`,
			`{"@timestamp":1761531200000,"action":"git.clone","actor":"crm-sync[bot]","programmatic_access_type":"GitHub App server-to-server token","token_id":null,"hashed_token":"aW5zdA=="}`,
			`{"@timestamp":1761531200000,"action":"git.push","actor":"crm-sync[bot]","actor_is_bot":true,"programmatic_access_type":"GitHub App server-to-server token","hashed_token":"aW5zdA=="}`,
			`{"@timestamp":1761531200000,"action":"repo.download_zip","actor":"crm-sync[bot]","integration":"crm-sync","programmatic_access_type":"GitHub App server-to-server token","oauth_application_id":0,"token_id":98123,"hashed_token":"aW5zdA=="}`,
			`{"@timestamp":1761531200000,"action":"api.request","actor":"crm-sync[bot]","integration":"CRM Sync","programmatic_access_type":"GitHub App server-to-server token","token_id":"98123","hashed_token":"aW5zdA==","request_method":"GET","route":"/repos/{owner}/{repo}","status_code":200}`,
		}},
		{"a classic PAT on API and git events, with and without token_id", "pat:cGF0", "cGF0", []string{
			`{"@timestamp":1761531200000,"action":"api.request","actor":"release-bot-user","programmatic_access_type":"Personal access token (classic)","token_id":4410,"hashed_token":"cGF0","request_method":"GET","route":"/user","status_code":200}`,
			`{"@timestamp":1761531200000,"action":"git.clone","actor":"release-bot-user","programmatic_access_type":"Personal access token (classic)","token_id":0,"hashed_token":"cGF0"}`,
			`{"@timestamp":1761531200000,"action":"git.push","actor":"release-bot-user","programmatic_access_type":"Personal access token (classic)","hashed_token":"cGF0","token_scopes":"repo"}`,
			`{"@timestamp":1761531200000,"action":"repo.create","actor":"release-bot-user","operation_type":"create","programmatic_access_type":"Personal access token (classic)","token_id":"4410","hashed_token":"cGF0","user_programmatic_access_name":"release"}`,
		}},
		{"an OAuth app token, with and without the app name", "oauth_app:4521", "b2F1dGg=", []string{
			`{"@timestamp":1761531200000,"action":"git.clone","actor":"alice","programmatic_access_type":"OAuth access token","oauth_application_id":4521,"token_id":0,"hashed_token":"b2F1dGg="}`,
			`{"@timestamp":1761531200000,"action":"api.request","actor":"alice","programmatic_access_type":"OAuth access token","oauth_application_id":"4521","oauth_application_name":"Pipeline CRM","token_id":991,"hashed_token":"b2F1dGg="}`,
		}},
	}
	n := NewNormalizer("default")
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, raw := range g.records {
				evs, err := n.Normalize([]byte(raw))
				if err != nil || len(evs) != 1 {
					t.Fatalf("%s: %d events, err %v", raw, len(evs), err)
				}
				if err := ingesttest.CheckEvent(evs[0], SourceName); err != nil {
					t.Error(err)
				}
				if got := evs[0].Integration.ID; got != g.integration {
					t.Errorf("%s: integration %q, want %q", raw, got, g.integration)
				}
				if got := evs[0].Credential.ID; got != g.credential {
					t.Errorf("%s: credential %q, want %q", raw, got, g.credential)
				}
			}
		})
	}
}
