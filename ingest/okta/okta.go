// Package okta reads the Okta System Log (/api/v1/logs) for OAuth 2.0 token
// and consent activity (app.oauth2.*) and API token lifecycle
// (system.api_token.*) and normalizes it. Other event types produce no
// events. See README.md for config and field mapping.
package okta

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/window"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// SourceName is the registered id of this connector.
const SourceName = "okta"

func init() {
	ingest.Register(SourceName, New)
	ingest.RegisterNormalizer(SourceName, func(tenant string) ingest.Normalizer { return NewNormalizer(tenant) })
}

// DefaultFilter asks the System Log for token-related event types only.
const DefaultFilter = `eventType sw "app.oauth2" or eventType sw "system.api_token"`

// Config is the connector's YAML config.
type Config struct {
	// Domain is the Okta org host, e.g. "example.okta.com".
	Domain string `yaml:"domain"`
	// Token is an Okta API token (auth_scheme ssws) or an OAuth 2.0 access
	// token with okta.logs.read (auth_scheme bearer).
	Token secret.Secret `yaml:"token"`
	// AuthScheme is "ssws" or "bearer".
	AuthScheme string `yaml:"auth_scheme"`
	// Limit is the page size, 1..1000.
	Limit int `yaml:"limit"`
	// Filter is a System Log SCIM filter expression.
	Filter string `yaml:"filter"`
}

// DefaultConfig is the config before YAML is applied.
func DefaultConfig() Config { return Config{AuthScheme: "ssws", Limit: 1000, Filter: DefaultFilter} }

// Validate checks cfg without touching the network. baseSet says the
// endpoint comes from ingest.Options.BaseURL, so domain may be empty.
func (c Config) Validate(baseSet bool) error {
	switch {
	case c.Domain == "" && !baseSet:
		return fmt.Errorf("domain: required (e.g. example.okta.com)")
	case strings.ContainsAny(c.Domain, "/:"):
		return fmt.Errorf("domain %q: host name only, without scheme or path", c.Domain)
	case c.Token.IsZero():
		return fmt.Errorf("token: required")
	case c.AuthScheme != "ssws" && c.AuthScheme != "bearer":
		return fmt.Errorf("auth_scheme %q: must be ssws or bearer", c.AuthScheme)
	case c.Limit < 1 || c.Limit > 1000:
		return fmt.Errorf("limit %d: must be 1..1000", c.Limit)
	}
	return nil
}

// Source is the Okta System Log connector.
type Source struct {
	cfg    Config
	tenant string
	base   *url.URL
	client *http.Client
	now    func() time.Time // for X-Rate-Limit-Reset arithmetic
}

var _ ingest.Source = (*Source)(nil)

// New validates the config; it makes no network call.
func New(decode func(any) error, opt ingest.Options) (ingest.Source, error) {
	cfg := DefaultConfig()
	if err := decode(&cfg); err != nil {
		return nil, fmt.Errorf("%s: config: %w", SourceName, err)
	}
	if err := cfg.Validate(opt.BaseURL != ""); err != nil {
		return nil, fmt.Errorf("%s: config: %w", SourceName, err)
	}
	raw := opt.BaseURL
	if raw == "" {
		raw = "https://" + cfg.Domain
	}
	base, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("%s: base url %q: not an absolute URL", SourceName, raw)
	}
	s := &Source{cfg: cfg, tenant: opt.Tenant, base: base, client: opt.Client, now: time.Now}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	return s, nil
}

// NewNormalizer returns a Source usable only for Normalize (offline tools).
func NewNormalizer(tenant string) *Source { return &Source{tenant: tenant} }

// Name implements ingest.Source.
func (s *Source) Name() string { return SourceName }

func (s *Source) firstPageURL(since time.Time) string {
	q := url.Values{}
	if !since.IsZero() { // without since, Okta starts seven days back
		q.Set("since", since.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	q.Set("limit", strconv.Itoa(s.cfg.Limit))
	q.Set("sortOrder", "ASCENDING")
	if s.cfg.Filter != "" {
		q.Set("filter", s.cfg.Filter)
	}
	return s.base.String() + "/api/v1/logs?" + q.Encode()
}

// Fetch reads one page, oldest first, from cur.Time, following Okta's
// Link rel="next" (an after= cursor) verbatim. Okta always returns a next
// link when no until is given (its polling pattern); a page shorter than the
// limit means the log is read to now, so Fetch reports Done and the next poll
// starts a fresh query at the newest record time seen.
func (s *Source) Fetch(ctx context.Context, cur ingest.Cursor) (ingest.Page, error) {
	p, err := window.Resume(cur)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: %w", SourceName, err)
	}
	u := p.Next
	if u == "" {
		u = s.firstPageURL(p.Start)
	} else if err := s.sameOrigin(u); err != nil {
		return ingest.Page{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: build request: %w", SourceName, err)
	}
	scheme := "SSWS "
	if s.cfg.AuthScheme == "bearer" {
		scheme = "Bearer "
	}
	req.Header.Set("Authorization", scheme+s.cfg.Token.Reveal())
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: fetch: %s", SourceName, secret.Redact(err.Error(), s.cfg.Token))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: read page: %w", SourceName, err)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		retry := ingest.ParseRetryAfter(resp.Header.Get("Retry-After"))
		if retry == 0 {
			retry = resetAfter(resp.Header.Get("X-Rate-Limit-Reset"), s.now())
		}
		if retry == 0 {
			retry = time.Minute // Okta limits reset each minute
		}
		return ingest.Page{}, &ingest.RateLimitError{Status: resp.StatusCode, RetryAfter: retry}
	}
	if resp.StatusCode != http.StatusOK {
		return ingest.Page{}, fmt.Errorf("%s: fetch: HTTP %d: %.200s", SourceName, resp.StatusCode, body)
	}
	var recs []json.RawMessage
	if err := json.Unmarshal(body, &recs); err != nil {
		return ingest.Page{}, fmt.Errorf("%s: decode page: %w", SourceName, err)
	}
	out := make([]json.RawMessage, 0, len(recs))
	for _, raw := range recs {
		if t, id, ok := recordKey(raw); ok {
			if !p.Fresh(t, id) {
				continue
			}
			p.Observe(t, id)
		}
		out = append(out, raw)
	}
	next := nextLink(strings.Join(resp.Header.Values("Link"), ","))
	if next == "" || len(recs) < s.cfg.Limit {
		return ingest.Page{Records: out, Next: p.Finish(), Done: true}, nil
	}
	return ingest.Page{Records: out, Next: p.Continue(0, next)}, nil
}

// sameOrigin refuses to send the token to a host other than the configured org.
func (s *Source) sameOrigin(next string) error {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != s.base.Scheme || u.Host != s.base.Host {
		return fmt.Errorf("%s: next-page URL %q is not on %s; refusing to send the token there", SourceName, next, s.base.Host)
	}
	return nil
}

// resetAfter turns an epoch-seconds reset header into a wait from now.
func resetAfter(v string, now time.Time) time.Duration {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0
	}
	if d := time.Unix(n, 0).Sub(now); d > 0 {
		return d.Round(time.Second) + time.Second // the reset second itself is still limited
	}
	return time.Second
}

var linkNext = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="?next"?`)

// nextLink extracts the rel="next" target of Link headers (Okta sends one
// header per relation).
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		if m := linkNext.FindStringSubmatch(part); m != nil {
			return m[1]
		}
	}
	return ""
}
