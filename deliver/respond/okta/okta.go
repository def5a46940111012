// Package okta cuts an Okta integration off through the Okta management
// API: an OAuth client app is deactivated (lifecycle/deactivate), an API
// token is revoked (DELETE /api/v1/api-tokens/{id}).
package okta

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// Source is the ingest source name this revoker acts for.
const Source = "okta"

// Config is `respond.vendors.okta`.
type Config struct {
	// OrgURL is the Okta org, https://<org>.okta.com.
	OrgURL string `yaml:"org_url"`
	// APIToken is an SSWS API token of a Super Administrator (or an admin
	// with the app and API-token permissions).
	APIToken secret.Secret `yaml:"api_token"`
}

// Revoker deactivates apps and revokes API tokens.
type Revoker struct{ cfg Config }

var _ respond.Revoker = (*Revoker)(nil)

func init() {
	respond.Register(Source, func(decode func(any) error) (respond.Revoker, error) {
		var cfg Config
		if err := decode(&cfg); err != nil {
			return nil, err
		}
		return New(cfg)
	})
}

// New validates cfg; no network.
func New(cfg Config) (*Revoker, error) {
	if u, err := url.Parse(cfg.OrgURL); err != nil || u.Host == "" {
		return nil, fmt.Errorf("org_url %q: want https://<org>.okta.com", cfg.OrgURL)
	}
	if cfg.APIToken.IsZero() {
		return nil, errors.New("api_token: required (an admin SSWS token; env:NAME or file:PATH)")
	}
	cfg.OrgURL = strings.TrimRight(cfg.OrgURL, "/")
	return &Revoker{cfg: cfg}, nil
}

// Okta ids are 20 characters, base62 (apps "0oa…", tokens "00T…").
var oktaID = regexp.MustCompile(`^[0-9A-Za-z]{20}$`)

func (r *Revoker) Source() string     { return Source }
func (r *Revoker) PerPrincipal() bool { return false }

// Resolve takes the connector's ids: an OAuth client's app id (for Okta
// OAuth apps the client_id is the app id) or "api_token:<token id>".
func (r *Revoker) Resolve(id string) (string, bool) {
	if tok, ok := strings.CutPrefix(id, "api_token:"); ok && oktaID.MatchString(tok) {
		return id, true
	}
	if oktaID.MatchString(id) {
		return id, true
	}
	return "", false
}

// Plan deactivates the app, or revokes the API token.
func (r *Revoker) Plan(t respond.Target) ([]respond.Request, error) {
	if _, ok := r.Resolve(t.VendorID); !ok {
		return nil, fmt.Errorf("okta: %q is neither an app id nor api_token:<id>", t.VendorID)
	}
	if tok, ok := strings.CutPrefix(t.VendorID, "api_token:"); ok {
		return []respond.Request{{Method: http.MethodDelete, URL: r.cfg.OrgURL + "/api/v1/api-tokens/" + tok}}, nil
	}
	return []respond.Request{{Method: http.MethodPost, URL: r.cfg.OrgURL + "/api/v1/apps/" + t.VendorID + "/lifecycle/deactivate"}}, nil
}

func (r *Revoker) Authorize(req *http.Request) {
	req.Header.Set("Authorization", "SSWS "+r.cfg.APIToken.Reveal())
}

func (r *Revoker) Secrets() []secret.Secret { return []secret.Secret{r.cfg.APIToken} }

func (r *Revoker) Forbidden() string {
	return "the API token's admin needs the Super Administrator role, or a custom admin role with okta.apps.manage (deactivate apps) and okta.apiTokens.manage (revoke API tokens)"
}
