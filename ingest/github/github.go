// Package github reads a GitHub organization or enterprise audit log and
// normalizes the records that involve a non-human credential: GitHub App
// installation and user tokens, OAuth app tokens, personal access tokens
// (classic and fine-grained), deploy and SSH keys, and the lifecycle of those
// grants (oauth_authorization.*, integration_installation.*,
// personal_access_token.*). Records a human made in the web UI with no token
// produce no events. See README.md for config and field mapping.
package github

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
const SourceName = "github"

func init() {
	ingest.Register(SourceName, New)
	ingest.RegisterNormalizer(SourceName, func(tenant string) ingest.Normalizer { return NewNormalizer(tenant) })
}

// DefaultBaseURL is the GitHub.com REST API root; GitHub Enterprise Server
// uses https://HOST/api/v3 through ingest.Options.BaseURL.
const DefaultBaseURL = "https://api.github.com"

// apiVersion pins the REST API version the record shapes were written against.
const apiVersion = "2022-11-28"

// Config is the connector's YAML config.
type Config struct {
	// Org reads /orgs/{org}/audit-log; set it or Enterprise, not both.
	Org string `yaml:"org"`
	// Enterprise reads /enterprises/{enterprise}/audit-log (git events and
	// token data for every org in the enterprise).
	Enterprise string `yaml:"enterprise"`
	// Token is a token with read:audit_log (classic PAT) or the org
	// "Administration: read" permission (GitHub App).
	Token secret.Secret `yaml:"token"`
	// Include is web, git or all; git events need an enterprise-level log.
	Include string `yaml:"include"`
	// PerPage is the page size, 1..100.
	PerPage int `yaml:"per_page"`
	// Phrase is extra audit-log search syntax ANDed with the time filter,
	// e.g. "-action:org.update_member".
	Phrase string `yaml:"phrase"`
}

// DefaultConfig is the config before YAML is applied.
func DefaultConfig() Config { return Config{Include: "all", PerPage: 100} }

// Validate checks cfg without touching the network.
func (c Config) Validate() error {
	switch {
	case (c.Org == "") == (c.Enterprise == ""):
		return fmt.Errorf("set exactly one of org or enterprise")
	case c.Token.IsZero():
		return fmt.Errorf("token: required (read:audit_log)")
	case c.Include != "web" && c.Include != "git" && c.Include != "all":
		return fmt.Errorf("include %q: must be web, git or all", c.Include)
	case c.PerPage < 1 || c.PerPage > 100:
		return fmt.Errorf("per_page %d: must be 1..100", c.PerPage)
	}
	return nil
}

// Source is the GitHub audit-log connector.
type Source struct {
	cfg    Config
	tenant string
	base   *url.URL
	client *http.Client
	now    func() time.Time // for X-RateLimit-Reset arithmetic; a field so tests can pin it
}

var _ ingest.Source = (*Source)(nil)

// New validates the config; it makes no network call.
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

func (s *Source) firstPageURL(start time.Time) string {
	path := "/orgs/" + url.PathEscape(s.cfg.Org) + "/audit-log"
	if s.cfg.Enterprise != "" {
		path = "/enterprises/" + url.PathEscape(s.cfg.Enterprise) + "/audit-log"
	}
	var phrase []string
	if !start.IsZero() {
		// The search syntax takes whole seconds; the window drops what it
		// already delivered within the boundary second.
		phrase = append(phrase, "created:>="+start.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05+00:00"))
	}
	if s.cfg.Phrase != "" {
		phrase = append(phrase, s.cfg.Phrase)
	}
	q := url.Values{}
	q.Set("include", s.cfg.Include)
	q.Set("order", "asc") // oldest first, so a page never skips behind the cursor
	q.Set("per_page", strconv.Itoa(s.cfg.PerPage))
	if len(phrase) > 0 {
		q.Set("phrase", strings.Join(phrase, " "))
	}
	return s.base.String() + path + "?" + q.Encode()
}

// Fetch reads one page of the audit log, oldest first, from cur.Time. The
// Link rel="next" URL GitHub returns (an opaque after= cursor) is followed
// verbatim; it rides in the cursor token until the log is exhausted.
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
	req.Header.Set("Authorization", "Bearer "+s.cfg.Token.Reveal())
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	resp, err := s.client.Do(req)
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: fetch: %s", SourceName, secret.Redact(err.Error(), s.cfg.Token))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return ingest.Page{}, fmt.Errorf("%s: read page: %w", SourceName, err)
	}
	if rl := s.rateLimit(resp, body); rl != nil {
		return ingest.Page{}, rl
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
	if next := nextLink(strings.Join(resp.Header.Values("Link"), ",")); next != "" {
		return ingest.Page{Records: out, Next: p.Continue(0, next)}, nil
	}
	return ingest.Page{Records: out, Next: p.Finish(), Done: true}, nil
}

// sameOrigin refuses to send the token to a host other than the configured API.
func (s *Source) sameOrigin(next string) error {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != s.base.Scheme || u.Host != s.base.Host {
		return fmt.Errorf("%s: next-page URL %q is not on %s; refusing to send the token there", SourceName, next, s.base.Host)
	}
	return nil
}

// rateLimit recognises GitHub's primary limit (403/429 with
// X-RateLimit-Remaining: 0, wait until X-RateLimit-Reset) and secondary limits
// (403/429 with Retry-After, or the "secondary rate limit" message, for
// which GitHub says to wait at least a minute).
func (s *Source) rateLimit(resp *http.Response, body []byte) *ingest.RateLimitError {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusForbidden {
		return nil
	}
	h := resp.Header
	retry := ingest.ParseRetryAfter(h.Get("Retry-After"))
	exhausted := h.Get("X-RateLimit-Remaining") == "0"
	secondary := strings.Contains(strings.ToLower(string(body)), "rate limit")
	if resp.StatusCode == http.StatusForbidden && retry == 0 && !exhausted && !secondary {
		return nil // a real permission error
	}
	if retry == 0 && exhausted {
		retry = resetAfter(h.Get("X-RateLimit-Reset"), s.now())
	}
	if retry == 0 {
		retry = time.Minute
	}
	return &ingest.RateLimitError{Status: resp.StatusCode, RetryAfter: retry}
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

// nextLink extracts the rel="next" target of an RFC 8288 Link header.
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		if m := linkNext.FindStringSubmatch(part); m != nil {
			return m[1]
		}
	}
	return ""
}
