package salesforce

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// record holds the fields of the queried objects; attributes.type (or, in
// exports without it, which time field is present) says which one it is.
// Event log file rows are told apart by their EVENT_TYPE column (see elfRow).
type record struct {
	Attributes struct {
		Type string `json:"type"`
	} `json:"attributes"`
	// ApiEvent, BulkApiResultEvent(Store)
	EventIdentifier string          `json:"EventIdentifier"`
	EventDate       string          `json:"EventDate"`
	Username        string          `json:"Username"`
	UserAgent       string          `json:"UserAgent"`
	ConnectedAppID  string          `json:"ConnectedAppId"`
	Client          string          `json:"Client"`
	Operation       string          `json:"Operation"`
	QueriedEntities string          `json:"QueriedEntities"`
	RowsProcessed   json.RawMessage `json:"RowsProcessed"`
	SessionKey      string          `json:"SessionKey"`
	LoginKey        string          `json:"LoginKey"`
	JobID           string          `json:"JobId"`
	BatchID         string          `json:"BatchId"`
	// LoginHistory
	ID             string `json:"Id"`
	LoginTime      string `json:"LoginTime"`
	LoginType      string `json:"LoginType"`
	Status         string `json:"Status"`
	LoginURL       string `json:"LoginUrl"`
	ClientVersion  string `json:"ClientVersion"`
	ForwardedForIP string `json:"ForwardedForIp"`
	CountryISO     string `json:"CountryIso"`
	// several
	UserID      string `json:"UserId"`
	SourceIP    string `json:"SourceIp"`
	Application string `json:"Application"`
	APIType     string `json:"ApiType"`
	// ResolvedAppID is not a Salesforce field: Fetch adds it to records that
	// name their connected app only by name (Application, CONNECTED_APP_NAME),
	// with the app's id from the org's ConnectedApplication list, so that
	// every record of one app gets the same integration id (identityOf).
	ResolvedAppID string `json:"TokenwatchConnectedAppId"`
}

// ResolvedAppField is the member Fetch adds to a record whose connected app
// it resolved from the app's name.
const ResolvedAppField = "TokenwatchConnectedAppId"

func (r *record) object() string {
	switch {
	case r.Attributes.Type != "":
		return r.Attributes.Type
	case r.JobID != "" && r.EventDate != "":
		return ObjectBulkAPIResult
	case r.EventDate != "" || r.EventIdentifier != "":
		return ObjectAPIEvent
	case r.LoginTime != "":
		return ObjectLoginHistory
	}
	return ""
}

// writeOperations are the operations (ApiEvent Operation, API log METHOD_NAME,
// Bulk OPERATION_TYPE) that change data.
var writeOperations = []string{"create", "update", "upsert", "delete", "undelete", "merge", "convertlead", "process", "insert", "hard_delete", "harddelete"}

func isWrite(op string) bool {
	op = strings.ToLower(op)
	for _, w := range writeOperations {
		if strings.HasPrefix(op, w) {
			return true
		}
	}
	return false
}

// Normalize maps one record to at most one event: an ApiEvent,
// BulkApiResultEvent(Store) or LoginHistory record as the query API returns
// it, or one row of an event log file (Fetch turns each CSV row into a JSON
// object of its columns). Records no integration can be named for (browser
// logins, API calls with neither connected app, application, client nor
// user) yield none. Objects and event types it does not know become events
// of category other when they carry a time and a user or app; only records
// that are not Salesforce records at all fail.
func (s *Source) Normalize(raw json.RawMessage) ([]schemas.Event, error) {
	evs, err := normalize(raw, s.tenant)
	if s.learned != nil {
		for i := range evs {
			s.learned.resolve(&evs[i].Integration)
		}
	}
	return evs, err
}

var _ ingest.Learner = (*Source)(nil)

// Learn notes the connected app id a record gives with the app's name
// (ConnectedAppId with Application; CONNECTED_APP_ID with
// CONNECTED_APP_NAME), so that Normalize keys the records naming the app only
// by name (a call reusing a valid token has a null ConnectedAppId) by the
// same id: one app, one integration, offline too, where Fetch's lookup of
// the org's ConnectedApplication list is not available.
func (s *Source) Learn(raw json.RawMessage) {
	if s.learned == nil {
		return
	}
	if row, ok := elfRowOf(raw); ok {
		s.learned.learn(row.get("CONNECTED_APP_ID", ResolvedAppField), row.get("CONNECTED_APP_NAME"))
		return
	}
	var k struct {
		ID       string `json:"ConnectedAppId"`
		Resolved string `json:"TokenwatchConnectedAppId"`
		Name     string `json:"Application"`
	}
	if json.Unmarshal(raw, &k) == nil {
		s.learned.learn(firstNonEmpty(k.ID, k.Resolved), k.Name)
	}
}

