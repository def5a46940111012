// Package microsoft disables a Microsoft Entra service principal through
// Microsoft Graph (PATCH servicePrincipals accountEnabled=false): the app
// can no longer get tokens in the tenant.
package microsoft

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// Source is the ingest source name this revoker acts for.
const Source = "microsoft"

// DefaultBaseURL is Microsoft Graph's v1.0 endpoint.
const DefaultBaseURL = "https://graph.microsoft.com/v1.0"

// Config is `respond.vendors.microsoft`.
type Config struct {
	// AccessToken is a Graph token allowed to update service principals
	// (Application.ReadWrite.All, admin-consented). Minting it (client
	// credentials) is left to the deployment: a file: secret a sidecar
	// refreshes.
	AccessToken secret.Secret `yaml:"access_token"`
	BaseURL     string        `yaml:"base_url"`
}

// Revoker disables service principals.
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
		return nil, errors.New("access_token: required (a Graph token with Application.ReadWrite.All; env:NAME or file:PATH)")
	}
	base, err := respond.BaseURL(cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	cfg.BaseURL = base
	return &Revoker{cfg: cfg}, nil
}

var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (r *Revoker) Source() string     { return Source }
func (r *Revoker) PerPrincipal() bool { return false }

// Resolve takes the connector's ids: an application (client) id GUID, which
// Graph addresses by its alternate key servicePrincipals(appId='…'), or
// "sp:<object id>" when only the service principal's object id was logged.
func (r *Revoker) Resolve(id string) (string, bool) {
	if sp, ok := strings.CutPrefix(id, "sp:"); ok && guid.MatchString(sp) {
		return "sp:" + strings.ToLower(sp), true
	}
	if guid.MatchString(id) {
		return strings.ToLower(id), true
	}
	return "", false
}

// Plan is one PATCH accountEnabled=false.
func (r *Revoker) Plan(t respond.Target) ([]respond.Request, error) {
	path := "/servicePrincipals(appId='" + t.VendorID + "')"
	if sp, ok := strings.CutPrefix(t.VendorID, "sp:"); ok {
		path = "/servicePrincipals/" + sp
	}
	if _, ok := r.Resolve(t.VendorID); !ok {
		return nil, fmt.Errorf("microsoft: %q is neither an app id nor sp:<object id>", t.VendorID)
	}
	return []respond.Request{{Method: http.MethodPatch, URL: r.cfg.BaseURL + path, Body: []byte(`{"accountEnabled":false}`)}}, nil
}

func (r *Revoker) Authorize(req *http.Request) {
	req.Header.Set("Authorization", "Bearer "+r.cfg.AccessToken.Reveal())
}

func (r *Revoker) Secrets() []secret.Secret { return []secret.Secret{r.cfg.AccessToken} }

func (r *Revoker) Forbidden() string {
	return "the Graph token needs application permission Application.ReadWrite.All with admin consent (or a delegated admin in the Cloud Application Administrator role)"
}
