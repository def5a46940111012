package respond

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tokenwatch/tokenwatch/schemas"
)

// ErrNotPending is a decision on an action that is not a request_approval
// still waiting for one: decided already, or not an approval request.
var ErrNotPending = errors.New("not a pending approval request")

// Lookup reads the latest step of an action (ClickHouse responses).
type Lookup interface {
	Response(ctx context.Context, id string) (schemas.Response, error)
}

// Decider records a human's answer to a request_approval and, for an
// approval, carries out the revoke it approves: the one code path of
// `tokenwatch respond approve|deny` and the Slack buttons. Safe for
// concurrent use; decisions are serialized so two clicks in flight cannot
// both find the request pending.
type Decider struct {
	Lookup   Lookup
	Executor *Executor
	mu       sync.Mutex
}

// Decide answers the pending request id: approve records status approved
// (with actor and reason) and then the revoke it approves, under the
// revoke's own id and in the mode of the rule that asked (the request's
// Mode): in enforce mode the revoke is sent, so approving twice revokes once
// and an already-revoked grant counts as done; in dry_run mode (or a
// request recorded without a mode) the revoke is recorded planned with its
// requests and nothing is sent. Deny records status denied and sends
// nothing. Approving an approved enforce request whose revoke is not done (a
// crash between the records, a vendor failure) runs the revoke again. It
// returns the records written; an error wrapping ErrNotPending says what the
// action is instead.
func (d *Decider) Decide(ctx context.Context, id string, approve bool, actor, reason string) ([]schemas.Response, error) {
	if actor == "" {
		return nil, errors.New("respond: a decision needs an actor")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.Lookup.Response(ctx, id)
	if err != nil {
		return nil, err
	}
	e := d.Executor
	if r.Action == schemas.ActionRequestApproval && r.Status == schemas.ResponseApproved && approve {
		// Approved before, but its revoke may not have been carried out (a
		// crash between the two records, or the vendor failed): approving
		// again resumes it; once done, it is refused like any decided one.
		pending, err := d.revokePending(ctx, r)
		if err != nil {
			return nil, err
		}
		if pending {
			return d.revoke(ctx, r, actor)
		}
	}
	if r.Action != schemas.ActionRequestApproval || r.Status != schemas.ResponsePlanned {
		by := ""
		if r.Actor != "" {
			by = " by " + r.Actor
		}
		return nil, fmt.Errorf("response %s is a %s %s%s, %w", id, r.Action, r.Status, by, ErrNotPending)
	}
	decision := r
	decision.Actor, decision.Reason, decision.Error = actor, reason, ""
	decision.Status = schemas.ResponseDenied
	if approve {
		decision.Status = schemas.ResponseApproved
	}
	if err := e.record(ctx, &decision); err != nil {
		return nil, fmt.Errorf("record the %s: %w", decision.Status, err)
	}
	out := []schemas.Response{decision}
	if !approve {
		return out, nil
	}
	done, err := d.revoke(ctx, r, actor)
	return append(out, done...), err
}

// revokeTarget is the target and id of the revoke that approving r runs.
func revokeTarget(r schemas.Response) (Target, string) {
	t := Target{Source: r.Source, Tenant: r.Tenant, IntegrationID: r.IntegrationID, VendorID: r.Target, Principal: r.Principal}
	return t, schemas.ResponseID(r.IncidentID, r.IncidentVersion, schemas.ActionRevoke, targetKey(t))
}

// revokePending reports whether the revoke an approval of r runs is not
// yet executed or already_done. Without a store it cannot tell: false. A
// dry-run revoke is never sent, so it is never pending: the approval
// decided it.
func (d *Decider) revokePending(ctx context.Context, r schemas.Response) (bool, error) {
	if d.Executor.Store == nil || ApprovalMode(r) != schemas.ModeEnforce {
		return false, nil
	}
	_, id := revokeTarget(r)
	done, err := d.Executor.Store.Completed(ctx, []string{id})
	if err != nil {
		return false, fmt.Errorf("respond: read the approved revoke: %w", err)
	}
	return !done[id], nil
}

// ApprovalMode is the mode the revoke approving r runs in: the mode of the
// rule that asked for the approval, recorded on the request. A request
// recorded without one is dry_run, the policy's default: an approval never
// sends what its rule did not say to send.
func ApprovalMode(r schemas.Response) string {
	if r.Mode == schemas.ModeEnforce {
		return schemas.ModeEnforce
	}
	return schemas.ModeDryRun
}

// revoke executes the revoke approving r stands for, in the request's mode
// (ApprovalMode), under the revoke's own id: the executor's store sends an
// enforced one once, and a dry-run one is recorded and not sent.
func (d *Decider) revoke(ctx context.Context, r schemas.Response, actor string) ([]schemas.Response, error) {
	e := d.Executor
	rv, ok := e.Revokers[r.Source]
	if !ok {
		return nil, fmt.Errorf("approved, but there is no respond.vendors.%s to revoke with", r.Source)
	}
	t, id := revokeTarget(r)
	reqs, err := rv.Plan(t)
	if err != nil {
		return nil, fmt.Errorf("approved, but the revoke cannot be planned: %w", err)
	}
	revoke := r
	revoke.Action, revoke.Mode, revoke.Status, revoke.Actor = schemas.ActionRevoke, ApprovalMode(r), schemas.ResponsePlanned, actor
	revoke.Reason, revoke.Error = "approved by "+actor, ""
	if revoke.Mode == schemas.ModeDryRun {
		revoke.Reason += "; rule " + r.Rule + " is dry_run: recorded, nothing sent"
	}
	revoke.ID = id
	revoke.Requests = nil
	for _, q := range reqs {
		revoke.Requests = append(revoke.Requests, q.String())
	}
	return e.Execute(ctx, []Planned{{Response: revoke, Target: t, Requests: reqs}})
}
