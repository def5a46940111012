package snowflake

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// row is one result row as Fetch writes it: column name → string or null,
// the SQL API's own value encoding.
type row map[string]*string

func (r row) get(col string) string {
	if v := r[col]; v != nil {
		return strings.TrimSpace(*v)
	}
	return ""
}

// Normalize maps one row of LOGIN_HISTORY or QUERY_HISTORY to an event. It
// also takes a whole SQL API result (resultSetMetaData + data, as saved from
// the API) and maps every row. Rows of another view with a time and a user
// become events of category other.
func (s *Source) Normalize(raw json.RawMessage) ([]schemas.Event, error) {
	return normalize(raw, s.tenant)
}

func normalize(raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	var probe struct {
		Meta *struct {
			RowType []struct {
				Name string `json:"name"`
			} `json:"rowType"`
		} `json:"resultSetMetaData"`
		Data [][]*string `json:"data"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("snowflake: decode record: %w", err)
	}
	if probe.Meta != nil {
		cols := make([]string, len(probe.Meta.RowType))
		for i, c := range probe.Meta.RowType {
			cols[i] = c.Name
		}
		var out []schemas.Event
		for i, d := range probe.Data {
			obj, err := rowObject(cols, d)
			if err != nil {
				return nil, fmt.Errorf("snowflake: result row %d: %w", i, err)
			}
			evs, err := normalizeRow(obj, tenant)
			if err != nil {
				return nil, fmt.Errorf("snowflake: result row %d: %w", i, err)
			}
			out = append(out, evs...)
		}
		return out, nil
	}
	return normalizeRow(raw, tenant)
}

func normalizeRow(raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	var r row
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("snowflake: decode row (want column → string or null): %w", err)
	}
	switch view := viewOf(r); view {
	case ViewLoginHistory:
		return normalizeLogin(r, raw, tenant)
	case ViewQueryHistory:
		return normalizeQuery(r, raw, tenant)
	case "":
		return nil, errors.New("snowflake: unknown row shape: no SOURCE_VIEW, EVENT_TIMESTAMP or QUERY_ID")
	default:
		return normalizeOther(r, view, raw, tenant)
	}
}

// viewOf is SOURCE_VIEW, else what the columns say (rows exported by hand).
func viewOf(r row) string {
	switch {
	case r.get("SOURCE_VIEW") != "":
		return strings.ToUpper(r.get("SOURCE_VIEW"))
	case r.get("EVENT_TIMESTAMP") != "" && r.get("EVENT_ID") != "":
		return ViewLoginHistory
	case r.get("QUERY_ID") != "" && r.get("START_TIME") != "":
		return ViewQueryHistory
	}
	return ""
}

// integration is the user: service users are the non-human identities of a
// Snowflake account. Names are identifiers, compared upper case.
func integration(user string) schemas.Integration {
	u := strings.ToUpper(user)
	return schemas.Integration{ID: u, SourceAppID: user, Name: u}
}

// credentialType maps FIRST_AUTHENTICATION_FACTOR / AUTHENTICATION_METHOD.
func credentialType(factor string) string {
	switch f := strings.ToUpper(factor); f {
	case "":
		return ""
	case "PASSWORD":
		return "password"
	case "RSA_KEYPAIR":
		return "key_pair"
	case "OAUTH_ACCESS_TOKEN", "OAUTH":
		return "oauth_token"
	case "PROGRAMMATIC_ACCESS_TOKEN":
		return "pat"
	case "SAML2_ASSERTION", "SAML":
		return "saml"
	case "JWT":
		return "jwt"
	default:
		return strings.ToLower(f)
	}
}

func normalizeLogin(r row, raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	t, err := parseTime("EVENT_TIMESTAMP", r.get("EVENT_TIMESTAMP"))
	if err != nil {
		return nil, err
	}
	user := r.get("USER_NAME")
	if user == "" {
		return nil, fmt.Errorf("snowflake: login %s has no USER_NAME", r.get("EVENT_ID"))
	}
	cred := credentialType(r.get("FIRST_AUTHENTICATION_FACTOR"))
	if second := r.get("SECOND_AUTHENTICATION_FACTOR"); second != "" && cred != "" {
		cred += "+" + strings.ToLower(second) // a second factor: MFA
	}
	ev := schemas.Event{
		EventID:     "login:" + firstNonEmpty(r.get("EVENT_ID"), hashID(raw)),
		Source:      SourceName,
		Tenant:      tenant,
		Time:        schemas.NewTime(t),
		Integration: integration(user),
		Credential:  schemas.Credential{Type: cred},
		Principal:   schemas.Principal{ID: strings.ToUpper(user), Type: "user"},
		Action:      schemas.Action{Name: "login", Category: schemas.CategoryAuthorize},
		TargetApp:   "snowflake",
		Network:     schemas.Network{IP: r.get("CLIENT_IP"), UserAgent: strings.TrimSpace(r.get("REPORTED_CLIENT_TYPE") + " " + r.get("REPORTED_CLIENT_VERSION"))},
		Outcome:     "success",
		Raw:         raw,
	}
	if t := r.get("EVENT_TYPE"); t != "" && t != "LOGIN" {
		ev.Action.Name = strings.ToLower(t)
	}
	switch strings.ToUpper(r.get("IS_SUCCESS")) {
	case "YES", "TRUE":
	case "NO", "FALSE":
		ev.Action.Category, ev.Outcome = schemas.CategoryAuthFailure, "failure"
	default:
		ev.Outcome = "unknown"
	}
	return []schemas.Event{ev}, nil
}

// Query types by what they do. Types not listed are category other: new
// types appear with new features.
var (
	readTypes = set("SELECT", "SHOW", "DESCRIBE", "DESCRIBE_QUERY", "EXPLAIN", "GET_FILES", "UNLOAD", "LIST_FILES",
		"CALL", "USE", "SET", "UNSET", "ALTER_SESSION", "COMMIT", "ROLLBACK", "BEGIN_TRANSACTION")
	writeTypes = set("INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "MULTI_TABLE_INSERT", "TRUNCATE_TABLE",
		"CREATE_TABLE", "CREATE_TABLE_AS_SELECT", "DROP", "ALTER_TABLE", "PUT_FILES", "REMOVE_FILES",
		"CREATE_VIEW", "CREATE", "RENAME_TABLE", "ALTER_TABLE_ADD_COLUMN", "RESTORE")
	adminTypes = set("CREATE_USER", "ALTER_USER", "DROP_USER", "CREATE_ROLE", "DROP_ROLE", "GRANT", "REVOKE",
		"ALTER_ACCOUNT", "CREATE_NETWORK_POLICY", "ALTER_NETWORK_POLICY", "CREATE_SECURITY_INTEGRATION",
		"ALTER_SECURITY_INTEGRATION", "CREATE_STAGE", "ALTER_STAGE", "CREATE_EXTERNAL_STAGE")
)

func set(v ...string) map[string]bool {
	m := map[string]bool{}
	for _, s := range v {
		m[s] = true
	}
	return m
}

func queryCategory(qt string) string {
	switch qt = strings.ToUpper(qt); {
	case readTypes[qt]:
		return schemas.CategoryAccess
	case writeTypes[qt]:
		return schemas.CategoryModify
	case adminTypes[qt], strings.HasPrefix(qt, "GRANT"), strings.HasPrefix(qt, "REVOKE"):
		return schemas.CategoryAdmin
	}
	return schemas.CategoryOther
}

func normalizeQuery(r row, raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	t, err := parseTime("START_TIME", r.get("START_TIME"))
	if err != nil {
		return nil, err
	}
	user := r.get("USER_NAME")
	if user == "" {
		return nil, fmt.Errorf("snowflake: query %s has no USER_NAME", r.get("QUERY_ID"))
	}
	qt := firstNonEmpty(r.get("QUERY_TYPE"), "UNKNOWN")
	ev := schemas.Event{
		EventID:     firstNonEmpty(r.get("QUERY_ID"), hashID(raw)),
		Source:      SourceName,
		Tenant:      tenant,
		Time:        schemas.NewTime(t),
		Integration: integration(user),
		Credential:  schemas.Credential{Type: credentialType(r.get("AUTHENTICATION_METHOD"))},
		Principal:   schemas.Principal{ID: strings.ToUpper(user), Type: "user"},
		Action:      schemas.Action{Name: qt, Category: queryCategory(qt)},
		TargetApp:   "snowflake",
		Network:     schemas.Network{UserAgent: r.get("CLIENT_APPLICATION_ID")},
		Records:     max(count(r.get("ROWS_PRODUCED")), count(r.get("ROWS_UNLOADED"))),
		Bytes:       count(r.get("BYTES_SCANNED")),
		Raw:         raw,
	}
	if sid := r.get("SESSION_ID"); sid != "" {
		ev.Credential.ID = "session:" + sid // one login's session: a token's worth
	}
	if role := r.get("ROLE_NAME"); role != "" {
		ev.Scopes = []string{"role:" + role}
	}
	if db := r.get("DATABASE_NAME"); db != "" {
		id := db
		if sc := r.get("SCHEMA_NAME"); sc != "" {
			id += "." + sc
		}
		ev.Resource = schemas.Resource{Type: "schema", ID: id}
	}
	switch strings.ToUpper(r.get("EXECUTION_STATUS")) {
	case "SUCCESS":
		ev.Outcome = "success"
	case "FAIL", "FAILED_WITH_ERROR", "FAILED_WITH_INCIDENT", "INCIDENT":
		ev.Outcome = "failure"
	default:
		ev.Outcome = "unknown"
	}
	return []schemas.Event{ev}, nil
}

func normalizeOther(r row, view string, raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	v := firstNonEmpty(r.get("EVENT_TIMESTAMP"), r.get("START_TIME"), r.get("CREATED_ON"))
	t, err := parseTime(view+" time", v)
	if err != nil {
		return nil, err
	}
	user := r.get("USER_NAME")
	if user == "" {
		return nil, nil
	}
	ev := schemas.Event{
		EventID:     strings.ToLower(view) + ":" + hashID(raw),
		Source:      SourceName,
		Tenant:      tenant,
		Time:        schemas.NewTime(t),
		Integration: integration(user),
		Principal:   schemas.Principal{ID: strings.ToUpper(user), Type: "user"},
		Action:      schemas.Action{Name: strings.ToLower(view), Category: schemas.CategoryOther},
		TargetApp:   "snowflake",
		Network:     schemas.Network{IP: r.get("CLIENT_IP")},
		Outcome:     "unknown",
		Raw:         raw,
	}
	return []schemas.Event{ev}, nil
}

// recordKey is the (time, id) the window tracks.
func recordKey(raw json.RawMessage) (time.Time, string, bool) {
	var r row
	if json.Unmarshal(raw, &r) != nil {
		return time.Time{}, "", false
	}
	var v, id string
	switch viewOf(r) {
	case ViewLoginHistory:
		v, id = r.get("EVENT_TIMESTAMP"), "login:"+r.get("EVENT_ID")
	case ViewQueryHistory:
		v, id = r.get("START_TIME"), r.get("QUERY_ID")
	default:
		return time.Time{}, "", false
	}
	t, err := parseTime("time", v)
	if err != nil || id == "" || id == "login:" {
		return time.Time{}, "", false
	}
	return t, id, true
}

// parseTime reads the SQL API's TIMESTAMP_LTZ/NTZ encoding, seconds since
// the epoch with nine decimals ("1761531187.412000000"), TIMESTAMP_TZ's
// (the same, a space and the offset in minutes plus 1440), or RFC 3339 /
// "2006-01-02 15:04:05.000 -0700" (rows exported from a worksheet).
func parseTime(field, v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, fmt.Errorf("snowflake: row has no %s", field)
	}
	epoch, _, _ := strings.Cut(v, " ")
	if sec, frac, ok := strings.Cut(epoch, "."); ok || isDigits(epoch) {
		s, err1 := strconv.ParseInt(sec, 10, 64)
		var ns int64
		var err2 error
		if ok {
			if len(frac) > 9 || !isDigits(frac) {
				err2 = errors.New("fraction")
			} else {
				ns, err2 = strconv.ParseInt((frac + "000000000")[:9], 10, 64)
			}
		}
		if err1 == nil && err2 == nil && s > -62135596800 && s < 253402300800 {
			return time.Unix(s, ns).UTC(), nil
		}
	}
	for _, l := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.000 -0700", "2006-01-02 15:04:05.000 Z07:00"} {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("snowflake: %s %q is not a Snowflake timestamp", field, v)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// count reads a NUMBER column ("48211", "1.2E7"); anything else is 0.
func count(v string) int64 {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return n
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 9e18 && !math.IsNaN(f) {
		return int64(f)
	}
	return 0
}

func hashID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return "h" + hex.EncodeToString(sum[:12])
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
