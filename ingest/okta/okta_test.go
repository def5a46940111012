package okta

import (
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
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

const testToken = "00Abc-test-okta-api-token"

func TestNormalize(t *testing.T) {
	type want struct {
		id, integration, appName, credType, credID, category, outcome, principal, principalType string
		resource, ip, ua, time                                                                  string
		scopes                                                                                  []string
	}
	cases := []struct {
		name    string
		raw     string
		want    *want
		wantErr string
	}{
		{
			name: "client credentials grant: the client is the actor",
			raw:  `{"uuid":"u1","published":"2026-10-27T02:13:07.412Z","eventType":"app.oauth2.as.token.grant.access_token","actor":{"id":"0oaA","type":"PublicClientApp","displayName":"CRM Sync"},"client":{"userAgent":{"rawUserAgent":"python-requests/2.31.0"},"ipAddress":"102.89.0.1"},"outcome":{"result":"SUCCESS"},"debugContext":{"debugData":{"grantType":"client_credentials","grantedScopes":"crm.read crm.write"}},"target":[{"id":"AT.1","type":"access_token"},{"id":"aus1","type":"AuthorizationServer"}],"securityContext":{"isProxy":false}}`,
			want: &want{id: "u1", integration: "0oaA", appName: "CRM Sync", credType: "access_token", credID: "AT.1", category: "authorize", outcome: "success",
				principal: "0oaA", principalType: "app", resource: "authorization_server:aus1", ip: "102.89.0.1", ua: "python-requests/2.31.0",
				time: "2026-10-27T02:13:07.412Z", scopes: []string{"crm.read", "crm.write"}},
		},
		{
			name: "failed token grant is an auth failure; the refused scopes are not its scopes",
			raw:  `{"uuid":"u2","published":"2026-10-27T02:13:08Z","eventType":"app.oauth2.as.token.grant","actor":{"id":"0oaA","type":"PublicClientApp"},"client":{"ipAddress":"185.220.101.4"},"outcome":{"result":"FAILURE","reason":"invalid_client"},"debugContext":{"debugData":{"grantType":"client_credentials","requestedScopes":"crm.write"}}}`,
			want: &want{id: "u2", integration: "0oaA", credType: "oauth_token", category: "auth_failure", outcome: "failure", principal: "0oaA", principalType: "app",
				ip: "185.220.101.4", time: "2026-10-27T02:13:08.000Z"},
		},
		{
			name: "user consent: the client is an AppInstance target",
			raw:  `{"uuid":"u3","published":"2026-10-27T02:15:30.001Z","eventType":"app.oauth2.as.consent.grant","actor":{"id":"00u1","type":"User","alternateId":"sales-ops@example.com"},"outcome":{"result":"SUCCESS"},"debugContext":{"debugData":{"grantedScopes":"openid,offline_access"}},"target":[{"id":"0oaB","type":"AppInstance","displayName":"Dealflow"}]}`,
			want: &want{id: "u3", integration: "0oaB", appName: "Dealflow", category: "authorize", outcome: "success", principal: "sales-ops@example.com", principalType: "user",
				time: "2026-10-27T02:15:30.001Z", scopes: []string{"openid", "offline_access"}},
		},
		{
			name: "revoke names the client only in debugData",
			raw:  `{"uuid":"u4","published":"2026-10-27T03:05:00Z","eventType":"app.oauth2.as.token.revoke","actor":{"id":"00uadm","type":"User","alternateId":"it-admin@example.com"},"outcome":{"result":"SUCCESS"},"debugContext":{"debugData":{"clientId":"0oaB"}},"target":[{"id":"RT.9","type":"refresh_token"}]}`,
			want: &want{id: "u4", integration: "0oaB", credType: "refresh_token", credID: "RT.9", category: "revoke", outcome: "success", principal: "it-admin@example.com",
				principalType: "user", time: "2026-10-27T03:05:00.000Z"},
		},
		{
			name: "refresh token reuse is an auth failure",
			raw:  `{"uuid":"u5","published":"2026-10-27T03:01:02.003Z","eventType":"app.oauth2.as.token.detect_reuse","actor":{"id":"0oaB","type":"PublicClientApp"},"outcome":{"result":"FAILURE"},"target":[{"id":"RT.9","type":"refresh_token"},{"id":"00u1","type":"User","alternateId":"sales-ops@example.com"}]}`,
			want: &want{id: "u5", integration: "0oaB", credType: "refresh_token", credID: "RT.9", category: "auth_failure", outcome: "failure",
				principal: "sales-ops@example.com", principalType: "user", time: "2026-10-27T03:01:02.003Z"},
		},
		{
			name: "API token creation: the token is the integration",
			raw:  `{"uuid":"u6","published":"2026-10-27T03:10:00.5Z","eventType":"system.api_token.create","actor":{"id":"00uadm","type":"User","alternateId":"it-admin@example.com"},"outcome":{"result":"SUCCESS"},"target":[{"id":"00Tz","type":"Token","displayName":"terraform-okta"}]}`,
			want: &want{id: "u6", integration: "api_token:00Tz", appName: "terraform-okta", credType: "api_key", credID: "00Tz", category: "authorize", outcome: "success",
				principal: "it-admin@example.com", principalType: "user", time: "2026-10-27T03:10:00.500Z"},
		},
		{
			name: "API token revoke",
			raw:  `{"uuid":"u7","published":"2026-10-27T03:12:00Z","eventType":"system.api_token.revoke","actor":{"id":"00uadm","type":"User","alternateId":"it-admin@example.com"},"outcome":{"result":"SUCCESS"},"target":[{"id":"00Tz","type":"Token"}]}`,
			want: &want{id: "u7", integration: "api_token:00Tz", credType: "api_key", credID: "00Tz", category: "revoke", outcome: "success",
				principal: "it-admin@example.com", principalType: "user", time: "2026-10-27T03:12:00.000Z"},
		},
		{name: "a user sign-in is not token activity", raw: `{"uuid":"u8","published":"2026-10-27T03:13:00Z","eventType":"user.session.start","actor":{"id":"00u1","type":"User"},"outcome":{"result":"SUCCESS"}}`},
		{name: "missing time", raw: `{"uuid":"x","eventType":"app.oauth2.as.token.grant"}`, wantErr: "no published time"},
		{name: "bad time", raw: `{"uuid":"x","published":"27/10/2026","eventType":"app.oauth2.as.token.grant"}`, wantErr: `published "27/10/2026"`},
		{name: "not a log event", raw: `{"published":"2026-10-27T03:13:00Z","id":"abc"}`, wantErr: "no eventType"},
		{name: "token grant without a client", raw: `{"uuid":"x","published":"2026-10-27T03:13:00Z","eventType":"app.oauth2.as.token.grant","actor":{"id":"unknown","type":"User"}}`, wantErr: "names no OAuth client"},
		{name: "api token event without the token", raw: `{"uuid":"x","published":"2026-10-27T03:13:00Z","eventType":"system.api_token.create","target":[]}`, wantErr: "no target of type Token"},
		{name: "target is not a list", raw: `{"uuid":"x","published":"2026-10-27T03:13:00Z","eventType":"system.api_token.create","target":{"id":1}}`, wantErr: "decode log event"},
	}
	src := NewNormalizer("acme")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ingesttest.NormalizeCase(t, src, c.raw, ingesttest.One(c.want), c.wantErr, func(t *testing.T, ev schemas.Event) want {
				if ev.Tenant != "acme" || string(ev.Raw) != c.raw {
					t.Errorf("tenant %q / raw not kept", ev.Tenant)
				}
				return want{id: ev.EventID, integration: ev.Integration.ID, appName: ev.Integration.Name, credType: ev.Credential.Type, credID: ev.Credential.ID,
					category: ev.Action.Category, outcome: ev.Outcome, principal: ev.Principal.ID, principalType: ev.Principal.Type, ip: ev.Network.IP,
					ua: ev.Network.UserAgent, time: ingesttest.TimeString(ev), scopes: ev.Scopes, resource: ingesttest.ResourceString(ev)}
			})
		})
	}
}

