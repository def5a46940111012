package microsoft

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/ingesttest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

//go:embed sample.yaml
var sampleYAML []byte

const (
	testClientSecret = "s3cr3t~value.from.entra"
	testAccessToken  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.graph.test"
)

func TestNormalize(t *testing.T) {
	type want struct {
		id, integration, appName, credType, credID, category, outcome, principal, principalType string
		action, resource, targetApp, ip, ua, time, tenant                                       string
		bytes                                                                                   int64
		scopes                                                                                  []string
	}
	cases := []struct {
		name    string
		raw     string
		want    []want
		wantErr string
	}{
		{
			name: "service principal signs in with a client secret",
			raw:  `{"id":"s1","createdDateTime":"2026-10-27T02:13:07.412Z","appId":"app-1","appDisplayName":"CRM Sync","ipAddress":"102.89.0.1","status":{"errorCode":0},"servicePrincipalId":"sp-1","resourceDisplayName":"Microsoft Graph","resourceId":"00000003-0000-0000-c000-000000000000","resourceTenantId":"tid","signInEventTypes":["servicePrincipal"],"servicePrincipalCredentialKeyId":"key-1","clientCredentialType":"clientSecret"}`,
			want: []want{{id: "s1", integration: "app-1", appName: "CRM Sync", credType: "client_secret", credID: "key-1", category: "access", outcome: "success",
				principal: "sp-1", principalType: "service_principal", action: "servicePrincipalSignIn", resource: "resource_app:00000003-0000-0000-c000-000000000000",
				targetApp: "Microsoft Graph", ip: "102.89.0.1", time: "2026-10-27T02:13:07.412Z", tenant: "acme"}},
		},
		{
			name: "a sign-in with errorCode is an auth failure",
			raw:  `{"id":"s2","createdDateTime":"2026-10-27T02:13:08Z","appId":"app-1","status":{"errorCode":7000215,"failureReason":"Invalid client secret provided."},"servicePrincipalId":"sp-1","clientCredentialType":"federatedIdentityCredential"}`,
			want: []want{{id: "s2", integration: "app-1", credType: "federated_credential", category: "auth_failure", outcome: "failure", principal: "sp-1",
				principalType: "service_principal", action: "servicePrincipalSignIn", time: "2026-10-27T02:13:08.000Z", tenant: "acme"}},
		},
		{
			name: "interactive consent: client from AppId, scopes from ConsentAction.Permissions",
			raw:  `{"id":"d1","activityDisplayName":"Consent to application","activityDateTime":"2026-10-27T02:15:30.001Z","result":"success","initiatedBy":{"user":{"userPrincipalName":"ops@example.com","ipAddress":"198.51.100.7"}},"targetResources":[{"id":"sp-2","displayName":"Dealflow","type":"ServicePrincipal","modifiedProperties":[{"displayName":"ConsentAction.Permissions","newValue":"\"[[Scope: Old.Read, x]] => [[Id: x, ConsentType: Principal, Scope:  Mail.Read offline_access, CreatedDateTime: ]]; \""}]}],"additionalDetails":[{"key":"User-Agent","value":"UA/1"},{"key":"AppId","value":"app-2"}]}`,
			want: []want{{id: "d1", integration: "app-2", appName: "Dealflow", category: "authorize", outcome: "success", principal: "ops@example.com", principalType: "user",
				action: "Consent to application", ip: "198.51.100.7", ua: "UA/1", time: "2026-10-27T02:15:30.001Z", tenant: "acme", scopes: []string{"Mail.Read", "offline_access"}}},
		},
		{
			name: "delegated grant: the first target is the resource API, the client is ServicePrincipal.ObjectID",
			raw:  `{"id":"d2","activityDisplayName":"Add delegated permission grant","activityDateTime":"2026-10-27T02:15:30.001Z","result":"success","initiatedBy":{"user":{"userPrincipalName":"ops@example.com"}},"targetResources":[{"id":"graph-sp","displayName":"Microsoft Graph","type":"ServicePrincipal","modifiedProperties":[{"displayName":"DelegatedPermissionGrant.Scope","newValue":"\" Mail.Read User.Read\""},{"displayName":"ServicePrincipal.ObjectID","newValue":"\"sp-2\""}]},{"id":"sp-2","displayName":"Dealflow","type":"ServicePrincipal"}]}`,
			want: []want{{id: "d2", integration: "sp:sp-2", appName: "Dealflow", category: "authorize", outcome: "success", principal: "ops@example.com", principalType: "user",
				action: "Add delegated permission grant", resource: "service_principal:graph-sp", targetApp: "Microsoft Graph", time: "2026-10-27T02:15:30.001Z", tenant: "acme",
				scopes: []string{"Mail.Read", "User.Read"}}},
		},
		{
			name: "app role assignment grants an application permission",
			raw:  `{"id":"d3","activityDisplayName":"Add app role assignment to service principal","activityDateTime":"2026-10-27T02:40:00Z","result":"failure","initiatedBy":{"app":{"servicePrincipalId":"sp-bot","displayName":"automation"}},"targetResources":[{"id":"graph-sp","displayName":"Microsoft Graph","type":"ServicePrincipal","modifiedProperties":[{"displayName":"AppRole.Value","newValue":"\"Mail.Read\""},{"displayName":"ServicePrincipal.AppId","newValue":"\"app-1\""},{"displayName":"ServicePrincipal.DisplayName","newValue":"\"CRM Sync\""}]}]}`,
			want: []want{{id: "d3", integration: "app-1", appName: "CRM Sync", category: "auth_failure", outcome: "failure", principal: "sp-bot", principalType: "service_principal",
				action: "Add app role assignment to service principal", resource: "service_principal:graph-sp", targetApp: "Microsoft Graph", time: "2026-10-27T02:40:00.000Z", tenant: "acme",
				scopes: []string{"Mail.Read"}}},
		},
		{
			name: "new app credential is admin, client from ServicePrincipalNames",
			raw:  `{"id":"d4","activityDisplayName":"Add service principal credentials","activityDateTime":"2026-10-27T02:45:10.5Z","result":"success","targetResources":[{"id":"sp-1","displayName":"CRM Sync","type":"ServicePrincipal","modifiedProperties":[{"displayName":"TargetId.ServicePrincipalNames","newValue":"\"6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b;api://crm\""}]}]}`,
			want: []want{{id: "d4", integration: "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b", appName: "CRM Sync", category: "admin", outcome: "success",
				action: "Add service principal credentials", time: "2026-10-27T02:45:10.500Z", tenant: "acme"}},
		},
		{
			name: "Graph activity log, Log Analytics PascalCase: app-only read with bytes",
			raw:  `{"TenantId":"tid","TimeGenerated":"2026-10-27T02:13:09.871Z","RequestId":"r1","RequestMethod":"GET","ResponseStatusCode":200,"IPAddress":"102.89.0.1","UserAgent":"python-requests/2.31.0","RequestUri":"https://graph.microsoft.com/v1.0/users/cfo@example.com/messages?$top=999","ResponseSizeBytes":5123340,"SignInActivityId":"sia-1","Roles":"Mail.Read User.Read.All","AppId":"app-1","UserId":"","ServicePrincipalId":"sp-1","Scopes":"","ClientAuthMethod":1}`,
			want: []want{{id: "r1", integration: "app-1", credType: "client_secret", credID: "sia-1", category: "access", outcome: "success", principal: "sp-1", principalType: "service_principal",
				action: "GET /v1.0/users/{id}/messages", resource: "graph_path:/v1.0/users/cfo@example.com/messages", targetApp: "Microsoft Graph", ip: "102.89.0.1", ua: "python-requests/2.31.0",
				time: "2026-10-27T02:13:09.871Z", tenant: "acme", bytes: 5123340, scopes: []string{"Mail.Read", "User.Read.All"}}},
		},
		{
			name: "Graph activity log, diagnostic-settings envelope: a delegated write denied",
			raw:  `{"time":"2026-10-27T02:16:02.123Z","category":"MicrosoftGraphActivityLogs","properties":{"requestId":"r2","requestMethod":"PATCH","responseStatusCode":"403","tenantId":"tid","appId":"app-2","userId":"user-1","scopes":"Mail.Read","clientAuthMethod":0,"requestUri":"https://graph.microsoft.com/v1.0/me/mailFolders/inbox/messageRules","ipAddress":"198.51.100.7","userAgent":"UA/2"}}`,
			want: []want{{id: "r2", integration: "app-2", credType: "public_client_token", category: "auth_failure", outcome: "failure", principal: "user-1", principalType: "user",
				action: "PATCH /v1.0/me/mailFolders/inbox/messageRules", resource: "graph_path:/v1.0/me/mailFolders/inbox/messageRules", targetApp: "Microsoft Graph", ip: "198.51.100.7", ua: "UA/2",
				time: "2026-10-27T02:16:02.123Z", tenant: "acme", scopes: []string{"Mail.Read"}}},
		},
		{
			name: "an Event Hubs batch yields one event per record",
			raw:  `{"records":[{"time":"2026-10-27T02:30:00Z","properties":{"requestId":"b1","requestMethod":"GET","responseStatusCode":200,"appId":"app-3","servicePrincipalId":"sp-3","requestUri":"https://graph.microsoft.com/v1.0/sites"}},{"time":"2026-10-27T02:30:01Z","properties":{"requestId":"b2","requestMethod":"POST","responseStatusCode":201,"appId":"app-3","servicePrincipalId":"sp-3","requestUri":"https://graph.microsoft.com/v1.0/sites"}}]}`,
			want: []want{
				{id: "b1", integration: "app-3", credType: "oauth_token", category: "access", outcome: "success", principal: "sp-3", principalType: "service_principal",
					action: "GET /v1.0/sites", resource: "graph_path:/v1.0/sites", targetApp: "Microsoft Graph", time: "2026-10-27T02:30:00.000Z", tenant: "acme"},
				{id: "b2", integration: "app-3", credType: "oauth_token", category: "modify", outcome: "success", principal: "sp-3", principalType: "service_principal",
					action: "POST /v1.0/sites", resource: "graph_path:/v1.0/sites", targetApp: "Microsoft Graph", time: "2026-10-27T02:30:01.000Z", tenant: "acme"},
			},
		},
		{
			name: "removing a grant reads the client and scopes from the old values",
			raw:  `{"id":"d5","activityDisplayName":"Remove delegated permission grant","activityDateTime":"2026-10-27T03:05:00Z","result":"success","targetResources":[{"id":"graph-sp","displayName":"Microsoft Graph","type":"ServicePrincipal","modifiedProperties":[{"displayName":"DelegatedPermissionGrant.Scope","oldValue":"\" Mail.Read\"","newValue":null},{"displayName":"ServicePrincipal.ObjectID","oldValue":"\"sp-2\"","newValue":null}]}]}`,
			want: []want{{id: "d5", integration: "sp:sp-2", category: "revoke", outcome: "success", action: "Remove delegated permission grant",
				resource: "service_principal:graph-sp", targetApp: "Microsoft Graph", time: "2026-10-27T03:05:00.000Z", tenant: "acme", scopes: []string{"Mail.Read"}}},
		},
		{name: "sign-in without time", raw: `{"id":"x","createdDateTime":"","appId":"a"}`, wantErr: "no createdDateTime"},
		{name: "sign-in without app", raw: `{"id":"x","createdDateTime":"2026-10-27T02:13:08Z","appId":"","servicePrincipalId":"sp"}`, wantErr: "signIn has no appId"},
		{name: "audit with a bad time", raw: `{"id":"x","activityDateTime":"27 Oct","activityDisplayName":"Consent to application"}`, wantErr: `activityDateTime "27 Oct"`},
		{name: "audit naming no client", raw: `{"id":"x","activityDateTime":"2026-10-27T02:13:08Z","activityDisplayName":"Consent to application","targetResources":[]}`, wantErr: "names no client application"},
		{name: "activity log without time", raw: `{"RequestId":"x","AppId":"a","RequestUri":"/v1.0/me"}`, wantErr: "no time"},
		{name: "activity log without app", raw: `{"time":"2026-10-27T02:13:08Z","properties":{"requestId":"x"}}`, wantErr: "no AppId"},
		{name: "unknown shape", raw: `{"eventType":"app.oauth2.as.token.grant","published":"2026-10-27T02:13:08Z"}`, wantErr: "unknown record shape"},
		{name: "batch with a bad record names its index", raw: `{"records":[{"time":"2026-10-27T02:30:00Z","properties":{"requestId":"b1","appId":"a"}},{"foo":1}]}`, wantErr: "records[1]"},
		{name: "not an object", raw: `[1,2]`, wantErr: "decode record"},
	}
	src := NewNormalizer("acme")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ingesttest.NormalizeCase(t, src, c.raw, c.want, c.wantErr, func(t *testing.T, ev schemas.Event) want {
				return want{id: ev.EventID, integration: ev.Integration.ID, appName: ev.Integration.Name, credType: ev.Credential.Type, credID: ev.Credential.ID,
					category: ev.Action.Category, outcome: ev.Outcome, principal: ev.Principal.ID, principalType: ev.Principal.Type, action: ev.Action.Name,
					targetApp: ev.TargetApp, ip: ev.Network.IP, ua: ev.Network.UserAgent, time: ingesttest.TimeString(ev), tenant: ev.Tenant, bytes: ev.Bytes, scopes: ev.Scopes,
					resource: ingesttest.ResourceString(ev)}
			})
		})
	}
}

