package github

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// flexString holds a JSON string or number as text: GitHub's audit-log API,
// streaming and exports disagree on whether ids and timestamps are quoted.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		*f = flexString(b)
	case string(b) == "true" || string(b) == "false":
		*f = flexString(b)
	default:
		return fmt.Errorf("want a string or number, got %.20s", b)
	}
	return nil
}

// record is one audit-log entry; only the fields tokenwatch maps.
type record struct {
	Timestamp              flexString `json:"@timestamp"`
	CreatedAt              flexString `json:"created_at"`
	DocumentID             string     `json:"_document_id"`
	Action                 string     `json:"action"`
	Actor                  string     `json:"actor"`
	ActorID                flexString `json:"actor_id"`
	ActorIP                string     `json:"actor_ip"`
	UserAgent              string     `json:"user_agent"`
	Business               string     `json:"business"`
	Org                    string     `json:"org"`
	Repo                   string     `json:"repo"`
	Repository             string     `json:"repository"`
	OperationType          string     `json:"operation_type"`
	ProgrammaticAccessType string     `json:"programmatic_access_type"`
	Integration            string     `json:"integration"`
	OAuthApplicationID     flexString `json:"oauth_application_id"`
	OAuthApplication       flexString `json:"oauth_application"`
	OAuthApplicationName   string     `json:"oauth_application_name"`
	TokenID                flexString `json:"token_id"`
	HashedToken            string     `json:"hashed_token"`
	TokenScopes            string     `json:"token_scopes"`
	// Streamed records (and api.request events) carry these too.
	ActorIsBot                 *bool      `json:"actor_is_bot"`
	UserProgrammaticAccessName string     `json:"user_programmatic_access_name"`
	Route                      string     `json:"route"`
	URLPath                    string     `json:"url_path"`
	RequestMethod              string     `json:"request_method"`
	StatusCode                 flexString `json:"status_code"`
}

// tokenID is token_id when it names a token: GitHub writes 0 (or null) for
// tokens it has no id for, notably installation tokens on git events.
func (r *record) tokenID() string {
	if id := string(r.TokenID); id != "0" {
		return id
	}
	return ""
}

// credentialID is the one id a token gets, whatever the record carries:
// hashed_token (SHA-256 of the token, base64) whenever present, since GitHub
// writes it on every event a token performed, API and git alike; token_id
// only on records without it (lifecycle events made in the web UI).
func (r *record) credentialID() string {
	return firstNonEmpty(r.HashedToken, r.tokenID())
}

// botSlug is the app slug of a "<slug>[bot]" actor.
func (r *record) botSlug() string {
	slug, ok := strings.CutSuffix(r.Actor, "[bot]")
	if !ok {
		return ""
	}
	return slug
}

// slugify turns an app name into GitHub's slug form (lowercase, runs of
// other characters as one hyphen), so integration "CRM Sync" and actor
// "crm-sync[bot]" key the same app.
func slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(strings.TrimSpace(s)) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' {
			b.WriteRune(c)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// credentialTypes maps programmatic_access_type to Credential.Type.
var credentialTypes = map[string]string{
	"OAuth access token":                 "oauth_token",
	"Personal access token (classic)":    "pat",
	"Fine-grained personal access token": "pat_fine_grained",
	"GitHub App server-to-server token":  "app_installation_token",
	"GitHub App user-to-server token":    "app_user_token",
	"Deploy key":                         "deploy_key",
	"SSH key":                            "ssh_key",
}

// lifecycle maps the token- and grant-lifecycle actions to categories; other
// actions in those namespaces are admin, everything else goes by operation_type.
var lifecycle = map[string]string{
	"oauth_authorization.create":                    schemas.CategoryAuthorize,
	"oauth_authorization.update":                    schemas.CategoryAuthorize,
	"oauth_authorization.destroy":                   schemas.CategoryRevoke,
	"oauth_access.create":                           schemas.CategoryAuthorize,
	"oauth_access.destroy":                          schemas.CategoryRevoke,
	"oauth_application.revoke_all_tokens":           schemas.CategoryRevoke,
	"integration_installation.create":               schemas.CategoryAuthorize,
	"integration_installation.unsuspend":            schemas.CategoryAuthorize,
	"integration_installation.repositories_added":   schemas.CategoryAuthorize,
	"integration_installation.version_updated":      schemas.CategoryAuthorize,
	"integration_installation.destroy":              schemas.CategoryRevoke,
	"integration_installation.suspend":              schemas.CategoryRevoke,
	"integration_installation.repositories_removed": schemas.CategoryRevoke,
	"personal_access_token.access_granted":          schemas.CategoryAuthorize,
	"personal_access_token.access_revoked":          schemas.CategoryRevoke,
	"org_credential_authorization.grant":            schemas.CategoryAuthorize,
	"org_credential_authorization.revoke":           schemas.CategoryRevoke,
	"org_credential_authorization.deauthorize":      schemas.CategoryRevoke,
}

