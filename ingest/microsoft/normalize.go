package microsoft

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// Normalize detects the record's shape by its fields (a servicePrincipal
// signIn, a directoryAudit, a MicrosoftGraphActivityLogs record, or an Event
// Hubs {"records":[…]} batch of the latter) and maps it.
func (s *Source) Normalize(raw json.RawMessage) ([]schemas.Event, error) {
	return normalize(raw, s.tenant)
}

type shape int

const (
	shapeUnknown shape = iota
	shapeBatch
	shapeSignIn
	shapeDirectoryAudit
	shapeActivity
)

func (k shape) String() string {
	return [...]string{"unknown", "records batch", "signIn", "directoryAudit", "MicrosoftGraphActivityLogs"}[k]
}

// detect names a record's shape from its top-level keys (case-insensitive:
// Log Analytics exports PascalCase, Event Hubs camelCase).
func detect(obj map[string]json.RawMessage) shape {
	has := map[string]bool{}
	for k := range obj {
		has[strings.ToLower(k)] = true
	}
	switch {
	case has["records"] && len(obj) == 1:
		return shapeBatch
	case has["activitydatetime"] && has["activitydisplayname"]:
		return shapeDirectoryAudit
	case has["createddatetime"] && (has["appid"] || has["serviceprincipalid"]):
		return shapeSignIn
	case has["requestid"] && (has["appid"] || has["requesturi"]), has["properties"] && has["time"]:
		return shapeActivity
	}
	return shapeUnknown
}

// normalize maps raw for tenant. The configured tenant label wins over the
// tenant id in sign-ins and activity logs because directory audits carry
// none: one label for every record of the source keeps an integration's
// events together. Without a label, the record's tenant id is used.
func normalize(raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("microsoft: decode record: %w", err)
	}
	switch k := detect(obj); k {
	case shapeBatch:
		var recs []json.RawMessage
		if err := json.Unmarshal(obj["records"], &recs); err != nil {
			return nil, fmt.Errorf("microsoft: records batch: %w", err)
		}
		var out []schemas.Event
		for i, r := range recs {
			var inner map[string]json.RawMessage
			if json.Unmarshal(r, &inner) != nil || detect(inner) == shapeBatch {
				return nil, fmt.Errorf("microsoft: records[%d]: not a record object", i)
			}
			evs, err := normalize(r, tenant)
			if err != nil {
				return nil, fmt.Errorf("records[%d]: %w", i, err)
			}
			out = append(out, evs...)
		}
		return out, nil
	case shapeSignIn:
		return normalizeSignIn(raw, tenant)
	case shapeDirectoryAudit:
		return normalizeDirectoryAudit(raw, tenant)
	case shapeActivity:
		return normalizeActivity(raw, tenant)
	default:
		return nil, errors.New("microsoft: unknown record shape: want a signIn (createdDateTime, appId), directoryAudit (activityDateTime, activityDisplayName) or MicrosoftGraphActivityLogs record (time, RequestId, AppId)")
	}
}

// recordKey is the (time, id) the window tracks for the records Fetch reads.
func recordKey(raw json.RawMessage) (time.Time, string, bool) {
	var r struct {
		ID               string `json:"id"`
		CreatedDateTime  string `json:"createdDateTime"`
		ActivityDateTime string `json:"activityDateTime"`
	}
	if json.Unmarshal(raw, &r) != nil || r.ID == "" {
		return time.Time{}, "", false
	}
	t, err := time.Parse(time.RFC3339Nano, r.CreatedDateTime+r.ActivityDateTime)
	if err != nil {
		return time.Time{}, "", false
	}
	return t.UTC(), r.ID, true
}

func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("microsoft: record has no %s", field)
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("microsoft: %s %q: %w", field, v, err)
	}
	return t.UTC(), nil
}

func hashID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return "h" + hex.EncodeToString(sum[:12])
}

