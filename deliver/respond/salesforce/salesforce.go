// Package salesforce revokes a Salesforce connected app's OAuth tokens: it
// lists them from the OauthToken object (REST query, every page) and
// revokes each through the OAuth revocation endpoint with the token's
// DeleteToken. The listing happens at send time (respond.Discoverer), so a
// dry run shows the query and not the revokes, which depend on its answer.
package salesforce

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/internal/platform/validate"
)

// Source is the ingest source name this revoker acts for.
const Source = "salesforce"

// DefaultAPIVersion is the REST API version used when api_version is not
// set (OauthToken exists from 32.0, its paging from 34.0).
const DefaultAPIVersion = "v60.0"

// Config is `respond.vendors.salesforce`.
type Config struct {
	// InstanceURL is the org's My Domain, https://<MyDomainName>.my.salesforce.com.
	InstanceURL string `yaml:"instance_url"`
	// APIVersion is the REST API version, "vNN.N".
	APIVersion string `yaml:"api_version"`
	// AccessToken is an OAuth access token of an admin whose profile or
	// permission sets have API Enabled and Customize Application (without
	// it OauthToken lists only the admin's own tokens).
	AccessToken secret.Secret `yaml:"access_token"`
}

// Revoker lists and revokes connected apps' OAuth tokens.
type Revoker struct {
	cfg  Config
	data string // InstanceURL + /services/data/<version>
}

var (
	_ respond.Revoker      = (*Revoker)(nil)
	_ respond.Discoverer   = (*Revoker)(nil)
	_ respond.ErrorChecker = (*Revoker)(nil)
)

func init() {
	respond.Register(Source, func(decode func(any) error) (respond.Revoker, error) {
		cfg := Config{APIVersion: DefaultAPIVersion}
		if err := decode(&cfg); err != nil {
			return nil, err
		}
		return New(cfg)
	})
}

var apiVersion = regexp.MustCompile(`^v[0-9]{2,3}\.[0-9]$`)

// New validates cfg; no network.
func New(cfg Config) (*Revoker, error) {
	if err := validate.HTTPURL("instance_url", cfg.InstanceURL); err != nil {
		return nil, fmt.Errorf("%w (the org's My Domain, https://<MyDomainName>.my.salesforce.com)", err)
	}
	if u, _ := url.Parse(cfg.InstanceURL); u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("instance_url %q: want the org's URL alone, https://<MyDomainName>.my.salesforce.com", cfg.InstanceURL)
	}
	if cfg.APIVersion == "" {
		cfg.APIVersion = DefaultAPIVersion
	}
	if !apiVersion.MatchString(cfg.APIVersion) {
		return nil, fmt.Errorf("api_version %q: want vNN.N, e.g. %s", cfg.APIVersion, DefaultAPIVersion)
	}
	if cfg.AccessToken.IsZero() {
		return nil, errors.New("access_token: required (an admin's OAuth access token with API Enabled and Customize Application; env:NAME or file:PATH)")
	}
	cfg.InstanceURL = strings.TrimRight(cfg.InstanceURL, "/")
	return &Revoker{cfg: cfg, data: cfg.InstanceURL + "/services/data/" + cfg.APIVersion}, nil
}

func (r *Revoker) Source() string     { return Source }
func (r *Revoker) PerPrincipal() bool { return false }

// A connected app's id: key prefix 0H4, 15 or 18 characters (ingest keys
// integrations by the 15-character form).
var connectedAppID = regexp.MustCompile(`^0H4[0-9A-Za-z]{12}([0-9A-Za-z]{3})?$`)

// Resolve takes what ingest/salesforce names a connected app by: its id
// (ConnectedAppId), or "app:<name>" when the events carried only the app's
// name. Client names, users and API types are not connected apps.
func (r *Revoker) Resolve(id string) (string, bool) {
	if name, ok := strings.CutPrefix(id, "app:"); ok {
		if strings.TrimSpace(name) == "" || strings.ContainsFunc(name, func(c rune) bool { return c < ' ' || c == 0x7f }) {
			return "", false
		}
		return id, true
	}
	if connectedAppID.MatchString(id) {
		return id, true
	}
	return "", false
}

// Plan is the discovery request: the revokes depend on what it lists.
func (r *Revoker) Plan(t respond.Target) ([]respond.Request, error) {
	q, err := r.Discover(t)
	if err != nil {
		return nil, err
	}
	return []respond.Request{q}, nil
}

// Discover lists the app's tokens by its name (OauthToken.AppName); for an
// app known by id, it first reads the app's name from ConnectedApplication.
func (r *Revoker) Discover(t respond.Target) (respond.Request, error) {
	if _, ok := r.Resolve(t.VendorID); !ok {
		return respond.Request{}, fmt.Errorf("salesforce: %q is neither a connected app id (0H4…) nor app:<name>", t.VendorID)
	}
	if name, ok := strings.CutPrefix(t.VendorID, "app:"); ok {
		return r.tokensOf(name), nil
	}
	return r.query("SELECT Id, Name FROM ConnectedApplication WHERE Id = '" + t.VendorID + "'"), nil
}

// TokenQuery is the SOQL listing a connected app's tokens.
func TokenQuery(appName string) string {
	return "SELECT AppName, UserId, DeleteToken FROM OauthToken WHERE AppName = '" + soqlQuote(appName) + "'"
}

func (r *Revoker) tokensOf(name string) respond.Request { return r.query(TokenQuery(name)) }

