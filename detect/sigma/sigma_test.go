package sigma

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch/schemas"
)

func ev(source, raw string) *schemas.Event {
	return &schemas.Event{EventID: "e1", Source: source, Raw: json.RawMessage(raw)}
}

func TestRules(t *testing.T) {
	cases := []struct {
		file, source, hit, miss string
	}{
		{"rules/okta_oauth_admin_scope_from_proxy.yml", "okta",
			`{"eventType":"app.oauth2.as.token.grant.access_token","outcome":{"result":"SUCCESS"},"securityContext":{"isProxy":true},"debugContext":{"debugData":{"grantedScopes":"okta.users.manage okta.apps.read"}}}`,
			`{"eventType":"app.oauth2.as.token.grant.access_token","outcome":{"result":"SUCCESS"},"securityContext":{"isProxy":true},"debugContext":{"debugData":{"grantedScopes":"okta.users.read"}}}`},
		{"rules/github_pat_creates_deploy_key.yml", "github",
			`{"action":"public_key.create","programmatic_access_type":"Personal access token (classic)"}`,
			`{"action":"public_key.create","programmatic_access_type":"GitHub App server-to-server token"}`},
	}
	for _, c := range cases {
		rs, err := LoadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		r := rs[0]
		if r.Match(ev(c.source, c.hit)) == nil {
			t.Errorf("%s: no match on %s", c.file, c.hit)
		}
		if r.Match(ev(c.source, c.miss)) != nil {
			t.Errorf("%s: matched near miss %s", c.file, c.miss)
		}
		if r.Match(ev("slack", c.hit)) != nil {
			t.Errorf("%s: matched another source", c.file)
		}
	}
	if _, err := ShippedRules(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrors(t *testing.T) {
	base := "title: t\nlogsource: {product: okta}\ndetection:\n  sel:\n    eventtype|%s: x\n  condition: %s\n"
	for _, c := range []struct{ mod, cond, want string }{
		{"base64", "sel", "modifier |base64"},
		{"contains", "sel | count() > 5", "aggregation"},
		{"contains", "sel near other", "near"},
		{"contains", "nosuch", "no selection"},
	} {
		_, err := Parse("r.yml", []byte(strings.Replace(strings.Replace(base, "%s", c.mod, 1), "%s", c.cond, 1)))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "r.yml:") {
			t.Errorf("%s/%s: err = %v", c.mod, c.cond, err)
		}
	}
}

// TestLogsourceOfALogNotRead: a product naming several logs loads only for
// the logs tokenwatch reads; a rule for another (Google Cloud audit, Azure
// activity, the Workspace admin log, M365's Management Activity API) is a
// load error, not a rule that never fires.
func TestLogsourceOfALogNotRead(t *testing.T) {
	for ls, ok := range map[string]bool{
		"{product: gcp, service: google_workspace.token}": true,
		"{product: gcp, service: google_workspace.admin}": false,
		"{product: gcp, service: gcp.audit}":              false,
		"{product: gcp}":                                  false,
		"{product: azure, service: signinlogs}":           true,
		"{product: azure, service: auditlogs}":            true,
		"{product: azure, service: activitylogs}":         false,
		"{product: m365, service: exchange}":              false,
		"{product: okta, service: okta}":                  true,
		"{product: github, service: audit}":               true,
	} {
		_, err := Parse("r.yml", []byte("title: t\nlogsource: "+ls+"\ndetection:\n  sel:\n    eventtype: app.oauth2.x\n  condition: sel\n"))
		if ok && err != nil {
			t.Errorf("%s: %v", ls, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "r.yml:2: logsource:") || !strings.Contains(err.Error(), "does not read")) {
			t.Errorf("%s: err = %v, want a load error at the logsource", ls, err)
		}
	}
}

func TestMetaMapsTagsAndDefaultsStatus(t *testing.T) {
	r, err := Parse("r.yml", []byte("title: t\nlogsource: {product: okta}\ntags: [attack.credential-access, attack.T1550.001, attack.t1078, attack.g0016]\n"+
		"falsepositives: [a vpn]\nreferences: [https://x]\nrunbook: revoke it\ndetection:\n  sel:\n    eventtype: app.oauth2.x\n  condition: sel\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := r.Meta()
	if strings.Join(m.Techniques, ",") != "T1550.001,T1078" || m.Status != "experimental" ||
		len(m.FalsePositives) != 1 || len(m.References) != 1 || m.Runbook != "revoke it" {
		t.Fatalf("meta %+v", m)
	}
}

// TestRawAliases: a rule's field name reads another field of the same
// source's raw record (RawAliases) only when the record lacks the rule's own.
func TestRawAliases(t *testing.T) {
	for _, c := range []struct {
		source, logsource, sel string
		records                map[string]bool
	}{
		{"github", "{product: github}", "operation: remove", map[string]bool{
			`{"action":"repo.destroy","operation_type":"remove"}`:                      true,
			`{"action":"repo.destroy","operation_type":"modify"}`:                      false,
			`{"action":"repo.destroy","operation":"remove","operation_type":"modify"}`: true, // the rule's own name first
			`{"action":"repo.destroy"}`:                                                false,
		}},
		{"microsoft", "{product: azure, service: auditlogs}", "OperationName: Remove service principal", map[string]bool{
			`{"category":"ApplicationManagement","activityDisplayName":"Remove service principal"}`:                        true,
			`{"category":"ApplicationManagement","activityDisplayName":"Add service principal"}`:                           false,
			`{"operationName":"Add service principal","activityDisplayName":"Remove service principal"}`:                   false, // the rule's own name first
			`{"operationName":"Remove service principal","properties":{"activityDisplayName":"Remove service principal"}}`: true,
		}},
	} {
		r, err := Parse("r.yml", []byte("title: t\nlogsource: "+c.logsource+"\ndetection:\n  sel:\n    "+c.sel+"\n  condition: sel\n"))
		if err != nil {
			t.Fatal(err)
		}
		for raw, want := range c.records {
			if got := r.Match(ev(c.source, raw)) != nil; got != want {
				t.Errorf("%s: match = %v, want %v", raw, got, want)
			}
			other := ev("okta", raw)
			if c.source != "okta" && r.Match(other) != nil {
				t.Errorf("%s: matched an okta event", raw)
			}
		}
	}
}
