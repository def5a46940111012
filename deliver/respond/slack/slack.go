// Package slack uninstalls a Slack app from the whole Enterprise Grid org
// through the Admin API (admin.apps.uninstall): every token of its
// installations is revoked.
package slack

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// Source is the ingest source name this revoker acts for.
const Source = "slack"

// DefaultBaseURL is Slack's Web API.
const DefaultBaseURL = "https://slack.com/api"

// Config is `respond.vendors.slack`.
type Config struct {
	// EnterpriseID is the Enterprise Grid org to uninstall from ("E…").
	EnterpriseID string `yaml:"enterprise_id"`
	// Token is an org-level user token of an Org Admin or Owner with scope
	// admin.apps:write.
	Token   secret.Secret `yaml:"token"`
	BaseURL string        `yaml:"base_url"`
}

// Revoker uninstalls apps org-wide.
type Revoker struct{ cfg Config }

var (
	_ respond.Revoker     = (*Revoker)(nil)
	_ respond.BodyChecker = (*Revoker)(nil)
)

func init() {
	respond.Register(Source, func(decode func(any) error) (respond.Revoker, error) {
		cfg := Config{BaseURL: DefaultBaseURL}
		if err := decode(&cfg); err != nil {
			return nil, err
		}
		return New(cfg)
	})
}

var (
	enterpriseID = regexp.MustCompile(`^E[0-9A-Z]+$`)
	appID        = regexp.MustCompile(`^A[0-9A-Z]+$`)
)

// New validates cfg; no network.
func New(cfg Config) (*Revoker, error) {
	if !enterpriseID.MatchString(cfg.EnterpriseID) {
		return nil, fmt.Errorf("enterprise_id %q: want the Enterprise Grid org id (E…)", cfg.EnterpriseID)
	}
	if cfg.Token.IsZero() {
		return nil, errors.New("token: required (an org-level admin user token with admin.apps:write; env:NAME or file:PATH)")
	}
	base, err := respond.BaseURL(cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	cfg.BaseURL = base
	return &Revoker{cfg: cfg}, nil
}

func (r *Revoker) Source() string     { return Source }
func (r *Revoker) PerPrincipal() bool { return false }

// Resolve takes the app id the audit logs carry ("A…").
func (r *Revoker) Resolve(id string) (string, bool) {
	if appID.MatchString(id) {
		return id, true
	}
	return "", false
}

// Plan is one admin.apps.uninstall across the org.
func (r *Revoker) Plan(t respond.Target) ([]respond.Request, error) {
	if !appID.MatchString(t.VendorID) {
		return nil, fmt.Errorf("slack: %q is not an app id", t.VendorID)
	}
	body, _ := json.Marshal(map[string]string{"app_id": t.VendorID, "enterprise_id": r.cfg.EnterpriseID})
	return []respond.Request{{Method: http.MethodPost, URL: r.cfg.BaseURL + "/admin.apps.uninstall", Body: body}}, nil
}

// CheckBody reads Slack's {"ok": …, "error": …}: Slack answers most
// errors with HTTP 200.
func (r *Revoker) CheckBody(body []byte) error {
	var v struct {
		OK     bool   `json:"ok"`
		Error  string `json:"error"`
		Needed string `json:"needed"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("slack: unreadable answer: %w", err)
	}
	switch {
	case v.OK:
		return nil
	case v.Error == "app_not_found":
		return respond.ErrAlreadyDone
	case v.Error == "missing_scope", v.Error == "not_an_admin", v.Error == "permission_denied", v.Error == "not_allowed_token_type",
		v.Error == "invalid_auth", v.Error == "not_authed", v.Error == "feature_not_enabled":
		msg := v.Error
		if v.Needed != "" {
			msg += " (needed: " + v.Needed + ")"
		}
		return &respond.ForbiddenError{Status: http.StatusOK, Need: r.Forbidden(), Vendor: msg}
	}
	return fmt.Errorf("slack: %s", v.Error)
}

func (r *Revoker) Authorize(req *http.Request) {
	req.Header.Set("Authorization", "Bearer "+r.cfg.Token.Reveal())
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
}

func (r *Revoker) Secrets() []secret.Secret { return []secret.Secret{r.cfg.Token} }

func (r *Revoker) Forbidden() string {
	return "an org-level user token of an Enterprise Grid Org Admin or Owner with scope admin.apps:write, installed on the whole org (not a workspace)"
}
