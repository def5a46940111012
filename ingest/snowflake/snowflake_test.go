package snowflake

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/ingesttest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

//go:embed sample.yaml
var sampleYAML []byte

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

// key is one RSA key pair for the whole test run, made here (no key file is shipped).
func key(t testing.TB) (*rsa.PrivateKey, string) {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	der, err := x509.MarshalPKCS8PrivateKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

var testNow = time.Date(2026, 10, 27, 6, 0, 0, 0, time.UTC)

func TestNormalize(t *testing.T) {
	type want struct {
		id, integration, credType, credID, category, outcome, action, ip, ua, time, resource string
		records, bytes                                                                       int64
		scopes                                                                               []string
	}
	cases := []struct {
		name    string
		raw     string
		want    *want
		wantErr string
	}{
		{
			name: "a key-pair login of a service user",
			raw:  `{"SOURCE_VIEW":"LOGIN_HISTORY","EVENT_ID":"1","EVENT_TIMESTAMP":"1793066282.117000000","EVENT_TYPE":"LOGIN","USER_NAME":"svc_etl","CLIENT_IP":"20.50.2.9","REPORTED_CLIENT_TYPE":"JDBC_DRIVER","REPORTED_CLIENT_VERSION":"3.19.0","FIRST_AUTHENTICATION_FACTOR":"RSA_KEYPAIR","SECOND_AUTHENTICATION_FACTOR":null,"IS_SUCCESS":"YES","ERROR_CODE":null}`,
			want: &want{id: "login:1", integration: "SVC_ETL", credType: "key_pair", category: "authorize", outcome: "success", action: "login", ip: "20.50.2.9", ua: "JDBC_DRIVER 3.19.0", time: "2026-10-27T01:58:02.117Z"},
		},
		{
			name: "a failed password login without MFA is an auth failure",
			raw:  `{"SOURCE_VIEW":"LOGIN_HISTORY","EVENT_ID":"2","EVENT_TIMESTAMP":"1793067187.412000000","USER_NAME":"SVC_REPORTING","CLIENT_IP":"185.220.101.4","REPORTED_CLIENT_TYPE":"OTHER","REPORTED_CLIENT_VERSION":"1.0.0","FIRST_AUTHENTICATION_FACTOR":"PASSWORD","SECOND_AUTHENTICATION_FACTOR":null,"IS_SUCCESS":"NO","ERROR_CODE":"390100"}`,
			want: &want{id: "login:2", integration: "SVC_REPORTING", credType: "password", category: "auth_failure", outcome: "failure", action: "login", ip: "185.220.101.4", ua: "OTHER 1.0.0", time: "2026-10-27T02:13:07.412Z"},
		},
		{
			name: "a second factor shows in the credential type",
			raw:  `{"EVENT_ID":"3","EVENT_TIMESTAMP":"2026-10-27T02:20:41.003Z","USER_NAME":"JDOE","FIRST_AUTHENTICATION_FACTOR":"PASSWORD","SECOND_AUTHENTICATION_FACTOR":"DUO_SECURITY","IS_SUCCESS":"YES"}`,
			want: &want{id: "login:3", integration: "JDOE", credType: "password+duo_security", category: "authorize", outcome: "success", action: "login", time: "2026-10-27T02:20:41.003Z"},
		},
		{
			name: "COPY INTO a stage: rows unloaded and bytes scanned, the client from SESSIONS",
			raw:  `{"SOURCE_VIEW":"QUERY_HISTORY","QUERY_ID":"q1","START_TIME":"1793067423.777000000","QUERY_TYPE":"UNLOAD","QUERY_TEXT_SHA256":"3e2d","USER_NAME":"SVC_REPORTING","ROLE_NAME":"REPORTING","WAREHOUSE_NAME":"WH","DATABASE_NAME":"ANALYTICS","SCHEMA_NAME":"PUBLIC","EXECUTION_STATUS":"SUCCESS","ERROR_CODE":null,"ROWS_PRODUCED":"1","ROWS_UNLOADED":"9812400","BYTES_SCANNED":"2147483648","SESSION_ID":"2199","CLIENT_APPLICATION_ID":"rapeflake 1.0.0","AUTHENTICATION_METHOD":"PASSWORD"}`,
			want: &want{id: "q1", integration: "SVC_REPORTING", credType: "password", credID: "session:2199", category: "access", outcome: "success", action: "UNLOAD", ua: "rapeflake 1.0.0",
				time: "2026-10-27T02:17:03.777Z", resource: "schema:ANALYTICS.PUBLIC", records: 9812400, bytes: 2147483648, scopes: []string{"role:REPORTING"}},
		},
		{
			name: "a failed SELECT, no session row yet (SESSIONS lags)",
			raw:  `{"SOURCE_VIEW":"QUERY_HISTORY","QUERY_ID":"q2","START_TIME":"1793067730.300000000","QUERY_TYPE":"SELECT","USER_NAME":"JDOE","ROLE_NAME":null,"DATABASE_NAME":null,"EXECUTION_STATUS":"FAIL","ROWS_PRODUCED":"0","BYTES_SCANNED":"0","SESSION_ID":"77","CLIENT_APPLICATION_ID":null,"AUTHENTICATION_METHOD":null}`,
			want: &want{id: "q2", integration: "JDOE", credID: "session:77", category: "access", outcome: "failure", action: "SELECT", time: "2026-10-27T02:22:10.300Z"},
		},
		{
			name: "a grant is admin",
			raw:  `{"QUERY_ID":"q3","START_TIME":"1793067730.3","QUERY_TYPE":"GRANT","USER_NAME":"ADMIN","EXECUTION_STATUS":"SUCCESS"}`,
			want: &want{id: "q3", integration: "ADMIN", category: "admin", outcome: "success", action: "GRANT", time: "2026-10-27T02:22:10.300Z"},
		},
		{
			name: "a query type not known yet is other",
			raw:  `{"QUERY_ID":"q4","START_TIME":"1793067730.300000000 1440","QUERY_TYPE":"CREATE_SEMANTIC_VIEW","USER_NAME":"ADMIN","EXECUTION_STATUS":"RUNNING"}`,
			want: &want{id: "q4", integration: "ADMIN", category: "other", outcome: "unknown", action: "CREATE_SEMANTIC_VIEW", time: "2026-10-27T02:22:10.300Z"},
		},
		{
			name: "a row of another view is other",
			raw:  `{"SOURCE_VIEW":"ACCESS_HISTORY","QUERY_ID":"q5","START_TIME":"2026-10-27T02:22:10.300Z","USER_NAME":"ADMIN"}`,
			want: &want{id: "access_history:h397ed70a4cb5937d764334b3", integration: "ADMIN", category: "other", outcome: "unknown", action: "access_history", time: "2026-10-27T02:22:10.300Z"},
		},
		{name: "a login without a user", raw: `{"SOURCE_VIEW":"LOGIN_HISTORY","EVENT_ID":"9","EVENT_TIMESTAMP":"1793066282.117000000"}`, wantErr: "no USER_NAME"},
		{name: "a bad timestamp", raw: `{"SOURCE_VIEW":"QUERY_HISTORY","QUERY_ID":"x","START_TIME":"27/10/2026","USER_NAME":"A"}`, wantErr: `START_TIME "27/10/2026"`},
		{name: "a number where a string belongs", raw: `{"SOURCE_VIEW":"QUERY_HISTORY","QUERY_ID":1}`, wantErr: "decode row"},
		{name: "not a row", raw: `{"foo":"bar"}`, wantErr: "unknown row shape"},
	}
	src := NewNormalizer("acme")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ingesttest.NormalizeCase(t, src, c.raw, ingesttest.One(c.want), c.wantErr, func(t *testing.T, ev schemas.Event) want {
				if ev.Tenant != "acme" || string(ev.Raw) != c.raw {
					t.Errorf("tenant %q / raw not kept", ev.Tenant)
				}
				return want{id: ev.EventID, integration: ev.Integration.ID, credType: ev.Credential.Type, credID: ev.Credential.ID, category: ev.Action.Category,
					outcome: ev.Outcome, action: ev.Action.Name, ip: ev.Network.IP, ua: ev.Network.UserAgent, time: ingesttest.TimeString(ev),
					resource: ingesttest.ResourceString(ev), records: ev.Records, bytes: ev.Bytes, scopes: ev.Scopes}
			})
		})
	}
}