// appIDs maps connected app names to the ids records gave with them. A name
// seen with two ids (two apps of one label, or one re-created) is
// ambiguous: its name-only records stay keyed by the name rather than be
// given to either app.
type appIDs struct {
	mu  sync.Mutex
	ids map[string]appID // app name → its id
}

type appID struct {
	id, source string // 15-character form, as written
	ambiguous  bool
}

// maxLearnedApps bounds the table: an org has hundreds of connected apps,
// not millions; past the bound names stay keyed by name.
const maxLearnedApps = 100_000

func newAppIDs() *appIDs { return &appIDs{ids: map[string]appID{}} }

func (a *appIDs) learn(id, name string) {
	id, name = usable(id), usable(name)
	if id == "" || name == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch got, ok := a.ids[name]; {
	case !ok && len(a.ids) < maxLearnedApps:
		a.ids[name] = appID{id: id15(id), source: id}
	case ok && got.id != id15(id):
		got.ambiguous = true
		a.ids[name] = got
	}
}

// resolve rekeys an integration named only by its app name ("app:<name>",
// identityOf's rule 2) to the id learned for that name.
func (a *appIDs) resolve(in *schemas.Integration) {
	name, ok := strings.CutPrefix(in.ID, "app:")
	if !ok {
		return
	}
	a.mu.Lock()
	id, ok := a.ids[name]
	a.mu.Unlock()
	if ok && !id.ambiguous {
		in.ID, in.SourceAppID = id.id, id.source
	}
}

func normalize(raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	if row, ok := elfRowOf(raw); ok {
		return normalizeLogRow(row, raw, tenant)
	}
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("salesforce: decode record: %w", err)
	}
	switch obj := r.object(); obj {
	case ObjectAPIEvent, "ApiEventStream":
		return normalizeAPIEvent(&r, raw, tenant)
	case ObjectBulkAPIResult, "BulkApiResultEvent":
		return normalizeBulkResult(&r, raw, tenant)
	case ObjectLoginHistory:
		return normalizeLogin(&r, raw, tenant)
	case "":
		return nil, errors.New("salesforce: unknown record shape: no attributes.type, EventDate, LoginTime or EVENT_TYPE")
	default:
		return normalizeOther(&r, obj, raw, tenant)
	}
}

// identityOf is the one integration-id rule every record goes through, so
// that one connected app is one integration whatever optional fields a
// record carries:
//
//  1. a connected app id (ConnectedAppId, CONNECTED_APP_ID, or the id Fetch
//     resolved from the app's name) → the id's 15-character form: Salesforce
//     writes 18-character ids in the query API and 15-character ones in some
//     event log files, and the first 15 characters are the id itself;
//  2. else the connected app's name (Application, CONNECTED_APP_NAME) →
//     "app:<name>" (records normalized offline, without Fetch's resolution),
//     which Normalize then rekeys by the id Learn saw with the name;
//  3. else the API client name (Client, CLIENT_NAME) → "client:<name>";
//  4. else the acting user → "user:<15-character user id>" (Bulk API jobs and
//     result downloads name no app: the integration user stands for it);
//  5. else nothing: the record yields no event.
//
// "N/A", "Unknown" and empty count as absent.
func identityOf(appID, appName, client, userID string) (schemas.Integration, bool) {
	appID, appName, client, userID = usable(appID), usable(appName), usable(client), usable(userID)
	switch {
	case appID != "":
		return schemas.Integration{ID: id15(appID), SourceAppID: appID, Name: appName}, true
	case appName != "":
		return schemas.Integration{ID: "app:" + appName, SourceAppID: appName, Name: appName}, true
	case client != "":
		return schemas.Integration{ID: "client:" + client, SourceAppID: client, Name: client}, true
	case userID != "":
		return schemas.Integration{ID: "user:" + id15(userID), SourceAppID: userID}, true
	}
	return schemas.Integration{}, false
}

// id15 is the case-sensitive 15-character form of a Salesforce id.
func id15(id string) string {
	if len(id) == 18 {
		return id[:15]
	}
	return id
}