func TestTenantLabelWinsAndRecordTenantIsTheFallback(t *testing.T) {
	raw := []byte(`{"id":"s1","createdDateTime":"2026-10-27T02:13:07Z","appId":"a","resourceTenantId":"tid"}`)
	for label, want := range map[string]string{"acme": "acme", "": "tid"} {
		evs, err := NewNormalizer(label).Normalize(raw)
		if err != nil || evs[0].Tenant != want {
			t.Errorf("label %q: tenant %q, err %v; want %q", label, evs[0].Tenant, err, want)
		}
	}
}

func TestNormalizeGolden(t *testing.T) { ingesttest.NormalizeGolden(t, NewNormalizer("acme")) }

func FuzzNormalize(f *testing.F) { ingesttest.FuzzNormalize(f, NewNormalizer("acme")) }

// fakeGraph reproduces the Entra token endpoint (client credentials) and the
// two Graph audit lists: bearer auth, $filter with "ge <time>" (inclusive),
// $top, newest first, @odata.nextLink with a $skiptoken, and one 429 with
// Retry-After on the first follow-up page of each list.
type fakeGraph struct {
	*ingesttest.FakeAPI
	signIns       [][]byte
	audits        [][]byte
	tokenRequests int
}

var geTime = regexp.MustCompile(`(?:createdDateTime|activityDateTime) ge (\S+)`)

