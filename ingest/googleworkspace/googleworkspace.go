// Package googleworkspace reads Google Workspace OAuth token activity from the
// Admin SDK Reports API (applicationName=token: authorize, revoke, activity,
// request) and normalizes it. See README.md for config and field mapping.
package googleworkspace

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/window"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// SourceName is the registered id of this connector.
const SourceName = "google_workspace"

func init() {
	ingest.Register(SourceName, New)
	ingest.RegisterNormalizer(SourceName, func(tenant string) ingest.Normalizer { return NewNormalizer(tenant) })
}

// DefaultBaseURL is the Reports API root.
const DefaultBaseURL = "https://admin.googleapis.com"

const reportsScope = "https://www.googleapis.com/auth/admin.reports.audit.readonly"

// Config is the connector's YAML config.
type Config struct {
	// CustomerID limits results to one customer; "my_customer" is the caller's own.
	CustomerID string `yaml:"customer_id"`
	// ServiceAccountFile is a service-account JSON key with domain-wide delegation.
	ServiceAccountFile string `yaml:"service_account_file"`
	// AdminEmail is the admin the service account impersonates.
	AdminEmail string `yaml:"admin_email"`
	// Token is a ready OAuth bearer token (tests, short jobs); prefer a service account.
	Token secret.Secret `yaml:"token"`
	// MaxResults per page, at most 1000.
	MaxResults int `yaml:"max_results"`
}

// Source is the Google Workspace token-activity connector.
type Source struct {
	cfg    Config
	tenant string
	base   string
	client *http.Client
}

var _ ingest.Source = (*Source)(nil)

// New validates cfg; it makes no network call.
func New(decode func(any) error, opt ingest.Options) (ingest.Source, error) {
	cfg := Config{CustomerID: "my_customer", MaxResults: 1000}
	if err := decode(&cfg); err != nil {
		return nil, fmt.Errorf("%s: config: %w", SourceName, err)
	}
	if cfg.MaxResults <= 0 || cfg.MaxResults > 1000 {
		return nil, fmt.Errorf("%s: max_results %d: must be 1..1000", SourceName, cfg.MaxResults)
	}
	s := &Source{cfg: cfg, tenant: opt.Tenant, base: opt.BaseURL, client: opt.Client}
	if s.base == "" {
		s.base = DefaultBaseURL
	}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	switch {
	case cfg.ServiceAccountFile != "":
		ts, err := serviceAccountTokens(cfg.ServiceAccountFile, cfg.AdminEmail)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", SourceName, err)
		}
		s.client = oauth2.NewClient(context.WithValue(context.Background(), oauth2.HTTPClient, s.client), ts)
	case !cfg.Token.IsZero():
		s.client = oauth2.NewClient(context.WithValue(context.Background(), oauth2.HTTPClient, s.client),
			oauth2.StaticTokenSource(&oauth2.Token{AccessToken: cfg.Token.Reveal(), TokenType: "Bearer"}))
	}
	return s, nil
}

// NewNormalizer returns a Source usable only for Normalize (offline tools).
func NewNormalizer(tenant string) *Source { return &Source{tenant: tenant} }

// Name implements ingest.Source.
func (s *Source) Name() string { return SourceName }

// serviceAccountTokens builds the JWT-bearer token source for a service account
// impersonating an admin, as domain-wide delegation requires.
func serviceAccountTokens(path, subject string) (oauth2.TokenSource, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("service_account_file: %w", err)
	}
	var key struct {
		ClientEmail  string `json:"client_email"`
		PrivateKey   string `json:"private_key"`
		PrivateKeyID string `json:"private_key_id"`
		TokenURI     string `json:"token_uri"`
	}
	if err := json.Unmarshal(b, &key); err != nil || key.ClientEmail == "" || key.PrivateKey == "" {
		return nil, fmt.Errorf("service_account_file %s: not a service-account JSON key (need client_email and private_key)", path)
	}
	if subject == "" {
		return nil, fmt.Errorf("admin_email: required with service_account_file (domain-wide delegation impersonates an admin)")
	}
	if key.TokenURI == "" {
		key.TokenURI = "https://oauth2.googleapis.com/token"
	}
	cfg := &jwt.Config{Email: key.ClientEmail, PrivateKey: []byte(key.PrivateKey), PrivateKeyID: key.PrivateKeyID,
		Scopes: []string{reportsScope}, TokenURL: key.TokenURI, Subject: subject}
	return cfg.TokenSource(context.Background()), nil
}

