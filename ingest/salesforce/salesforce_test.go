package salesforce

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/ingesttest"
	"github.com/tokenwatch/tokenwatch/ingest/window"
	"github.com/tokenwatch/tokenwatch/schemas"
)

//go:embed sample.yaml
var sampleYAML []byte

const testToken = "00DHs000000abcd!AQ8AQTestAccessToken"

func TestNormalize(t *testing.T) {
	type want struct {
		id, integration, appName, credType, credID, category, outcome, principal, action, resource, ip, ua, time string
		records                                                                                                  int64
	}
	cases := []struct {
		name    string
		raw     string
		want    *want
		wantErr string
	}{
		{
			name: "connected app bulk query: rows processed become Records",
			raw:  `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"e1","EventDate":"2026-10-27T02:13:07.412+0000","Username":"crm-sync@example.com","SourceIp":"102.89.0.1","UserAgent":"python-requests/2.31.0","ConnectedAppId":"0H4A","Application":"CRM Sync","Operation":"Query","QueriedEntities":"Contact","RowsProcessed":48211.0,"SessionKey":"sk","LoginKey":"lk"}`,
			want: &want{id: "e1", integration: "0H4A", appName: "CRM Sync", credType: "oauth_token", credID: "lk", category: "access", outcome: "success", principal: "crm-sync@example.com",
				action: "Query", resource: "sobject:Contact", ip: "102.89.0.1", ua: "python-requests/2.31.0", time: "2026-10-27T02:13:07.412Z", records: 48211},
		},
		{
			name: "an update is a modification",
			raw:  `{"EventIdentifier":"e2","EventDate":"2026-10-27T02:20:00.000+0000","UserId":"005B","ConnectedAppId":"0H4B","Operation":"Update","QueriedEntities":"Opportunity","RowsProcessed":125}`,
			want: &want{id: "e2", integration: "0H4B", credType: "oauth_token", category: "modify", outcome: "success", principal: "005B", action: "Update",
				resource: "sobject:Opportunity", time: "2026-10-27T02:20:00.000Z", records: 125},
		},
		{
			name: "no connected app: the API client names the integration",
			raw:  `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"e3","EventDate":"2026-10-27T02:25:30.25Z","Username":"analyst@example.com","ConnectedAppId":"","Client":"Workbench/","Application":"N/A","Operation":"Query","SessionKey":"sk3","RowsProcessed":"12"}`,
			want: &want{id: "e3", integration: "client:Workbench/", appName: "Workbench/", credType: "session", credID: "sk3", category: "access", outcome: "success",
				principal: "analyst@example.com", action: "Query", time: "2026-10-27T02:25:30.250Z", records: 12},
		},
		{
			name: "OAuth login of a connected app authorizes",
			raw:  `{"attributes":{"type":"LoginHistory"},"Id":"0Ya1","LoginTime":"2026-10-27T02:13:05.000+0000","UserId":"005A","SourceIp":"102.89.0.1","LoginType":"Remote Access 2.0","Status":"Success","Application":"CRM Sync","LoginUrl":"login.salesforce.com"}`,
			want: &want{id: "0Ya1", integration: "app:CRM Sync", appName: "CRM Sync", credType: "oauth_token", credID: "login:005A", category: "authorize", outcome: "success", principal: "005A",
				action: "login:Remote Access 2.0", resource: "login_url:login.salesforce.com", ip: "102.89.0.1", time: "2026-10-27T02:13:05.000Z"},
		},
		{
			name: "a failed client-credentials login is an auth failure",
			raw:  `{"attributes":{"type":"LoginHistory"},"Id":"0Ya2","LoginTime":"2026-10-27T02:14:00.000+0000","UserId":"005A","SourceIp":"185.220.101.4","LoginType":"Remote Access 2.0","Status":"Invalid Client Credentials","Application":"CRM Sync"}`,
			want: &want{id: "0Ya2", integration: "app:CRM Sync", appName: "CRM Sync", credType: "oauth_token", credID: "login:005A", category: "auth_failure", outcome: "failure", principal: "005A",
				action: "login:Remote Access 2.0", ip: "185.220.101.4", time: "2026-10-27T02:14:00.000Z"},
		},
		{
			name: "a SOAP API login without an app is keyed by API type",
			raw:  `{"attributes":{"type":"LoginHistory"},"Id":"0Ya3","LoginTime":"2026-10-27T02:30:00.000+0000","UserId":"005Z","LoginType":"Other Apex API","Status":"Success","Application":"N/A","ApiType":"SOAP Partner"}`,
			want: &want{id: "0Ya3", integration: "api:SOAP Partner", appName: "SOAP Partner", credType: "api_session", credID: "login:005Z", category: "authorize", outcome: "success", principal: "005Z",
				action: "login:Other Apex API", time: "2026-10-27T02:30:00.000Z"},
		},
		{name: "a browser login is not an integration", raw: `{"attributes":{"type":"LoginHistory"},"Id":"0Ya4","LoginTime":"2026-10-27T02:31:00.000+0000","LoginType":"Application","Status":"Success","Application":"Browser Login"}`},
		{name: "an API call naming nothing is skipped", raw: `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"e9","EventDate":"2026-10-27T02:31:00Z","Application":"N/A","Client":"N/A"}`},
		{name: "ApiEvent without EventDate", raw: `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"x","ConnectedAppId":"0H4A"}`, wantErr: "no EventDate"},
		{name: "LoginHistory with a bad time", raw: `{"attributes":{"type":"LoginHistory"},"Id":"x","LoginTime":"27/10/2026"}`, wantErr: `LoginTime "27/10/2026"`},
		{
			name: "LoginHistory's own fields: ClientVersion is the client, ForwardedForIp the address behind the proxy",
			raw:  `{"attributes":{"type":"LoginHistory"},"Id":"0Ya5","LoginTime":"2026-10-27T05:12:30.000+0000","UserId":"005Hs00000Adm2nIAB","SourceIp":"198.51.100.23","ForwardedForIp":"192.0.2.15","LoginType":"Remote Access 2.0","Status":"Success","Application":"Salesforce CLI","ClientVersion":"2.61.8","CountryIso":"GB"}`,
			want: &want{id: "0Ya5", integration: "app:Salesforce CLI", appName: "Salesforce CLI", credType: "oauth_token", credID: "login:005Hs00000Adm2n", category: "authorize", outcome: "success",
				principal: "005Hs00000Adm2nIAB", action: "login:Remote Access 2.0", ip: "198.51.100.23", ua: "2.61.8", time: "2026-10-27T05:12:30.000Z"},
		},
		{
			name: "a Bulk API result download names the job and falls back to the user",
			raw:  `{"attributes":{"type":"BulkApiResultEventStore"},"EventIdentifier":"b1","EventDate":"2026-10-27T02:52:40.000+0000","UserId":"005Hs00000A1b2cIAB","Username":"crm-sync@example.com","SourceIp":"102.89.0.1","LoginKey":"lk","JobId":"750A","Query":"SELECT Id FROM Contact"}`,
			want: &want{id: "b1", integration: "user:005Hs00000A1b2c", credType: "session", credID: "lk", category: "access", outcome: "success", principal: "crm-sync@example.com",
				action: "bulk_result_download", resource: "bulk_job:750A", ip: "102.89.0.1", time: "2026-10-27T02:52:40.000Z"},
		},
		{
			name: "a REST log row: a POST to sobjects is a write, with the HTTP status",
			raw:  `{"CLIENT_IP":"102.89.0.1","CONNECTED_APP_ID":"0H4Hs000000K9xY","ENTITY_NAME":"Task","EVENT_TYPE":"RestApi","LOGIN_KEY":"lk","METHOD":"POST","RESPONSE_SIZE":"63","ROWS_PROCESSED":"1","STATUS_CODE":"201","TIMESTAMP_DERIVED":"2026-10-27T02:18:44.006Z","URI":"/services/data/v61.0/sobjects/Task","USER_AGENT":"python-requests/2.31.0","USER_ID_DERIVED":"005Hs00000A1b2cIAB"}`,
			want: &want{id: "elf:c1cec1208e7ddc0b8fc5453f", integration: "0H4Hs000000K9xY", credType: "oauth_token", credID: "lk", category: "modify", outcome: "success", principal: "005Hs00000A1b2cIAB",
				action: "restapi:POST", resource: "sobject:Task", ip: "102.89.0.1", ua: "python-requests/2.31.0", time: "2026-10-27T02:18:44.006Z", records: 1},
		},
		{
			name: "a log row of a type not mapped yet is kept as other",
			raw:  `{"EVENT_TYPE":"LightningInteraction","TIMESTAMP":"20261027031500.000","USER_ID":"005Hs00000Q1w2e","CLIENT_IP":"198.51.100.7"}`,
			want: &want{id: "elf:b29fb746d6e2a99d2fdafb3b", integration: "user:005Hs00000Q1w2e", credType: "session", category: "other", outcome: "unknown", principal: "005Hs00000Q1w2e",
				action: "log:LightningInteraction", ip: "198.51.100.7", time: "2026-10-27T03:15:00.000Z"},
		},
		{
			name: "another object with a time and a user is kept as other",
			raw:  `{"attributes":{"type":"ReportEventStore"},"EventIdentifier":"r1","EventDate":"2026-10-27T03:20:00.000+0000","UserId":"005Hs00000Q1w2eIAB","Username":"analyst@example.com","SourceIp":"198.51.100.7"}`,
			want: &want{id: "r1", integration: "user:005Hs00000Q1w2e", category: "other", outcome: "unknown", principal: "analyst@example.com", action: "ReportEventStore", ip: "198.51.100.7", time: "2026-10-27T03:20:00.000Z"},
		},
		{name: "unknown shape", raw: `{"Id":"x","Name":"Acme"}`, wantErr: "unknown record shape"},
		{name: "another object without a time", raw: `{"attributes":{"type":"Account"},"Id":"001"}`, wantErr: `no Account EventDate or CreatedDate`},
		{name: "a log row without a time", raw: `{"EVENT_TYPE":"RestApi","USER_ID":"005A"}`, wantErr: "no TIMESTAMP_DERIVED or TIMESTAMP"},
		{name: "login naming no app", raw: `{"attributes":{"type":"LoginHistory"},"Id":"x","LoginTime":"2026-10-27T02:31:00Z","LoginType":"Remote Access 2.0","Application":"N/A"}`, wantErr: "names no Application"},
	}
	src := NewNormalizer("acme")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ingesttest.NormalizeCase(t, src, c.raw, ingesttest.One(c.want), c.wantErr, func(t *testing.T, ev schemas.Event) want {
				return want{id: ev.EventID, integration: ev.Integration.ID, appName: ev.Integration.Name, credType: ev.Credential.Type, credID: ev.Credential.ID,
					category: ev.Action.Category, outcome: ev.Outcome, principal: ev.Principal.ID, action: ev.Action.Name, ip: ev.Network.IP, ua: ev.Network.UserAgent,
					time: ingesttest.TimeString(ev), records: ev.Records, resource: ingesttest.ResourceString(ev)}
			})
		})
	}
}