// signIn is a servicePrincipal sign-in from /beta/auditLogs/signIns.
type signIn struct {
	ID                              string   `json:"id"`
	CreatedDateTime                 string   `json:"createdDateTime"`
	AppID                           string   `json:"appId"`
	AppDisplayName                  string   `json:"appDisplayName"`
	ServicePrincipalID              string   `json:"servicePrincipalId"`
	ServicePrincipalName            string   `json:"servicePrincipalName"`
	IPAddress                       string   `json:"ipAddress"`
	UserAgent                       string   `json:"userAgent"`
	ResourceDisplayName             string   `json:"resourceDisplayName"`
	ResourceID                      string   `json:"resourceId"`
	ClientCredentialType            string   `json:"clientCredentialType"`
	ServicePrincipalCredentialKeyID string   `json:"servicePrincipalCredentialKeyId"`
	ServicePrincipalCredentialThumb string   `json:"servicePrincipalCredentialThumbprint"`
	TenantID                        string   `json:"tenantId"`
	ResourceTenantID                string   `json:"resourceTenantId"`
	SignInEventTypes                []string `json:"signInEventTypes"`
	// ManagedServiceIdentity is set on managed-identity sign-ins (their own
	// log, signInEventTypes "managedIdentity").
	ManagedServiceIdentity *struct {
		MsiType              string `json:"msiType"`
		AssociatedResourceID string `json:"associatedResourceId"`
		FederatedTokenID     string `json:"federatedTokenId"`
		FederatedTokenIssuer string `json:"federatedTokenIssuer"`
	} `json:"managedServiceIdentity"`
	Status struct {
		ErrorCode     *int   `json:"errorCode"`
		FailureReason string `json:"failureReason"`
	} `json:"status"`
}

var credentialTypes = map[string]string{
	"clientSecret":                "client_secret",
	"clientAssertion":             "client_assertion",
	"certificate":                 "certificate",
	"managedIdentity":             "managed_identity",
	"federatedIdentityCredential": "federated_credential",
}

// normalizeSignIn: a service principal obtaining a token for a resource. It
// uses an existing credential, so success is access; errorCode != 0 is an
// auth failure (bad secret, expired certificate, disabled app…).
func normalizeSignIn(raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	var r signIn
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("microsoft: decode signIn: %w", err)
	}
	t, err := parseTime("createdDateTime", r.CreatedDateTime)
	if err != nil {
		return nil, err
	}
	if r.AppID == "" {
		return nil, errors.New("microsoft: signIn has no appId")
	}
	ev := schemas.Event{
		EventID:     firstNonEmpty(r.ID, hashID(raw)),
		Source:      SourceName,
		Tenant:      firstNonEmpty(tenant, r.TenantID, r.ResourceTenantID),
		Time:        schemas.NewTime(t),
		Integration: schemas.Integration{ID: r.AppID, SourceAppID: r.AppID, Name: firstNonEmpty(r.AppDisplayName, r.ServicePrincipalName)},
		Credential: schemas.Credential{
			Type: firstNonEmpty(credentialTypes[r.ClientCredentialType], snake(r.ClientCredentialType)),
			ID:   firstNonEmpty(r.ServicePrincipalCredentialKeyID, r.ServicePrincipalCredentialThumb),
		},
		Principal: schemas.Principal{ID: r.ServicePrincipalID, Type: "service_principal"},
		Action:    schemas.Action{Name: "servicePrincipalSignIn", Category: schemas.CategoryAccess},
		TargetApp: r.ResourceDisplayName,
		Network:   schemas.Network{IP: r.IPAddress, UserAgent: r.UserAgent},
		Outcome:   "success",
		Raw:       raw,
	}
	if r.ResourceID != "" {
		ev.Resource = schemas.Resource{Type: "resource_app", ID: r.ResourceID}
	}
	if msi := r.ManagedServiceIdentity; msi != nil || slices.Contains(r.SignInEventTypes, "managedIdentity") {
		// A managed identity has no secret or key of its own: the Azure
		// resource it is attached to is what holds the credential.
		ev.Action.Name = "managedIdentitySignIn"
		ev.Principal.Type = "managed_identity"
		ev.Credential.Type = "managed_identity"
		if msi != nil {
			ev.Credential.ID = firstNonEmpty(ev.Credential.ID, msi.AssociatedResourceID, msi.FederatedTokenID)
			ev.Credential.Issuer = msi.FederatedTokenIssuer
		}
	}
	ev.Delegation = schemas.DelegationAppOnly
	if r.Status.ErrorCode != nil && *r.Status.ErrorCode != 0 {
		ev.Action.Category = schemas.CategoryAuthFailure
		ev.Outcome = "failure"
	}
	if ev.Principal.ID == "" {
		ev.Principal = schemas.Principal{}
	}
	return []schemas.Event{ev}, nil
}

