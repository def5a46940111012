package sigma_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch/detect/sigma"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// oktaEvent is a System Log LogEvent
// (developer.okta.com/docs/reference/api/system-log/#logevent-object) by a
// person, every documented property present and null where Okta writes
// null, with set's dotted paths replaced.
func oktaEvent(eventType, displayMessage string, set map[string]any) string {
	base := `{"actor":{"id":"00u1a2b3c4d5e6f7g697","type":"User","alternateId":"jdoe@example.com","displayName":"Jane Doe","detailEntry":null},
	"client":{"userAgent":{"rawUserAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15","os":"Mac OS X","browser":"SAFARI"},"zone":"null","device":"Computer","id":null,"ipAddress":"198.51.100.20","geographicalContext":{"city":"Berlin","state":"Land Berlin","country":"Germany","postalCode":"10115","geolocation":{"lat":52.52,"lon":13.405}}},
	"device":null,
	"authenticationContext":{"authenticationProvider":null,"credentialProvider":null,"credentialType":null,"issuer":null,"interface":null,"authenticationStep":0,"externalSessionId":"102x9aB3cD4eF5gH6iJ7kL8mN"},
	"displayMessage":"","eventType":"","outcome":{"result":"SUCCESS","reason":null},
	"published":"2026-10-27T03:13:00.000Z",
	"securityContext":{"asNumber":3320,"asOrg":"deutsche telekom ag","isp":"deutsche telekom ag","domain":"t-ipconnect.de","isProxy":false},
	"severity":"INFO",
	"debugContext":{"debugData":{"requestId":"ZRm1f3ZkV8xQ6nKx2Ew8BwAAB4A","requestUri":"/api/v1/users","threatSuspected":"false","url":"/api/v1/users?"}},
	"legacyEventType":null,
	"transaction":{"type":"WEB","id":"ZRm1f3ZkV8xQ6nKx2Ew8BwAAB4A","detail":{}},
	"uuid":"be613054-7c21-11f0-9a8b-1b2c3d4e5f60","version":"0",
	"request":{"ipChain":[{"ip":"198.51.100.20","geographicalContext":{"city":"Berlin","state":"Land Berlin","country":"Germany","postalCode":"10115","geolocation":{"lat":52.52,"lon":13.405}},"version":"V4","source":null}]},
	"target":[]}`
	set = with(set, map[string]any{"eventType": eventType, "displayMessage": displayMessage})
	return edit(base, set)
}

// githubEvent is an organization audit-log entry as the REST API and the
// stream write it (docs.github.com … audit-log-events-for-your-organization),
// made with a personal access token (the connector keeps only records that
// involve a non-human credential), with set's dotted paths replaced.
func githubEvent(action, operationType string, set map[string]any) string {
	base := `{"@timestamp":1761531660456,"_document_id":"NDU2Nzg5MDEyMzQ1Njc4OTAx","action":"","actor":"release-bot-user","actor_id":88231,
	"actor_ip":"203.0.113.10","actor_is_bot":false,"actor_location":{"country_code":"DE"},"business":"example-corp","business_id":9912,
	"created_at":1761531660456,"hashed_token":"9sQ1cW0m1Z2o3Nq6f0aWc7dYtY1r5pL8kXy2vB4nM0E=","operation_type":"","org":"example","org_id":7701,
	"programmatic_access_type":"Personal access token (classic)","repo":"example/payments","repo_id":5512,
	"request_id":"E1F2:3A4B:5C6D7E:8F9A0B:671E9B33","token_id":4410332,"token_scopes":"repo,admin:org,workflow",
	"user_agent":"python-requests/2.31.0","user_programmatic_access_name":"release"}`
	set = with(set, map[string]any{"action": action, "operation_type": operationType})
	return edit(base, set)
}

