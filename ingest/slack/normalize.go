package slack

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// entry is one Audit Logs API entry; only the fields tokenwatch maps.
type entry struct {
	ID         string          `json:"id"`
	DateCreate json.RawMessage `json:"date_create"`
	Action     string          `json:"action"`
	// Actor has only type and user in the Audit Logs API; the app an
	// action was done through is context.app (or the entity).
	Actor struct {
		Type string `json:"type"`
		User *user  `json:"user"`
	} `json:"actor"`
	Entity struct {
		Type string `json:"type"`
		App  *app   `json:"app"`
		File *struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			Filetype string `json:"filetype"`
		} `json:"file"`
		Workflow *struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"workflow"`
	} `json:"entity"`
	Context struct {
		Location struct {
			Type   string `json:"type"`
			ID     string `json:"id"`
			Name   string `json:"name"`
			Domain string `json:"domain"`
		} `json:"location"`
		UA        string `json:"ua"`
		IPAddress string `json:"ip_address"`
		App       *app   `json:"app"`
	} `json:"context"`
	Details struct {
		NewScopes      []string `json:"new_scopes"`
		PreviousScopes []string `json:"previous_scopes"`
		// Install details: user-token and bot-token scopes granted.
		Scopes                 []string `json:"scopes"`
		BotScopes              []string `json:"bot_scopes"`
		IsTokenRotationEnabled *bool    `json:"is_token_rotation_enabled_app"`
		GranularBotToken       *bool    `json:"granular_bot_token"`
		AppID                  string   `json:"app_id"`
		AppName                string   `json:"app_name"`
	} `json:"details"`
}

type user struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	Team  string `json:"team"`
}

type app struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// categories maps the app and token actions; file actions by an app are
// access unless listed.
var categories = map[string]string{
	"app_installed":              schemas.CategoryAuthorize,
	"app_approved":               schemas.CategoryAuthorize,
	"app_scopes_expanded":        schemas.CategoryAuthorize,
	"app_resources_added":        schemas.CategoryAuthorize,
	"app_resources_granted":      schemas.CategoryAuthorize,
	"bot_token_upgraded":         schemas.CategoryAuthorize,
	"org_app_workspace_added":    schemas.CategoryAuthorize,
	"app_uninstalled":            schemas.CategoryRevoke,
	"app_deleted":                schemas.CategoryRevoke,
	"app_restricted":             schemas.CategoryRevoke,
	"app_removed_from_whitelist": schemas.CategoryRevoke,
	"app_resources_removed":      schemas.CategoryRevoke,
	"bot_token_downgraded":       schemas.CategoryRevoke,
	"org_app_workspace_removed":  schemas.CategoryRevoke,
	"file_downloaded_blocked":    schemas.CategoryAuthFailure,
	"file_uploaded":              schemas.CategoryModify,
	"file_public_link_created":   schemas.CategoryModify,
	"file_shared":                schemas.CategoryModify,
	"workflow_published":         schemas.CategoryAuthorize,
	"workflow_unpublished":       schemas.CategoryRevoke,
	"workflow_deleted":           schemas.CategoryRevoke,
}

// Normalize maps one audit entry to at most one event; an entry no app is
// part of (a person downloading a file) yields none.
func (s *Source) Normalize(raw json.RawMessage) ([]schemas.Event, error) {
	return normalize(raw, s.tenant)
}

func normalize(raw json.RawMessage, tenant string) ([]schemas.Event, error) {
	var e entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("slack: decode audit entry: %w", err)
	}
	if e.Action == "" {
		return nil, errors.New("slack: entry has no action (not an audit log entry)")
	}
	t, err := e.time()
	if err != nil {
		return nil, err
	}
	a := e.app()
	if a == nil {
		return nil, nil
	}
	cat, ok := categories[e.Action]
	switch {
	case ok:
	case strings.HasPrefix(e.Action, "app_") || strings.HasPrefix(e.Action, "bot_") || strings.HasPrefix(e.Action, "org_app_") || strings.HasPrefix(e.Action, "workflow_"):
		cat = schemas.CategoryAdmin // app_token_preserved, approvals config, workflow edits…
	default:
		cat = schemas.CategoryAccess // file_downloaded and other reads by an app
	}
	// A scope change carries the added scopes; an install the user-token
	// and bot-token scopes it granted; else an authorize has the app's scopes.
	scopes := e.Details.NewScopes
	if len(scopes) == 0 {
		scopes = union(e.Details.Scopes, e.Details.BotScopes)
	}
	if len(scopes) == 0 && cat == schemas.CategoryAuthorize && e.Entity.App != nil {
		scopes = e.Entity.App.Scopes
	}
	ev := schemas.Event{
		EventID:     e.eventID(raw),
		Source:      SourceName,
		Tenant:      tenant,
		Time:        schemas.NewTime(t),
		Integration: schemas.Integration{ID: a.ID, SourceAppID: a.ID, Name: a.Name},
		Credential:  schemas.Credential{Type: e.credentialType(), ID: installationID(a.ID, e.Context.Location.ID)},
		Principal:   e.principal(),
		Action:      schemas.Action{Name: e.Action, Category: cat},
		TargetApp:   "slack",
		Resource:    e.resource(),
		Scopes:      scopes,
		Network:     schemas.Network{IP: e.Context.IPAddress, UserAgent: e.Context.UA},
		Outcome:     "success",
		Raw:         raw,
	}
	if cat == schemas.CategoryAuthFailure {
		ev.Outcome = "failure"
	}
	return []schemas.Event{ev}, nil
}

// recordKey is the (time, id) the window tracks.
func recordKey(raw json.RawMessage) (time.Time, string, bool) {
	var e entry
	if json.Unmarshal(raw, &e) != nil {
		return time.Time{}, "", false
	}
	t, err := e.time()
	if err != nil {
		return time.Time{}, "", false
	}
	return t, e.eventID(raw), true
}

// time reads date_create, epoch seconds (a number, sometimes quoted).
func (e *entry) time() (time.Time, error) {
	v := string(bytes.Trim(bytes.TrimSpace(e.DateCreate), `"`))
	if v == "" || v == "null" {
		return time.Time{}, errors.New("slack: entry has no date_create")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, fmt.Errorf("slack: date_create %q is not epoch seconds", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

func (e *entry) eventID(raw []byte) string {
	if e.ID != "" {
		return e.ID
	}
	sum := sha256.Sum256(raw)
	return "h" + hex.EncodeToString(sum[:12])
}

// app finds the app an entry is about or was done by: the entity for app_*
// actions, else an app or bot actor, the context's app, or the details'
// app_id.
func (e *entry) app() *app {
	for _, a := range []*app{e.Entity.App, e.Context.App} {
		if a != nil && a.ID != "" {
			return a
		}
	}
	if e.Details.AppID != "" {
		return &app{ID: e.Details.AppID, Name: e.Details.AppName}
	}
	// A workflow is automation acting in the workspace: its own integration.
	if w := e.Entity.Workflow; w != nil && w.ID != "" {
		return &app{ID: "workflow:" + w.ID, Name: w.Name}
	}
	return nil
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (e *entry) principal() schemas.Principal {
	if u := e.Actor.User; u != nil && (u.Email != "" || u.ID != "") {
		return schemas.Principal{ID: firstNonEmpty(u.Email, u.ID), Type: "user"}
	}
	if t := e.Actor.Type; t != "" && t != "user" {
		return schemas.Principal{ID: e.app().ID, Type: strings.ToLower(t)}
	}
	return schemas.Principal{}
}

func (e *entry) resource() schemas.Resource {
	if f := e.Entity.File; f != nil && f.ID != "" {
		return schemas.Resource{Type: "file", ID: f.ID}
	}
	if w := e.Entity.Workflow; w != nil && w.ID != "" {
		return schemas.Resource{Type: "workflow", ID: w.ID}
	}
	if l := e.Context.Location; l.ID != "" {
		return schemas.Resource{Type: firstNonEmpty(l.Type, "workspace"), ID: l.ID}
	}
	return schemas.Resource{}
}

// credentialType: a bot token for bot-token actions and granular bot-token
// installs; "rotating_" when the app has token rotation on (its tokens expire).
func (e *entry) credentialType() string {
	t := "oauth_token"
	if strings.HasPrefix(e.Action, "bot_token_") || (e.Details.GranularBotToken != nil && *e.Details.GranularBotToken) {
		t = "bot_token"
	}
	if r := e.Details.IsTokenRotationEnabled; r != nil && *r {
		t = "rotating_" + t
	}
	return t
}

// installationID names the app's grant in one workspace or org: Slack logs
// no token id, and one (app, location) install is one token lineage.
func installationID(appID, locationID string) string {
	sum := sha256.Sum256([]byte(appID + "\x00" + locationID))
	return "i-" + hex.EncodeToString(sum[:8])
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