// TestIdentityOneAppOneIntegration: every record of one connected app gets
// the same integration id, whichever of the app's id (18 or 15 characters),
// its name (resolved by Fetch) or both a record carries.
func TestIdentityOneAppOneIntegration(t *testing.T) {
	const app = "0H4Hs000000K9xY"
	cases := []struct{ name, raw string }{
		{"ApiEvent with the app id", `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"i1","EventDate":"2026-10-27T02:13:07.412+0000","ConnectedAppId":"0H4Hs000000K9xYKAS","Application":"Pipeline CRM Sync","Username":"u@example.com"}`},
		{"ApiEvent reusing a token: ConnectedAppId null, name resolved by Fetch", `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"i2","EventDate":"2026-10-27T02:40:11.090+0000","ConnectedAppId":null,"Application":"Pipeline CRM Sync","Username":"u@example.com","TokenwatchConnectedAppId":"0H4Hs000000K9xYKAS"}`},
		{"LoginHistory names the app by name only", `{"attributes":{"type":"LoginHistory"},"Id":"i3","LoginTime":"2026-10-27T02:13:05.000+0000","UserId":"005A","LoginType":"Remote Access 2.0","Status":"Success","Application":"Pipeline CRM Sync","TokenwatchConnectedAppId":"0H4Hs000000K9xYKAS"}`},
		{"REST log row: a 15-character app id", `{"EVENT_TYPE":"RestApi","TIMESTAMP_DERIVED":"2026-10-27T02:13:07.412Z","CONNECTED_APP_ID":"0H4Hs000000K9xY","CLIENT_NAME":"PipelineCRM/3.2","USER_ID":"005A"}`},
		{"ApiTotalUsage row: name only, resolved", `{"EVENT_TYPE":"ApiTotalUsage","TIMESTAMP_DERIVED":"2026-10-27T02:13:07.412Z","CONNECTED_APP_NAME":"Pipeline CRM Sync","USER_ID":"005A","TokenwatchConnectedAppId":"0H4Hs000000K9xYKAS"}`},
	}
	for _, c := range cases {
		evs, err := NewNormalizer("acme").Normalize([]byte(c.raw))
		if err != nil || len(evs) != 1 {
			t.Fatalf("%s: %v %v", c.name, evs, err)
		}
		if evs[0].Integration.ID != app {
			t.Errorf("%s: integration %q, want %q", c.name, evs[0].Integration.ID, app)
		}
	}
}

