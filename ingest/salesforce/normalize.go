package salesforce

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// record holds the fields of both objects; attributes.type (or, in exports
// without it, which time field is present) says which one it is.
type record struct {
	Attributes struct {
		Type string `json:"type"`
	} `json:"attributes"`
	// ApiEvent
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
	// LoginHistory
	ID        string `json:"Id"`
	LoginTime string `json:"LoginTime"`
	LoginType string `json:"LoginType"`
	Status    string `json:"Status"`
	LoginURL  string `json:"LoginUrl"`
	// both
	UserID      string `json:"UserId"`
	SourceIP    string `json:"SourceIp"`
	Application string `json:"Application"`
	APIType     string `json:"ApiType"`
}

func (r *record) object() string {
	switch {
	case r.Attributes.Type != "":
		return r.Attributes.Type
	case r.EventDate != "" || r.EventIdentifier != "":
		return ObjectAPIEvent
	case r.LoginTime != "":
		return ObjectLoginHistory
	}
	return ""
}

// writeOperations are the ApiEvent operations that change data.
var writeOperations = []string{"create", "update", "upsert", "delete", "undelete", "merge", "convertlead", "process", "insert", "hard_delete"}

// Normalize maps one ApiEvent or LoginHistory record to at most one event.
// Records no integration can be named for (browser logins, API calls with
// neither connected app, application nor client) yield none.
func (s *Source) Normalize(raw json.RawMessage) ([]schemas.Event, error) {
	return normalize(raw, s.tenant)
}

func normalize(raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("salesforce: decode record: %w", err)
	}
	switch obj := r.object(); obj {
	case ObjectAPIEvent, "ApiEventStream":
		return normalizeAPIEvent(&r, raw, tenant)
	case ObjectLoginHistory:
		return normalizeLogin(&r, raw, tenant)
	case "":
		return nil, errors.New("salesforce: unknown record shape: no attributes.type, EventDate or LoginTime")
	default:
		return nil, fmt.Errorf("salesforce: unsupported object %q (want ApiEvent or LoginHistory)", obj)
	}
}

func normalizeAPIEvent(r *record, raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	t, err := parseTime("EventDate", r.EventDate)
	if err != nil {
		return nil, err
	}
	var integ schemas.Integration
	switch app := usable(r.Application); {
	case r.ConnectedAppID != "":
		integ = schemas.Integration{ID: r.ConnectedAppID, SourceAppID: r.ConnectedAppID, Name: app}
	case app != "":
		integ = schemas.Integration{ID: "app:" + app, SourceAppID: app, Name: app}
	case usable(r.Client) != "":
		integ = schemas.Integration{ID: "client:" + r.Client, SourceAppID: r.Client, Name: r.Client}
	default:
		return nil, nil
	}
	cat := schemas.CategoryAccess
	if op := strings.ToLower(r.Operation); op != "" {
		for _, w := range writeOperations {
			if strings.HasPrefix(op, w) {
				cat = schemas.CategoryModify
				break
			}
		}
	}
	credType := "session"
	if r.ConnectedAppID != "" {
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
		Network:     schemas.Network{IP: usable(r.SourceIP), UserAgent: r.UserAgent},
		Outcome:     "success",
		Records:     number(r.RowsProcessed),
		Raw:         raw,
	}
	if r.QueriedEntities != "" {
		ev.Resource = schemas.Resource{Type: "sobject", ID: r.QueriedEntities}
	}
	return []schemas.Event{ev}, nil
}

// browserLogin says a LoginHistory row is a person at the UI, not an integration.
func browserLogin(r *record) bool {
	return r.LoginType == "Application" || r.Application == "Browser Login" || strings.Contains(r.LoginType, "SAML")
}

func normalizeLogin(r *record, raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	t, err := parseTime("LoginTime", r.LoginTime)
	if err != nil {
		return nil, err
	}
	if browserLogin(r) {
		return nil, nil
	}
	var integ schemas.Integration
	switch app := usable(r.Application); {
	case app != "":
		integ = schemas.Integration{ID: "app:" + app, SourceAppID: app, Name: app}
	case r.APIType != "":
		integ = schemas.Integration{ID: "api:" + r.APIType, SourceAppID: r.APIType, Name: r.APIType}
	default:
		return nil, fmt.Errorf("salesforce: %s login %s names no Application or ApiType", r.LoginType, r.ID)
	}
	credType := "api_session"
	if strings.HasPrefix(r.LoginType, "Remote Access") {
		credType = "oauth_token"
	}
	ev := schemas.Event{
		EventID:     firstNonEmpty(r.ID, hashID(raw)),
		Source:      SourceName,
		Tenant:      tenant,
		Time:        schemas.NewTime(t),
		Integration: integ,
		Credential:  schemas.Credential{Type: credType},
		Principal:   principal(r.UserID),
		Action:      schemas.Action{Name: "login:" + firstNonEmpty(r.LoginType, "unknown"), Category: schemas.CategoryAuthorize},
		TargetApp:   "salesforce",
		Network:     schemas.Network{IP: usable(r.SourceIP)},
		Outcome:     "success",
		Raw:         raw,
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

// recordKey is the (time, id) the window tracks.
func recordKey(raw json.RawMessage) (time.Time, string, bool) {
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
	if id == "" {
		return schemas.Principal{}
	}
	return schemas.Principal{ID: id, Type: "user"}
}

// usable drops Salesforce's placeholders for "no value".
func usable(s string) string {
	switch s {
	case "N/A", "Unknown", "null":
		return ""
	}
	return s
}

// number reads RowsProcessed, a JSON number that may carry a fraction (2000.0).
func number(raw json.RawMessage) int64 {
	n := json.Number(bytes.Trim(bytes.TrimSpace(raw), `"`))
	if v, err := n.Int64(); err == nil {
		return v
	}
	if f, err := n.Float64(); err == nil && f >= 0 && f <= 9e18 {
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