// entraAudit is a Graph directoryAudit
// (learn.microsoft.com/graph/api/resources/directoryaudit) of category
// ApplicationManagement, the list tokenwatch reads, by an admin on the
// application "Pipeline CRM Sync", with set's dotted paths replaced.
func entraAudit(activity, operationType string, set map[string]any) string {
	base := `{"id":"Directory_55cc66dd-0a1b-4c2d-9e3f-4a5b6c7d8e9f_XYZ98_11223344","category":"ApplicationManagement",
	"correlationId":"55cc66dd-0a1b-4c2d-9e3f-4a5b6c7d8e9f","result":"success","resultReason":"","activityDisplayName":"",
	"activityDateTime":"2026-10-27T02:45:10.500Z","loggedByService":"Core Directory","operationType":"",
	"initiatedBy":{"app":null,"user":{"id":"00adad00-0000-4111-8222-333344445555","displayName":null,"userPrincipalName":"it-admin@example.com","ipAddress":"198.51.100.20"}},
	"targetResources":[{"id":"a7b8c9d0-1111-4222-8333-444455556666","displayName":"Pipeline CRM Sync","type":"ServicePrincipal","userPrincipalName":null,"groupType":null,
	"modifiedProperties":[{"displayName":"TargetId.ServicePrincipalNames","oldValue":null,"newValue":"\"6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b\""}]}],
	"additionalDetails":[{"key":"User-Agent","value":"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4)"},{"key":"AppId","value":"6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"}]}`
	set = with(set, map[string]any{"activityDisplayName": activity, "operationType": operationType})
	return edit(base, set)
}

func with(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range b {
		out[k] = v
	}
	for k, v := range a {
		out[k] = v
	}
	return out
}