var lifecycleNamespaces = []string{"oauth_authorization.", "oauth_access.", "oauth_application.", "integration_installation.",
	"integration.", "personal_access_token.", "org_credential_authorization.", "deploy_key.", "public_key."}

// Normalize maps one audit-log record to at most one event. A record with no
// token, app or OAuth application in it (a person in the web UI) yields none.
func (s *Source) Normalize(raw json.RawMessage) ([]schemas.Event, error) {
	return normalize(raw, s.tenant)
}

func normalize(raw json.RawMessage, defaultTenant string) ([]schemas.Event, error) {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("github: decode audit record: %w", err)
	}
	if r.Action == "" {
		return nil, errors.New("github: record has no action (not an audit-log entry)")
	}
	t, err := r.time()
	if err != nil {
		return nil, err
	}
	integ, ok := r.integration()
	if !ok {
		return nil, nil
	}
	cred := schemas.Credential{Type: credentialType(r.ProgrammaticAccessType), ID: r.credentialID(), Name: r.UserProgrammaticAccessName}
	if cred.Type == "" && cred.ID != "" {
		cred.Type = "token"
	}
	ev := schemas.Event{
		EventID:     r.eventID(raw),
		Source:      SourceName,
		Tenant:      firstNonEmpty(r.Business, r.Org, defaultTenant),
		Time:        schemas.NewTime(t),
		Integration: integ,
		Credential:  cred,
		Principal:   r.principal(),
		Action:      schemas.Action{Name: r.Action, Category: category(r.Action, r.OperationType)},
		TargetApp:   "github",
		Resource:    r.resource(),
		Scopes:      splitScopes(r.TokenScopes),
		Network:     schemas.Network{IP: r.ActorIP, UserAgent: r.UserAgent},
		Outcome:     "success",
		Raw:         raw,
	}
	r.request(&ev)
	return []schemas.Event{ev}, nil
}

// recordKey is the (time, id) the window tracks; ok is false for a record
// Normalize will reject, which Fetch passes through to be dead-lettered.
func recordKey(raw json.RawMessage) (time.Time, string, bool) {
	var r record
	if json.Unmarshal(raw, &r) != nil {
		return time.Time{}, "", false
	}
	t, err := r.time()
	if err != nil {
		return time.Time{}, "", false
	}
	return t, r.eventID(raw), true
}

func (r *record) time() (time.Time, error) {
	v, field := r.Timestamp, "@timestamp"
	if v == "" {
		v, field = r.CreatedAt, "created_at"
	}
	if v == "" {
		return time.Time{}, errors.New("github: record has no @timestamp or created_at")
	}
	if ms, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		if ms <= 0 {
			return time.Time{}, fmt.Errorf("github: %s %d is not a time", field, ms)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(v))
	if err != nil {
		return time.Time{}, fmt.Errorf("github: %s %q is neither epoch milliseconds nor RFC 3339", field, string(v))
	}
	return t.UTC(), nil
}

func (r *record) eventID(raw []byte) string {
	if r.DocumentID != "" {
		return r.DocumentID
	}
	sum := sha256.Sum256(raw)
	return "h" + hex.EncodeToString(sum[:12])
}

