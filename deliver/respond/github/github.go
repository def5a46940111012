// Package github revokes a fine-grained personal access token's access to
// an organization through GitHub's REST API (POST
// /orgs/{org}/personal-access-tokens/{pat_id} {"action":"revoke"}).
package github

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
const Source = "github"

// DefaultBaseURL is GitHub.com's REST API.
const DefaultBaseURL = "https://api.github.com"

// Config is `respond.vendors.github`.
type Config struct {
	// Org is the organization whose resources the token loses.
	Org string `yaml:"org"`
	// Token is a GitHub App installation token on Org with the organization
	// permission "Personal access tokens: write" (the endpoint takes only
	// GitHub App tokens).
	Token   secret.Secret `yaml:"token"`
	BaseURL string        `yaml:"base_url"`
}

// Revoker revokes fine-grained PATs' organization access.
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
	if cfg.Org == "" || strings.ContainsAny(cfg.Org, "/ ") {
		return nil, fmt.Errorf("org %q: the organization login is required", cfg.Org)
	}
	if cfg.Token.IsZero() {
		return nil, errors.New("token: required (a GitHub App installation token with Personal access tokens: write; env:NAME or file:PATH)")
	}
	base, err := respond.BaseURL(cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	cfg.BaseURL = base
	return &Revoker{cfg: cfg}, nil
}

var patID = regexp.MustCompile(`^[0-9]+$`)

func (r *Revoker) Source() string     { return Source }
func (r *Revoker) PerPrincipal() bool { return false }

// Resolve takes "pat:<numeric token id>", the audit log's token_id. A PAT
// known only by its hashed_token, a classic PAT, an OAuth app or a GitHub
// App installation have no org-side revocation here (see README).
func (r *Revoker) Resolve(id string) (string, bool) {
	if n, ok := strings.CutPrefix(id, "pat:"); ok && patID.MatchString(n) {
		return n, true
	}
	return "", false
}

// Plan is one revoke of the token's access to the organization.
func (r *Revoker) Plan(t respond.Target) ([]respond.Request, error) {
	if !patID.MatchString(t.VendorID) {
		return nil, fmt.Errorf("github: %q is not a fine-grained PAT id", t.VendorID)
	}
	return []respond.Request{{Method: http.MethodPost,
		URL:  fmt.Sprintf("%s/orgs/%s/personal-access-tokens/%s", r.cfg.BaseURL, url.PathEscape(r.cfg.Org), t.VendorID),
		Body: []byte(`{"action":"revoke"}`)}}, nil
}

func (r *Revoker) Authorize(req *http.Request) {
	req.Header.Set("Authorization", "Bearer "+r.cfg.Token.Reveal())
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
}

func (r *Revoker) Secrets() []secret.Secret { return []secret.Secret{r.cfg.Token} }

func (r *Revoker) Forbidden() string {
	return "use a GitHub App installation token (not a PAT or OAuth token) whose app has the organization permission \"Personal access tokens\" set to write, installed on the organization"
}
