package schemas

import (
	"encoding/json"
	"time"
)

// The binary encoding of events on the internal topics (wire.go): MessagePack
// maps keyed by the JSON names and omitting what JSON omits, so a record reads
// as its JSON twin in any MessagePack viewer and a field added later is
// skipped by older readers. Time travels as epoch milliseconds, its
// precision; Raw as opaque bytes. An array or byte string may claim at most
// 1 MiB elements, the largest record a writer sends (broker BatchBytes,
// Kafka's message.max.bytes): a record is allocated what its headers claim,
// and a corrupt header must not claim gigabytes.
//
//go:generate go tool msgp -file event.go -o event_msgp.go -tests=false -io=false
//msgp:tag json
//msgp:limit arrays:1048576
//msgp:shim Time as:int64 using:timeToMillis/timeFromMillis
//msgp:replace json.RawMessage with:[]byte

// Action categories: the coarse verbs detectors reason about, whatever the vendor calls them.
const (
	CategoryAuthorize   = "authorize"
	CategoryRevoke      = "revoke"
	CategoryAccess      = "access"
	CategoryModify      = "modify"
	CategoryAdmin       = "admin"
	CategoryAuthFailure = "auth_failure"
	// CategoryScopeDenied is a grant refused because it asked for scopes the
	// client may not have (Okta outcome.reason no_matching_scope): probing.
	CategoryScopeDenied = "scope_denied"
	// CategoryOther is an action or actor type the connector does not know
	// yet: normalized and kept, never dead-lettered.
	CategoryOther = "other"
)

// Categories lists every valid action category.
var Categories = []string{CategoryAuthorize, CategoryRevoke, CategoryAccess, CategoryModify, CategoryAdmin, CategoryAuthFailure,
	CategoryScopeDenied, CategoryOther}

// Delegation modes of a token: whether a user was present.
const (
	DelegationDelegated = "delegated" // the app acts for a signed-in user (delegated scopes)
	DelegationAppOnly   = "app_only"  // the app acts as itself (application roles)
)

// Event is one normalized token-usage record: what a non-human identity did, when
// (event time, not ingest time), with which credential, from where. Connectors
// produce it; enrichment fills Geo; detectors read it. Field mapping to OCSF API
// Activity (class_uid 6003) is in ocsf.md.
type Event struct {
	// EventID is the source's own id, or a stable hash of the raw record. With
	// Source and Tenant it identifies the record across re-polls (dedup key).
	EventID     string      `json:"event_id"`
	Source      string      `json:"source"`
	Tenant      string      `json:"tenant"`
	Time        Time        `json:"time"`
	Integration Integration `json:"integration"`
	Credential  Credential  `json:"credential"`
	Principal   Principal   `json:"principal"`
	Action      Action      `json:"action"`
	TargetApp   string      `json:"target_app,omitempty"`
	Resource    Resource    `json:"resource"`
	Scopes      []string    `json:"scopes,omitempty"`
	// RequestedScopes are scopes asked for and refused (a failed grant); they
	// are never in Scopes, which holds only what was granted or used.
	RequestedScopes []string `json:"requested_scopes,omitempty"`
	// TokenIssuedAt is when the presented token was issued (Graph
	// TokenIssuedAt); Time minus it is the token's age at use.
	TokenIssuedAt *Time `json:"token_issued_at,omitempty"`
	// Impersonation is true when the integration acted as Principal without
	// the principal's own grant: a service account with domain-wide
	// delegation acting as a user (Google applicationInfo.impersonation).
	Impersonation bool `json:"impersonation,omitempty"`
	// Delegation is DelegationDelegated or DelegationAppOnly when the source says.
	Delegation string `json:"delegation,omitempty"`
	// DirectoryRoles are directory role (template) ids carried by the token
	// (Graph Wids): an app token holding admin roles.
	DirectoryRoles []string `json:"directory_roles,omitempty"`
	// HTTP is the API request, for per-request logs (GitHub api.request, Graph activity).
	HTTP      *HTTP      `json:"http,omitempty"`
	Network   Network    `json:"network"`
	Outcome   string     `json:"outcome,omitempty"` // success | failure | unknown
	Bytes     int64      `json:"bytes,omitempty"`
	Records   int64      `json:"records,omitempty"`
	Geo       *Geo       `json:"geo,omitempty"`       // set by enrich (GeoIP)
	Inventory *Inventory `json:"inventory,omitempty"` // set by enrich (catalog)
	// IngestedAt is the wall-clock time tokenwatch's ingest received the
	// record: operational only, detection runs on Time and never reads it.
	IngestedAt *Time `json:"ingested_at,omitempty"`
	// Backfill is true when Time was more than ingest.backfill_after behind
	// IngestedAt: an old record arriving late (a first lookback, a vendor or
	// an export catching up). Alerts raised from it carry Backfill too.
	Backfill bool `json:"backfill,omitempty"`
	// Raw is the original vendor record, kept for evidence and re-normalization.
	Raw json.RawMessage `json:"raw,omitempty,zerocopy"`
}