// TestNormalizeWholeResultSet: a SQL API answer saved whole normalizes row by row.
func TestNormalizeWholeResultSet(t *testing.T) {
	raw := `{"resultSetMetaData":{"numRows":2,"format":"jsonv2","partitionInfo":[{"rowCount":2,"uncompressedSize":300}],"rowType":[{"name":"SOURCE_VIEW","type":"text","nullable":false},{"name":"QUERY_ID","type":"text"},{"name":"START_TIME","type":"timestamp_ltz","scale":3},{"name":"QUERY_TYPE","type":"text"},{"name":"USER_NAME","type":"text"},{"name":"ROWS_PRODUCED","type":"fixed"}]},` +
		`"data":[["QUERY_HISTORY","a","1793067730.300000000","SELECT","SVC_A","10"],["QUERY_HISTORY","b","1793067731.000000000","SELECT","SVC_A",null]],"code":"090001","statementStatusUrl":"/api/v2/statements/01b7?requestId=x","sqlState":"00000","statementHandle":"01b7","message":"Statement executed successfully.","createdOn":1793067800000}`
	evs, err := NewNormalizer("acme").Normalize([]byte(raw))
	if err != nil || len(evs) != 2 || evs[0].Records != 10 || evs[1].EventID != "b" {
		t.Fatalf("%+v %v", evs, err)
	}
}

