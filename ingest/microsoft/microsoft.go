// Package microsoft reads Microsoft Entra ID through Microsoft Graph:
// service-principal sign-ins (every token an app obtains with its secret,
// certificate or managed identity) and directory audits about consent and
// permission grants. Its Normalize also accepts MicrosoftGraphActivityLogs
// records (per-request Graph API logs exported by diagnostic settings to
// Event Hubs or Storage), which Fetch does not poll. See README.md.
package microsoft

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/window"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// SourceName is the registered id of this connector.
const SourceName = "microsoft"

func init() {
	ingest.Register(SourceName, New)
	ingest.RegisterNormalizer(SourceName, func(tenant string) ingest.Normalizer { return NewNormalizer(tenant) })
}

// DefaultBaseURL is the Microsoft Graph root (national clouds differ).
const DefaultBaseURL = "https://graph.microsoft.com"

// graphScope asks for the app's granted Graph application permissions
// (AuditLog.Read.All, Directory.Read.All).
const graphScope = "https://graph.microsoft.com/.default"

// Streams this connector can read, in the order a window reads them.
const (
	StreamSignIns         = "sign_ins"
	StreamDirectoryAudits = "directory_audits"
)

// Config is the connector's YAML config.
type Config struct {
	// TenantID is the Entra directory (tenant) id or domain the app lives in.
	TenantID string `yaml:"tenant_id"`
	// ClientID and ClientSecret are the reader app's client-credentials pair.
	ClientID     string        `yaml:"client_id"`
	ClientSecret secret.Secret `yaml:"client_secret"`
	// TokenURL overrides https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token.
	TokenURL string `yaml:"token_url"`
	// Token is a ready Graph bearer token (tests, short jobs) instead of client credentials.
	Token secret.Secret `yaml:"token"`
	// Streams lists what to read: sign_ins, directory_audits.
	Streams []string `yaml:"streams"`
	// PageSize is $top, 1..999.
	PageSize int `yaml:"page_size"`
}

// DefaultConfig is the config before YAML is applied.
func DefaultConfig() Config {
	return Config{Streams: []string{StreamSignIns, StreamDirectoryAudits}, PageSize: 500}
}

// Validate checks cfg without touching the network.
func (c Config) Validate() error {
	if c.Token.IsZero() {
		switch {
		case c.TenantID == "":
			return fmt.Errorf("tenant_id: required for client credentials (or set token)")
		case c.ClientID == "" || c.ClientSecret.IsZero():
			return fmt.Errorf("client_id and client_secret: required for client credentials (or set token)")
		case strings.ContainsAny(c.TenantID, "/?#"):
			return fmt.Errorf("tenant_id %q: a GUID or domain, not a URL", c.TenantID)
		}
	}
	if len(c.Streams) == 0 {
		return fmt.Errorf("streams: name at least one of %s, %s", StreamSignIns, StreamDirectoryAudits)
	}
	for i, s := range c.Streams {
		if s != StreamSignIns && s != StreamDirectoryAudits {
			return fmt.Errorf("streams: %q is not %s or %s", s, StreamSignIns, StreamDirectoryAudits)
		}
		if slices.Contains(c.Streams[:i], s) {
			return fmt.Errorf("streams: %q listed twice", s)
		}
	}
	if c.PageSize < 1 || c.PageSize > 999 {
		return fmt.Errorf("page_size %d: must be 1..999", c.PageSize)
	}
	return nil
}

// Source is the Entra ID / Graph connector.
type Source struct {
	cfg    Config
	tenant string
	base   *url.URL
	client *http.Client // adds the bearer token
}

var _ ingest.Source = (*Source)(nil)

// New validates the config and prepares the token source; it makes no
// network call (the first Fetch obtains the token).
func New(decode func(any) error, opt ingest.Options) (ingest.Source, error) {
	cfg := DefaultConfig()
	if err := decode(&cfg); err != nil {
		return nil, fmt.Errorf("%s: config: %w", SourceName, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: config: %w", SourceName, err)
	}
	raw := opt.BaseURL
	if raw == "" {
		raw = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("%s: base url %q: not an absolute URL", SourceName, raw)
	}
	hc := opt.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	s := &Source{cfg: cfg, tenant: opt.Tenant, base: base}
	if !cfg.Token.IsZero() {
		s.client = oauth2.NewClient(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: cfg.Token.Reveal(), TokenType: "Bearer"}))
	} else {
		tokenURL := cfg.TokenURL
		if tokenURL == "" {
			tokenURL = "https://login.microsoftonline.com/" + url.PathEscape(cfg.TenantID) + "/oauth2/v2.0/token"
		}
		cc := &clientcredentials.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret.Reveal(), TokenURL: tokenURL, Scopes: []string{graphScope}}
		s.client = cc.Client(ctx)
	}
	return s, nil
}

