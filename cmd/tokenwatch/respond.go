package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/deliver/respond"
	"github.com/tokenwatch/tokenwatch/enrich/inventory"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// runRespond is the respond stage by hand:
//
//	tokenwatch respond revoke --config F --source S --integration ID [--principal P] [--dry-run]
//
// It revokes through the vendor's API with the admin credential in
// respond.vendors.<source>, or with --dry-run prints each request as
// "METHOD URL" and sends nothing. Outcomes are recorded as the stage records
// them: ClickHouse responses (also the guard against sending twice) and
// tokenwatch.responses when configured.
func runRespond(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "list" || args[0] == "approve" || args[0] == "deny") {
		return runApprovals(ctx, args, stdout, stderr)
	}
	if len(args) == 0 || args[0] != "revoke" {
		return fmt.Errorf("%w: tokenwatch respond revoke --config F --source S --integration ID [--principal P] [--dry-run] | list | approve ID | deny ID", errUsage)
	}
	fs := newFlags("respond revoke", stderr)
	cfgPath := fs.String("config", "", "config file with a respond.vendors section (required)")
	source := fs.String("source", "", "source of the integration (e.g. google_workspace)")
	integration := fs.String("integration", "", "integration id (as tokenwatch names it, or the vendor's id)")
	principal := fs.String("principal", "", "user(s) whose grant to revoke, comma-separated (required for per-user vendors such as google_workspace)")
	tenant := fs.String("tenant", "", "tenant, for the audit record")
	dryRun := fs.Bool("dry-run", false, "print each request as METHOD URL and send nothing")
	if err := parse(fs, args[1:], stderr); err != nil {
		return err
	}
	if *cfgPath == "" || *source == "" || *integration == "" {
		return fmt.Errorf("%w: --config, --source and --integration are required", errUsage)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.Respond == nil {
		return fmt.Errorf("%w: %s has no respond: section (respond.vendors.%s holds the admin credential)", errUsage, *cfgPath, *source)
	}
	revokers, err := cfg.Respond.Revokers()
	if err != nil {
		return fmt.Errorf("config %s: %w", *cfgPath, err)
	}
	rv, ok := revokers[*source]
	if !ok {
		return fmt.Errorf("%w: no respond.vendors.%s in %s (revokers exist for %v)", errUsage, *source, *cfgPath, respond.Sources())
	}
	var cat *inventory.Catalog
	if cfg.Inventory.Path != "" {
		if cat, err = inventory.Load(cfg.Inventory.Path); err != nil {
			return err
		}
	}
	vendorID, ok := respond.Resolve(rv, cat, *source, *integration)
	if !ok {
		return fmt.Errorf("integration %q does not resolve to a %s identity (not in the catalog's identities, and not an id the %s API takes)", *integration, *source, *source)
	}
	var principals []string
	for _, p := range strings.Split(*principal, ",") {
		if p = strings.TrimSpace(p); p != "" {
			principals = append(principals, p)
		}
	}
	if rv.PerPrincipal() && len(principals) == 0 {
		return fmt.Errorf("%w: %s revokes grants user by user: name them with --principal", errUsage, *source)
	}
	if !rv.PerPrincipal() {
		principals = []string{""}
	}
	var planned []respond.Planned
	for _, p := range principals {
		t := respond.Target{Source: *source, Tenant: *tenant, IntegrationID: *integration, VendorID: vendorID, Principal: p}
		reqs, err := rv.Plan(t)
		if err != nil {
			return err
		}
		mode := schemas.ModeEnforce
		if *dryRun {
			mode = schemas.ModeDryRun
		}
		// A manual action answers no incident: its id is the target's and
		// the UTC day's, so rerunning a revoke (after a crash, or twice by
		// mistake) sends it once that day, while a grant re-authorized later
		// can still be revoked again.
		r := schemas.Response{ID: schemas.ResponseID("manual:"+time.Now().UTC().Format("2006-01-02"), 0, schemas.ActionRevoke, t.Source+"/"+t.VendorID+"/"+t.Principal),
			Tenant: *tenant, Source: *source, IntegrationID: *integration, Target: vendorID, Principal: p,
			Action: schemas.ActionRevoke, Mode: mode, Status: schemas.ResponsePlanned, Rule: "manual"}
		for _, q := range reqs {
			r.Requests = append(r.Requests, q.String())
		}
		planned = append(planned, respond.Planned{Response: r, Target: t, Requests: reqs})
	}
	if *dryRun {
		for _, p := range planned {
			for _, q := range p.Requests {
				fmt.Fprintln(stdout, q.String())
			}
		}
		return nil
	}
	ex, closeEx, err := newExecutor(ctx, cfg, revokers, stderr)
	if err != nil {
		return err
	}
	defer closeEx()
	return report(ex.Execute(ctx, planned))(stdout)
}