func TestNormalizeGolden(t *testing.T) { ingesttest.NormalizeGolden(t, NewNormalizer("acme")) }

func FuzzNormalize(f *testing.F) { ingesttest.FuzzNormalize(f, NewNormalizer("acme")) }

// fakeSQLAPI reproduces the SQL API: POST /api/v2/statements (the JWT with
// X-Snowflake-Authorization-Token-Type: KEYPAIR_JWT, the statement of a
// view with its one TEXT binding, database SNOWFLAKE, schema ACCOUNT_USAGE)
// answering with the first partition of two rows, the rowType and the
// partitionInfo; GET /api/v2/statements/{handle}?partition=N for the rest;
// the first QUERY_HISTORY statement answered 202 (still running) once; one
// 429 with Retry-After on the first partition request; 401 with
// Snowflake's body for a bad token.
type fakeSQLAPI struct {
	*ingesttest.FakeAPI
	views      map[string][][]byte
	handles    map[string][][]*string // handle → rows
	cols       map[string][]string
	running    map[string]bool
	statements []string
}

const pageRows = 2

func newFakeSQLAPI(t *testing.T, records [][]byte) *fakeSQLAPI {
	k, _ := key(t)
	tok, _, err := signJWT(k, "myorg-myaccount", "tokenwatch_reader", testNow)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSQLAPI{views: map[string][][]byte{}, handles: map[string][][]*string{}, cols: map[string][]string{}, running: map[string]bool{}}
	for _, r := range records {
		var rw row
		json.Unmarshal(r, &rw)
		f.views[viewOf(rw)] = append(f.views[viewOf(rw)], r)
	}
	f.FakeAPI = ingesttest.NewFakeAPI(t, nil, "application/json", ingesttest.FakeAuth{Header: "Bearer " + tok,
		Body: `{"code":"390144","message":"JWT token is invalid. [a1b2c3d4-0000-4000-8000-000000000000]"}`}, f.serve)
	return f
}