type listResponse struct {
	Items         []json.RawMessage `json:"items"`
	NextPageToken string            `json:"nextPageToken"`
}

// Fetch reads one page of the window that starts at cur.Time. The Reports
// API lists newest first and pages with nextPageToken, so the window's
// high-water mark rides in the cursor token until the last page (package
// window); the next window starts at the newest record time seen. Google
// documents that token activity can appear hours late: the poller re-reads an
// overlap window for that, and dedups.
func (s *Source) Fetch(ctx context.Context, cur ingest.Cursor) (ingest.Page, error) {
	p, err := window.Resume(cur)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: %w", SourceName, err)
	}
	q := url.Values{}
	q.Set("customerId", s.cfg.CustomerID)
	q.Set("maxResults", strconv.Itoa(s.cfg.MaxResults))
	if !p.Start.IsZero() {
		q.Set("startTime", p.Start.UTC().Format(time.RFC3339Nano))
	}
	if p.Next != "" {
		q.Set("pageToken", p.Next)
	}
	u := s.base + "/admin/reports/v1/activity/users/all/applications/token?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return ingest.Page{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: fetch: %s", SourceName, secret.Redact(err.Error(), s.cfg.Token))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: read page: %w", SourceName, err)
	}
	if resp.StatusCode == http.StatusTooManyRequests || (resp.StatusCode == http.StatusForbidden && isQuotaError(body)) {
		wait := ingest.ParseRetryAfter(resp.Header.Get("Retry-After"))
		if wait == 0 {
			wait = 30 * time.Second // Google asks for exponential backoff without a hint
		}
		return ingest.Page{}, &ingest.RateLimitError{Status: resp.StatusCode, RetryAfter: wait}
	}
	if resp.StatusCode != http.StatusOK {
		return ingest.Page{}, fmt.Errorf("%s: fetch: HTTP %d: %.200s", SourceName, resp.StatusCode, body)
	}
	var lr listResponse
	if err := json.Unmarshal(body, &lr); err != nil {
		return ingest.Page{}, fmt.Errorf("%s: decode page: %w", SourceName, err)
	}
	out := make([]json.RawMessage, 0, len(lr.Items))
	for _, raw := range lr.Items {
		if t, id, ok := recordKey(raw); ok {
			if !p.Fresh(t, id) {
				continue
			}
			p.Observe(t, id)
		}
		out = append(out, raw)
	}
	if lr.NextPageToken != "" {
		return ingest.Page{Records: out, Next: p.Continue(0, lr.NextPageToken)}, nil
	}
	return ingest.Page{Records: out, Next: p.Finish(), Done: true}, nil
}

// recordKey reads an activity's time and unique qualifier for the window.
func recordKey(raw json.RawMessage) (time.Time, string, bool) {
	var k struct {
		ID struct {
			Time            string `json:"time"`
			UniqueQualifier string `json:"uniqueQualifier"`
		} `json:"id"`
	}
	if json.Unmarshal(raw, &k) != nil {
		return time.Time{}, "", false
	}
	t, err := time.Parse(time.RFC3339Nano, k.ID.Time)
	if err != nil {
		return time.Time{}, "", false
	}
	return t, k.ID.UniqueQualifier, true
}

func isQuotaError(body []byte) bool {
	var e struct {
		Error struct {
			Errors []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return false
	}
	for _, r := range e.Error.Errors {
		if r.Reason == "rateLimitExceeded" || r.Reason == "userRateLimitExceeded" || r.Reason == "quotaExceeded" {
			return true
		}
	}
	return false
}
