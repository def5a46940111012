package googleworkspace

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// activity is one record of the Reports API activities.list response.
type activity struct {
	Kind string `json:"kind"`
	ID   struct {
		Time            string `json:"time"`
		UniqueQualifier string `json:"uniqueQualifier"`
		ApplicationName string `json:"applicationName"`
		CustomerID      string `json:"customerId"`
	} `json:"id"`
	Actor struct {
		CallerType string `json:"callerType"`
		Email      string `json:"email"`
		ProfileID  string `json:"profileId"`
		// Key is set when callerType is KEY: the OAuth consumer key of a 2LO
		// request or a robot account's id.
		Key string `json:"key"`
		// ApplicationInfo names the app that acted; Impersonation is true when
		// it is a service account with domain-wide delegation acting as the user.
		ApplicationInfo *struct {
			OAuthClientID   string `json:"oauthClientId"`
			ApplicationName string `json:"applicationName"`
			Impersonation   bool   `json:"impersonation"`
		} `json:"applicationInfo"`
	} `json:"actor"`
	IPAddress string `json:"ipAddress"`
	Events    []struct {
		Type       string      `json:"type"`
		Name       string      `json:"name"`
		Parameters []parameter `json:"parameters"`
	} `json:"events"`
}

type parameter struct {
	Name       string   `json:"name"`
	Value      string   `json:"value"`
	IntValue   string   `json:"intValue"`
	BoolValue  *bool    `json:"boolValue"`
	MultiValue []string `json:"multiValue"`
}

// categories maps token-activity event names to tokenwatch action categories.
var categories = map[string]string{
	"authorize": schemas.CategoryAuthorize,
	"revoke":    schemas.CategoryRevoke,
	"activity":  schemas.CategoryAccess,
	"request":   schemas.CategoryAccess,
}

// writeVerbs mark an API method that changes data; the rest of "activity" is read access.
var writeVerbs = []string{"insert", "update", "patch", "delete", "create", "modify", "send", "import", "trash", "move", "copy"}

// Normalize maps one token activity record to one event per entry in its
// events array. Errors name what is wrong so the dead letter explains itself.
func (s *Source) Normalize(raw json.RawMessage) ([]schemas.Event, error) {
	return normalize(raw, s.tenant)
}

func normalize(raw json.RawMessage, defaultTenant string) ([]schemas.Event, error) {
	var a activity
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("google_workspace: decode activity: %w", err)
	}
	if a.ID.Time == "" {
		return nil, errors.New("google_workspace: record has no id.time")
	}
	t, err := time.Parse(time.RFC3339Nano, a.ID.Time)
	if err != nil {
		return nil, fmt.Errorf("google_workspace: id.time %q: %w", a.ID.Time, err)
	}
	if app := a.ID.ApplicationName; app != "" && app != "token" {
		return nil, fmt.Errorf("google_workspace: applicationName %q is not token activity", app)
	}
	if len(a.Events) == 0 {
		return nil, errors.New("google_workspace: record has no events")
	}
	tenant := a.ID.CustomerID
	if tenant == "" {
		tenant = defaultTenant
	}
	baseID := a.ID.UniqueQualifier
	if baseID == "" {
		sum := sha256.Sum256(raw)
		baseID = "h" + hex.EncodeToString(sum[:12])
	}
	var appInfoID, appInfoName string
	impersonation := false
	if ai := a.Actor.ApplicationInfo; ai != nil {
		appInfoID, appInfoName, impersonation = ai.OAuthClientID, ai.ApplicationName, ai.Impersonation
	}
	out := make([]schemas.Event, 0, len(a.Events))
	var skipped []string
	for i, e := range a.Events {
		cat, ok := categories[e.Name]
		if !ok {
			// New event names appear over time: keep the event, count the name.
			cat = schemas.CategoryOther
			ingest.CountUnknown(SourceName, "event", e.Name)
		}
		p := params(e.Parameters)
		clientID := firstNonEmpty(p.str("client_id"), appInfoID)
		if clientID == "" && a.Actor.Key != "" {
			clientID = "key:" + a.Actor.Key
		}
		if clientID == "" {
			skipped = append(skipped, fmt.Sprintf("%s event %d has no client_id", firstNonEmpty(e.Name, "unnamed"), i))
			continue
		}
		method := p.str("method_name")
		if cat == schemas.CategoryAccess && isWrite(method) {
			cat = schemas.CategoryModify
		}
		ev := schemas.Event{
			EventID: fmt.Sprintf("%s/%s/%d", a.ID.Time, baseID, i),
			Source:  SourceName,
			Tenant:  tenant,
			Time:    schemas.NewTime(t),
			Integration: schemas.Integration{
				ID:          clientID,
				SourceAppID: clientID,
				Name:        firstNonEmpty(p.str("app_name"), appInfoName),
			},
			Credential:    credential(clientID, a.Actor.CallerType, a.Actor.Key, a.Actor.ProfileID, a.Actor.Email),
			Principal:     principal(a.Actor.CallerType, a.Actor.Email, a.Actor.ProfileID, a.Actor.Key),
			Impersonation: impersonation,
			Action:        schemas.Action{Name: actionName(e.Name, method), Category: cat},
			TargetApp:     strings.ToLower(firstNonEmpty(p.str("api_name"), p.str("product_bucket"))),
			Scopes:        p.multi("scope"),
			Network:       schemas.Network{IP: a.IPAddress},
			Outcome:       "success",
			Bytes:         p.int("num_response_bytes"),
			Raw:           raw,
		}
		if method != "" {
			ev.Resource = schemas.Resource{Type: "api_method", ID: method}
		}
		if ct := p.str("client_type"); ct != "" && ct != "TYPE_UNSPECIFIED" {
			ev.Credential.Type = "oauth_token_" + strings.ToLower(ct)
		}
		out = append(out, ev)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("google_workspace: no event of the record names an app: %s", strings.Join(skipped, "; "))
	}
	return out, nil
}