// TestNullConnectedAppIDOffline: records normalized without Fetch's name
// lookup (replay, eval, ingest.files): a call reusing a valid token carries
// ConnectedAppId null and only the app's name. Learned from the batch's
// other records, it keys by the app's id in whatever order the batch lists
// them, and an app no record gives the id of stays keyed by its name.
func TestNullConnectedAppIDOffline(t *testing.T) {
	withID := `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"n1","EventDate":"2026-10-27T02:13:07.412+0000","ConnectedAppId":"0H4Hs000000K9xYKAS","Application":"Pipeline CRM Sync","Client":"PipelineCRM/3.2","Username":"u@example.com","LoginKey":"lk1","Operation":"Query"}`
	reused := `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"n2","EventDate":"2026-10-27T02:40:11.090+0000","ConnectedAppId":null,"Application":"Pipeline CRM Sync","Client":"PipelineCRM/3.2","Username":"u@example.com","LoginKey":"lk1","Operation":"Query"}`
	other := `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"n3","EventDate":"2026-10-27T02:41:00.000+0000","ConnectedAppId":null,"Application":"Dataloader Bulk","Client":"DataLoaderBulkUI/61.0","Username":"v@example.com","LoginKey":"lk2","Operation":"Query"}`
	// Two apps of one label: a name-only record could be either's.
	twinA := `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"n4","EventDate":"2026-10-27T03:00:00.000+0000","ConnectedAppId":"0H4Hs000000Tw1AKAS","Application":"Twin","Username":"w@example.com","LoginKey":"lk3","Operation":"Query"}`
	twinB := `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"n5","EventDate":"2026-10-27T03:01:00.000+0000","ConnectedAppId":"0H4Hs000000Tw2BKAS","Application":"Twin","Username":"w@example.com","LoginKey":"lk4","Operation":"Query"}`
	twinNull := `{"attributes":{"type":"ApiEvent"},"EventIdentifier":"n6","EventDate":"2026-10-27T03:02:00.000+0000","ConnectedAppId":null,"Application":"Twin","Username":"w@example.com","LoginKey":"lk4","Operation":"Query"}`
	want := map[string]string{"n1": "0H4Hs000000K9xY", "n2": "0H4Hs000000K9xY", "n3": "app:Dataloader Bulk",
		"n4": "0H4Hs000000Tw1A", "n5": "0H4Hs000000Tw2B", "n6": "app:Twin"}
	for _, order := range [][]string{{withID, reused, other, twinA, twinNull, twinB}, {twinNull, reused, other, twinB, withID, twinA}} {
		recs := make([]ingest.RawRecord, len(order))
		for i, r := range order {
			recs[i] = ingest.RawRecord{Data: []byte(r)}
		}
		b := ingest.NormalizeRecords(NewNormalizer("acme"), "t", recs)
		if len(b.Events) != len(want) || len(b.Dead) > 0 {
			t.Fatalf("%d events, %d dead", len(b.Events), len(b.Dead))
		}
		for _, ev := range b.Events {
			if ev.Integration.ID != want[ev.EventID] {
				t.Errorf("order starting %.60s: %s is integration %q, want %q", order[0], ev.EventID, ev.Integration.ID, want[ev.EventID])
			}
			if (ev.EventID == "n1" || ev.EventID == "n2") && (ev.Integration.SourceAppID != "0H4Hs000000K9xYKAS" || ev.Credential.ID != "lk1") {
				t.Errorf("%s: source app id %q credential %q: want the id as written and the login key", ev.EventID, ev.Integration.SourceAppID, ev.Credential.ID)
			}
		}
	}
}

