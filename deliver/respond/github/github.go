// Package github revokes GitHub credentials' access to an organization
// through GitHub's REST API, with the lever the credential's kind allows:
// a fine-grained PAT's organization access (POST
// /orgs/{org}/personal-access-tokens/{pat_id} {"action":"revoke"}), or a
// token's SAML SSO authorization for the organization, listed from GET
// /orgs/{org}/credential-authorizations and removed with DELETE
// /orgs/{org}/credential-authorizations/{credential_id}.
package github

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
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
	// permissions "Personal access tokens: write" (fine-grained PATs; that
	// endpoint takes only GitHub App tokens) and "Administration: write"
	// (SAML SSO authorizations).
	Token   secret.Secret `yaml:"token"`
	BaseURL string        `yaml:"base_url"`
}

// Revoker revokes fine-grained PATs' organization access and tokens' SAML
// SSO authorizations.
type Revoker struct{ cfg Config }

var (
	_ respond.Revoker    = (*Revoker)(nil)
	_ respond.Discoverer = (*Revoker)(nil)
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

// New validates cfg; no network.
func New(cfg Config) (*Revoker, error) {
	if cfg.Org == "" || strings.ContainsAny(cfg.Org, "/ ") {
		return nil, fmt.Errorf("org %q: the organization login is required", cfg.Org)
	}
	if cfg.Token.IsZero() {
		return nil, errors.New("token: required (a GitHub App installation token with Personal access tokens: write and Administration: write; env:NAME or file:PATH)")
	}
	base, err := respond.BaseURL(cfg.BaseURL, DefaultBaseURL)
	if err != nil {
		return nil, err
	}
	cfg.BaseURL = base
	return &Revoker{cfg: cfg}, nil
}

// SSOPrefix starts the identity of a token's SAML SSO authorization:
// "saml_sso:<owner login>/<token's last eight characters>".
const SSOPrefix = "saml_sso:"

var (
	patID = regexp.MustCompile(`^[0-9]+$`)
	// A login as GitHub spells it (letters, digits, hyphens; managed users
	// add an underscore and a short code).
	login = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$`)
	// token_last_eight: a token's characters are letters, digits and "_".
	lastEight = regexp.MustCompile(`^[A-Za-z0-9_]{8}$`)
)

// ssoToken splits a saml_sso identity into the owner's login and the
// token's last eight characters.
func ssoToken(id string) (owner, last string, ok bool) {
	rest, ok := strings.CutPrefix(id, SSOPrefix)
	if !ok {
		return "", "", false
	}
	owner, last, ok = strings.Cut(rest, "/")
	if !ok || !login.MatchString(owner) || !lastEight.MatchString(last) {
		return "", "", false
	}
	return owner, last, true
}

func (r *Revoker) Source() string     { return Source }
func (r *Revoker) PerPrincipal() bool { return false }

// Resolve takes "pat:<numeric token id>", the audit log's token_id of a
// fine-grained PAT, and "saml_sso:<login>/<last eight>", a token's SAML SSO
// authorization (a catalog identity or --integration: no audit event names
// it). A PAT known only by its hashed_token, an OAuth app, a GitHub App
// installation and SSH or deploy keys resolve to nothing: nothing the
// credential-authorization list returns can be matched to them (README).
func (r *Revoker) Resolve(id string) (string, bool) {
	if n, ok := strings.CutPrefix(id, "pat:"); ok && patID.MatchString(n) {
		return n, true
	}
	if _, _, ok := ssoToken(id); ok {
		return id, true
	}
	return "", false
}

// Unresolved says why an integration the connector names has no lever
// here, and what an organization owner can do (README, "What is not
// revoked").
func (r *Revoker) Unresolved(id string) string {
	kind, _, _ := strings.Cut(id, ":")
	switch kind {
	case "oauth_app":
		return "GitHub documents no API for an organization to revoke an OAuth app's access: deny the app under the organization's Settings > Third-party Access > OAuth app policy, or, with SAML SSO, catalog one of its tokens as " + SSOPrefix + "<login>/<last eight>"
	case "pat", "token":
		return "the audit log names this token by its hash, which no GitHub API takes: with SAML SSO, catalog it as " + SSOPrefix + "<login>/<last eight>, or have its owner delete it"
	case "github_app":
		return "suspending an app installation needs the app owner's JWT: uninstall the app under the organization's Settings > Third-party Access > GitHub Apps"
	case "deploy_key", "ssh_key":
		return "no revoke lever for keys here: remove the key from its repository or its owner's account"
	}
	return ""
}

// Plan is one revoke of a fine-grained PAT's access to the organization,
// or the listing of the owner's SAML SSO authorizations that decides which
// to remove.
func (r *Revoker) Plan(t respond.Target) ([]respond.Request, error) {
	if _, _, ok := ssoToken(t.VendorID); ok {
		q, err := r.Discover(t)
		if err != nil {
			return nil, err
		}
		return []respond.Request{q}, nil
	}
	if !patID.MatchString(t.VendorID) {
		return nil, fmt.Errorf("github: %q is neither a fine-grained PAT id nor %s<login>/<last eight>", t.VendorID, SSOPrefix)
	}
	return []respond.Request{{Method: http.MethodPost,
		URL:  fmt.Sprintf("%s/orgs/%s/personal-access-tokens/%s", r.cfg.BaseURL, url.PathEscape(r.cfg.Org), t.VendorID),
		Body: []byte(`{"action":"revoke"}`)}}, nil
}

// perPage is the largest page the list takes.
const perPage = 100

// Discover lists the owner's credential authorizations (the login filter
// keeps the listing to one user), first page.
func (r *Revoker) Discover(t respond.Target) (respond.Request, error) {
	owner, _, ok := ssoToken(t.VendorID)
	if !ok {
		return respond.Request{}, fmt.Errorf("github: %q is not %s<login>/<last eight>", t.VendorID, SSOPrefix)
	}
	return r.listPage(owner, 1), nil
}

func (r *Revoker) listPage(owner string, page int) respond.Request {
	q := url.Values{"login": {owner}, "per_page": {strconv.Itoa(perPage)}, "page": {strconv.Itoa(page)}}
	return respond.Request{Method: http.MethodGet, Discover: true,
		URL: fmt.Sprintf("%s/orgs/%s/credential-authorizations?%s", r.cfg.BaseURL, url.PathEscape(r.cfg.Org), q.Encode())}
}

// credentialAuthorization is one entry of the list, the fields matched.
type credentialAuthorization struct {
	Login          string `json:"login"`
	CredentialID   int64  `json:"credential_id"`
	CredentialType string `json:"credential_type"`
	TokenLastEight string `json:"token_last_eight"`
}

// Expand reads one page: each entry of the owner whose token_last_eight is
// the target's is removed by its credential_id; a full page asks for the
// next one. The page number is the request's own: the Link header GitHub
// also sends is not seen here, and the list documents page and per_page.
func (r *Revoker) Expand(t respond.Target, answered respond.Request, body []byte) (*respond.Request, []respond.Request, error) {
	owner, last, ok := ssoToken(t.VendorID)
	if !ok {
		return nil, nil, fmt.Errorf("github: %q is not %s<login>/<last eight>", t.VendorID, SSOPrefix)
	}
	var list []credentialAuthorization
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, nil, fmt.Errorf("github: not a list of credential authorizations: %w", err)
	}
	var revokes []respond.Request
	for _, c := range list {
		// The login filter is the server's; checked again so that a list
		// ignoring it never removes another user's credential.
		if !strings.EqualFold(c.Login, owner) || c.TokenLastEight != last {
			continue
		}
		if c.CredentialID <= 0 {
			return nil, nil, fmt.Errorf("github: the %s of %s ending %s has no credential_id", c.CredentialType, c.Login, last)
		}
		revokes = append(revokes, respond.Request{Method: http.MethodDelete,
			URL:  fmt.Sprintf("%s/orgs/%s/credential-authorizations/%d", r.cfg.BaseURL, url.PathEscape(r.cfg.Org), c.CredentialID),
			Note: fmt.Sprintf("SAML SSO authorization of %s's %s", c.Login, c.CredentialType)})
	}
	if len(list) < perPage {
		return nil, revokes, nil
	}
	u, err := url.Parse(answered.URL)
	if err != nil {
		return nil, nil, fmt.Errorf("github: %s: %w", answered.URL, err)
	}
	page, err := strconv.Atoi(u.Query().Get("page"))
	if err != nil || page < 1 {
		return nil, nil, fmt.Errorf("github: %s has no page number", answered.URL)
	}
	next := r.listPage(owner, page+1)
	return &next, revokes, nil
}

// NothingListed: no authorization of the owner ends in the identity's
// last eight. That is not proof the token is cut off (a typo, a token
// other than a personal access token, which alone carries
// token_last_eight, or an organization without SAML SSO, whose listing
// GitHub answers 404), so the revoke fails rather than being recorded done.
func (r *Revoker) NothingListed(t respond.Target) error {
	owner, last, _ := ssoToken(t.VendorID)
	return fmt.Errorf("github: no SAML SSO authorization of %s's personal access token ending %s in organization %s: nothing removed (it was removed already, the identity names another token, or the organization does not use SAML SSO)", owner, last, r.cfg.Org)
}

func (r *Revoker) Authorize(req *http.Request) {
	req.Header.Set("Authorization", "Bearer "+r.cfg.Token.Reveal())
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
}

func (r *Revoker) Secrets() []secret.Secret { return []secret.Secret{r.cfg.Token} }

func (r *Revoker) Forbidden() string {
	return "a fine-grained PAT revoke needs a GitHub App installation token (not a PAT or OAuth token) whose app has the organization permission " +
		"\"Personal access tokens\" set to write; a SAML SSO authorization needs the organization permission \"Administration\" (read to list, write to remove), " +
		"or a classic PAT of an organization owner with admin:org; the app must be installed on the organization, which must use SAML SSO on GitHub Enterprise Cloud"
}