// credential: a KEY caller's key, else the user's grant to the app.
func credential(clientID, callerType, key, profileID, email string) schemas.Credential {
	if callerType == "KEY" && key != "" {
		return schemas.Credential{Type: "api_key", ID: key}
	}
	return schemas.Credential{Type: "oauth_token", ID: grantID(clientID, profileID, email)}
}

// principal is the user acted as (impersonated, with domain-wide
// delegation), else the API key caller.
func principal(callerType, email, profileID, key string) schemas.Principal {
	if id := firstNonEmpty(email, profileID); id != "" {
		return schemas.Principal{ID: id, Type: principalType(callerType)}
	}
	if key != "" {
		return schemas.Principal{ID: "key:" + key, Type: "api_key"}
	}
	return schemas.Principal{}
}

type paramList []parameter

func params(ps []parameter) paramList { return ps }

func (ps paramList) find(name string) *parameter {
	for i := range ps {
		if ps[i].Name == name {
			return &ps[i]
		}
	}
	return nil
}

func (ps paramList) str(name string) string {
	if p := ps.find(name); p != nil {
		return p.Value
	}
	return ""
}

func (ps paramList) int(name string) int64 {
	p := ps.find(name)
	if p == nil {
		return 0
	}
	v := p.IntValue
	if v == "" {
		v = p.Value
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

func (ps paramList) multi(name string) []string {
	if p := ps.find(name); p != nil {
		if len(p.MultiValue) > 0 {
			return p.MultiValue
		}
		if p.Value != "" {
			return strings.Fields(p.Value)
		}
	}
	return nil
}

// grantID identifies the user's grant to the app: Google exposes no token id in
// token activity, and one (client, user) pair is one refresh-token lineage.
func grantID(clientID, profileID, email string) string {
	sum := sha256.Sum256([]byte(clientID + "\x00" + firstNonEmpty(profileID, email)))
	return "g-" + hex.EncodeToString(sum[:8])
}

func isWrite(method string) bool {
	m := strings.ToLower(method)
	if i := strings.LastIndexByte(m, '.'); i >= 0 {
		m = m[i+1:]
	}
	for _, v := range writeVerbs {
		if strings.HasPrefix(m, v) {
			return true
		}
	}
	return false
}

func actionName(event, method string) string {
	if method != "" {
		return event + ":" + method
	}
	return event
}

func principalType(callerType string) string {
	switch callerType {
	case "USER", "":
		return "user"
	case "KEY":
		return "api_key"
	}
	return strings.ToLower(callerType)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