// TestLoginsOfTwoAdminsAreTwoCredentials: LoginHistory names no token, so two
// people signing in to one app from two countries must not share a credential
// (impossible travel keys on it).
func TestLoginsOfTwoAdminsAreTwoCredentials(t *testing.T) {
	var creds []string
	for _, raw := range ingesttest.ReadLines(t, ingesttest.Records) {
		evs, _ := NewNormalizer("acme").Normalize(raw)
		for _, ev := range evs {
			if ev.Integration.ID == "app:Salesforce CLI" {
				if ev.Principal.ID == "" || ev.Credential.ID != "login:"+id15(ev.Principal.ID) {
					t.Errorf("login %s: principal %q credential %q", ev.EventID, ev.Principal.ID, ev.Credential.ID)
				}
				creds = append(creds, ev.Credential.ID)
			}
		}
	}
	if len(creds) != 2 || creds[0] == creds[1] {
		t.Fatalf("credentials of the two admins' logins: %v, want two different", creds)
	}
}

func TestNormalizeGolden(t *testing.T) { ingesttest.NormalizeGolden(t, NewNormalizer("acme")) }

// logFiles reads testdata/eventlogs: CSV files as Salesforce serves them, named
// <EventLogFile Id>.<EventType>.<LogDate hour>.csv.
func logFiles(t testing.TB) []fakeLogFile {
	paths, err := filepath.Glob("testdata/eventlogs/*.csv")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no event log files: %v", err)
	}
	var out []fakeLogFile
	for _, p := range paths {
		parts := strings.Split(filepath.Base(p), ".")
		body, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		date, err := time.Parse("2006-01-02T15", parts[2])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fakeLogFile{id: parts[0], eventType: parts[1], logDate: date, body: body})
	}
	return out
}