// directoryAudit is one /v1.0/auditLogs/directoryAudits record.
type directoryAudit struct {
	ID                  string `json:"id"`
	Category            string `json:"category"`
	ActivityDisplayName string `json:"activityDisplayName"`
	ActivityDateTime    string `json:"activityDateTime"`
	Result              string `json:"result"`
	InitiatedBy         struct {
		User *struct {
			ID                string `json:"id"`
			UserPrincipalName string `json:"userPrincipalName"`
			IPAddress         string `json:"ipAddress"`
		} `json:"user"`
		App *struct {
			AppID              string `json:"appId"`
			DisplayName        string `json:"displayName"`
			ServicePrincipalID string `json:"servicePrincipalId"`
		} `json:"app"`
	} `json:"initiatedBy"`
	TargetResources []struct {
		ID                 string `json:"id"`
		DisplayName        string `json:"displayName"`
		Type               string `json:"type"`
		ModifiedProperties []struct {
			DisplayName string `json:"displayName"`
			OldValue    string `json:"oldValue"`
			NewValue    string `json:"newValue"`
		} `json:"modifiedProperties"`
	} `json:"targetResources"`
	AdditionalDetails []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"additionalDetails"`
}

// auditCategories maps the ApplicationManagement activities that grant or
// take away an app's access; the rest of that category is admin.
var auditCategories = map[string]string{
	"Consent to application":                            schemas.CategoryAuthorize,
	"Add delegated permission grant":                    schemas.CategoryAuthorize,
	"Add app role assignment to service principal":      schemas.CategoryAuthorize,
	"Revoke consent":                                    schemas.CategoryRevoke,
	"Remove delegated permission grant":                 schemas.CategoryRevoke,
	"Remove app role assignment from service principal": schemas.CategoryRevoke,
	"Remove service principal credentials":              schemas.CategoryRevoke,
	"Remove service principal":                          schemas.CategoryRevoke,
}

// grantsOnResource are the activities whose first target is the resource API
// (Microsoft Graph…) rather than the client app, which is named in the
// ServicePrincipal.* modified properties instead.
var grantsOnResource = []string{"Add delegated permission grant", "Remove delegated permission grant",
	"Add app role assignment to service principal", "Remove app role assignment from service principal"}

var (
	consentScope = regexp.MustCompile(`Scope:\s*([^,\]]*)`)
	guid         = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

func normalizeDirectoryAudit(raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	var r directoryAudit
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("microsoft: decode directoryAudit: %w", err)
	}
	t, err := parseTime("activityDateTime", r.ActivityDateTime)
	if err != nil {
		return nil, err
	}
	// modified property → its new value (the old one for removals), JSON-unquoted
	props := map[string]string{}
	for _, tr := range r.TargetResources {
		for _, mp := range tr.ModifiedProperties {
			if _, seen := props[mp.DisplayName]; !seen {
				props[mp.DisplayName] = unquote(firstNonEmpty(mp.NewValue, mp.OldValue))
			}
		}
	}
	details := map[string]string{}
	for _, d := range r.AdditionalDetails {
		details[d.Key] = d.Value
	}
	onResource := slices.Contains(grantsOnResource, r.ActivityDisplayName)
	integ, ok := auditClient(&r, props, details, onResource)
	if !ok {
		return nil, fmt.Errorf("microsoft: directoryAudit %q names no client application (AppId, ServicePrincipal.AppId/ObjectID or a ServicePrincipal target)", r.ActivityDisplayName)
	}
	cat, known := auditCategories[r.ActivityDisplayName]
	if !known {
		cat = schemas.CategoryAdmin
	}
	ev := schemas.Event{
		EventID:     firstNonEmpty(r.ID, hashID(raw)),
		Source:      SourceName,
		Tenant:      tenant,
		Time:        schemas.NewTime(t),
		Integration: integ,
		Action:      schemas.Action{Name: r.ActivityDisplayName, Category: cat},
		Scopes:      auditScopes(props),
		Network:     schemas.Network{UserAgent: details["User-Agent"]},
		Outcome:     "success",
		Raw:         raw,
	}
	if onResource && len(r.TargetResources) > 0 {
		res := r.TargetResources[0]
		ev.TargetApp = res.DisplayName
		ev.Resource = schemas.Resource{Type: "service_principal", ID: res.ID}
	}
	switch by := r.InitiatedBy; {
	case by.User != nil && (by.User.UserPrincipalName != "" || by.User.ID != ""):
		ev.Principal = schemas.Principal{ID: firstNonEmpty(by.User.UserPrincipalName, by.User.ID), Type: "user"}
		ev.Network.IP = by.User.IPAddress
	case by.App != nil && (by.App.ServicePrincipalID != "" || by.App.AppID != ""):
		ev.Principal = schemas.Principal{ID: firstNonEmpty(by.App.ServicePrincipalID, by.App.AppID), Type: "service_principal"}
	}
	if !strings.EqualFold(r.Result, "success") && r.Result != "" {
		ev.Outcome = "failure"
		if cat == schemas.CategoryAuthorize {
			ev.Action.Category = schemas.CategoryAuthFailure
		}
	}
	return []schemas.Event{ev}, nil
}

// auditClient finds the client app: its appId where the record gives one
// (so grants and sign-ins share an Integration.ID), else "sp:" + its service
// principal object id, which the inventory maps to the appId.
func auditClient(r *directoryAudit, props, details map[string]string, onResource bool) (schemas.Integration, bool) {
	name := props["ServicePrincipal.DisplayName"]
	var spID string
	if onResource {
		spID = props["ServicePrincipal.ObjectID"]
		for _, tr := range r.TargetResources[min(1, len(r.TargetResources)):] {
			if tr.Type == "ServicePrincipal" && (spID == "" || tr.ID == spID) {
				spID, name = firstNonEmpty(spID, tr.ID), firstNonEmpty(name, tr.DisplayName)
				break
			}
		}
	} else {
		for _, tr := range r.TargetResources {
			if tr.Type == "ServicePrincipal" || tr.Type == "Application" {
				spID, name = tr.ID, firstNonEmpty(tr.DisplayName, name)
				break
			}
		}
	}
	appID := firstNonEmpty(details["AppId"], props["ServicePrincipal.AppId"])
	if appID == "" && !onResource {
		// TargetId.ServicePrincipalNames is "appId;identifier URIs…".
		if first, _, _ := strings.Cut(props["TargetId.ServicePrincipalNames"], ";"); guid.MatchString(first) {
			appID = first
		}
	}
	switch {
	case appID != "":
		return schemas.Integration{ID: appID, SourceAppID: appID, Name: name}, true
	case spID != "":
		return schemas.Integration{ID: "sp:" + spID, SourceAppID: spID, Name: name}, true
	}
	return schemas.Integration{}, false
}

// auditScopes lifts the granted permissions out of whichever property
// carries them: ConsentAction.Permissions (interactive consent, the part
// after "=>"), DelegatedPermissionGrant.Scope (a direct delegated grant) or
// AppRole.Value (an application permission).
func auditScopes(props map[string]string) []string {
	var out []string
	add := func(s string) {
		for _, f := range strings.Fields(s) {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	if v := props["ConsentAction.Permissions"]; v != "" {
		if i := strings.LastIndex(v, "=>"); i >= 0 {
			v = v[i+2:]
		}
		for _, m := range consentScope.FindAllStringSubmatch(v, -1) {
			add(m[1])
		}
	}
	add(props["DelegatedPermissionGrant.Scope"])
	add(props["AppRole.Value"])
	return out
}

// activity is a MicrosoftGraphActivityLogs record, flat (Log Analytics,
// PascalCase) or in the diagnostic-settings envelope with the same fields
// camelCased under "properties". encoding/json matches keys without regard
// to case, so one struct reads both.
type activity struct {
	Time               string          `json:"time"`
	TimeGenerated      string          `json:"TimeGenerated"`
	RequestID          string          `json:"RequestId"`
	OperationID        string          `json:"OperationId"`
	AppID              string          `json:"AppId"`
	ServicePrincipalID string          `json:"ServicePrincipalId"`
	UserID             string          `json:"UserId"`
	IPAddress          string          `json:"IpAddress"`
	UserAgent          string          `json:"UserAgent"`
	RequestURI         string          `json:"RequestUri"`
	RequestMethod      string          `json:"RequestMethod"`
	ResponseStatusCode json.RawMessage `json:"ResponseStatusCode"`
	ResponseSizeBytes  json.RawMessage `json:"ResponseSizeBytes"`
	Scopes             string          `json:"Scopes"`
	Roles              string          `json:"Roles"`
	TenantID           string          `json:"TenantId"`
	AadTenantID        string          `json:"AadTenantId"`
	SignInActivityID   string          `json:"SignInActivityId"`
	ClientAuthMethod   json.RawMessage `json:"ClientAuthMethod"`
	TokenIssuedAt      string          `json:"TokenIssuedAt"`
	Wids               json.RawMessage `json:"Wids"`
	IdentityProvider   string          `json:"IdentityProvider"`
	Properties         json.RawMessage `json:"properties"`
}

var idSegment = regexp.MustCompile(`(?i)^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[^/@]+@[^/]+|[A-Za-z0-9+=_-]{40,})$`)

func normalizeActivity(raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	var r activity
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("microsoft: decode MicrosoftGraphActivityLogs record: %w", err)
	}
	if len(r.Properties) > 0 && r.Properties[0] == '{' {
		top := r.Time
		if err := json.Unmarshal(r.Properties, &r); err != nil {
			return nil, fmt.Errorf("microsoft: decode MicrosoftGraphActivityLogs properties: %w", err)
		}
		r.Time = firstNonEmpty(top, r.Time)
	}
	t, err := parseTime("time", firstNonEmpty(r.Time, r.TimeGenerated))
	if err != nil {
		return nil, err
	}
	if r.AppID == "" {
		return nil, errors.New("microsoft: MicrosoftGraphActivityLogs record has no AppId")
	}
	status := number(r.ResponseStatusCode)
	method := strings.ToUpper(r.RequestMethod)
	path, resource := r.RequestURI, ""
	if u, err := url.Parse(r.RequestURI); err == nil && u.Path != "" {
		path, resource = u.Path, u.Path
	}
	ev := schemas.Event{
		EventID:     firstNonEmpty(r.RequestID, hashID(raw)),
		Source:      SourceName,
		Tenant:      firstNonEmpty(tenant, r.TenantID, r.AadTenantID),
		Time:        schemas.NewTime(t),
		Integration: schemas.Integration{ID: r.AppID, SourceAppID: r.AppID},
		Credential:  schemas.Credential{Type: clientAuthMethod(number(r.ClientAuthMethod), r.ClientAuthMethod), ID: r.SignInActivityID},
		Action:      schemas.Action{Name: strings.TrimSpace(method + " " + templatePath(path)), Category: schemas.CategoryAccess},
		TargetApp:   graphApp,
		Scopes:      splitList(r.Scopes + " " + r.Roles),
		Network:     schemas.Network{IP: r.IPAddress, UserAgent: r.UserAgent},
		Bytes:       number(r.ResponseSizeBytes),
		Outcome:     "success",
		Raw:         raw,
	}
	if resource != "" {
		ev.Resource = schemas.Resource{Type: "graph_path", ID: resource}
	}
	if method != "" || status != 0 || path != "" {
		ev.HTTP = &schemas.HTTP{Method: method, Route: templatePath(path), StatusCode: int(max(min(status, 999), 0))}
	}
	if it, err := time.Parse(time.RFC3339Nano, r.TokenIssuedAt); err == nil {
		iat := schemas.NewTime(it)
		ev.TokenIssuedAt = &iat
	}
	ev.DirectoryRoles = stringList(r.Wids)
	ev.Credential.Issuer = r.IdentityProvider
	// Scopes (scp) are delegated permissions: a user was present. Roles
	// without scopes are application permissions of an app-only token.
	switch {
	case strings.TrimSpace(r.Scopes) != "" || r.UserID != "":
		ev.Delegation = schemas.DelegationDelegated
	case strings.TrimSpace(r.Roles) != "" || r.ServicePrincipalID != "":
		ev.Delegation = schemas.DelegationAppOnly
	}
	switch {
	case r.UserID != "":
		ev.Principal = schemas.Principal{ID: r.UserID, Type: "user"}
	case r.ServicePrincipalID != "":
		ev.Principal = schemas.Principal{ID: r.ServicePrincipalID, Type: "service_principal"}
	}
	switch method {
	case "POST", "PUT", "PATCH", "DELETE":
		ev.Action.Category = schemas.CategoryModify
	}
	switch {
	case status == 401 || status == 403:
		ev.Action.Category = schemas.CategoryAuthFailure
		ev.Outcome = "failure"
	case status >= 400:
		ev.Outcome = "failure"
	case status == 0:
		ev.Outcome = "unknown"
	}
	return []schemas.Event{ev}, nil
}

// templatePath replaces ids, UPNs and opaque tokens in a Graph path with
// {id}, so the action name says what was called, not on whom.
func templatePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if idSegment.MatchString(s) {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

func clientAuthMethod(n int64, raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
		return "oauth_token"
	}
	switch n {
	case 0:
		return "public_client_token"
	case 1:
		return "client_secret"
	case 2:
		return "certificate"
	}
	return "oauth_token"
}

// number reads a JSON number or numeric string; anything else is 0.
func number(raw json.RawMessage) int64 {
	var n json.Number
	s := string(bytes.Trim(bytes.TrimSpace(raw), `"`))
	n = json.Number(s)
	if v, err := n.Int64(); err == nil {
		return v
	}
	if f, err := n.Float64(); err == nil && f >= -9e18 && f <= 9e18 {
		return int64(f)
	}
	return 0
}

// stringList reads a claim Graph writes either as a JSON array of strings or
// as one space- or comma-separated string (Wids); null is none.
func stringList(raw json.RawMessage) []string {
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil
		}
		// A string holding a JSON array ("[\"id1\",\"id2\"]"), else a list.
		if json.Unmarshal([]byte(s), &list) != nil {
			list = []string{s}
		}
	}
	var out []string
	for _, v := range list {
		for _, f := range splitList(v) {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

// splitList reads Graph's space- or comma-separated scope and role claims.
// graphApp is the target app of a Graph activity record: the name the
// sign-in logs give the same resource (resourceDisplayName of resourceId
// 00000003-0000-0000-c000-000000000000), so that an integration's sign-ins
// to Graph and its Graph calls are one app, not two (chain.cross_app counted
// them as two and alerted on breadth that was not there).
const graphApp = "Microsoft Graph"

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// unquote reads a modifiedProperties value, which Graph writes as a JSON
// string inside the string ("\"Mail.Read\"").
func unquote(v string) string {
	var s string
	if json.Unmarshal([]byte(v), &s) == nil {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(v)
}

func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