func TestNormalizeGolden(t *testing.T) { ingesttest.NormalizeGolden(t, NewNormalizer("acme")) }

func FuzzNormalize(f *testing.F) { ingesttest.FuzzNormalize(f, NewNormalizer("acme")) }

// fakeSystemLog reproduces GET /api/v1/logs: SSWS auth, since (inclusive,
// milliseconds), limit, sortOrder, filter, and Okta's polling pagination: a
// Link rel="next" with an opaque after= on every page, the last included,
// next to a rel="self" header. The first follow-up request gets a 429 with
// only X-Rate-Limit-* headers, as Okta sends.
type fakeSystemLog struct{ *ingesttest.FakeAPI }

func newFakeSystemLog(t *testing.T, records [][]byte) *fakeSystemLog {
	f := &fakeSystemLog{}
	f.FakeAPI = ingesttest.NewFakeAPI(t, records, "application/json", ingesttest.FakeAuth{Header: "SSWS " + testToken,
		Body: `{"errorCode":"E0000011","errorSummary":"Invalid token provided","errorLink":"E0000011","errorId":"oaeX","errorCauses":[]}`}, f.serve)
	return f
}

func (f *fakeSystemLog) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/logs" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	f.Queries = append(f.Queries, r.URL.RawQuery)
	if q.Get("sortOrder") != "ASCENDING" || q.Get("filter") != DefaultFilter {
		f.T.Errorf("query %q: want sortOrder=ASCENDING and the default filter", r.URL.RawQuery)
	}
	var since time.Time
	if v := q.Get("since"); v != "" {
		var err error
		if since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"errorCode":"E0000001","errorSummary":"Api validation failed: since"}`)
			return
		}
	}
	match := ingesttest.Since(f.Records, since, recordKey)
	off := 0
	if a := q.Get("after"); a != "" {
		if f.RateLimitOnce(w, "", `{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}`,
			"X-Rate-Limit-Limit", "120", "X-Rate-Limit-Remaining", "0", "X-Rate-Limit-Reset", strconv.FormatInt(time.Now().Add(30*time.Second).Unix(), 10)) {
			return
		}
		b, _ := base64.RawURLEncoding.DecodeString(a)
		off, _ = strconv.Atoi(string(b))
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	page, end := ingesttest.PageOf(match, off, limit)
	self := r.URL.RawQuery
	q.Set("after", base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end))))
	w.Header().Add("Link", fmt.Sprintf(`<%s/api/v1/logs?%s>; rel="self"`, f.URL, self))
	w.Header().Add("Link", fmt.Sprintf(`<%s/api/v1/logs?%s>; rel="next"`, f.URL, q.Encode()))
	fmt.Fprint(w, ingesttest.JSONArray(page))
}

func newTestSource(t *testing.T, f *fakeSystemLog, limit int) *Source {
	t.Setenv("OKTA_API_TOKEN", testToken)
	return ingesttest.FromSample(t, sampleYAML, New, f.Options("acme"), func(v any) { v.(*Config).Limit = limit }).(*Source)
}

func TestFetchConformance(t *testing.T) {
	records := ingesttest.ReadLines(t, "testdata/records.jsonl")
	f := newFakeSystemLog(t, records)
	res := ingesttest.Run(t, newTestSource(t, f, 3))
	if len(res.Records) != len(records) {
		t.Errorf("read %d records, the log has %d", len(res.Records), len(records))
	}
	if res.Pages != 4 {
		t.Errorf("read %d pages of 3 from %d records, want 4 (the short page ends the poll)", res.Pages, len(records))
	}
	if rl := res.RateLimits[0]; rl.Status != http.StatusTooManyRequests || rl.RetryAfter < 25*time.Second || rl.RetryAfter > 32*time.Second {
		t.Errorf("rate limit = %+v, want 429 waiting about 30s until X-Rate-Limit-Reset", rl)
	}
	if len(res.Events) != len(records)-1 {
		t.Errorf("got %d events, want one per record but user.session.start", len(res.Events))
	}
	if want := time.Date(2026, 10, 27, 3, 14, 0, 0, time.UTC); !res.Final.Time.Equal(want) || res.Final.Token != "" {
		t.Errorf("final cursor %+v, want time %s and no token", res.Final, want)
	}
}

func TestFetchResumesFromCursorWithoutGapOrDuplicate(t *testing.T) {
	records := ingesttest.ReadLines(t, "testdata/records.jsonl")
	f := newFakeSystemLog(t, records[:2]) // both at 02:13:07.412
	f.SkipRateLimit()
	src := newTestSource(t, f, 1000)
	page, err := src.Fetch(context.Background(), ingest.Cursor{})
	if err != nil || !page.Done || len(page.Records) != 2 || len(page.Next.SeenAtTime) != 2 {
		t.Fatalf("first poll: %d records, done %v, cursor %+v, err %v", len(page.Records), page.Done, page.Next, err)
	}
	f.Records = append(f.Records, records[2])
	page, err = src.Fetch(context.Background(), page.Next)
	if err != nil {
		t.Fatal(err)
	}
	if ids := ingesttest.IDs(page.Records, recordKey); !slices.Equal(ids, []string{"5c01d2e4-7c1d-11f0-9a8b-1b2c3d4e5f60"}) {
		t.Errorf("second poll delivered %v, want only the new record", ids)
	}
	if !strings.Contains(f.Queries[1], "since=2026-10-27T02%3A13%3A07.412Z") {
		t.Errorf("second poll %q does not start at the cursor", f.Queries[1])
	}
}

func TestFetchBearerScheme(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		fmt.Fprint(w, `[]`)
	}))
	defer srv.Close()
	src, err := New(ingesttest.YAML([]byte("token: eyJhbGciOi.x.y\nauth_scheme: bearer\n")), ingest.Options{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	page, err := src.Fetch(context.Background(), ingest.Cursor{})
	if err != nil || !page.Done || got != "Bearer eyJhbGciOi.x.y" {
		t.Fatalf("auth header %q, page %+v, err %v", got, page, err)
	}
}

func TestFetchErrorIsNotRateLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"errorCode":"E0000006","errorSummary":"You do not have permission to perform the requested action"}`)
	}))
	defer srv.Close()
	src, _ := New(ingesttest.YAML([]byte("token: x\n")), ingest.Options{BaseURL: srv.URL})
	_, err := src.Fetch(context.Background(), ingest.Cursor{})
	var rl *ingest.RateLimitError
	if err == nil || errors.As(err, &rl) || !strings.Contains(err.Error(), "E0000006") {
		t.Fatalf("err = %v, want a plain 403 naming the Okta error", err)
	}
}

