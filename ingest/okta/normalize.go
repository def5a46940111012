package okta

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"slices"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// logEvent is one System Log record; only the fields tokenwatch maps.
// geographicalContext and the rest stay in Raw: enrich does GeoIP itself.
type logEvent struct {
	UUID      string `json:"uuid"`
	Published string `json:"published"`
	EventType string `json:"eventType"`
	Actor     entity `json:"actor"`
	Client    struct {
		UserAgent struct {
			RawUserAgent string `json:"rawUserAgent"`
		} `json:"userAgent"`
		IPAddress string `json:"ipAddress"`
	} `json:"client"`
	Outcome struct {
		Result string `json:"result"`
		Reason string `json:"reason"`
	} `json:"outcome"`
	Target       []entity `json:"target"`
	DebugContext struct {
		DebugData map[string]json.RawMessage `json:"debugData"`
	} `json:"debugContext"`
	Request struct {
		IPChain []struct {
			IP string `json:"ip"`
		} `json:"ipChain"`
	} `json:"request"`
	SecurityContext struct {
		// asNumber is an integer; null when unknown.
		ASNumber *int64 `json:"asNumber"`
		ASOrg    string `json:"asOrg"`
		IsProxy  *bool  `json:"isProxy"`
	} `json:"securityContext"`
	AuthenticationContext struct {
		CredentialType string `json:"credentialType"`
	} `json:"authenticationContext"`
}

type entity struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	AlternateID string `json:"alternateId"`
	DisplayName string `json:"displayName"`
	// DetailEntry is free-form; a token target's subject is the user the
	// token was issued for.
	DetailEntry map[string]json.RawMessage `json:"detailEntry"`
}

// clientTypes are the actor/target types that name an OAuth client.
var clientTypes = []string{"PublicClientApp", "AppInstance", "Application", "Client", "OAuth2Client"}

// tokenTypes are the target types that name an issued token.
var tokenTypes = []string{"access_token", "refresh_token", "id_token", "authorization_code", "device_code"}

// Normalize maps one System Log record to at most one event. Event types
// outside app.oauth2.* and system.api_token.* produce none.
func (s *Source) Normalize(raw json.RawMessage) ([]schemas.Event, error) {
	return normalize(raw, s.tenant)
}

func normalize(raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	var e logEvent
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("okta: decode log event: %w", err)
	}
	if e.EventType == "" {
		return nil, errors.New("okta: record has no eventType (not a System Log event)")
	}
	t, err := e.time()
	if err != nil {
		return nil, err
	}
	cat, ok := category(e.EventType, e.Outcome.Result)
	if !ok {
		return nil, nil
	}
	if cat == schemas.CategoryAuthFailure && strings.EqualFold(e.Outcome.Reason, "no_matching_scope") {
		cat = schemas.CategoryScopeDenied
	}
	dbg := debugData(e.DebugContext.DebugData)
	ev := schemas.Event{
		EventID:   e.eventID(raw),
		Source:    SourceName,
		Tenant:    tenant,
		Time:      schemas.NewTime(t),
		Action:    schemas.Action{Name: e.EventType, Category: cat},
		TargetApp: "okta",
		Network:   e.network(),
		Outcome:   outcome(e.Outcome.Result),
		Raw:       raw,
	}
	if strings.HasPrefix(e.EventType, "system.api_token.") {
		tok, ok := e.findTarget("Token")
		if !ok {
			return nil, fmt.Errorf("okta: %s event has no target of type Token", e.EventType)
		}
		ev.Integration = schemas.Integration{ID: "api_token:" + tok.ID, SourceAppID: tok.ID, Name: tok.DisplayName}
		ev.Credential = schemas.Credential{Type: "api_key", ID: tok.ID}
	} else {
		client, ok := e.client(dbg)
		if !ok {
			// An actor type the connector does not know (Okta adds
			// principal types): keep the event under the actor, category other.
			if e.Actor.ID == "" || e.Actor.ID == "unknown" || e.Actor.Type == "User" {
				return nil, fmt.Errorf("okta: %s event names no OAuth client (actor or target of type %v, or debugData clientId)", e.EventType, clientTypes)
			}
			client = schemas.Integration{ID: e.Actor.ID, SourceAppID: e.Actor.ID, Name: e.Actor.DisplayName}
			ev.Action.Category = schemas.CategoryOther
			ingest.CountUnknown("okta", "actor", e.Actor.Type)
		}
		ev.Integration = client
		ev.Credential = e.credential(dbg)
		// Only granted scopes are the event's scopes; what a failed grant
		// asked for was refused and is kept apart.
		ev.Scopes = splitScopes(dbg.str("grantedScopes"))
		if ev.Outcome != "success" {
			ev.RequestedScopes = splitScopes(dbg.str("requestedScopes"))
		}
	}
	if ct := e.AuthenticationContext.CredentialType; ct != "" && (ev.Credential.Type == "" || ev.Credential.Type == "oauth_token") {
		ev.Credential.Type = strings.ToLower(ct)
	}
	ev.Principal = e.principal()
	if as, ok := e.findTarget("AuthorizationServer"); ok {
		ev.Resource = schemas.Resource{Type: "authorization_server", ID: as.ID}
	}
	return []schemas.Event{ev}, nil
}

// recordKey is the (time, id) the window tracks.
func recordKey(raw json.RawMessage) (time.Time, string, bool) {
	var e logEvent
	if json.Unmarshal(raw, &e) != nil {
		return time.Time{}, "", false
	}
	t, err := e.time()
	if err != nil {
		return time.Time{}, "", false
	}
	return t, e.eventID(raw), true
}