type fakeLogFile struct {
	id, eventType string
	logDate       time.Time
	body          []byte
}

func logRows(t testing.TB) [][]byte {
	var rows [][]byte
	for _, f := range logFiles(t) {
		recs, err := readLogFile(bytes.NewReader(f.body), f.eventType)
		if err != nil {
			t.Fatalf("%s: %v", f.id, err)
		}
		for _, r := range recs {
			rows = append(rows, r)
		}
	}
	return rows
}

// TestNormalizeGoldenEventLogs: the rows of the CSV event log files in
// testdata/eventlogs, parsed as Fetch parses them, against their golden events.
func TestNormalizeGoldenEventLogs(t *testing.T) {
	ingesttest.GoldenEvents(t, NewNormalizer("acme"), logRows(t), "testdata/golden/eventlogs.jsonl", *ingesttest.Update)
}

func TestReadLogFile(t *testing.T) {
	rows, err := readLogFile(strings.NewReader("\ufeff\"EVENT_TYPE\",\"TIMESTAMP_DERIVED\",\"URI\"\n\"RestApi\",\"2026-10-27T02:13:07.412Z\",\"/a,b\"\"c\"\n"), "RestApi")
	if err != nil || len(rows) != 1 || string(rows[0]) != `{"EVENT_TYPE":"RestApi","TIMESTAMP_DERIVED":"2026-10-27T02:13:07.412Z","URI":"/a,b\"c"}` {
		t.Fatalf("rows %s, err %v", rows, err)
	}
	if _, err := readLogFile(strings.NewReader("\"A\",\"B\"\n\"1\"\n"), "API"); err == nil {
		t.Fatal("a short row was accepted")
	}
	if rows, err := readLogFile(strings.NewReader(""), "API"); err != nil || rows != nil {
		t.Fatalf("empty file: %v %v", rows, err)
	}
}

func FuzzNormalize(f *testing.F) {
	ingesttest.FuzzNormalize(f, NewNormalizer("acme"), append(ingesttest.ReadLines(f, ingesttest.Records), logRows(f)...)...)
}

// fakeQueryAPI reproduces GET /services/data/vXX.X/query: bearer auth, a
// SOQL query over ApiEvent / BulkApiResultEventStore (big-object order:
// newest first) or LoginHistory (ORDER BY LoginTime ASC) with a
// ">= <datetime>" cursor, pages of two with done/nextRecordsUrl
// (/services/data/vXX.X/query/<locator>-<offset>), and one 429 with
// Retry-After on the first follow-up page; the ConnectedApplication list;
// the EventLogFile listing (EventType IN, Interval, LogDate >=) and each
// file's CSV at /services/data/vXX.X/sobjects/EventLogFile/<Id>/LogFile.
type fakeQueryAPI struct {
	*ingesttest.FakeAPI
	objects   map[string][][]byte
	files     []fakeLogFile
	downloads int
}