// integration picks the identity a baseline is kept for: the GitHub App, else
// the OAuth app, else the token itself (a PAT is its own integration), else a
// [bot] actor. ok is false when nothing non-human is involved.
func (r *record) integration() (schemas.Integration, bool) {
	// An installation token acts as "<slug>[bot]"; the slug is the app's
	// stable key whether or not the record also names the integration.
	if slug := r.botSlug(); slug != "" && (r.Integration != "" || credentialType(r.ProgrammaticAccessType) == "app_installation_token") {
		return schemas.Integration{ID: "github_app:" + slug, SourceAppID: slug, Name: firstNonEmpty(r.Integration, slug)}, true
	}
	if slug := slugify(r.Integration); slug != "" {
		return schemas.Integration{ID: "github_app:" + slug, SourceAppID: slug, Name: r.Integration}, true
	}
	if id := string(r.OAuthApplicationID); id != "" && id != "0" {
		name := r.OAuthApplicationName
		if n := string(r.OAuthApplication); name == "" && n != id {
			name = n
		}
		return schemas.Integration{ID: "oauth_app:" + id, SourceAppID: id, Name: name}, true
	}
	prefix := "token:"
	switch credentialType(r.ProgrammaticAccessType) {
	case "pat", "pat_fine_grained":
		prefix = "pat:"
	case "deploy_key", "ssh_key":
		prefix = credentialType(r.ProgrammaticAccessType) + ":"
	}
	if slug := r.botSlug(); slug != "" {
		return schemas.Integration{ID: "github_app:" + slug, SourceAppID: slug, Name: slug}, true
	}
	if id := r.credentialID(); id != "" {
		return schemas.Integration{ID: prefix + id, SourceAppID: id, Name: r.Actor}, true
	}
	return schemas.Integration{}, false
}

func (r *record) principal() schemas.Principal {
	id := r.Actor
	if id == "" && r.ActorID != "" {
		id = "id:" + string(r.ActorID)
	}
	typ := "user"
	if strings.HasSuffix(r.Actor, "[bot]") || credentialType(r.ProgrammaticAccessType) == "app_installation_token" || (r.ActorIsBot != nil && *r.ActorIsBot) {
		typ = "bot"
	}
	if id == "" {
		typ = ""
	}
	return schemas.Principal{ID: id, Type: typ}
}

// request maps an api.request record's method, route and status: the
// request's outcome (≥ 400 a failure, 401 an auth failure) and, for a
// method, read vs write.
func (r *record) request(ev *schemas.Event) {
	status, _ := strconv.Atoi(string(r.StatusCode))
	method := strings.ToUpper(r.RequestMethod)
	route := firstNonEmpty(r.Route, r.URLPath)
	if status <= 0 && method == "" && route == "" {
		return
	}
	ev.HTTP = &schemas.HTTP{Method: method, Route: route, StatusCode: max(status, 0)}
	if _, lc := lifecycle[r.Action]; !lc && r.OperationType == "" {
		switch method {
		case "POST", "PUT", "PATCH", "DELETE":
			ev.Action.Category = schemas.CategoryModify
		}
	}
	switch {
	case status == 401:
		ev.Action.Category, ev.Outcome = schemas.CategoryAuthFailure, "failure"
	case status >= 400:
		ev.Outcome = "failure"
	}
}

func (r *record) resource() schemas.Resource {
	if repo := firstNonEmpty(r.Repo, r.Repository); repo != "" {
		return schemas.Resource{Type: "repository", ID: repo}
	}
	if r.Org != "" {
		return schemas.Resource{Type: "organization", ID: r.Org}
	}
	return schemas.Resource{}
}

func category(action, operationType string) string {
	if c, ok := lifecycle[action]; ok {
		return c
	}
	for _, ns := range lifecycleNamespaces {
		if strings.HasPrefix(action, ns) {
			return schemas.CategoryAdmin
		}
	}
	switch operationType {
	case "access", "authentication":
		return schemas.CategoryAccess
	case "create", "modify", "remove", "transfer", "restore":
		return schemas.CategoryModify
	}
	switch action {
	case "git.push":
		return schemas.CategoryModify
	}
	return schemas.CategoryAccess // git.clone, git.fetch and reads without an operation_type
}

func credentialType(programmaticAccessType string) string {
	if t, ok := credentialTypes[programmaticAccessType]; ok {
		return t
	}
	if programmaticAccessType == "" {
		return ""
	}
	return strings.Join(strings.Fields(strings.ToLower(programmaticAccessType)), "_")
}

// splitScopes reads token_scopes, a comma-separated list.
func splitScopes(s string) []string {
	var out []string
	for _, sc := range strings.Split(s, ",") {
		if sc = strings.TrimSpace(sc); sc != "" {
			out = append(out, sc)
		}
	}
	return out
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