func (e *logEvent) time() (time.Time, error) {
	if e.Published == "" {
		return time.Time{}, errors.New("okta: record has no published time")
	}
	t, err := time.Parse(time.RFC3339Nano, e.Published)
	if err != nil {
		return time.Time{}, fmt.Errorf("okta: published %q: %w", e.Published, err)
	}
	return t.UTC(), nil
}

func (e *logEvent) eventID(raw []byte) string {
	if e.UUID != "" {
		return e.UUID
	}
	sum := sha256.Sum256(raw)
	return "h" + hex.EncodeToString(sum[:12])
}

func (e *logEvent) findTarget(types ...string) (entity, bool) {
	for _, t := range e.Target {
		if slices.Contains(types, t.Type) && t.ID != "" {
			return t, true
		}
	}
	return entity{}, false
}

// client finds the OAuth client: the actor when a client acted for itself
// (client_credentials), else a client target (a user's grant or consent),
// else the clientId Okta puts in debugData.
func (e *logEvent) client(dbg debugData) (schemas.Integration, bool) {
	if slices.Contains(clientTypes, e.Actor.Type) && e.Actor.ID != "" {
		return schemas.Integration{ID: e.Actor.ID, SourceAppID: e.Actor.ID, Name: e.Actor.DisplayName}, true
	}
	if t, ok := e.findTarget(clientTypes...); ok {
		return schemas.Integration{ID: t.ID, SourceAppID: t.ID, Name: t.DisplayName}, true
	}
	if id := firstNonEmpty(dbg.str("clientId"), dbg.str("client_id")); id != "" {
		return schemas.Integration{ID: id, SourceAppID: id}, true
	}
	return schemas.Integration{}, false
}

func (e *logEvent) credential(dbg debugData) schemas.Credential {
	if t, ok := e.findTarget(tokenTypes...); ok {
		return schemas.Credential{Type: t.Type, ID: t.ID}
	}
	if dbg.str("grantType") != "" {
		return schemas.Credential{Type: "oauth_token"}
	}
	return schemas.Credential{}
}

func (e *logEvent) network() schemas.Network {
	n := schemas.Network{IP: e.Client.IPAddress, UserAgent: e.Client.UserAgent.RawUserAgent, ASOrg: e.SecurityContext.ASOrg}
	for _, hop := range e.Request.IPChain {
		if hop.IP != "" {
			n.IPChain = append(n.IPChain, hop.IP)
		}
	}
	if p := e.SecurityContext.IsProxy; p != nil {
		n.Proxy = *p
	}
	if as := e.SecurityContext.ASNumber; as != nil && *as > 0 && *as <= 1<<32-1 {
		n.ASN = uint32(*as)
	}
	return n
}

// tokenSubject is the subject of an issued token's detailEntry: for a
// user-delegated grant, the user the client acts for.
func (e *logEvent) tokenSubject() string {
	for _, t := range e.Target {
		if !slices.Contains(tokenTypes, t.Type) {
			continue
		}
		var sub string
		if json.Unmarshal(t.DetailEntry["subject"], &sub) == nil && sub != "" {
			return sub
		}
	}
	return ""
}

func (e *logEvent) principal() schemas.Principal {
	a := e.Actor
	switch {
	case a.Type == "User":
		return schemas.Principal{ID: firstNonEmpty(a.AlternateID, a.ID), Type: "user"}
	case slices.Contains(clientTypes, a.Type):
		if u, ok := e.findTarget("User"); ok {
			return schemas.Principal{ID: firstNonEmpty(u.AlternateID, u.ID), Type: "user"}
		}
		// A client_credentials token's subject is the client itself.
		if sub := e.tokenSubject(); sub != "" && sub != a.ID && sub != a.AlternateID {
			return schemas.Principal{ID: sub, Type: "user"}
		}
		return schemas.Principal{ID: a.ID, Type: "app"}
	case a.ID != "" && a.ID != "unknown":
		return schemas.Principal{ID: firstNonEmpty(a.AlternateID, a.ID), Type: strings.ToLower(a.Type)}
	}
	return schemas.Principal{}
}

// category maps an event type and outcome; ok is false for event types that
// are not token activity.
func category(eventType, result string) (string, bool) {
	failed := result == "FAILURE" || result == "DENY"
	et := strings.ToLower(eventType)
	switch {
	case strings.HasPrefix(et, "system.api_token."):
		switch et {
		case "system.api_token.create":
			return schemas.CategoryAuthorize, true
		case "system.api_token.revoke", "system.api_token.delete":
			return schemas.CategoryRevoke, true
		}
		return schemas.CategoryAdmin, true
	case !strings.HasPrefix(et, "app.oauth2."):
		return "", false
	case strings.Contains(et, "detect_reuse"):
		// A refresh token presented twice: Okta suspects it was stolen.
		return schemas.CategoryAuthFailure, true
	case strings.Contains(et, ".revoke"):
		return schemas.CategoryRevoke, true
	case strings.Contains(et, ".grant") || strings.Contains(et, ".authorize"):
		if failed {
			return schemas.CategoryAuthFailure, true
		}
		return schemas.CategoryAuthorize, true
	}
	return schemas.CategoryAdmin, true // client, key and policy changes
}

func outcome(result string) string {
	switch result {
	case "SUCCESS", "ALLOW":
		return "success"
	case "FAILURE", "DENY":
		return "failure"
	}
	return "unknown"
}

// debugData holds debugContext.debugData, whose values Okta writes as strings.
type debugData map[string]json.RawMessage

func (d debugData) str(key string) string {
	var s string
	if json.Unmarshal(d[key], &s) != nil {
		return ""
	}
	return s
}

// splitScopes reads Okta's scope lists, space- or comma-separated.
func splitScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