func (r *Revoker) query(soql string) respond.Request {
	return respond.Request{Method: http.MethodGet, URL: r.data + "/query?" + url.Values{"q": {soql}}.Encode(), Discover: true}
}

// soqlQuote escapes a string literal's content as SOQL reserves: backslash
// and single quote (and the control characters its escapes name).
func soqlQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s)
}

// queryResult is the REST query resource's answer, one page.
type queryResult struct {
	Done           bool   `json:"done"`
	NextRecordsURL string `json:"nextRecordsUrl"`
	Records        []struct {
		Attributes struct {
			Type string `json:"type"`
		} `json:"attributes"`
		Name        string `json:"Name"`
		AppName     string `json:"AppName"`
		UserID      string `json:"UserId"`
		DeleteToken string `json:"DeleteToken"`
	} `json:"records"`
}

// Expand reads one query page: a ConnectedApplication row leads to the
// query of its tokens; each OauthToken row is revoked with its DeleteToken;
// nextRecordsUrl is the next page.
func (r *Revoker) Expand(t respond.Target, answered respond.Request, body []byte) (*respond.Request, []respond.Request, error) {
	var qr queryResult
	if err := json.Unmarshal(body, &qr); err != nil {
		return nil, nil, fmt.Errorf("salesforce: not a query result: %w", err)
	}
	var next *respond.Request
	var revokes []respond.Request
	for _, rec := range qr.Records {
		switch rec.Attributes.Type {
		case "ConnectedApplication":
			if next != nil || rec.Name == "" {
				return nil, nil, fmt.Errorf("salesforce: connected app %s: want one row with its Name", t.VendorID)
			}
			q := r.tokensOf(rec.Name)
			next = &q
		case "OauthToken":
			if rec.DeleteToken == "" {
				return nil, nil, fmt.Errorf("salesforce: an OauthToken row of user %s has no DeleteToken", rec.UserID)
			}
			revokes = append(revokes, respond.Request{Method: http.MethodPost, URL: r.cfg.InstanceURL + "/services/oauth2/revoke",
				Body: []byte(url.Values{"token": {rec.DeleteToken}}.Encode()), ContentType: "application/x-www-form-urlencoded",
				Note: "token of user " + rec.UserID})
		default:
			return nil, nil, fmt.Errorf("salesforce: unexpected %q row in the answer", rec.Attributes.Type)
		}
	}
	if !qr.Done && qr.NextRecordsURL != "" {
		if next != nil {
			return nil, nil, errors.New("salesforce: a connected app lookup with more pages")
		}
		// Only a path on this org's data API: the locator is followed
		// with the admin credential.
		if !strings.HasPrefix(qr.NextRecordsURL, "/services/data/") || strings.ContainsAny(qr.NextRecordsURL, "\\@") || strings.Contains(qr.NextRecordsURL, "..") {
			return nil, nil, fmt.Errorf("salesforce: nextRecordsUrl %q is not a query locator path", qr.NextRecordsURL)
		}
		next = &respond.Request{Method: http.MethodGet, URL: r.cfg.InstanceURL + qr.NextRecordsURL, Discover: true}
	}
	return next, revokes, nil
}

// Authorize sends the admin token to the REST API only: the revocation
// endpoint takes the token's own DeleteToken and needs no admin credential.
func (r *Revoker) Authorize(req *http.Request) {
	if strings.HasPrefix(req.URL.Path, "/services/oauth2/") {
		return
	}
	req.Header.Set("Authorization", "Bearer "+r.cfg.AccessToken.Reveal())
}

func (r *Revoker) Secrets() []secret.Secret { return []secret.Secret{r.cfg.AccessToken} }

func (r *Revoker) Forbidden() string {
	return "the access token's user needs API Enabled, and Customize Application to see every user's OauthToken rows and to read ConnectedApplication " +
		"(older API versions name Manage Users for OauthToken); an expired or revoked access token (INVALID_SESSION_ID) needs replacing"
}

// CheckError reads Salesforce's error answers: REST errors are a list of
// {errorCode, message}; the revocation endpoint answers 400 with an OAuth
// error.
func (r *Revoker) CheckError(status int, body []byte) error {
	var list []struct {
		ErrorCode string `json:"errorCode"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(body, &list) == nil && len(list) > 0 {
		switch list[0].ErrorCode {
		case "REQUEST_LIMIT_EXCEEDED":
			return fmt.Errorf("%w: REQUEST_LIMIT_EXCEEDED (the org's API request limit)", respond.ErrRateLimited)
		case "NOT_FOUND", "ENTITY_IS_DELETED":
			return respond.ErrAlreadyDone
		case "API_DISABLED_FOR_ORG", "INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY", "INVALID_SESSION_ID":
			return &respond.ForbiddenError{Status: status, Need: r.Forbidden(), Vendor: list[0].ErrorCode + ": " + list[0].Message}
		}
		return nil
	}
	var oauth struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if status == http.StatusBadRequest && json.Unmarshal(body, &oauth) == nil {
		switch oauth.Error {
		case "invalid_token":
			// The DeleteToken was listed moments ago: invalid now means the
			// token was revoked (or expired) in between.
			return respond.ErrAlreadyDone
		case "unsupported_token_type":
			return errors.New("unsupported_token_type: the revocation endpoint refused the DeleteToken")
		}
	}
	return nil
}