func TestFetchRefusesNextLinkToAnotherHost(t *testing.T) {
	src, _ := New(ingesttest.YAML([]byte("domain: example.okta.com\ntoken: x\n")), ingest.Options{})
	cur := ingest.Cursor{Token: `{"next":"https://example.okta.com.evil.test/api/v1/logs?after=1"}`}
	if _, err := src.Fetch(context.Background(), cur); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("err = %v, want refusal", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	cases := []struct{ yaml, wantErr string }{
		{"token: x\n", "domain: required"},
		{"domain: https://example.okta.com\ntoken: x\n", "host name only"},
		{"domain: example.okta.com\n", "token: required"},
		{"domain: example.okta.com\ntoken: x\nauth_scheme: basic\n", `auth_scheme "basic"`},
		{"domain: example.okta.com\ntoken: x\nlimit: 5000\n", "limit 5000"},
		{"domain: example.okta.com\ntoken: x\n", ""},
	}
	for _, c := range cases {
		ingesttest.ConfigCase(t, New, c.yaml, c.wantErr)
	}
}

func TestFetchRateLimitPrefersRetryAfterOverReset(t *testing.T) {
	now := time.Date(2026, 10, 27, 2, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "12")
		w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(now.Add(50*time.Second).Unix(), 10))
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}`)
	}))
	defer srv.Close()
	src, _ := New(ingesttest.YAML([]byte("token: x\n")), ingest.Options{BaseURL: srv.URL})
	src.(*Source).now = func() time.Time { return now }
	_, err := src.Fetch(context.Background(), ingest.Cursor{})
	var rl *ingest.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter != 12*time.Second {
		t.Fatalf("err = %v, want a rate limit honouring Retry-After 12s", err)
	}
}

func TestNormalizeSignals(t *testing.T) {
	n := NewNormalizer("acme")
	one := func(t *testing.T, raw string) schemas.Event {
		t.Helper()
		evs, err := n.Normalize([]byte(raw))
		if err != nil || len(evs) != 1 {
			t.Fatalf("%d events, err %v", len(evs), err)
		}
		if err := ingesttest.CheckEvent(evs[0], SourceName); err != nil {
			t.Fatal(err)
		}
		return evs[0]
	}
	t.Run("no_matching_scope is scope_denied and keeps the refused scopes apart", func(t *testing.T) {
		ev := one(t, `{"uuid":"s1","published":"2026-10-27T02:13:08Z","eventType":"app.oauth2.as.token.grant","actor":{"id":"0oaA","type":"PublicClientApp"},"outcome":{"result":"FAILURE","reason":"no_matching_scope"},"debugContext":{"debugData":{"grantType":"client_credentials","requestedScopes":"okta.users.manage okta.apps.manage"}}}`)
		if ev.Action.Category != schemas.CategoryScopeDenied || len(ev.Scopes) != 0 || !slices.Equal(ev.RequestedScopes, []string{"okta.users.manage", "okta.apps.manage"}) {
			t.Errorf("category %q scopes %v requested %v", ev.Action.Category, ev.Scopes, ev.RequestedScopes)
		}
	})
	t.Run("an unknown actor type is normalized as other, type kept", func(t *testing.T) {
		ev := one(t, `{"uuid":"s2","published":"2026-10-27T02:13:08Z","eventType":"app.oauth2.as.token.grant.access_token","actor":{"id":"wlp1","type":"WorkloadPrincipal","alternateId":"ci-runner","displayName":"CI runner"},"outcome":{"result":"SUCCESS"},"target":[{"id":"AT.2","type":"access_token"}]}`)
		if ev.Action.Category != schemas.CategoryOther || ev.Integration.ID != "wlp1" || ev.Principal.Type != "workloadprincipal" || ev.Credential.ID != "AT.2" {
			t.Errorf("%+v", ev)
		}
	})
	t.Run("a user-delegated grant's user is the token's detailEntry subject", func(t *testing.T) {
		ev := one(t, `{"uuid":"s3","published":"2026-10-27T02:13:08Z","eventType":"app.oauth2.as.token.grant.access_token","actor":{"id":"0oaB","type":"PublicClientApp","alternateId":"0oaB"},"outcome":{"result":"SUCCESS"},"debugContext":{"debugData":{"grantType":"authorization_code","grantedScopes":"openid"}},"target":[{"id":"AT.3","type":"access_token","detailEntry":{"expires":"2026-10-27T03:13:08.000Z","subject":"00u1abc","hash":"x"}}]}`)
		if ev.Principal != (schemas.Principal{ID: "00u1abc", Type: "user"}) {
			t.Errorf("principal %+v", ev.Principal)
		}
	})
	t.Run("security context, ip chain and credential type", func(t *testing.T) {
		ev := one(t, `{"uuid":"s4","published":"2026-10-27T02:13:08Z","eventType":"app.oauth2.as.token.grant","actor":{"id":"0oaA","type":"PublicClientApp"},"client":{"ipAddress":"185.220.101.4"},"outcome":{"result":"SUCCESS"},"debugContext":{"debugData":{"grantType":"client_credentials"}},"authenticationContext":{"credentialType":"JWT","authenticationProvider":null},"securityContext":{"asNumber":60729,"asOrg":"zwiebelfreunde e.v.","isp":"zwiebelfreunde e.v.","domain":null,"isProxy":true},"request":{"ipChain":[{"ip":"185.220.101.4","geographicalContext":null,"version":"V4","source":null},{"ip":"10.0.0.8","version":"V4"}]}}`)
		if !ev.Network.Proxy || ev.Network.ASN != 60729 || ev.Network.ASOrg != "zwiebelfreunde e.v." || !slices.Equal(ev.Network.IPChain, []string{"185.220.101.4", "10.0.0.8"}) || ev.Credential.Type != "jwt" {
			t.Errorf("network %+v credential %+v", ev.Network, ev.Credential)
		}
	})
}

// TestIdentityIsStable: one client and one token → one integration id and one
// credential id, whatever optional fields the record carries.
func TestIdentityIsStable(t *testing.T) {
	records := []string{
		`{"uuid":"i1","published":"2026-10-27T02:13:08Z","eventType":"app.oauth2.as.token.grant.access_token","actor":{"id":"0oaA","type":"PublicClientApp"},"outcome":{"result":"SUCCESS"},"target":[{"id":"AT.1","type":"access_token"}]}`,
		`{"uuid":"i2","published":"2026-10-27T02:13:08Z","eventType":"app.oauth2.as.token.grant.access_token","actor":{"id":"0oaA","type":"PublicClientApp","displayName":"CRM"},"outcome":{"result":"SUCCESS"},"debugContext":{"debugData":{"clientId":"0oaA","grantType":"client_credentials"}},"target":[{"id":"AT.1","type":"access_token","detailEntry":{"subject":"0oaA"}},{"id":"aus1","type":"AuthorizationServer"}],"securityContext":{"asNumber":null,"isProxy":null},"request":{"ipChain":[]}}`,
		`{"uuid":"i3","published":"2026-10-27T02:13:08Z","eventType":"app.oauth2.as.token.grant.access_token","actor":{"id":"00u1","type":"User","alternateId":"a@example.com"},"outcome":{"result":"SUCCESS"},"authenticationContext":{"credentialType":"PASSWORD"},"target":[{"id":"0oaA","type":"AppInstance"},{"id":"AT.1","type":"access_token","detailEntry":{"subject":"00u1"}}]}`,
	}
	n := NewNormalizer("acme")
	for _, raw := range records {
		evs, err := n.Normalize([]byte(raw))
		if err != nil || len(evs) != 1 {
			t.Fatalf("%s: %d events, err %v", raw, len(evs), err)
		}
		if evs[0].Integration.ID != "0oaA" || evs[0].Credential.ID != "AT.1" {
			t.Errorf("%s: integration %q credential %q, want 0oaA AT.1", raw, evs[0].Integration.ID, evs[0].Credential.ID)
		}
	}
}

// TestNormalizeDocumentedShapes: System Log records written from Okta's
// LogEvent reference (securityContext, request.ipChain, authenticationContext,
// a no_matching_scope failure, a delegated grant's detailEntry.subject, a new
// actor type) against their golden events.
func TestNormalizeDocumentedShapes(t *testing.T) {
	ingesttest.GoldenEvents(t, NewNormalizer("acme"), ingesttest.ReadLines(t, "testdata/golden/documented.jsonl"),
		"testdata/golden/documented.normalized.jsonl", *ingesttest.Update)
}
