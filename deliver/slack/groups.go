package slack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver"
)

// groupTTL is how long a user group's membership, as Slack answered it, is
// trusted: a rotation of the on-call group takes effect within a minute.
const groupTTL = time.Minute

// groupLookupTimeout bounds one usergroups.users.list call.
const groupLookupTimeout = 5 * time.Second

// groups resolves respond.slack.approver_groups with usergroups.users.list
// (api.slack.com/methods/usergroups.users.list) and keeps each answer for
// ttl. It fails closed: a membership Slack could not tell is an error,
// never a yes.
type groups struct {
	ids     []string
	ttl     time.Duration
	timeout time.Duration

	mu     sync.Mutex // held across a lookup: clicks are rare, lookups coalesce
	cache  map[string]groupEntry
	logged map[string]bool // error kinds logged since the last good answer
}

type groupEntry struct {
	members map[string]bool
	fetched time.Time
	// retryAt: Slack answered 429 with Retry-After; it is not asked again
	// before, and clicks meanwhile are refused with err.
	retryAt time.Time
	err     *lookupError
}

// lookupError is why a membership is unknown: a kind for the log, the
// ephemeral message and the count, and a text without the token.
type lookupError struct {
	Group string
	Kind  string // the Web API error code, ratelimited, timeout, unreachable, http_NNN, bad_answer, no_sink
	Err   error  // redacted (Sink.do)
}

func (e *lookupError) Error() string {
	return fmt.Sprintf("usergroups.users.list %s: %s: %v", e.Group, e.Kind, e.Err)
}

// hint is what the operator should do about a kind.
func (e *lookupError) hint() string {
	switch e.Kind {
	case "missing_scope":
		return "the bot token lacks the usergroups:read scope: add it under OAuth & Permissions → Bot Token Scopes and reinstall the app"
	case "no_such_subteam":
		return "no Slack user group has this id: check respond.slack.approver_groups against usergroups.list"
	case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive":
		return "Slack refused the sink's bot token"
	case "plan_upgrade_required":
		return "the workspace's plan has no user groups: list the approvers by member id in respond.slack.approvers"
	case "ratelimited":
		return "Slack rate-limited usergroups.users.list (Tier 2); clicks are refused until its Retry-After passes"
	case "timeout":
		return "Slack's Web API did not answer in time"
	case "unreachable":
		return "Slack's Web API could not be reached"
	}
	return "Slack could not answer"
}

func newGroups(ids []string) *groups {
	return &groups{ids: ids, ttl: groupTTL, timeout: groupLookupTimeout, cache: map[string]groupEntry{}, logged: map[string]bool{}}
}

// member is the first group user is in. A yes from any group is a yes;
// otherwise an unknown membership of any group is an error.
func (g *groups) member(ctx context.Context, s *Sink, user string, now time.Time, log func(*lookupError)) (string, *lookupError) {
	var unknown *lookupError
	for _, id := range g.ids {
		members, err := g.members(ctx, s, id, now, log)
		if err != nil {
			if unknown == nil {
				unknown = err
			}
			continue
		}
		if members[user] {
			return id, nil
		}
	}
	return "", unknown
}

// members is group id's membership, from the cache while fresh, else from
// Slack.
func (g *groups) members(ctx context.Context, s *Sink, id string, now time.Time, log func(*lookupError)) (map[string]bool, *lookupError) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.cache[id]
	if e.members != nil && now.Sub(e.fetched) < g.ttl && !now.Before(e.fetched) {
		return e.members, nil
	}
	if e.err != nil && now.Before(e.retryAt) {
		return nil, e.err
	}
	members, lerr := g.fetch(ctx, s, id)
	if lerr != nil {
		// Fail closed: an expired membership is not used on an error.
		ne := groupEntry{err: lerr}
		var ra *deliver.RetryAfterError
		if errors.As(lerr.Err, &ra) {
			ne.retryAt = now.Add(ra.After)
		}
		g.cache[id] = ne
		if !g.logged[lerr.Kind] {
			g.logged[lerr.Kind] = true
			log(lerr)
		}
		return nil, lerr
	}
	g.cache[id] = groupEntry{members: members, fetched: now}
	clear(g.logged) // a new failure after a good answer is news again
	return members, nil
}

func (g *groups) fetch(ctx context.Context, s *Sink, id string) (map[string]bool, *lookupError) {
	if s == nil {
		return nil, &lookupError{Group: id, Kind: "no_sink", Err: errors.New("no Slack sink attached")}
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	r, err := s.apiGet(ctx, "usergroups.users.list", url.Values{"usergroup": {id}})
	if err != nil {
		return nil, &lookupError{Group: id, Kind: errorKind(err), Err: err}
	}
	members := make(map[string]bool, len(r.Users))
	for _, u := range r.Users {
		members[u] = true
	}
	return members, nil
}

// errorKind names what went wrong with a Web API call.
func errorKind(err error) string {
	var ae *APIError
	var hs *deliver.HTTPStatusError
	var ne net.Error
	switch {
	case errors.As(err, &ae):
		if ae.Code == "" {
			return "unknown_error"
		}
		return ae.Code
	case errors.As(err, &hs):
		if hs.StatusCode == http.StatusTooManyRequests {
			return "ratelimited"
		}
		return fmt.Sprintf("http_%d", hs.StatusCode)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return "unreachable"
	}
	return "bad_answer"
}
