package ssf

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
	"github.com/tokenwatch/tokenwatch/internal/platform/validate"
	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Config is `respond.ssf`: the transmitter's identity, its signing key, the
// receivers allowed to manage streams and the streams configured up front.
type Config struct {
	// Issuer is the transmitter's issuer identifier: the iss of every SET
	// and the base of the endpoint URLs in the metadata, used exactly (SSF
	// 1.0: https, no query or fragment; no trailing /).
	Issuer string `yaml:"issuer"`
	// Listen is the address of the transmitter's own HTTP listener (the
	// metadata, JWKS and stream management endpoints).
	Listen string `yaml:"listen"`
	// SigningKey is a PEM private key (PKCS#8, PKCS#1 RSA or SEC 1 EC):
	// RSA signs RS256, EC P-256 signs ES256. A secret: env:NAME or file:PATH.
	SigningKey secret.Secret `yaml:"signing_key"`
	// KeyID is the kid in every SET header and in the JWKS.
	KeyID string `yaml:"key_id"`
	// PreviousKeys are retired signing keys, still published in the JWKS
	// until their Until: SETs they signed (queued in the outbox before a
	// rotation, or in a receiver's hands) go on verifying, and a SET still
	// queued when its key's overlap ends is re-signed with the current key.
	PreviousKeys []PreviousKey `yaml:"previous_keys"`
	// Receivers may call the management API, each with its bearer token;
	// a receiver sees and manages only the streams of its audience. An
	// audience listed twice has two valid tokens (rotation).
	Receivers []Receiver `yaml:"receivers"`
	// Streams are configured up front (their configuration is read-only
	// through the API; their status is not).
	Streams []StreamConfig `yaml:"streams"`
	// DefaultSubjects is ALL (every subject is sent until removed) or NONE
	// (only subjects added through add_subject_endpoint are sent).
	DefaultSubjects string `yaml:"default_subjects"`
	// CredentialType is the credential_type of credential-change and
	// credential-compromise events. CAEP's list has no API credential, and
	// lets the parties agree another value.
	CredentialType string `yaml:"credential_type"`
	// Compromise says which incidents are a credential compromise: any of
	// these detectors among the incident's, or at least MinSeverity.
	Compromise Compromise `yaml:"compromise"`
	// Timeout bounds one push request.
	Timeout time.Duration `yaml:"timeout"`
	// Retry is the backoff of a failing push (InitialInterval to
	// MaxInterval) and the failures in a row (MaxAttempts) before the
	// stream shows as blocked; a SET is retried until delivered or dropped
	// by HoldLimit, never given up on.
	Retry deliver.RetryPolicy `yaml:"retry"`
	// HoldLimit caps the SETs a stream holds while paused, refused by its
	// receiver or failing; beyond it the oldest are dropped and counted.
	HoldLimit int `yaml:"hold_limit"`
	// MinVerificationInterval is the least time between two verification
	// requests on a stream (min_verification_interval); sooner is a 429.
	MinVerificationInterval time.Duration `yaml:"min_verification_interval"`
	// StateFile keeps the streams (those created through the API, and the
	// status and subjects of all) across restarts, StateFile+".told"
	// what was told of incidents, and StateFile+".queue" the SETs not yet
	// delivered (outbox.go); required with Receivers. It holds the receivers'
	// authorization headers: it is written 0600.
	StateFile string `yaml:"state_file"`
	// AllowInsecureHTTP lets the issuer and push endpoints be plain http,
	// for loopback hosts only (tests, a laptop); it also lets streams
	// created through the API push to loopback. Never in production: SSF
	// and RFC 8935 want TLS.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http"`
}

// PreviousKey is a retired signing key: its kid and PEM (the public key,
// or the old private key of which only the public half is used; a secret,
// env:NAME or file:PATH), published until Until.
type PreviousKey struct {
	KeyID string        `yaml:"key_id"`
	Key   secret.Secret `yaml:"key"`
	// Until ends the overlap (RFC 3339): from then on the JWKS no longer
	// lists the key. Past, the key is ignored (a config need not be edited
	// the moment an overlap ends).
	Until time.Time `yaml:"until"`
}

// Receiver is one party allowed to call the management API.
type Receiver struct {
	// Audience is the receiver's identifier: the aud of its streams' SETs
	// (SSF 1.0 says an OAuth client id, or another agreed value).
	Audience string `yaml:"audience"`
	// Token is the bearer token it presents (RFC 6750).
	Token secret.Secret `yaml:"token"`
}