func normalizeAPIEvent(r *record, raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	t, err := parseTime("EventDate", r.EventDate)
	if err != nil {
		return nil, err
	}
	// ApiEvent names the app only when the call started a session with it;
	// with a reused token ConnectedAppId is null and only Application is set.
	integ, ok := identityOf(firstNonEmpty(r.ConnectedAppID, r.ResolvedAppID), r.Application, r.Client, "")
	if !ok {
		return nil, nil
	}
	cat := schemas.CategoryAccess
	if isWrite(r.Operation) {
		cat = schemas.CategoryModify
	}
	credType := "session"
	if usable(firstNonEmpty(r.ConnectedAppID, r.ResolvedAppID)) != "" || usable(r.Application) != "" {
		credType = "oauth_token"
	}
	ev := schemas.Event{
		EventID:     firstNonEmpty(r.EventIdentifier, r.ID, hashID(raw)),
		Source:      SourceName,
		Tenant:      tenant,
		Time:        schemas.NewTime(t),
		Integration: integ,
		Credential:  schemas.Credential{Type: credType, ID: firstNonEmpty(r.LoginKey, r.SessionKey)},
		Principal:   principal(firstNonEmpty(r.Username, r.UserID)),
		Action:      schemas.Action{Name: firstNonEmpty(r.Operation, "api_call"), Category: cat},
		TargetApp:   "salesforce",
		Network:     schemas.Network{IP: ip(r.SourceIP), UserAgent: r.UserAgent},
		Outcome:     "success",
		Records:     number(r.RowsProcessed),
		Raw:         raw,
	}
	if r.QueriedEntities != "" {
		ev.Resource = schemas.Resource{Type: "sobject", ID: r.QueriedEntities}
	}
	return []schemas.Event{ev}, nil
}

// normalizeBulkResult maps a download of Bulk API (1.0 or 2.0) job results:
// the moment data leaves the org, whatever the job queried.
func normalizeBulkResult(r *record, raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	t, err := parseTime("EventDate", r.EventDate)
	if err != nil {
		return nil, err
	}
	integ, ok := identityOf(firstNonEmpty(r.ConnectedAppID, r.ResolvedAppID), r.Application, r.Client, r.UserID)
	if !ok {
		return nil, nil
	}
	ev := schemas.Event{
		EventID:     firstNonEmpty(r.EventIdentifier, hashID(raw)),
		Source:      SourceName,
		Tenant:      tenant,
		Time:        schemas.NewTime(t),
		Integration: integ,
		Credential:  schemas.Credential{Type: "session", ID: firstNonEmpty(r.LoginKey, r.SessionKey)},
		Principal:   principal(firstNonEmpty(r.Username, r.UserID)),
		Action:      schemas.Action{Name: "bulk_result_download", Category: schemas.CategoryAccess},
		TargetApp:   "salesforce",
		Network:     schemas.Network{IP: ip(r.SourceIP)},
		Outcome:     "success",
		Records:     number(r.RowsProcessed),
		Raw:         raw,
	}
	if r.JobID != "" {
		ev.Resource = schemas.Resource{Type: "bulk_job", ID: r.JobID}
	}
	return []schemas.Event{ev}, nil
}

// browserLogin says a LoginHistory row is a person at the UI, not an integration.
func browserLogin(r *record) bool {
	return r.LoginType == "Application" || r.Application == "Browser Login" || strings.Contains(r.LoginType, "SAML")
}

// normalizeLogin maps a LoginHistory row. The row names no token, so the
// credential is the logging-in user's own login: credential id
// "login:<user id>", never one shared by every user of the app (two admins
// signing in to the same app from two countries are two credentials, not one
// travelling impossibly).
func normalizeLogin(r *record, raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	t, err := parseTime("LoginTime", r.LoginTime)
	if err != nil {
		return nil, err
	}
	if browserLogin(r) {
		return nil, nil
	}
	integ, ok := identityOf(r.ResolvedAppID, r.Application, "", "")
	if !ok {
		if usable(r.APIType) == "" {
			return nil, fmt.Errorf("salesforce: %s login %s names no Application or ApiType", r.LoginType, r.ID)
		}
		integ = schemas.Integration{ID: "api:" + r.APIType, SourceAppID: r.APIType, Name: r.APIType}
	}
	credType := "api_session"
	if strings.HasPrefix(r.LoginType, "Remote Access") {
		credType = "oauth_token"
	}
	cred := schemas.Credential{Type: credType}
	if u := usable(r.UserID); u != "" {
		cred.ID = "login:" + id15(u)
	}
	ev := schemas.Event{
		EventID:     firstNonEmpty(r.ID, hashID(raw)),
		Source:      SourceName,
		Tenant:      tenant,
		Time:        schemas.NewTime(t),
		Integration: integ,
		Credential:  cred,
		Principal:   principal(r.UserID),
		Action:      schemas.Action{Name: "login:" + firstNonEmpty(r.LoginType, "unknown"), Category: schemas.CategoryAuthorize},
		TargetApp:   "salesforce",
		Network:     schemas.Network{IP: ip(r.SourceIP), UserAgent: usable(r.ClientVersion)},
		Outcome:     "success",
		Raw:         raw,
	}
	if f := ip(r.ForwardedForIP); f != "" && f != ev.Network.IP {
		// X-Forwarded-For as Salesforce recorded it: the client behind a proxy.
		ev.Network.IPChain = []string{f}
		if ev.Network.IP != "" {
			ev.Network.IPChain = append(ev.Network.IPChain, ev.Network.IP)
		}
	}
	if r.Status != "Success" {
		// "Failed: Invalid Password", "Invalid Client Credentials", "Restricted IP"…
		ev.Action.Category = schemas.CategoryAuthFailure
		ev.Outcome = "failure"
	}
	if r.LoginURL != "" {
		ev.Resource = schemas.Resource{Type: "login_url", ID: r.LoginURL}
	}
	return []schemas.Event{ev}, nil
}

