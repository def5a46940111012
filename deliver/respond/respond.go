// Package respond owns acting on incidents: a policy in the config decides,
// per incident version, whether to notify, request approval or revoke (in
// dry_run or enforce mode); the planner applies the guard rails and turns
// the decision into actions on vendor identities; the executor sends each
// vendor's documented revocation requests and records every step as a
// schemas.Response (the audit trail). One folder per vendor
// (deliver/respond/<vendor>) knows its API; deliver/respond/all links them.
// It must not import ingest or detect, nor the wiring above it.
package respond

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/internal/platform/validate"
)

// Target is what one revocation acts on: an integration's identity in one
// vendor, and the users whose grants are revoked where the vendor's lever is
// per user (Google Workspace).
type Target struct {
	Source        string
	Tenant        string
	IntegrationID string
	// VendorID is the vendor's own id of the integration (OAuth client id,
	// service principal or app id, Okta app id, PAT id).
	VendorID string
	// Principal is the user the grant belongs to, "" for vendors whose lever
	// acts on the integration as a whole.
	Principal string
}

// Request is one vendor API call. It never carries the admin credential:
// the Revoker's Authorize adds it at send time, so a printed or recorded
// request is safe to show. The body is never printed or recorded (a
// discovered revoke may carry the vendor's per-token revocation handle).
type Request struct {
	Method string
	URL    string
	Body   []byte // JSON unless ContentType says otherwise; nil for none
	// ContentType is the body's media type; "" is application/json.
	ContentType string
	// Discover marks a listing request of a Discoverer: what it answers
	// decides the revokes, so a dry run shows it and sends nothing.
	Discover bool
	// Note says, in the printed form, what the request acts on when the URL
	// does not (a discovered token's owner).
	Note string
}

// DiscoverNote is how a discovery request is marked in its printed form.
const DiscoverNote = "discover: the revokes depend on its answer"

// String is the dry-run and audit form, "METHOD URL", followed by the
// discovery mark or the note in parentheses.
func (r Request) String() string {
	s := r.Method + " " + r.URL
	switch {
	case r.Discover:
		s += " (" + DiscoverNote + ")"
	case r.Note != "":
		s += " (" + r.Note + ")"
	}
	return s
}

// A Revoker knows one vendor's revocation API. Plan and Resolve are pure (no
// I/O): the dry run and replay --actions call them offline. The executor
// (Executor) owns sending, retries on 429/Retry-After, and the audit trail.
type Revoker interface {
	// Source is the source name the revoker acts for ("google_workspace").
	Source() string
	// Resolve maps a source app id (an ingest connector's SourceAppID or its
	// integration id) to the vendor id the API takes; false when the id is
	// not something this vendor's lever can act on.
	Resolve(sourceAppID string) (vendorID string, ok bool)
	// PerPrincipal reports whether each user's grant is revoked on its own
	// (a Target per principal) rather than the integration as a whole.
	PerPrincipal() bool
	// Plan returns the requests that revoke t, in order.
	Plan(t Target) ([]Request, error)
	// Authorize sets the admin credential on an outgoing request.
	Authorize(r *http.Request)
	// Secrets are the credentials Authorize uses, redacted from any error.
	Secrets() []secret.Secret
	// Forbidden says what the credential lacks when the vendor answers 401
	// or 403: the admin scope, role or permission to grant.
	Forbidden() string
}

// Explainer is an optional power of revokers: why an id Resolve refuses
// cannot be revoked through this vendor's API, and what the operator can do
// instead (an OAuth app GitHub has no org-side API for is denied in the
// organization's settings). The planner puts it in the skipped record's
// reason; "" keeps the generic one.
type Explainer interface {
	Unresolved(id string) string
}

// Discoverer is an optional power of revokers whose lever acts on things
// no event names, listed from the vendor at send time (Salesforce revokes a
// connected app's OAuth tokens one by one, as its OauthToken object lists
// them). Both methods are pure: the executor sends the discovery requests
// (following pagination and follow-up queries), collects the revokes
// Expand returns, then sends each through the same retries and records the
// whole trail. A Discoverer's Plan returns its Discover request (marked
// Discover), which is what a dry run prints and records.
type Discoverer interface {
	// Discover is the first listing request for t.
	Discover(t Target) (Request, error)
	// Expand reads the vendor's answer body to the listing request
	// answered: the next listing request (the next page, or a follow-up
	// query), nil when the listing is complete, and the revocation requests
	// for what this answer lists. No revokes at all means nothing is left
	// to revoke (already_done).
	Expand(t Target, answered Request, body []byte) (next *Request, revokes []Request, err error)
}

// A Scarce discoverer's listing that finds nothing to revoke is no proof
// that nothing is left (a GitHub SAML SSO authorization named by its token's
// last eight characters may be misnamed, or the organization may not use
// SAML SSO): NothingListed is the error the revoke fails with, where another
// Discoverer's empty listing is already_done. A security tool must not
// record a credential as cut off on a guess.
type Scarce interface {
	NothingListed(t Target) error
}

// Factory builds a revoker from its `respond.vendors.<source>` config; no
// network.
type Factory func(decode func(any) error) (Revoker, error)

var (
	mu       sync.RWMutex
	registry = map[string]Factory{}
)

// Register makes a vendor's revoker available under its source name. Call
// it from init(); it panics on a duplicate.
func Register(source string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[source]; dup {
		panic("respond: duplicate revoker " + source)
	}
	registry[source] = f
}

// New builds the revoker of source.
func New(source string, decode func(any) error) (Revoker, error) {
	mu.RLock()
	f, ok := registry[source]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("respond: no revoker for source %q (known: %v)", source, Sources())
	}
	r, err := f(decode)
	if err != nil {
		return nil, fmt.Errorf("respond.vendors.%s: %w", source, err)
	}
	return r, nil
}

// Sources lists the sources with a registered revoker, sorted.
func Sources() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(registry))
	for s := range registry {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// BaseURL is a revoker's base_url setting: def when empty, checked as the
// other sections check URLs (validate.HTTPURL), without a trailing slash so
// paths join with one.
func BaseURL(raw, def string) (string, error) {
	if raw == "" {
		raw = def
	}
	if err := validate.HTTPURL("base_url", raw); err != nil {
		return "", err
	}
	return strings.TrimRight(raw, "/"), nil
}