const tokenPath = "/tenant-id/oauth2/v2.0/token"

func newFakeGraph(t *testing.T, records [][]byte) *fakeGraph {
	f := &fakeGraph{}
	for _, r := range records {
		var probe map[string]json.RawMessage
		json.Unmarshal(r, &probe)
		switch {
		case probe["createdDateTime"] != nil:
			f.signIns = append(f.signIns, r)
		case probe["activityDateTime"] != nil:
			f.audits = append(f.audits, r)
		}
	}
	f.FakeAPI = ingesttest.NewFakeAPI(t, nil, "application/json", ingesttest.FakeAuth{Header: "Bearer " + testAccessToken,
		Body: `{"error":{"code":"InvalidAuthenticationToken","message":"Access token is empty."}}`, Open: []string{tokenPath}}, f.serve)
	return f
}

func (f *fakeGraph) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == tokenPath {
		f.tokenRequests++
		id, secret := ingesttest.ClientCredentials(r)
		if r.Method != http.MethodPost || r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("scope") != graphScope ||
			id != "3c1f9e2a-5b4d-4c3e-8f7a-6b5c4d3e2f1a" || secret != testClientSecret {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`)
			return
		}
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":%q}`, testAccessToken)
		return
	}
	var all [][]byte
	switch r.URL.Path {
	case "/beta/auditLogs/signIns":
		all = f.signIns
		if !strings.Contains(r.URL.Query().Get("$filter"), "signInEventTypes/any(t: t eq 'servicePrincipal' or t eq 'managedIdentity')") {
			f.T.Errorf("signIns filter %q does not select service principals and managed identities", r.URL.Query().Get("$filter"))
		}
	case "/v1.0/auditLogs/directoryAudits":
		all = f.audits
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":"ResourceNotFound"}}`)
		return
	}
	f.Queries = append(f.Queries, r.URL.Path+"?"+r.URL.RawQuery)
	if strings.Contains(r.URL.RawQuery, "+") {
		f.T.Errorf("query %q encodes spaces as +; Graph wants %%20", r.URL.RawQuery)
	}
	q := r.URL.Query()
	var since time.Time
	if m := geTime.FindStringSubmatch(q.Get("$filter")); m != nil {
		var err error
		if since, err = time.Parse(time.RFC3339Nano, m[1]); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":{"code":"BadRequest","message":"Invalid filter clause %s"}}`, m[1])
			return
		}
	}
	match := ingesttest.Since(all, since, recordKey)
	ingesttest.SortByTime(match, recordKey, true)
	off := 0
	if s := q.Get("$skiptoken"); s != "" {
		if f.RateLimitOnce(w, r.URL.Path, `{"error":{"code":"TooManyRequests","message":"Too many requests."}}`, "Retry-After", "2") {
			return
		}
		off, _ = strconv.Atoi(s)
	}
	top, _ := strconv.Atoi(q.Get("$top"))
	records, end := ingesttest.PageOf(match, off, top)
	page := struct {
		Context  string            `json:"@odata.context"`
		NextLink string            `json:"@odata.nextLink,omitempty"`
		Value    []json.RawMessage `json:"value"`
	}{Context: "https://graph.microsoft.com/$metadata#auditLogs", Value: []json.RawMessage{}}
	for _, raw := range records {
		page.Value = append(page.Value, raw)
	}
	if end < len(match) {
		q.Set("$skiptoken", strconv.Itoa(end))
		page.NextLink = f.URL + r.URL.Path + "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
	}
	json.NewEncoder(w).Encode(page)
}