// Integration names the non-human identity: an OAuth app, API key owner, GitHub App…
type Integration struct {
	// ID is the key everything is partitioned and baselined by. Connectors set
	// it to the source's app id; the inventory may map several source ids to one.
	ID          string `json:"id"`
	SourceAppID string `json:"source_app_id"`
	Name        string `json:"name,omitempty"`
}

// Credential identifies the token or key used, never its secret: an id the
// vendor assigns, or a hash.
type Credential struct {
	Type string `json:"type,omitempty"` // oauth_token, api_key, pat, service_account_key, client_secret…
	ID   string `json:"id,omitempty"`
	// Name is the credential's own label when the source gives one (a
	// GitHub PAT's name: user_programmatic_access_name).
	Name string `json:"name,omitempty"`
	// Issuer is the tenant or identity provider that issued the token (Graph
	// IdentityProvider); one other than the event's tenant is a cross-tenant app.
	Issuer string `json:"issuer,omitempty"`
}

// HTTP is one API request as the source logged it.
type HTTP struct {
	Method string `json:"method,omitempty"`
	// Route is the path template ("/repos/{owner}/{repo}") when the source
	// gives one, else the path.
	Route      string `json:"route,omitempty"`
	StatusCode int    `json:"status_code,omitempty"`
}

// Principal is the user or service the integration acted as.
type Principal struct {
	ID   string `json:"id,omitempty"`
	Type string `json:"type,omitempty"` // user, service_account, app, bot
}

// Action is what happened: the vendor's name and tokenwatch's category.
type Action struct {
	Name     string `json:"name"`
	Category string `json:"category"`
}

// Resource is the object acted on, when the source says.
type Resource struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
}

// Network is where the call came from.
type Network struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	// IPChain is the forwarding chain the source recorded (Okta
	// request.ipChain), client first.
	IPChain []string `json:"ip_chain,omitempty"`
	// Proxy is true when the source flagged the IP as a proxy or anonymizer
	// (Okta securityContext.isProxy).
	Proxy bool `json:"proxy,omitempty"`
	// ASN and ASOrg as the source reported them (Okta securityContext);
	// enrich's own GeoIP lookup is in Geo.
	ASN   uint32 `json:"asn,omitempty"`
	ASOrg string `json:"as_org,omitempty"`
}

// Geo is enrichment from GeoIP City and ASN databases.
type Geo struct {
	Country string  `json:"country,omitempty"` // ISO 3166-1 alpha-2
	City    string  `json:"city,omitempty"`
	Lat     float64 `json:"lat,omitempty"`
	Lon     float64 `json:"lon,omitempty"`
	// AccuracyKM is the GeoIP accuracy radius; 0 means unknown.
	AccuracyKM uint16 `json:"accuracy_km,omitempty"`
	ASN        uint32 `json:"asn,omitempty"`
	ASOrg      string `json:"as_org,omitempty"`
}

// Time is a UTC instant with millisecond precision. It marshals as RFC 3339
// with milliseconds ("2026-10-27T02:13:07.412Z") so JSON output is stable.
type Time struct{ time.Time }

// NewTime truncates t to milliseconds in UTC.
func NewTime(t time.Time) Time { return Time{t.UTC().Truncate(time.Millisecond)} }

// UnixMilli builds a Time from epoch milliseconds.
func UnixMilli(ms int64) Time { return Time{time.UnixMilli(ms).UTC()} }

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(timeLayout)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, timeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	var p time.Time
	if err := p.UnmarshalJSON(b); err != nil {
		return err
	}
	*t = NewTime(p)
	return nil
}

// Inventory is what the integration catalog says about the event's
// integration, attached by enrichment so detectors can weigh an alert by
// criticality and compare behaviour with what was approved.
type Inventory struct {
	// Catalogued is false for an integration seen but not in the catalog.
	Catalogued        bool     `json:"catalogued"`
	Name              string   `json:"name,omitempty"`
	Owner             string   `json:"owner,omitempty"`
	Purpose           string   `json:"purpose,omitempty"`
	Criticality       string   `json:"criticality,omitempty"` // low, medium, high, critical
	ApprovedScopes    []string `json:"approved_scopes,omitempty"`
	ApprovedCountries []string `json:"approved_countries,omitempty"`
	ExpiresAt         *Time    `json:"expires_at,omitempty"`
	// ReviewDueAt is reviewed_at + review_every: after it the entry's
	// review is overdue (inventory.review_overdue).
	ReviewDueAt *Time `json:"review_due_at,omitempty"`
}