// StreamConfig is one stream configured up front.
type StreamConfig struct {
	ID       string `yaml:"id"`
	Audience string `yaml:"audience"`
	// DeliveryMethod is urn:ietf:rfc:8935 (push, the default) or
	// urn:ietf:rfc:8936 (poll: the receiver polls the stream's poll
	// endpoint with its receivers[] token; no endpoint_url nor
	// authorization_header then).
	DeliveryMethod string `yaml:"delivery_method"`
	// EndpointURL is the receiver's push endpoint (RFC 8935).
	EndpointURL string `yaml:"endpoint_url"`
	// AuthorizationHeader is sent as the Authorization header of every
	// push; a secret.
	AuthorizationHeader secret.Secret `yaml:"authorization_header"`
	// EventsRequested are event type URIs; empty requests all supported.
	EventsRequested []string `yaml:"events_requested"`
	Description     string   `yaml:"description"`
	// Status is enabled (default), paused or disabled at start, and
	// whenever it is changed here; a change the receiver has not asked for
	// is told to it as a stream-updated event.
	Status string `yaml:"status"`
	// StatusReason is the reason shown with Status (the status endpoint's
	// and the stream-updated event's reason); 500 characters kept.
	StatusReason string `yaml:"status_reason"`
}

// Compromise is when an incident is reported as RISC credential-compromise.
type Compromise struct {
	Detectors   []string         `yaml:"detectors"`
	MinSeverity schemas.Severity `yaml:"min_severity"`
}

// DefaultConfig holds the defaults: subjects ALL, compromise on use after
// revoke or expiry or a critical incident, six attempts over about 15 s.
func DefaultConfig() Config {
	return Config{
		DefaultSubjects: "ALL",
		CredentialType:  "api-credential",
		Compromise: Compromise{Detectors: []string{"lifecycle.use_after_revoke", "inventory.expired"},
			MinSeverity: schemas.SeverityCritical},
		Timeout:                 10 * time.Second,
		Retry:                   deliver.DefaultRetryPolicy(),
		HoldLimit:               10000,
		MinVerificationInterval: 10 * time.Second,
	}
}

// UnmarshalYAML applies the defaults before decoding, strictly.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config
	p := plain(DefaultConfig())
	if err := yamlstrict.Decode(n, &p); err != nil {
		return err
	}
	*c = Config(p)
	return nil
}

const at = "respond.ssf"