// normalizeOther keeps a record of an object this connector does not map
// (a new real-time event, say) as category other, when it has a time and
// names someone; it is not dead-lettered for being new.
func normalizeOther(r *record, obj string, raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	var (
		t   time.Time
		err error
	)
	switch {
	case r.EventDate != "":
		t, err = parseTime("EventDate", r.EventDate)
	case r.LoginTime != "":
		t, err = parseTime("LoginTime", r.LoginTime)
	default:
		var probe struct {
			CreatedDate string `json:"CreatedDate"`
		}
		_ = json.Unmarshal(raw, &probe)
		t, err = parseTime(obj+" EventDate or CreatedDate", probe.CreatedDate)
	}
	if err != nil {
		return nil, err
	}
	integ, ok := identityOf(firstNonEmpty(r.ConnectedAppID, r.ResolvedAppID), r.Application, r.Client, r.UserID)
	if !ok {
		return nil, nil
	}
	ev := schemas.Event{
		EventID:     firstNonEmpty(r.EventIdentifier, r.ID, hashID(raw)),
		Source:      SourceName,
		Tenant:      tenant,
		Time:        schemas.NewTime(t),
		Integration: integ,
		Credential:  schemas.Credential{ID: firstNonEmpty(r.LoginKey, r.SessionKey)},
		Principal:   principal(firstNonEmpty(r.Username, r.UserID)),
		Action:      schemas.Action{Name: obj, Category: schemas.CategoryOther},
		TargetApp:   "salesforce",
		Network:     schemas.Network{IP: ip(r.SourceIP)},
		Outcome:     "unknown",
		Raw:         raw,
	}
	return []schemas.Event{ev}, nil
}

// recordKey is the (time, id) the window tracks.
func recordKey(raw json.RawMessage) (time.Time, string, bool) {
	if row, ok := elfRowOf(raw); ok {
		t, err := row.time()
		if err != nil {
			return time.Time{}, "", false
		}
		return t, row.id(), true
	}
	var r record
	if json.Unmarshal(raw, &r) != nil {
		return time.Time{}, "", false
	}
	v, id := r.EventDate, r.EventIdentifier
	if r.object() == ObjectLoginHistory {
		v, id = r.LoginTime, r.ID
	}
	t, err := parseTime("time", v)
	if err != nil || id == "" {
		return time.Time{}, "", false
	}
	return t, id, true
}

// Salesforce writes datetimes as 2026-10-27T02:13:07.412+0000 (no colon in
// the offset), which RFC 3339 parsing rejects.
var timeLayouts = []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700", time.RFC3339Nano}

func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("salesforce: record has no %s", field)
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("salesforce: %s %q is not a Salesforce datetime", field, v)
}

func principal(id string) schemas.Principal {
	if usable(id) == "" {
		return schemas.Principal{}
	}
	return schemas.Principal{ID: id, Type: "user"}
}

// usable drops Salesforce's placeholders for "no value".
func usable(s string) string {
	switch strings.TrimSpace(s) {
	case "", "N/A", "Unknown", "null":
		return ""
	}
	return strings.TrimSpace(s)
}

// ip drops what is not an address ("Salesforce.com IP" for internal calls).
func ip(s string) string {
	s = usable(s)
	if s == "" || strings.ContainsAny(s, " ") {
		return ""
	}
	return s
}

// number reads RowsProcessed, a JSON number that may carry a fraction (2000.0).
func number(raw json.RawMessage) int64 {
	return count(string(bytes.Trim(bytes.TrimSpace(raw), `"`)))
}

// count reads a non-negative count written as an integer or a float ("150",
// "2000.0"); anything else is 0.
func count(v string) int64 {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return n
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 9e18 {
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