func (f *fakeSQLAPI) serve(w http.ResponseWriter, r *http.Request) {
	if got := r.Header.Get("X-Snowflake-Authorization-Token-Type"); got != "KEYPAIR_JWT" {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"code":"390101","message":"Authorization token type %q is not supported."}`, got)
		return
	}
	f.checkJWT(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/v2/statements":
		var body struct {
			Statement string `json:"statement"`
			Database  string `json:"database"`
			Schema    string `json:"schema"`
			Timeout   int    `json:"timeout"`
			Bindings  map[string]struct{ Type, Value string }
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Database != "SNOWFLAKE" || body.Schema != "ACCOUNT_USAGE" || body.Timeout <= 0 {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"code":"390142","message":"Incoming request body is invalid: %v"}`, err)
			return
		}
		f.statements = append(f.statements, body.Statement)
		view := ""
		for v, st := range statements {
			if body.Statement == st {
				view = v
			}
		}
		b, ok := body.Bindings["1"]
		since, err := time.Parse("2006-01-02T15:04:05.000Z", b.Value)
		if view == "" || !ok || b.Type != "TEXT" || err != nil || !strings.Contains(body.Statement, ">= TO_TIMESTAMP_LTZ(?)") {
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprintf(w, `{"code":"002003","message":"SQL compilation error: unexpected statement or binding %q","sqlState":"42S02","statementHandle":"01b7f0a2-0000-4000-8000-000000000bad"}`, b.Value)
			return
		}
		handle := fmt.Sprintf("01b7f0a2-0000-4000-8000-%012d", len(f.statements))
		var rows [][]*string
		var cols []string
		for _, raw := range f.views[view] {
			tm, _, _ := recordKey(raw)
			if tm.Before(since) {
				continue
			}
			var obj map[string]*string
			json.Unmarshal(raw, &obj)
			if cols == nil {
				cols = columnsOf(raw)
			}
			vals := make([]*string, len(cols))
			for i, c := range cols {
				vals[i] = obj[c]
			}
			rows = append(rows, vals)
		}
		if cols == nil {
			cols = []string{"SOURCE_VIEW"}
		}
		f.handles[handle], f.cols[handle] = rows, cols
		if view == ViewQueryHistory && !f.running["done"] {
			f.running["done"], f.running[handle] = true, true
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, `{"code":"333334","message":"Asynchronous execution in progress. Use provided query id to perform query monitoring and management.","statementHandle":"%s","statementStatusUrl":"/api/v2/statements/%s"}`, handle, handle)
			return
		}
		f.writePartition(w, handle, 0, true)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v2/statements/"):
		handle := strings.TrimPrefix(r.URL.Path, "/api/v2/statements/")
		if _, ok := f.handles[handle]; !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"code":"333333","message":"Statement not found"}`)
			return
		}
		if ps := r.URL.Query().Get("partition"); ps != "" {
			if f.RateLimitOnce(w, "", `{"code":"390503","message":"Too many requests."}`, "Retry-After", "3") {
				return
			}
			n, _ := strconv.Atoi(ps)
			f.writePartition(w, handle, n, false)
			return
		}
		f.running[handle] = false
		f.writePartition(w, handle, 0, true) // status of a finished statement: its result
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"code":"390404","message":"Not found"}`)
	}
}

// columnsOf lists a record's keys in their order in the file.
func columnsOf(raw []byte) []string {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.Token()
	var cols []string
	for dec.More() {
		k, _ := dec.Token()
		cols = append(cols, k.(string))
		var v json.RawMessage
		dec.Decode(&v)
	}
	return cols
}

func (f *fakeSQLAPI) writePartition(w http.ResponseWriter, handle string, n int, meta bool) {
	rows := f.handles[handle]
	parts := max((len(rows)+pageRows-1)/pageRows, 1)
	if n >= parts {
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprintf(w, `{"code":"333335","message":"partition %d out of range"}`, n)
		return
	}
	resp := map[string]any{"data": rows[min(n*pageRows, len(rows)):min((n+1)*pageRows, len(rows))]}
	if meta {
		var info, types []map[string]any
		for p := 0; p < parts; p++ {
			info = append(info, map[string]any{"rowCount": min(pageRows, len(rows)-p*pageRows), "uncompressedSize": 512})
		}
		for _, c := range f.cols[handle] {
			types = append(types, map[string]any{"name": c, "type": "text", "nullable": true, "length": 16777216, "byteLength": 16777216, "precision": nil, "scale": nil})
		}
		resp["resultSetMetaData"] = map[string]any{"numRows": len(rows), "format": "jsonv2", "partitionInfo": info, "rowType": types}
		resp["code"], resp["sqlState"], resp["statementHandle"], resp["message"] = "090001", "00000", handle, "Statement executed successfully."
	}
	json.NewEncoder(w).Encode(resp)
}

func (f *fakeSQLAPI) checkJWT(tok string) {
	k, _ := key(f.T)
	var c jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(tok, &c, func(t *jwt.Token) (any, error) { return &k.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return testNow }))
	if err != nil {
		f.T.Errorf("JWT: %v", err)
		return
	}
	if c.Subject != "MYORG-MYACCOUNT.TOKENWATCH_READER" || !strings.HasPrefix(c.Issuer, c.Subject+".SHA256:") || c.ExpiresAt.Sub(c.IssuedAt.Time) != time.Hour {
		f.T.Errorf("JWT claims %+v", c)
	}
}

