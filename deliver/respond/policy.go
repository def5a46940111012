package respond

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/deliver/respond/ssf"
	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Config is the `respond:` section. Absent, the stage is off.
type Config struct {
	// Rules are tried in order; the first that matches an incident version
	// decides its action. No match, no action.
	Rules []Rule `yaml:"rules"`
	// AllowList holds integration ids that are never revoked without a
	// human: a revoke on one becomes request_approval.
	AllowList []string `yaml:"allow_list"`
	// MaxRevocationsPerHour caps revocations within any hour of incident
	// (event) time; beyond it a revoke becomes request_approval.
	MaxRevocationsPerHour int `yaml:"max_revocations_per_hour"`
	// Timeout bounds one vendor API request.
	Timeout time.Duration `yaml:"timeout"`
	// Vendors holds each source's revoker config (admin credential, API
	// base URL), decoded strictly by the revoker's folder.
	Vendors map[string]yaml.Node `yaml:"vendors"`
	// SSF is the Shared Signals transmitter (deliver/respond/ssf): what the
	// stage sees and does, as SETs for receivers. nil: none.
	SSF *ssf.Config `yaml:"ssf"`
	// Slack puts Approve / Deny buttons for pending approvals on a Slack
	// sink's incident messages and takes the clicks. nil: none.
	Slack *SlackApprovals `yaml:"slack"`
}

// Rule maps incidents to an action.
type Rule struct {
	Name   string `yaml:"name"`
	Match  Match  `yaml:"match"`
	Action string `yaml:"action"` // notify, request_approval, revoke
	Mode   string `yaml:"mode"`   // dry_run (default), enforce
}

// Match is what an incident version must have for its rule to apply; every
// field set must hold (an empty list matches anything).
type Match struct {
	MinSeverity    schemas.Severity `yaml:"min_severity"`
	MinRiskScore   float64          `yaml:"min_risk_score"`
	Detectors      []string         `yaml:"detectors"` // any of them among the incident's
	Sources        []string         `yaml:"sources"`
	Tenants        []string         `yaml:"tenants"`
	Criticality    []string         `yaml:"criticality"`
	IntegrationIDs []string         `yaml:"integration_ids"`
}

// DefaultConfig is the section's defaults: no rules, at most 10 revocations
// an hour.
func DefaultConfig() Config {
	return Config{MaxRevocationsPerHour: 10, Timeout: 15 * time.Second}
}

var actions = []string{schemas.ActionNotify, schemas.ActionRequestApproval, schemas.ActionRevoke}

// Validate names the field at fault.
func (c *Config) Validate() error {
	var errs []error
	names := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		at := fmt.Sprintf("respond.rules[%d]", i)
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: required (it is recorded with every action)", at))
		} else if names[r.Name] {
			errs = append(errs, fmt.Errorf("%s.name %q: used twice", at, r.Name))
		}
		names[r.Name] = true
		if !slices.Contains(actions, r.Action) {
			errs = append(errs, fmt.Errorf("%s.action %q: want one of %v", at, r.Action, actions))
		}
		if r.Mode == "" {
			r.Mode = schemas.ModeDryRun
		}
		if r.Mode != schemas.ModeDryRun && r.Mode != schemas.ModeEnforce {
			errs = append(errs, fmt.Errorf("%s.mode %q: want dry_run or enforce", at, r.Mode))
		}
		if s := r.Match.MinSeverity; s != "" && s.Rank() < 0 {
			errs = append(errs, fmt.Errorf("%s.match.min_severity %q: not a severity", at, s))
		}
	}
	if c.MaxRevocationsPerHour < 0 {
		errs = append(errs, errors.New("respond.max_revocations_per_hour: must not be negative (0 = every revoke needs approval)"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("respond.timeout: must be positive"))
	}
	if c.SSF != nil {
		if err := c.SSF.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Slack != nil {
		if err := c.Slack.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// matches reports whether inc satisfies m.
func (m *Match) matches(inc *schemas.Incident) bool {
	if m.MinSeverity != "" && inc.Severity.Rank() < m.MinSeverity.Rank() {
		return false
	}
	if inc.RiskScore < m.MinRiskScore {
		return false
	}
	if len(m.Detectors) > 0 && !slices.ContainsFunc(inc.Detectors, func(d string) bool { return slices.Contains(m.Detectors, d) }) {
		return false
	}
	if len(m.Sources) > 0 && !slices.Contains(m.Sources, inc.Source) {
		return false
	}
	if len(m.Tenants) > 0 && !slices.Contains(m.Tenants, inc.Tenant) {
		return false
	}
	if len(m.Criticality) > 0 && !slices.Contains(m.Criticality, inc.Criticality) {
		return false
	}
	if len(m.IntegrationIDs) > 0 && !slices.ContainsFunc(incidentIntegrations(inc), func(id string) bool { return slices.Contains(m.IntegrationIDs, id) }) {
		return false
	}
	return true
}

func incidentIntegrations(inc *schemas.Incident) []string {
	if len(inc.IntegrationIDs) > 0 {
		return inc.IntegrationIDs
	}
	return []string{inc.IntegrationID}
}

// rule returns the first rule matching inc, nil for none.
func (c *Config) rule(inc *schemas.Incident) *Rule {
	for i := range c.Rules {
		if c.Rules[i].Match.matches(inc) {
			return &c.Rules[i]
		}
	}
	return nil
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

// Revokers builds the revoker of every configured vendor; no network.
func (c *Config) Revokers() (map[string]Revoker, error) {
	out := map[string]Revoker{}
	var errs []error
	for source, node := range c.Vendors {
		rv, err := New(source, yamlstrict.Func(&node))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[source] = rv
	}
	return out, errors.Join(errs...)
}