// edit sets dotted paths (object keys; a number indexes a list) in a JSON
// record.
func edit(record string, set map[string]any) string {
	var m any
	if err := json.Unmarshal([]byte(record), &m); err != nil {
		panic(err)
	}
	for path, v := range set {
		keys := strings.Split(path, ".")
		cur := m
		for i, k := range keys {
			last := i == len(keys)-1
			switch c := cur.(type) {
			case map[string]any:
				if last {
					c[k] = v
				} else {
					if _, ok := c[k]; !ok {
						c[k] = map[string]any{}
					}
					cur = c[k]
				}
			case []any:
				var n int
				if err := json.Unmarshal([]byte(k), &n); err != nil || n >= len(c) {
					panic("edit: bad index " + path)
				}
				if last {
					c[n] = v
				} else {
					cur = c[n]
				}
			default:
				panic("edit: no object at " + path)
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// sigmahqCase is one SigmaHQ rule taken unchanged (testdata/sigmahq/NOTICE):
// a vendor record it must match, and a near miss: the same record with one
// field changed.
type sigmahqCase struct {
	file, source string
	hit          string
	missPath     string
	missValue    any
	// unread: tokenwatch's connector emits no event for the record (the
	// source reads only part of the vendor's log), so the rule matches the
	// record but never fires in tokenwatch; docs/rules.md lists why.
	unread bool
	// refused: unread, and the rule's condition requires an event type the
	// connector does not read, so it is a load error: what follows the
	// file name in it (the line, the construct, the values).
	refused string
}

var adminConsoleTarget = []any{
	map[string]any{"id": "0oa1adm1nc0ns0le697", "type": "AppInstance", "alternateId": "Okta Admin Console", "displayName": "Okta Admin Console", "detailEntry": nil},
	map[string]any{"id": "0pr1a2b3c4d5e6f7g697", "type": "Rule", "alternateId": "unknown", "displayName": "Admin App Policy", "detailEntry": nil},
}

const (
	behaviorsNew  = "{New Geo-Location=POSITIVE, New Device=NEGATIVE, New IP=POSITIVE, New State=NEGATIVE, New Country=POSITIVE, Velocity=NEGATIVE, New City=POSITIVE}"
	behaviorsNone = "{New Geo-Location=NEGATIVE, New Device=NEGATIVE, New IP=NEGATIVE, New State=NEGATIVE, New Country=NEGATIVE, Velocity=NEGATIVE, New City=NEGATIVE}"
	logOnlyNone   = `{"behaviors":{"New Geo-Location":"NEGATIVE","New Device":"NEGATIVE","New IP":"NEGATIVE","New State":"NEGATIVE","New Country":"NEGATIVE","Velocity":"NEGATIVE","New City":"NEGATIVE"},"risk":{"level":"LOW"}}`
)

var tokenTarget = []any{map[string]any{"id": "00Tz3e4f5g6h7i8j9697", "type": "Token", "alternateId": "unknown", "displayName": "ci-deploy", "detailEntry": nil}}

var sigmahqCases = []sigmahqCase{
	// Okta: read by tokenwatch (app.oauth2.*, system.api_token.*).
	{file: "okta_api_token_created.yml", source: "okta",
		hit:      oktaEvent("system.api_token.create", "Create API token", map[string]any{"target": tokenTarget}),
		missPath: "eventType", missValue: "system.api_token.revoke"},
	{file: "okta_api_token_revoked.yml", source: "okta",
		hit:      oktaEvent("system.api_token.revoke", "Revoke API token", map[string]any{"target": tokenTarget}),
		missPath: "eventType", missValue: "system.api_token.create"},
	{file: "okta_admin_activity_from_proxy_query.yml", source: "okta",
		hit: oktaEvent("system.api_token.create", "Create API token", map[string]any{"target": tokenTarget,
			"securityContext.isProxy": true, "debugContext.debugData.requestUri": "/admin/access/api/tokens", "debugContext.debugData.url": "/admin/access/api/tokens?expand=user"}),
		missPath: "securityContext.isProxy", missValue: false},
	// Okta: event types tokenwatch's connector does not read. A rule whose
	// condition requires such an eventtype is refused at load; the three
	// that name none (legacyeventtype, displaymessage) load and never fire.
	{file: "okta_admin_role_assigned_to_user_or_group.yml", source: "okta",
		refused:  "20: eventtype: okta rule watches eventtype group.privilege.grant (line 20), user.account.privilege.grant (line 21),",
		hit:      oktaEvent("user.account.privilege.grant", "Grant user privilege", nil),
		missPath: "eventType", missValue: "user.account.privilege.revoke"},
	{file: "okta_admin_role_assignment_created.yml", source: "okta",
		refused:  "17: eventtype: okta rule watches eventtype iam.resourceset.bindings.add,",
		hit:      oktaEvent("iam.resourceset.bindings.add", "Add bindings to resource set", nil),
		missPath: "eventType", missValue: "iam.resourceset.bindings.delete"},
	{file: "okta_application_modified_or_deleted.yml", source: "okta",
		refused:  "19: eventtype: okta rule watches eventtype application.lifecycle.update (line 19), application.lifecycle.delete (line 20),",
		hit:      oktaEvent("application.lifecycle.update", "Update application", nil),
		missPath: "eventType", missValue: "application.lifecycle.create"},
	{file: "okta_application_sign_on_policy_modified_or_deleted.yml", source: "okta",
		refused:  "19: eventtype: okta rule watches eventtype application.policy.sign_on.update (line 19), application.policy.sign_on.rule.delete (line 20),",
		hit:      oktaEvent("application.policy.sign_on.update", "Update sign on policy", nil),
		missPath: "eventType", missValue: "application.policy.sign_on.rule.create"},
	{file: "okta_fastpass_phishing_detection.yml", source: "okta",
		refused: "21: eventtype: okta rule watches eventtype user.authentication.auth_via_mfa,",
		hit: oktaEvent("user.authentication.auth_via_mfa", "Authentication of user via MFA",
			map[string]any{"outcome": map[string]any{"result": "FAILURE", "reason": "FastPass declined phishing attempt"}}),
		missPath: "outcome.reason", missValue: "INVALID_CREDENTIALS"},
	{file: "okta_identity_provider_created.yml", source: "okta",
		refused:  "18: eventtype: okta rule watches eventtype system.idp.lifecycle.create,",
		hit:      oktaEvent("system.idp.lifecycle.create", "Create IdP", nil),
		missPath: "eventType", missValue: "system.idp.lifecycle.update"},
	{file: "okta_mfa_reset_or_deactivated.yml", source: "okta",
		refused:  "15: eventtype: okta rule watches eventtype user.mfa.factor.deactivate (line 15), user.mfa.factor.reset_all (line 16),",
		hit:      oktaEvent("user.mfa.factor.deactivate", "Reset factor for user", nil),
		missPath: "eventType", missValue: "user.mfa.factor.activate"},
	{file: "okta_network_zone_deactivated_or_deleted.yml", source: "okta",
		refused:  "16: eventtype: okta rule watches eventtype zone.deactivate (line 16), zone.delete (line 17),",
		hit:      oktaEvent("zone.deactivate", "Deactivate network zone", nil),
		missPath: "eventType", missValue: "zone.update"},
	{file: "okta_new_behaviours_admin_console.yml", source: "okta",
		refused: "19: eventtype: okta rule watches eventtype policy.evaluate_sign_on,",
		hit: oktaEvent("policy.evaluate_sign_on", "Evaluation of sign-on policy", map[string]any{"target": adminConsoleTarget,
			"debugContext.debugData.behaviors": behaviorsNew, "debugContext.debugData.logOnlySecurityData": logOnlyNone}),
		missPath: "debugContext.debugData.behaviors", missValue: behaviorsNone},
	{file: "okta_password_in_alternateid_field.yml", source: "okta", unread: true,
		hit: oktaEvent("user.session.start", "User login to Okta", map[string]any{"legacyEventType": "core.user_auth.login_failed",
			"actor":   map[string]any{"id": "unknown", "type": "User", "alternateId": "Winter2026!horse", "displayName": "unknown", "detailEntry": nil},
			"outcome": map[string]any{"result": "FAILURE", "reason": "VERIFICATION_ERROR"}}),
		missPath: "actor.alternateId", missValue: "jdoe@example.com"},
	{file: "okta_policy_modified_or_deleted.yml", source: "okta",
		refused:  "19: eventtype: okta rule watches eventtype policy.lifecycle.update (line 19), policy.lifecycle.delete (line 20),",
		hit:      oktaEvent("policy.lifecycle.update", "Update policy", nil),
		missPath: "eventType", missValue: "policy.lifecycle.create"},
	{file: "okta_policy_rule_modified_or_deleted.yml", source: "okta",
		refused:  "19: eventtype: okta rule watches eventtype policy.rule.update (line 19), policy.rule.delete (line 20),",
		hit:      oktaEvent("policy.rule.update", "Update policy rule", nil),
		missPath: "eventType", missValue: "policy.rule.add"},
	{file: "okta_security_threat_detected.yml", source: "okta",
		refused:  "16: eventtype: okta rule watches eventtype security.threat.detected,",
		hit:      oktaEvent("security.threat.detected", "Request from suspicious actor", nil),
		missPath: "eventType", missValue: "security.request.blocked"},
	{file: "okta_suspicious_activity_enduser_report.yml", source: "okta",
		refused:  "18: eventtype: okta rule watches eventtype user.account.report_suspicious_activity_by_enduser,",
		hit:      oktaEvent("user.account.report_suspicious_activity_by_enduser", "User report suspicious activity", nil),
		missPath: "eventType", missValue: "user.account.update_profile"},
	{file: "okta_unauthorized_access_to_app.yml", source: "okta", unread: true,
		hit:      oktaEvent("app.generic.unauth_app_access_attempt", "User attempted unauthorized access to app", map[string]any{"outcome": map[string]any{"result": "FAILURE", "reason": nil}}),
		missPath: "displayMessage", missValue: "User single sign on to app"},
	{file: "okta_user_account_locked_out.yml", source: "okta", unread: true,
		hit:      oktaEvent("user.account.lock", "Max sign in attempts exceeded", nil),
		missPath: "displayMessage", missValue: "Lock user account"},
	{file: "okta_user_created.yml", source: "okta",
		refused:  "16: eventtype: okta rule watches eventtype user.lifecycle.create,",
		hit:      oktaEvent("user.lifecycle.create", "Create okta user", nil),
		missPath: "eventType", missValue: "user.lifecycle.activate"},
	{file: "okta_user_session_start_via_anonymised_proxy.yml", source: "okta",
		refused:  "18: eventtype: okta rule watches eventtype user.session.start,",
		hit:      oktaEvent("user.session.start", "User login to Okta", map[string]any{"securityContext.isProxy": true}),
		missPath: "securityContext.isProxy", missValue: false},

	// GitHub, each made with a personal access token.
	{file: "github_new_secret_created.yml", source: "github",
		hit:      githubEvent("repo.create_actions_secret", "create", nil),
		missPath: "action", missValue: "repo.update_actions_secret"},
	{file: "github_delete_action_invoked.yml", source: "github",
		hit:      githubEvent("repo.destroy", "remove", nil),
		missPath: "action", missValue: "repo.archived"},
	{file: "github_disable_high_risk_configuration.yml", source: "github",
		hit:      githubEvent("org.disable_two_factor_requirement", "modify", map[string]any{"repo": nil, "repo_id": nil}),
		missPath: "action", missValue: "org.enable_two_factor_requirement"},
	{file: "github_disabled_outdated_dependency_or_vulnerability.yml", source: "github",
		hit:      githubEvent("dependabot_alerts.disable", "modify", nil),
		missPath: "action", missValue: "dependabot_alerts.enable"},
	{file: "github_fork_private_repos_enabled_or_cleared.yml", source: "github",
		hit:      githubEvent("private_repository_forking.enable", "modify", nil),
		missPath: "action", missValue: "private_repository_forking.disable"},
	{file: "github_new_org_member.yml", source: "github",
		hit:      githubEvent("org.invite_member", "create", map[string]any{"repo": nil, "repo_id": nil, "user": "outsider-42"}),
		missPath: "action", missValue: "org.remove_member"},
	// GitHub documents no operation_type per action; the record carries the
	// one the rule names.
	{file: "github_outside_collaborator_detected.yml", source: "github",
		hit:      githubEvent("org.remove_outside_collaborator", "authentication", map[string]any{"user": "contractor-7"}),
		missPath: "operation_type", missValue: "remove"},
	{file: "github_pages_site_changed_to_public.yml", source: "github",
		hit:      githubEvent("repo.pages_public", "modify", nil),
		missPath: "action", missValue: "repo.pages_private"},
	{file: "github_push_protection_bypass_detected.yml", source: "github",
		hit:      githubEvent("secret_scanning_push_protection.bypass", "create", nil),
		missPath: "action", missValue: "secret_scanning_push_protection.dismiss"},
	{file: "github_push_protection_disabled.yml", source: "github",
		hit:      githubEvent("org.secret_scanning_push_protection_disable", "modify", map[string]any{"repo": nil, "repo_id": nil}),
		missPath: "action", missValue: "org.secret_scanning_push_protection_enable"},
	{file: "github_repo_or_org_transferred.yml", source: "github",
		hit:      githubEvent("repo.transfer_outgoing", "transfer", nil),
		missPath: "action", missValue: "repo.transfer_start"},
	{file: "github_repository_archive_status_changed.yml", source: "github",
		hit:      githubEvent("repo.archived", "modify", nil),
		missPath: "action", missValue: "repo.rename"},
	{file: "github_secret_scanning_feature_disabled.yml", source: "github",
		hit:      githubEvent("repository_secret_scanning.disable", "modify", nil),
		missPath: "action", missValue: "repository_secret_scanning.enable"},
	{file: "github_self_hosted_runner_changes_detected.yml", source: "github",
		hit:      githubEvent("repo.register_self_hosted_runner", "create", nil),
		missPath: "action", missValue: "repo.self_hosted_runner_online"},
	{file: "github_ssh_certificate_config_changed.yml", source: "github",
		hit:      githubEvent("ssh_certificate_authority.create", "create", map[string]any{"repo": nil, "repo_id": nil}),
		missPath: "action", missValue: "ssh_certificate_authority.destroy"},
	// Microsoft: Graph directoryAudits, category ApplicationManagement.
	{file: "azure_app_delegated_permissions_all_users.yml", source: "microsoft",
		hit: entraAudit("Add delegated permission grant", "Assign", map[string]any{"targetResources": []any{
			map[string]any{"id": "9e8d7c6b-aaaa-4bbb-8ccc-ddddeeeeffff", "displayName": "Microsoft Graph", "type": "ServicePrincipal", "modifiedProperties": []any{
				map[string]any{"displayName": "DelegatedPermissionGrant.Scope", "oldValue": nil, "newValue": "\" Mail.ReadWrite Files.ReadWrite.All offline_access User.Read\""},
				map[string]any{"displayName": "DelegatedPermissionGrant.ConsentType", "oldValue": nil, "newValue": "\"AllPrincipals\""},
				map[string]any{"displayName": "ServicePrincipal.ObjectID", "oldValue": nil, "newValue": "\"a7b8c9d0-1111-4222-8333-444455556666\""}}}}}),
		missPath: "activityDisplayName", missValue: "Remove delegated permission grant"},
	{file: "azure_ad_sp_credentials_added.yml", source: "microsoft",
		hit:      entraAudit("Add service principal credentials", "Update", nil),
		missPath: "activityDisplayName", missValue: "Remove service principal credentials"},
	{file: "azure_service_principal_removed.yml", source: "microsoft",
		hit:      entraAudit("Remove service principal", "Delete", nil),
		missPath: "activityDisplayName", missValue: "Update service principal"},
	{file: "azure_service_principal_created.yml", source: "microsoft",
		hit:      entraAudit("Add service principal", "Add", nil),
		missPath: "activityDisplayName", missValue: "Update service principal"},
	{file: "azure_application_deleted.yml", source: "microsoft",
		hit:      entraAudit("Delete application", "Delete", map[string]any{"targetResources.0.type": "Application"}),
		missPath: "activityDisplayName", missValue: "Restore application"},
	{file: "azure_owner_removed_from_application_or_service_principal.yml", source: "microsoft",
		hit:      entraAudit("Remove owner from service principal", "Unassign", nil),
		missPath: "activityDisplayName", missValue: "Add owner to service principal"},
	{file: "azure_owner_added_to_service_principal.yml", source: "microsoft",
		hit:      entraAudit("Add owner to service principal", "Assign", nil),
		missPath: "activityDisplayName", missValue: "Remove owner from service principal"},
	{file: "azure_ad_service_principal_owner_added.yml", source: "microsoft",
		hit:      entraAudit("Add owner to service principal", "Assign", map[string]any{"initiatedBy.user.userPrincipalName": "helpdesk-7@example.com"}),
		missPath: "activityDisplayName", missValue: "Add owner to application"},
}

// TestSigmaHQRules loads each SigmaHQ rule stored unchanged in
// testdata/sigmahq and replays a vendor record written to match it and a near
// miss through tokenwatch's connector for the rule's source, then the rule;
// a rule whose eventtype the connector does not read must be refused, and
// the connector must still emit no event for its record.
func TestSigmaHQRules(t *testing.T) {
	fire, refused, unread := 0, 0, 0
	for _, c := range sigmahqCases {
		switch {
		case c.refused != "":
			refused++
		case c.unread:
			unread++
		default:
			fire++
		}
	}
	// docs/rules.md's SigmaHQ table counts the same.
	if fire != 26 || refused != 15 || unread != 3 {
		t.Errorf("%d fire, %d refused, %d unread: update docs/rules.md", fire, refused, unread)
	}
	for _, c := range sigmahqCases {
		t.Run(strings.TrimSuffix(c.file, ".yml"), func(t *testing.T) {
			rs, err := sigma.LoadFile("testdata/sigmahq/" + c.file)
			if c.refused != "" {
				want := "sigma rule testdata/sigmahq/" + c.file + ":" + c.refused +
					" which tokenwatch's Okta connector does not read, so the rule could never fire: it reads app.oauth2.* and system.api_token.* ("
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
				// The refusal holds while the connector still emits no event.
				if evs := normalize(t, c.source, c.hit); len(evs) != 0 {
					t.Fatalf("the %s connector now reads this record (%d events): update detect/sigma's typesRead and docs/rules.md", c.source, len(evs))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 || rs[0].Source != c.source {
				t.Fatalf("%d rules, source %q", len(rs), rs[0].Source)
			}
			r := rs[0]
			// A rule that may never fire says so at load (detectors, rule
			// test and config check print it); an Okta rule that names an
			// eventtype read has nothing to say.
			// okta_admin_activity_from_proxy_query names none either, and
			// fires on what the connector reads.
			wantNote := c.unread || c.file == "okta_admin_activity_from_proxy_query.yml"
			if note := "names no eventtype: it runs on every okta event tokenwatch reads (app.oauth2.* and system.api_token.*"; wantNote != strings.Contains(r.TypeNote, note) {
				t.Errorf("TypeNote = %q, want it (%v) to say %q", r.TypeNote, wantNote, note)
			}
			if !wantNote && r.TypeNote != "" {
				t.Errorf("TypeNote = %q, want none", r.TypeNote)
			}
			miss := edit(c.hit, map[string]any{c.missPath: c.missValue})
			if miss == edit(c.hit, nil) {
				t.Fatalf("near miss %s=%v changes nothing", c.missPath, c.missValue)
			}
			for _, rec := range []struct {
				raw  string
				want bool
			}{{c.hit, true}, {miss, false}} {
				evs := normalize(t, c.source, rec.raw)
				if c.unread {
					if len(evs) != 0 {
						t.Fatalf("the %s connector now reads this record (%d events): drop unread and docs/rules.md's entry", c.source, len(evs))
					}
					// What the rule would do if the connector read it.
					evs = []schemas.Event{{EventID: "e1", Source: c.source, Raw: json.RawMessage(rec.raw)}}
				} else if len(evs) == 0 {
					t.Fatalf("the %s connector emits no event for %s", c.source, rec.raw)
				}
				got := r.Match(&evs[0]) != nil
				if got != rec.want {
					t.Errorf("match = %v, want %v on %s", got, rec.want, rec.raw)
				}
				other := evs[0]
				other.Source = "slack"
				if r.Match(&other) != nil {
					t.Errorf("matched another source's event")
				}
			}
		})
	}
}

func normalize(t *testing.T, source, raw string) []schemas.Event {
	t.Helper()
	n, err := ingest.NewNormalizer(source, "acme")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := n.Normalize(json.RawMessage(raw))
	if err != nil {
		t.Fatalf("%s connector: %v on %s", source, err, raw)
	}
	return evs
}

// TestSigmaHQRulesThatDoNotRun: the SigmaHQ rules of tokenwatch's sources
// that cannot run here, stored unchanged in testdata/sigmahq/unsupported, fail
// as docs/rules.md says: a load error naming the construct, or a rule that
// loads but names fields no record of the source has.
func TestSigmaHQRulesThatDoNotRun(t *testing.T) {
	for _, c := range []struct{ file, loadErr string }{
		{"okta_mfa_fatigue.yml", "okta_mfa_fatigue.yml:22: false_positives: unknown rule key"},
		{"github_excessive_repository_clones.yml", "github_excessive_repository_clones.yml:18: timeframe: timeframe is Sigma 1.x's aggregation window"},
	} {
		_, err := sigma.LoadFile("testdata/sigmahq/unsupported/" + c.file)
		if err == nil || !strings.Contains(err.Error(), c.loadErr) {
			t.Errorf("%s: err = %v, want %q", c.file, err, c.loadErr)
		}
	}
	// They load, but no record of the source holds what they name.
	for _, c := range []struct{ file, source, record string }{
		// okta.event_type, okta.debugContext…: Elastic's Okta integration's
		// field names; the System Log record spells eventType, debugContext.
		{"okta_impossible_travel_detected.yml", "okta", oktaEvent("user.session.start", "User login to Okta",
			map[string]any{"debugContext.debugData.behaviors": "{New Geo-Location=POSITIVE, Velocity=POSITIVE}"})},
		// action archived / unarchived: GitHub's actions are repo.archived and
		// repo.unarchived (the rule's successor, github_repository_archive_status_changed.yml).
		{"github_repository_actions.yml", "github", githubEvent("repo.archived", "modify", nil)},
		// properties.message: a field of no Entra audit record, Graph's or
		// Azure Monitor's export (whose activity is operationName and
		// properties.activityDisplayName).
		{"azure_app_credential_added.yml", "microsoft", entraAudit("Update application – Certificates and secrets management", "Update", nil)},
		{"azure_service_principal_credential_added.yml", "microsoft", entraAudit("Add service principal credentials", "Update", nil)},
		{"azure_app_privileged_permissions.yml", "microsoft", entraAudit("Add app role assignment to service principal", "Assign", nil)},
		{"azure_app_owner_added.yml", "microsoft", entraAudit("Add owner to application", "Assign", nil)},
		// ConsentContext.IsAdminConsent is a modifiedProperties entry's
		// displayName (a name/value list), not a path in the record.
		{"azure_app_end_user_consent.yml", "microsoft", entraAudit("Consent to application", "Assign", map[string]any{
			"targetResources.0.modifiedProperties": []any{map[string]any{"displayName": "ConsentContext.IsAdminConsent", "oldValue": nil, "newValue": "\"False\""}}})},
		// TargetResources|contains, TargetResources.modifiedProperties|contains:
		// a substring of the serialized array (Log Analytics' dynamic column);
		// in the record they are lists of objects, and the engine compares
		// values, not objects.
		{"azure_ad_oauth_consent_high_risk_permission.yml", "microsoft", entraAudit("Consent to application", "Assign", map[string]any{
			"targetResources.0.modifiedProperties": []any{map[string]any{"displayName": "ConsentAction.Permissions", "oldValue": nil,
				"newValue": "\"[] => [[Id: x, ClientId: 6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b, PrincipalId: , ResourceId: 9e8d7c6b-aaaa-4bbb-8ccc-ddddeeeeffff, ConsentType: AllPrincipals, Scope: Mail.ReadWrite offline_access, CreatedDateTime: , LastModifiedDateTime ]]; \""}}})},
		{"azure_app_federated_identity_credential_added.yml", "microsoft", entraAudit("Update application", "Update", map[string]any{
			"targetResources.0.type": "Application",
			"targetResources.0.modifiedProperties": []any{map[string]any{"displayName": "FederatedIdentityCredentials", "oldValue": "[]",
				"newValue": "[{\"Name\":\"gh-deploy\",\"Issuer\":\"https://token.actions.githubusercontent.com\",\"Subject\":\"repo:example/payments:ref:refs/heads/main\"}]"}}})},
	} {
		rs, err := sigma.LoadFile("testdata/sigmahq/unsupported/" + c.file)
		if err != nil {
			t.Fatal(err)
		}
		ev := schemas.Event{EventID: "e1", Source: c.source, Raw: json.RawMessage(c.record)}
		if rs[0].Match(&ev) != nil {
			t.Errorf("%s matched %s", c.file, c.record)
		}
	}
}