// newExecutor is the executor the CLI uses: ClickHouse responses as store
// and trail when configured, and tokenwatch.responses with real brokers.
func newExecutor(ctx context.Context, cfg config.Config, revokers map[string]respond.Revoker, stderr io.Writer) (*respond.Executor, func(), error) {
	ex := &respond.Executor{Revokers: revokers, Sender: respond.NewHTTPSender(cfg.Respond.Timeout),
		Log: newLogger(stderr, cfg.Log.Level, cfg.Log.Format).With("component", "respond")}
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if cfg.ClickHouseEnabled() {
		c, err := clickhouse.Open(ctx, cfg.ClickHouse)
		if err != nil {
			return nil, closeAll, err
		}
		closers = append(closers, func() { c.Close() })
		ex.Store = c
		ex.Audit = append(ex.Audit, c)
	}
	if len(cfg.Kafka.Brokers) > 0 {
		if err := broker.EnsureTopics(ctx, cfg.Kafka, schemas.TopicResponses); err != nil {
			closeAll()
			return nil, func() {}, err
		}
		k := respond.NewKafkaRecorder(cfg.Kafka)
		closers = append(closers, func() { k.Close() })
		ex.Audit = append(ex.Audit, k)
	}
	return ex, closeAll, nil
}

// report prints the outcome of each action and fails when one failed.
func report(out []schemas.Response, err error) func(stdout io.Writer) error {
	return func(stdout io.Writer) error {
		if len(out) == 0 && err == nil {
			fmt.Fprintln(stdout, "already carried out: nothing sent")
		}
		failed := 0
		for _, r := range out {
			if r.Status == schemas.ResponsePlanned {
				continue
			}
			line := fmt.Sprintf("%s\t%s\t%s", r.Status, r.Target, r.Principal)
			if r.Error != "" {
				line += "\t" + r.Error
				failed++
			}
			fmt.Fprintln(stdout, strings.TrimRight(line, "\t"))
		}
		if err != nil {
			return err
		}
		if failed > 0 {
			return fmt.Errorf("%d revocation(s) failed", failed)
		}
		return nil
	}
}

// actionLine is one line of replay --actions: what the policy would have
// done, never sent.
type actionLine struct {
	IncidentID      string   `json:"incident_id"`
	IncidentVersion int      `json:"incident_version"`
	Source          string   `json:"source"`
	IntegrationID   string   `json:"integration_id"`
	Principal       string   `json:"principal"`
	Action          string   `json:"action"`
	Mode            string   `json:"mode"`
	Status          string   `json:"status"`
	Rule            string   `json:"rule"`
	Reason          string   `json:"reason,omitempty"`
	Target          string   `json:"target,omitempty"`
	Request         []string `json:"request"`
	ResponseID      string   `json:"response_id"`
	At              string   `json:"at"`
}

// writeActions plans every incident version in order, as the stage would,
// and writes the actions to w.
func writeActions(w io.Writer, rc *respond.Config, cat *inventory.Catalog, incidents []schemas.Incident) error {
	revokers, err := rc.Revokers()
	if err != nil {
		return err
	}
	p := respond.NewPlanner(*rc, revokers, cat)
	enc := json.NewEncoder(w)
	for _, inc := range incidents {
		for _, pl := range p.Plan(inc) {
			r := pl.Response
			reqs := r.Requests
			if reqs == nil {
				reqs = []string{}
			}
			if err := enc.Encode(actionLine{IncidentID: r.IncidentID, IncidentVersion: r.IncidentVersion, Source: r.Source, IntegrationID: r.IntegrationID,
				Principal: r.Principal, Action: r.Action, Mode: r.Mode, Status: r.Status, Rule: r.Rule, Reason: r.Reason, Target: r.Target,
				Request: reqs, ResponseID: r.ID, At: r.At.Format("2006-01-02T15:04:05Z07:00")}); err != nil {
				return err
			}
		}
	}
	return nil
}
