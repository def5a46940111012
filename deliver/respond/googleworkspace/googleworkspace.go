// Package googleworkspace revokes a Google Workspace OAuth client's grants
// through the Admin SDK Directory API: tokens.delete for every user holding
// one (the users the incident's events name).
package googleworkspace

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// Source is the ingest source name this revoker acts for.
const Source = "google_workspace"

// Config is `respond.vendors.google_workspace`.
type Config struct {
	// AccessToken is an OAuth access token with the
	// admin.directory.user.security scope, for an admin with the User
	// Management privilege (a service account with domain-wide delegation
	// impersonating one). Minting it (JWT grant) is left to the deployment:
	// a file: secret refreshed by a sidecar, or env: for a one-off.
	AccessToken secret.Secret `yaml:"access_token"`
	// BaseURL is the Admin SDK endpoint; tests point it at a fake.
	BaseURL string `yaml:"base_url"`
}

// DefaultBaseURL is Google's Admin SDK endpoint.
const DefaultBaseURL = "https://admin.googleapis.com"

// Revoker deletes users' tokens for an OAuth client.
type Revoker struct{ cfg Config }

var _ respond.Revoker = (*Revoker)(nil)

func init() {
	respond.Register(Source, func(decode func(any) error) (respond.Revoker, error) {
		cfg := Config{BaseURL: DefaultBaseURL}
		if err := decode(&cfg); err != nil {
			return nil, err
		}
		return New(cfg)
	})
}

// New validates cfg; no network.
func New(cfg Config) (*Revoker, error) {
	if cfg.AccessToken.IsZero() {
		return nil, errors.New("access_token: required (an admin OAuth token with scope https://www.googleapis.com/auth/admin.directory.user.security; env:NAME or file:PATH)")
	}
	base, err := respond.BaseURL(cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	cfg.BaseURL = base
	return &Revoker{cfg: cfg}, nil
}

func (r *Revoker) Source() string     { return Source }
func (r *Revoker) PerPrincipal() bool { return true }

// Resolve accepts OAuth client ids as the Reports API logs them
// (client_id: "1234….apps.googleusercontent.com" or the bare number).
func (r *Revoker) Resolve(id string) (string, bool) {
	if id == "" || strings.ContainsAny(id, "/:?# ") {
		return "", false
	}
	return id, true
}

// Plan is one DELETE per user: the API revokes every token that user issued
// to the client.
func (r *Revoker) Plan(t respond.Target) ([]respond.Request, error) {
	if t.Principal == "" {
		return nil, errors.New("google_workspace: a user (userKey: primary email or user id) is needed: grants are revoked per user")
	}
	return []respond.Request{{Method: http.MethodDelete,
		URL: fmt.Sprintf("%s/admin/directory/v1/users/%s/tokens/%s", r.cfg.BaseURL, url.PathEscape(t.Principal), url.PathEscape(t.VendorID))}}, nil
}

func (r *Revoker) Authorize(req *http.Request) {
	req.Header.Set("Authorization", "Bearer "+r.cfg.AccessToken.Reveal())
}

func (r *Revoker) Secrets() []secret.Secret { return []secret.Secret{r.cfg.AccessToken} }

func (r *Revoker) Forbidden() string {
	return "the token needs OAuth scope https://www.googleapis.com/auth/admin.directory.user.security, for an admin with the User Management (Users › Security settings) privilege; with a service account, allow that scope for its client id under domain-wide delegation"
}
