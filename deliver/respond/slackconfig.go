package respond

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/internal/platform/secret"
)

// SlackApprovals is `respond.slack`: Approve / Deny buttons on a Slack
// sink's incident messages for each pending request_approval, and the
// interactivity endpoint Slack posts the clicks to (deliver/slack).
type SlackApprovals struct {
	// Sink names the deliver.sinks entry (kind slack, bot mode) whose
	// incident messages carry the buttons; its bot token updates them.
	Sink string `yaml:"sink"`
	// SigningSecret is the Slack app's signing secret ("env:NAME" or
	// "file:PATH"), which every click is verified with.
	SigningSecret secret.Secret `yaml:"signing_secret"`
	// Approvers are the Slack user ids (U…, W…) whose clicks decide; anyone
	// else's (and not in ApproverGroups) is refused, logged and counted.
	Approvers []string `yaml:"approvers"`
	// ApproverGroups are Slack user group ids (S…, such as an on-call
	// rotation's @soc-oncall) whose members' clicks decide as an approver's
	// do. Membership is asked of Slack (usergroups.users.list, bot scope
	// usergroups:read) and kept a minute; a click whose membership Slack
	// cannot tell is refused.
	ApproverGroups []string `yaml:"approver_groups"`
	// Path is where the http.listen server takes the clicks: the Slack
	// app's Interactivity Request URL is https://<host><path>.
	Path string `yaml:"path"`
	// ReplayWindow is how far X-Slack-Request-Timestamp may be from now.
	ReplayWindow time.Duration `yaml:"replay_window"`
}

// DefaultSlackPath is where clicks are taken unless respond.slack.path says.
const DefaultSlackPath = "/slack/interactions"

var (
	slackUserID  = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	slackGroupID = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
)

// Validate fills the defaults and names the field at fault; it never echoes
// the secret.
func (c *SlackApprovals) Validate() error {
	var errs []error
	if c.Sink == "" {
		errs = append(errs, errors.New("respond.slack.sink: required (the deliver.sinks entry whose incident messages carry the buttons)"))
	}
	if c.SigningSecret.IsZero() {
		errs = append(errs, errors.New("respond.slack.signing_secret: required (the Slack app's signing secret, env:NAME or file:PATH)"))
	}
	if len(c.Approvers) == 0 && len(c.ApproverGroups) == 0 {
		errs = append(errs, errors.New("respond.slack.approvers, respond.slack.approver_groups: at least one Slack user id or user group id is required"))
	}
	for i, a := range c.Approvers {
		if !slackUserID.MatchString(a) {
			errs = append(errs, fmt.Errorf("respond.slack.approvers[%d] %q: not a Slack user id (U… or W…, as in the profile's \"Copy member ID\")", i, a))
		}
	}
	for i, g := range c.ApproverGroups {
		if !slackGroupID.MatchString(g) {
			errs = append(errs, fmt.Errorf("respond.slack.approver_groups[%d] %q: not a Slack user group id (S…, the id usergroups.list answers, not the @handle)", i, g))
		}
	}
	if c.Path == "" {
		c.Path = DefaultSlackPath
	}
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, "?# ") {
		errs = append(errs, fmt.Errorf("respond.slack.path %q: want an absolute path such as %s", c.Path, DefaultSlackPath))
	}
	if c.ReplayWindow == 0 {
		c.ReplayWindow = 5 * time.Minute
	}
	if c.ReplayWindow < 0 || c.ReplayWindow > time.Hour {
		errs = append(errs, fmt.Errorf("respond.slack.replay_window %s: want a positive duration of at most 1h (Slack documents 5m)", c.ReplayWindow))
	}
	return errors.Join(errs...)
}