var (
	fromObject = regexp.MustCompile(`FROM (\w+) WHERE \w+ >= (\S+)`)
	elfList    = regexp.MustCompile(`^SELECT Id, EventType, LogDate, Interval, LogFile, Sequence FROM EventLogFile WHERE EventType IN \(([^)]*)\) AND Interval = '(\w+)' AND LogDate >= (\S+) ORDER BY LogDate ASC, Id ASC$`)
	locator    = regexp.MustCompile(`^/services/data/v61\.0/query/01g(\w+)-(\d+)-(\d+)$`)
	logFileURL = regexp.MustCompile(`^/services/data/v61\.0/sobjects/EventLogFile/(\w+)/LogFile$`)
)

func newFakeQueryAPI(t *testing.T, records [][]byte, files []fakeLogFile) *fakeQueryAPI {
	f := &fakeQueryAPI{objects: map[string][][]byte{}, files: files}
	for _, r := range records {
		var probe record
		json.Unmarshal(r, &probe)
		f.objects[probe.object()] = append(f.objects[probe.object()], r)
	}
	f.FakeAPI = ingesttest.NewFakeAPI(t, nil, "application/json;charset=UTF-8", ingesttest.FakeAuth{Header: "Bearer " + testToken,
		Body: `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`}, f.serve)
	return f
}