func newTestSource(t *testing.T, f *fakeGraph, pageSize int) *Source {
	t.Setenv("ENTRA_CLIENT_SECRET", testClientSecret)
	return ingesttest.FromSample(t, sampleYAML, New, f.Options("acme"), func(v any) {
		c := v.(*Config)
		c.PageSize = pageSize
		c.TokenURL = f.URL + tokenPath
	}).(*Source)
}

func TestFetchConformance(t *testing.T) {
	records := ingesttest.ReadLines(t, "testdata/records.jsonl")
	f := newFakeGraph(t, records)
	res := ingesttest.Run(t, newTestSource(t, f, 2))
	if want := len(f.signIns) + len(f.audits); len(res.Records) != want || want != 8 {
		t.Errorf("read %d records, the fake serves %d (want 8)", len(res.Records), want)
	}
	// sign-ins: 3 records in pages of 2; audits: 5 in pages of 2.
	if res.Pages != 5 {
		t.Errorf("read %d pages, want 2 of sign-ins and 3 of audits", res.Pages)
	}
	if len(res.RateLimits) != 2 || res.RateLimits[0].RetryAfter != 2*time.Second {
		t.Errorf("rate limits %+v, want one 429 with Retry-After 2s per list", res.RateLimits)
	}
	if f.tokenRequests != 1 {
		t.Errorf("%d token requests, want 1 (the client-credentials token is cached)", f.tokenRequests)
	}
	if want := time.Date(2026, 10, 27, 3, 5, 0, 0, time.UTC); !res.Final.Time.Equal(want) || res.Final.Token != "" {
		t.Errorf("final cursor %+v, want the newest time across both streams, %s", res.Final, want)
	}
	// The conformance re-poll reads the first stream's first page from the final cursor.
	if last := f.Queries[len(f.Queries)-1]; !strings.HasPrefix(last, "/beta/auditLogs/signIns?") ||
		!strings.Contains(last, "createdDateTime%20ge%202026-10-27T03%3A05%3A00.000Z") {
		t.Errorf("re-poll query %q does not start the sign-ins at the final cursor", last)
	}
}