// NewNormalizer returns a Source usable only for Normalize (offline tools).
func NewNormalizer(tenant string) *Source { return &Source{tenant: tenant} }

// Name implements ingest.Source.
func (s *Source) Name() string { return SourceName }

// firstPageURL queries stream from start. The OData filter is assembled by
// hand: Graph wants %20 for spaces, not the + url.Values would write.
func (s *Source) firstPageURL(stream string, start time.Time) string {
	var path string
	var filter []string
	switch stream {
	case StreamSignIns:
		// Service-principal and managed-identity sign-ins are only listed by
		// the beta endpoint, each in its own log: select both event types.
		path = "/beta/auditLogs/signIns"
		filter = append(filter, "signInEventTypes/any(t: t eq 'servicePrincipal' or t eq 'managedIdentity')")
		if !start.IsZero() {
			filter = append(filter, "createdDateTime ge "+start.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
	case StreamDirectoryAudits:
		path = "/v1.0/auditLogs/directoryAudits"
		filter = append(filter, "category eq 'ApplicationManagement'")
		if !start.IsZero() {
			filter = append(filter, "activityDateTime ge "+start.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
	}
	q := "$filter=" + escape(strings.Join(filter, " and ")) + "&$top=" + strconv.Itoa(s.cfg.PageSize)
	return s.base.String() + path + "?" + q
}

func escape(v string) string { return strings.ReplaceAll(url.QueryEscape(v), "+", "%20") }

type graphPage struct {
	Value    []json.RawMessage `json:"value"`
	NextLink string            `json:"@odata.nextLink"`
}

// Fetch reads one page. A window reads each configured stream in turn from
// cur.Time, following @odata.nextLink verbatim; Graph lists newest first, so
// the window's high-water mark travels in the cursor token until the last
// page of the last stream.
func (s *Source) Fetch(ctx context.Context, cur ingest.Cursor) (ingest.Page, error) {
	p, err := window.Resume(cur)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: %w", SourceName, err)
	}
	if p.Stream < 0 || p.Stream >= len(s.cfg.Streams) {
		return ingest.Page{}, fmt.Errorf("%s: cursor names stream %d, config has %d", SourceName, p.Stream, len(s.cfg.Streams))
	}
	stream := s.cfg.Streams[p.Stream]
	u := p.Next
	if u == "" {
		u = s.firstPageURL(stream, p.Start)
	} else if err := s.sameOrigin(u); err != nil {
		return ingest.Page{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: build request: %w", SourceName, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: fetch %s: %s", SourceName, stream, secret.Redact(err.Error(), s.cfg.ClientSecret, s.cfg.Token))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: read %s page: %w", SourceName, stream, err)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		retry := ingest.ParseRetryAfter(resp.Header.Get("Retry-After"))
		if retry == 0 {
			retry = 30 * time.Second
		}
		return ingest.Page{}, &ingest.RateLimitError{Status: resp.StatusCode, RetryAfter: retry}
	}
	if resp.StatusCode != http.StatusOK {
		return ingest.Page{}, fmt.Errorf("%s: fetch %s: HTTP %d: %.300s", SourceName, stream, resp.StatusCode, body)
	}
	var gp graphPage
	if err := json.Unmarshal(body, &gp); err != nil {
		return ingest.Page{}, fmt.Errorf("%s: decode %s page: %w", SourceName, stream, err)
	}
	out := make([]json.RawMessage, 0, len(gp.Value))
	for _, raw := range gp.Value {
		if t, id, ok := recordKey(raw); ok {
			if !p.Fresh(t, id) {
				continue
			}
			p.Observe(t, id)
		}
		out = append(out, raw)
	}
	switch {
	case gp.NextLink != "":
		return ingest.Page{Records: out, Next: p.Continue(p.Stream, gp.NextLink)}, nil
	case p.Stream+1 < len(s.cfg.Streams):
		return ingest.Page{Records: out, Next: p.Continue(p.Stream+1, "")}, nil
	}
	return ingest.Page{Records: out, Next: p.Finish(), Done: true}, nil
}

// sameOrigin refuses to send the bearer token to a host other than Graph's.
func (s *Source) sameOrigin(next string) error {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != s.base.Scheme || u.Host != s.base.Host {
		return fmt.Errorf("%s: @odata.nextLink %q is not on %s; refusing to send the token there", SourceName, next, s.base.Host)
	}
	return nil
}
