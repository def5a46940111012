package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// runApprovals answers the respond stage's request_approval actions:
//
//	tokenwatch respond list --config F
//	tokenwatch respond approve|deny ID --config F [--actor A] [--reason R]
//
// The pending actions are read from ClickHouse responses. An approval is
// recorded (status approved, with the actor) and the revoke it approves is
// carried out in the mode of the rule that asked, under the revoke's own
// id: enforce sends it (approving twice revokes once), dry_run records it
// and prints its requests without sending them; a denial is recorded and
// nothing is sent.
func runApprovals(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	verb := args[0]
	var id string
	rest := args[1:]
	if verb != "list" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return fmt.Errorf("%w: tokenwatch respond %s ID --config F", errUsage, verb)
		}
		id, rest = rest[0], rest[1:]
	}
	fs := newFlags("respond "+verb, stderr)
	cfgPath := fs.String("config", "", "config file with clickhouse and respond sections (required)")
	actor := fs.String("actor", os.Getenv("USER"), "who decides, recorded with the decision")
	reason := fs.String("reason", "", "why, recorded with the decision")
	limit := fs.Int("limit", 50, "list at most this many")
	if err := parse(fs, rest, stderr); err != nil {
		return err
	}
	if *cfgPath == "" {
		return fmt.Errorf("%w: --config is required", errUsage)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.Respond == nil {
		return fmt.Errorf("%w: %s has no respond: section", errUsage, *cfgPath)
	}
	if !cfg.ClickHouseEnabled() {
		return fmt.Errorf("%w: pending approvals are kept in ClickHouse: set clickhouse.addr in %s", errUsage, *cfgPath)
	}
	c, err := clickhouse.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer c.Close()
	if verb == "list" {
		rows, err := c.PendingApprovals(ctx, *limit)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tINCIDENT\tSOURCE\tINTEGRATION\tPRINCIPAL\tAT\tREASON")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s/v%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.IncidentID, r.IncidentVersion, r.Source, r.IntegrationID,
				orDash(r.Principal), r.At.UTC().Format("2006-01-02 15:04Z"), r.Reason)
		}
		return tw.Flush()
	}
	if *actor == "" {
		return fmt.Errorf("%w: --actor is required (no $USER)", errUsage)
	}
	revokers, err := cfg.Respond.Revokers()
	if err != nil {
		return fmt.Errorf("config %s: %w", *cfgPath, err)
	}
	ex, closeEx, err := newExecutor(ctx, cfg, revokers, stderr)
	if err != nil {
		return err
	}
	defer closeEx()
	// The Slack buttons decide through the same Decider.
	d := &respond.Decider{Lookup: c, Executor: ex}
	out, err := d.Decide(ctx, id, verb == "approve", *actor, *reason)
	if err != nil && len(out) == 0 {
		return err
	}
	if verb == "deny" {
		fmt.Fprintf(stdout, "denied %s (%s %s): nothing sent\n", id, out[0].Source, out[0].IntegrationID)
		return nil
	}
	var revokes []schemas.Response
	dry := false
	for _, r := range out {
		if r.Action != schemas.ActionRevoke {
			continue
		}
		if r.Mode == schemas.ModeDryRun {
			// The rule that asked is dry_run: the approval is recorded and
			// so is the revoke it would send, which is not sent.
			fmt.Fprintf(stdout, "approved %s (%s %s): rule %s is dry_run: revoke recorded as a dry run, nothing sent\n", id, r.Source, r.IntegrationID, r.Rule)
			for _, q := range r.Requests {
				fmt.Fprintln(stdout, q)
			}
			dry = true
			continue
		}
		revokes = append(revokes, r)
	}
	if dry && len(revokes) == 0 && err == nil {
		return nil
	}
	return report(revokes, err)(stdout)
}