// Validate names the field at fault; it parses the signing key, so a bad
// key fails the config check, not the first SET.
func (c *Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, yamlstrict.At(at, err))
		}
	}
	if err := validate.HTTPURL("issuer", c.Issuer); err != nil {
		add(err)
	} else if err := secureURL(c.Issuer, c.AllowInsecureHTTP); err != nil {
		add(yamlstrict.Field("issuer", err))
	} else if u, _ := url.Parse(c.Issuer); u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(c.Issuer, "#") || strings.HasSuffix(c.Issuer, "?") {
		add(yamlstrict.Field("issuer", errors.New("no query or fragment (SSF 1.0: the issuer identifier is a bare URL)")))
	} else if strings.HasSuffix(u.Path, "/") {
		// The issuer is used as given (SSF: the metadata's issuer and every
		// SET's iss MUST be identical to it), and endpoint URLs are the
		// issuer followed by /ssf/…: a trailing / is refused, not trimmed.
		add(yamlstrict.Field("issuer", fmt.Errorf("%s: ends with /; write it without (the iss of every SET is the issuer exactly)", c.Issuer)))
	}
	add(validate.HostPort("listen", c.Listen, true))
	if c.SigningKey.IsZero() {
		add(yamlstrict.Field("signing_key", errors.New("required (a PEM private key: env:NAME or file:PATH)")))
	} else if _, err := parseKey(c.SigningKey); err != nil {
		add(yamlstrict.Field("signing_key", err))
	}
	if c.KeyID == "" {
		add(yamlstrict.Field("key_id", errors.New("required (the kid of the SETs and the JWKS)")))
	}
	kids := map[string]bool{c.KeyID: true}
	for i, pk := range c.PreviousKeys {
		p := fmt.Sprintf("previous_keys[%d]", i)
		switch {
		case pk.KeyID == "":
			add(yamlstrict.Field(p+".key_id", errors.New("required (the kid the key signed with)")))
		case kids[pk.KeyID]:
			// RFC 7517 §4.5: keys of one JWK Set SHOULD have distinct kids;
			// a receiver picks the key by it.
			add(yamlstrict.Field(p+".key_id", fmt.Errorf("%q: used twice (key_id and previous_keys[].key_id must differ)", pk.KeyID)))
		}
		kids[pk.KeyID] = true
		if pk.Key.IsZero() {
			add(yamlstrict.Field(p+".key", errors.New("required (a PEM public key, or the old private key: env:NAME or file:PATH)")))
		} else if _, _, err := publicKey(pk.Key); err != nil {
			add(yamlstrict.Field(p+".key", err))
		}
		if pk.Until.IsZero() {
			add(yamlstrict.Field(p+".until", errors.New("required (RFC 3339: when the JWKS stops listing the key)")))
		}
	}
	if c.DefaultSubjects != "ALL" && c.DefaultSubjects != "NONE" {
		add(yamlstrict.Field("default_subjects", fmt.Errorf("%q: want ALL or NONE", c.DefaultSubjects)))
	}
	if c.CredentialType == "" {
		add(yamlstrict.Field("credential_type", errors.New("required")))
	}
	if s := c.Compromise.MinSeverity; s != "" && s.Rank() < 0 {
		add(yamlstrict.Field("compromise.min_severity", fmt.Errorf("%q: not a severity", s)))
	}
	if c.Timeout <= 0 {
		add(yamlstrict.Field("timeout", errors.New("must be positive")))
	}
	if err := c.Retry.Validate(); err != nil {
		add(yamlstrict.Field("retry", err))
	}
	if c.HoldLimit < 1 {
		add(yamlstrict.Field("hold_limit", errors.New("must be at least 1")))
	}
	if c.MinVerificationInterval < 0 {
		add(yamlstrict.Field("min_verification_interval", errors.New("must not be negative")))
	}
	if c.StateFile != "" {
		if st, err := os.Stat(filepath.Dir(c.StateFile)); err != nil || !st.IsDir() {
			add(yamlstrict.Field("state_file", fmt.Errorf("%s: its folder does not exist", c.StateFile)))
		}
	}
	if len(c.Receivers) > 0 && c.StateFile == "" {
		// Without it, a restart silently loses every stream a receiver
		// created and every status and subject it set: the receiver would
		// believe it is still subscribed.
		add(yamlstrict.Field("state_file", errors.New("required with receivers (the streams, statuses and subjects they set through the API must survive a restart)")))
	}
	for i, r := range c.Receivers {
		p := fmt.Sprintf("receivers[%d]", i)
		if r.Audience == "" {
			add(yamlstrict.Field(p+".audience", errors.New("required")))
		}
		if len(r.Token.Reveal()) < 16 {
			add(yamlstrict.Field(p+".token", errors.New("required, at least 16 characters (env:NAME or file:PATH)")))
		}
	}
	ids := map[string]bool{}
	for i := range c.Streams {
		s := &c.Streams[i]
		p := fmt.Sprintf("streams[%d]", i)
		switch {
		case s.ID == "":
			add(yamlstrict.Field(p+".id", errors.New("required")))
		case ids[s.ID]:
			add(yamlstrict.Field(p+".id", fmt.Errorf("%q: used twice", s.ID)))
		}
		ids[s.ID] = true
		if s.Audience == "" {
			add(yamlstrict.Field(p+".audience", errors.New("required (the aud of its SETs)")))
		}
		if s.DeliveryMethod == "" {
			s.DeliveryMethod = DeliveryPush
		}
		switch s.DeliveryMethod {
		case DeliveryPush:
			if err := validate.HTTPURL("endpoint_url", s.EndpointURL); err != nil {
				add(yamlstrict.At(p, err))
			} else if err := secureURL(s.EndpointURL, c.AllowInsecureHTTP); err != nil {
				add(yamlstrict.Field(p+".endpoint_url", err))
			}
		case DeliveryPoll:
			if s.EndpointURL != "" {
				add(yamlstrict.Field(p+".endpoint_url", errors.New("not with delivery_method "+DeliveryPoll+": the receiver polls the transmitter")))
			}
			if !s.AuthorizationHeader.IsZero() {
				add(yamlstrict.Field(p+".authorization_header", errors.New("not with delivery_method "+DeliveryPoll+": the receiver polls with its receivers[] token")))
			}
			if !hasReceiver(c.Receivers, s.Audience) {
				add(yamlstrict.Field(p+".audience", fmt.Errorf("%q: a poll stream's audience must be a receivers[] audience (its token polls)", s.Audience)))
			}
		default:
			add(yamlstrict.Field(p+".delivery_method", fmt.Errorf("%q: want %s (push) or %s (poll)", s.DeliveryMethod, DeliveryPush, DeliveryPoll)))
		}
		for j, e := range s.EventsRequested {
			if !slices.Contains(EventsSupported, e) {
				add(yamlstrict.Field(fmt.Sprintf("%s.events_requested[%d]", p, j), fmt.Errorf("%q: not an event this transmitter sends (%v)", e, EventsSupported)))
			}
		}
		if s.Status == "" {
			s.Status = StatusEnabled
		}
		if !slices.Contains(statuses, s.Status) {
			add(yamlstrict.Field(p+".status", fmt.Errorf("%q: want enabled, paused or disabled", s.Status)))
		}
	}
	return errors.Join(errs...)
}

func hasReceiver(rs []Receiver, aud string) bool {
	for _, r := range rs {
		if r.Audience == aud {
			return true
		}
	}
	return false
}