func TestFetchStaticTokenAndBadSecret(t *testing.T) {
	f := newFakeGraph(t, nil)
	src, err := New(ingesttest.YAML([]byte("token: "+testAccessToken+"\nstreams: [directory_audits]\n")), ingest.Options{BaseURL: f.URL})
	if err != nil {
		t.Fatal(err)
	}
	if page, err := src.Fetch(context.Background(), ingest.Cursor{}); err != nil || !page.Done {
		t.Fatalf("static token: page %+v, err %v", page, err)
	}
	bad, _ := New(ingesttest.YAML([]byte("tenant_id: t\nclient_id: 3c1f9e2a-5b4d-4c3e-8f7a-6b5c4d3e2f1a\nclient_secret: wrong-secret-value\ntoken_url: "+f.URL+"/tenant-id/oauth2/v2.0/token\n")),
		ingest.Options{BaseURL: f.URL})
	_, err = bad.Fetch(context.Background(), ingest.Cursor{})
	var rl *ingest.RateLimitError
	if err == nil || errors.As(err, &rl) || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("err = %v, want the token endpoint's invalid_client", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-value") {
		t.Fatal("error leaks the client secret")
	}
}

func TestFetchRejectsCursorForMissingStream(t *testing.T) {
	src, _ := New(ingesttest.YAML([]byte("token: x\nstreams: [sign_ins]\n")), ingest.Options{})
	if _, err := src.Fetch(context.Background(), ingest.Cursor{Token: `{"stream":1}`}); err == nil || !strings.Contains(err.Error(), "stream 1") {
		t.Fatalf("err = %v, want a cursor/config mismatch error", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	cases := []struct{ yaml, wantErr string }{
		{"client_id: c\nclient_secret: s\n", "tenant_id: required"},
		{"tenant_id: t\nclient_id: c\n", "client_id and client_secret"},
		{"tenant_id: https://login/x\nclient_id: c\nclient_secret: s\n", "not a URL"},
		{"token: x\nstreams: []\n", "streams: name at least one"},
		{"token: x\nstreams: [sign_ins, graph_activity]\n", `"graph_activity"`},
		{"token: x\nstreams: [sign_ins, sign_ins]\n", "listed twice"},
		{"token: x\npage_size: 1000\n", "page_size 1000"},
		{"tenant_id: t\nclient_id: c\nclient_secret: s\n", ""},
	}
	for _, c := range cases {
		ingesttest.ConfigCase(t, New, c.yaml, c.wantErr)
	}
}

func TestTemplatePath(t *testing.T) {
	for in, want := range map[string]string{
		"/v1.0/users/cfo@example.com/messages":                         "/v1.0/users/{id}/messages",
		"/v1.0/users/3f2e1d0c-aaaa-4bbb-8ccc-ddddeeeeffff/mailFolders": "/v1.0/users/{id}/mailFolders",
		"/v1.0/me/drive/root/children":                                 "/v1.0/me/drive/root/children",
	} {
		if got := templatePath(in); got != want {
			t.Errorf("templatePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNormalizeDocumentedShapes: a managed-identity sign-in (beta signIn with
// managedServiceIdentity) and Event Hubs MicrosoftGraphActivityLogs records
// (nulls, quoted clientAuthMethod, tokenIssuedAt, wids, identityProvider,
// app-only roles vs delegated scopes) against their golden events.
func TestNormalizeDocumentedShapes(t *testing.T) {
	ingesttest.GoldenEvents(t, NewNormalizer("acme"), ingesttest.ReadLines(t, "testdata/golden/documented.jsonl"),
		"testdata/golden/documented.normalized.jsonl", *ingesttest.Update)
}

// TestIdentityIsStable: one app and one token (sign-in) → one integration id
// and one credential id, whatever optional fields a record carries.
func TestIdentityIsStable(t *testing.T) {
	groups := []struct {
		integration, credential string
		records                 []string
	}{
		{"app-1", "sia-1", []string{
			`{"time":"2026-10-27T02:16:02Z","RequestId":"r1","AppId":"app-1","ServicePrincipalId":"sp-1","SignInActivityId":"sia-1","RequestUri":"https://graph.microsoft.com/v1.0/users"}`,
			`{"time":"2026-10-27T02:16:02Z","properties":{"requestId":"r2","appId":"app-1","signInActivityId":"sia-1","roles":"User.Read.All","wids":"0997a1d0-0d1d-4acb-b408-d5ca73121e90","tokenIssuedAt":"2026-10-27T02:00:00Z","identityProvider":"https://sts.windows.net/t/","clientAuthMethod":"2","userId":null}}`,
			`{"records":[{"time":"2026-10-27T02:16:02Z","properties":{"requestId":"r3","appId":"app-1","signInActivityId":"sia-1","clientAuthMethod":2,"wids":["0997a1d0-0d1d-4acb-b408-d5ca73121e90"],"tokenIssuedAt":null,"responseStatusCode":"500"}}]}`,
		}},
		{"app-mi", "/subscriptions/s/vm", []string{
			`{"id":"m1","createdDateTime":"2026-10-27T02:13:07Z","appId":"app-mi","servicePrincipalId":"sp-mi","signInEventTypes":["managedIdentity"],"clientCredentialType":"managedIdentity","managedServiceIdentity":{"msiType":"systemAssigned","associatedResourceId":"/subscriptions/s/vm"}}`,
			`{"id":"m2","createdDateTime":"2026-10-27T02:13:07Z","appId":"app-mi","appDisplayName":"vm","servicePrincipalId":"sp-mi","servicePrincipalCredentialKeyId":null,"managedServiceIdentity":{"msiType":"systemAssigned","associatedResourceId":"/subscriptions/s/vm","federatedTokenId":null},"status":{"errorCode":0,"failureReason":null}}`,
		}},
	}
	n := NewNormalizer("acme")
	for _, g := range groups {
		for _, raw := range g.records {
			evs, err := n.Normalize([]byte(raw))
			if err != nil || len(evs) != 1 {
				t.Fatalf("%s: %d events, err %v", raw, len(evs), err)
			}
			if err := ingesttest.CheckEvent(evs[0], SourceName); err != nil {
				t.Error(err)
			}
			if evs[0].Integration.ID != g.integration || evs[0].Credential.ID != g.credential {
				t.Errorf("%s: integration %q credential %q, want %q %q", raw, evs[0].Integration.ID, evs[0].Credential.ID, g.integration, g.credential)
			}
		}
	}
}

// TestGraphIsOneTargetApp: a service principal's sign-in to Microsoft Graph
// and its Graph activity records name one target app.
func TestGraphIsOneTargetApp(t *testing.T) {
	apps := map[string]bool{}
	for _, raw := range ingesttest.ReadLines(t, ingesttest.Records) {
		evs, err := NewNormalizer("acme").Normalize(raw)
		if err != nil {
			continue
		}
		for _, ev := range evs {
			if ev.Resource.ID == "00000003-0000-0000-c000-000000000000" || ev.Resource.Type == "graph_path" {
				apps[ev.TargetApp] = true
			}
		}
	}
	if len(apps) != 1 {
		t.Fatalf("Graph sign-ins and Graph activity name %d target apps (%v), want one", len(apps), apps)
	}
}