func newTestSource(t *testing.T, f *fakeSQLAPI) *Source {
	_, pemKey := key(t)
	t.Setenv("SNOWFLAKE_PRIVATE_KEY", pemKey)
	src := ingesttest.FromSample(t, sampleYAML, New, f.Options("acme"), nil).(*Source)
	src.now = func() time.Time { return testNow }
	return src
}

func TestFetchConformance(t *testing.T) {
	records := ingesttest.ReadLines(t, ingesttest.Records)
	f := newFakeSQLAPI(t, records)
	res := ingesttest.Run(t, newTestSource(t, f))
	if len(res.Records) != len(records) {
		t.Errorf("read %d rows, want %d", len(res.Records), len(records))
	}
	if rl := res.RateLimits[0]; rl.Status != http.StatusTooManyRequests || rl.RetryAfter != 3*time.Second {
		t.Errorf("rate limit = %+v, want 429 with Retry-After 3s", rl)
	}
	var unloaded int64
	for _, ev := range res.Events {
		if ev.Action.Name == "UNLOAD" {
			unloaded += ev.Records
		}
	}
	if unloaded != 9812400 {
		t.Errorf("rows unloaded %d", unloaded)
	}
	if want := time.Date(2026, 10, 27, 2, 22, 10, 300e6, time.UTC); !res.Final.Time.Equal(want) || res.Final.Token != "" {
		t.Errorf("final cursor %+v, want %s", res.Final, want)
	}
	for _, st := range f.statements {
		if strings.Contains(st, "QUERY_TEXT") && !strings.Contains(st, "SHA2(q.QUERY_TEXT, 256)") {
			t.Errorf("query text selected in clear: %s", st)
		}
	}
}

func TestFetchBadKeyIs401(t *testing.T) {
	f := newFakeSQLAPI(t, nil)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(other)
	t.Setenv("SNOWFLAKE_PRIVATE_KEY", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	src := ingesttest.FromSample(t, sampleYAML, New, f.Options("acme"), nil).(*Source)
	src.now = func() time.Time { return testNow }
	_, err = src.Fetch(context.Background(), ingest.Cursor{})
	var rl *ingest.RateLimitError
	if err == nil || errors.As(err, &rl) || !strings.Contains(err.Error(), "390144") || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("err = %v, want the 401 JWT error", err)
	}
}

func TestFetchUnreadableKey(t *testing.T) {
	t.Setenv("SNOWFLAKE_PRIVATE_KEY", "not a key")
	src := ingesttest.FromSample(t, sampleYAML, New, ingest.Options{BaseURL: "http://127.0.0.1:1"}, nil)
	_, err := src.Fetch(context.Background(), ingest.Cursor{})
	if err == nil || !strings.Contains(err.Error(), "private_key") || strings.Contains(err.Error(), "not a key") {
		t.Fatalf("err = %v, want a private_key error without the key", err)
	}
}

func TestJWTAccount(t *testing.T) {
	for in, want := range map[string]string{"myorg-myaccount": "MYORG-MYACCOUNT", "xy12345.us-east-2.aws": "XY12345", "xy12345": "XY12345"} {
		if got := jwtAccount(in); got != want {
			t.Errorf("jwtAccount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	cases := []struct{ yaml, wantErr string }{
		{"user: u\nprivate_key: k\n", "account"},
		{"account: a/b\nuser: u\nprivate_key: k\n", `account "a/b"`},
		{"account: a\nprivate_key: k\n", "user"},
		{"account: a\nuser: u\n", "private_key: required"},
		{"account: a\nuser: u\nprivate_key: k\nviews: [ACCESS_HISTORY]\n", `"ACCESS_HISTORY"`},
		{"account: a\nuser: u\nprivate_key: k\nrole: \"x; drop\"\n", "role"},
		{"account: a\nuser: u\nprivate_key: k\ntimeout: 0\n", "timeout 0"},
		{"account: a\nuser: u\nprivate_key: k\nviews: [LOGIN_HISTORY]\n", ""},
	}
	for _, c := range cases {
		ingesttest.ConfigCase(t, New, c.yaml, c.wantErr)
	}
}