func (f *fakeQueryAPI) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Sforce-Query-Options") == "" {
		f.T.Errorf("no Sforce-Query-Options batch size header")
	}
	var object string
	var since time.Time
	var off int
	switch {
	case r.URL.Path == "/services/data/v61.0/query":
		q := r.URL.Query().Get("q")
		f.Queries = append(f.Queries, q)
		if q == "SELECT Id, Name FROM ConnectedApplication" {
			fmt.Fprint(w, `{"totalSize":2,"done":true,"records":[{"attributes":{"type":"ConnectedApplication","url":"/services/data/v61.0/sobjects/ConnectedApplication/0H4Hs000000K9xYKAS"},"Id":"0H4Hs000000K9xYKAS","Name":"Pipeline CRM Sync"},{"attributes":{"type":"ConnectedApplication","url":"/services/data/v61.0/sobjects/ConnectedApplication/0H4Hs000000LaBcKAS"},"Id":"0H4Hs000000LaBcKAS","Name":"Jitterbit Harmony"}]}`)
			return
		}
		if m := elfList.FindStringSubmatch(q); m != nil {
			f.serveLogList(w, m[1], m[2], m[3])
			return
		}
		m := fromObject.FindStringSubmatch(q)
		if m == nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `[{"message":"unexpected token: %s","errorCode":"MALFORMED_QUERY"}]`, q)
			return
		}
		object = m[1]
		var err error
		if since, err = time.Parse("2006-01-02T15:04:05Z", m[2]); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `[{"message":"line 1: invalid datetime %s","errorCode":"MALFORMED_QUERY"}]`, m[2])
			return
		}
	case locator.MatchString(r.URL.Path):
		if f.RateLimitOnce(w, "", `[{"message":"Too many requests","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, "Retry-After", "4") {
			return
		}
		m := locator.FindStringSubmatch(r.URL.Path)
		object = m[1]
		sec, _ := strconv.ParseInt(m[2], 10, 64)
		since = time.Unix(sec, 0).UTC()
		off, _ = strconv.Atoi(m[3])
	case logFileURL.MatchString(r.URL.Path):
		id := logFileURL.FindStringSubmatch(r.URL.Path)[1]
		for _, lf := range f.files {
			if lf.id == id {
				f.downloads++
				w.Header().Set("Content-Type", "text/csv")
				w.Write(lf.body)
				return
			}
		}
		fallthrough
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `[{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}]`)
		return
	}
	match := ingesttest.Since(f.objects[object], since, recordKey)
	ingesttest.SortByTime(match, recordKey, object != ObjectLoginHistory)
	const pageSize = 2 // Salesforce treats batchSize as a hint
	records, end := ingesttest.PageOf(match, off, pageSize)
	resp := struct {
		TotalSize      int               `json:"totalSize"`
		Done           bool              `json:"done"`
		NextRecordsURL string            `json:"nextRecordsUrl,omitempty"`
		Records        []json.RawMessage `json:"records"`
	}{TotalSize: len(match), Done: end == len(match), Records: []json.RawMessage{}}
	for _, raw := range records {
		resp.Records = append(resp.Records, raw)
	}
	if !resp.Done {
		resp.NextRecordsURL = fmt.Sprintf("/services/data/v61.0/query/01g%s-%d-%d", object, since.Unix(), end)
	}
	json.NewEncoder(w).Encode(resp)
}

func (f *fakeQueryAPI) serveLogList(w http.ResponseWriter, types, interval, from string) {
	since, err := time.Parse("2006-01-02T15:04:05Z", from)
	if err != nil || interval != IntervalHourly {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `[{"message":"bad listing %s %s","errorCode":"MALFORMED_QUERY"}]`, interval, from)
		return
	}
	var recs []string
	for _, lf := range f.files {
		if lf.logDate.Before(since) || !strings.Contains(types, "'"+lf.eventType+"'") {
			continue
		}
		recs = append(recs, fmt.Sprintf(`{"attributes":{"type":"EventLogFile","url":"/services/data/v61.0/sobjects/EventLogFile/%[1]s"},"Id":"%[1]s","EventType":"%[2]s","LogDate":"%[3]s","Interval":"Hourly","LogFile":"/services/data/v61.0/sobjects/EventLogFile/%[1]s/LogFile","Sequence":1}`,
			lf.id, lf.eventType, lf.logDate.Format("2006-01-02T15:04:05.000+0000")))
	}
	fmt.Fprintf(w, `{"totalSize":%d,"done":true,"records":[%s]}`, len(recs), strings.Join(recs, ","))
}

func newTestSource(t *testing.T, f *fakeQueryAPI, edit func(cfg any)) *Source {
	t.Setenv("SALESFORCE_ACCESS_TOKEN", testToken)
	return ingesttest.FromSample(t, sampleYAML, New, f.Options("acme"), edit).(*Source)
}

func TestFetchConformance(t *testing.T) {
	records := ingesttest.ReadLines(t, "testdata/records.jsonl")
	files := logFiles(t)
	f := newFakeQueryAPI(t, records, files)
	res := ingesttest.Run(t, newTestSource(t, f, nil))
	rows := logRows(t)
	if len(res.Records) != len(records)+len(rows) {
		t.Errorf("read %d records, want %d query records and %d log rows", len(res.Records), len(records), len(rows))
	}
	if f.downloads < len(files) {
		t.Errorf("downloaded %d log files, want all %d", f.downloads, len(files))
	}
	if rl := res.RateLimits[0]; rl.Status != http.StatusTooManyRequests || rl.RetryAfter != 4*time.Second {
		t.Errorf("rate limit = %+v, want 429 with Retry-After 4s", rl)
	}
	byID := map[string]schemas.Event{}
	var bulkBytes, bulkRows int64
	for _, ev := range res.Events {
		byID[ev.EventID] = ev
		if strings.HasPrefix(ev.Action.Name, "bulkapi2:") {
			bulkBytes += ev.Bytes
			bulkRows += ev.Records
		}
	}
	// The reused-token ApiEvent (ConnectedAppId null) and the login land on
	// the app's id, resolved from its name.
	for _, id := range []string{"d5e6f7a8-4e5f-4a61-8c7d-8e9f0a1b2c34", "a2f9c1d0-1b2c-4d3e-9f4a-5b6c7d8e9f01", "0YaHs00001AbCdEKAV"} {
		if got := byID[id].Integration.ID; got != "0H4Hs000000K9xY" {
			t.Errorf("event %s: integration %q, want the app id 0H4Hs000000K9xY", id, got)
		}
	}
	if bulkRows != 48211 || bulkBytes != 37.5*1024*1024 {
		t.Errorf("Bulk API 2.0 job read %d rows, %d bytes", bulkRows, bulkBytes)
	}
	if want := time.Date(2026, 10, 27, 5, 12, 30, 0, time.UTC); !res.Final.Time.Equal(want) || res.Final.Token != "" {
		t.Errorf("final cursor %+v, want %s", res.Final, want)
	}
	if q := f.Queries[len(f.Queries)-1]; !strings.Contains(q, "FROM ApiEvent WHERE EventDate >= 2026-10-27T05:12:30Z") {
		t.Errorf("re-poll query %q does not start at the final cursor", q)
	}
	// A listing from the final cursor's hour finds no file of the 02:00 hour.
	p, _ := window.Resume(res.Final)
	if q := newTestSource(t, f, nil).elfListQuery(p.Start); !strings.Contains(q, "LogDate >= 2026-10-27T05:00:00Z") {
		t.Errorf("listing %q", q)
	}
}

func TestFetchWithoutNameResolution(t *testing.T) {
	f := newFakeQueryAPI(t, ingesttest.ReadLines(t, ingesttest.Records), nil)
	f.SkipRateLimit()
	src := newTestSource(t, f, func(cfg any) {
		c := cfg.(*Config)
		c.ResolveAppNames, c.Objects = false, []string{ObjectAPIEvent}
	})
	page, err := src.Fetch(context.Background(), ingest.Cursor{})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range f.Queries {
		if strings.Contains(q, "ConnectedApplication") {
			t.Fatalf("looked connected apps up with resolve_app_names off")
		}
	}
	for _, raw := range page.Records {
		if strings.Contains(string(raw), ResolvedAppField) {
			t.Fatalf("record annotated: %s", raw)
		}
	}
}

func TestFetchDailyLimitIsARateLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Sforce-Limit-Info", "api-usage=100000/100000")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`)
	}))
	defer srv.Close()
	src, err := New(ingesttest.YAML([]byte("token: t0k3n\n")), ingest.Options{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Fetch(context.Background(), ingest.Cursor{})
	var rl *ingest.RateLimitError
	if !errors.As(err, &rl) || rl.Status != http.StatusForbidden || rl.RetryAfter != 5*time.Minute {
		t.Fatalf("err = %v, want a 403 REQUEST_LIMIT_EXCEEDED rate limit waiting 5m", err)
	}
}

func TestFetchExpiredSessionIsAnError(t *testing.T) {
	f := newFakeQueryAPI(t, nil, nil)
	src, _ := New(ingesttest.YAML([]byte("token: expired-token\n")), ingest.Options{BaseURL: f.URL})
	_, err := src.Fetch(context.Background(), ingest.Cursor{})
	var rl *ingest.RateLimitError
	if err == nil || errors.As(err, &rl) || !strings.Contains(err.Error(), "INVALID_SESSION_ID") {
		t.Fatalf("err = %v, want INVALID_SESSION_ID", err)
	}
}

func TestFetchRefusesForeignNextRecordsURL(t *testing.T) {
	src, _ := New(ingesttest.YAML([]byte("instance_url: https://example.my.salesforce.com\ntoken: x\n")), ingest.Options{})
	cur := ingest.Cursor{Token: `{"next":"https://evil.example/services/data/v61.0/query/01g-2"}`}
	if _, err := src.Fetch(context.Background(), cur); err == nil || !strings.Contains(err.Error(), "not an instance path") {
		t.Fatalf("err = %v, want refusal", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	cases := []struct{ yaml, wantErr string }{
		{"token: x\n", "instance_url: required"},
		{"instance_url: http://example.my.salesforce.com\ntoken: x\n", "https://"},
		{"instance_url: https://e.my.salesforce.com\ntoken: x\napi_version: 61\n", `api_version "61"`},
		{"instance_url: https://e.my.salesforce.com\n", "token: required"},
		{"instance_url: https://e.my.salesforce.com\ntoken: x\nobjects: [EventLogs]\n", `"EventLogs"`},
		{"instance_url: https://e.my.salesforce.com\ntoken: x\nobjects: [EventLogFile]\nevent_log_types: []\n", "event_log_types: name at least one"},
		{"instance_url: https://e.my.salesforce.com\ntoken: x\nevent_log_types: [\"API' OR\"]\n", "not an EventLogFile event type"},
		{"instance_url: https://e.my.salesforce.com\ntoken: x\nevent_log_interval: Weekly\n", `event_log_interval "Weekly"`},
		{"instance_url: https://e.my.salesforce.com\ntoken: x\nbatch_size: 50\n", "batch_size 50"},
		{"instance_url: https://e.my.salesforce.com\ntoken: x\nobjects: [LoginHistory]\n", ""},
	}
	for _, c := range cases {
		ingesttest.ConfigCase(t, New, c.yaml, c.wantErr)
	}
}
