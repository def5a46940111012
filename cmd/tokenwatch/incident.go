package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	json "github.com/goccy/go-json"
	"github.com/segmentio/kafka-go"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/platform/broker"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// runIncident lists incidents and records analysts' decisions on them:
//
//	tokenwatch incident list --config F
//	tokenwatch incident timeline ID --config F
//	tokenwatch incident decisions --config F
//	tokenwatch incident ack|resolve|suppress ID --config F [--reason R] [--for 168h] [--actor A]
//
// decisions prints every recorded decision as JSON lines, the input of
// `tokenwatch replay --decisions`.
//
// timeline prints the incident's alerts and every step of the respond
// stage's actions on it (ClickHouse view incident_timeline), in order.
//
// A decision is kept in ClickHouse (incident_decisions; the view
// incident_decision holds the one in force) and sent to the detect role on
// tokenwatch.incident_decisions, which the correlator honours.
func runIncident(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: tokenwatch incident list|timeline|decisions|ack|resolve|suppress …", errUsage)
	}
	verb := args[0]
	action := map[string]string{"ack": schemas.DecisionAcknowledge, "acknowledge": schemas.DecisionAcknowledge,
		"resolve": schemas.DecisionResolve, "suppress": schemas.DecisionSuppress}[verb]
	listing := verb == "list" || verb == "decisions"
	if !listing && verb != "timeline" && action == "" {
		return fmt.Errorf("%w: unknown incident command %q (list, timeline, decisions, ack, resolve, suppress)", errUsage, verb)
	}
	fs := newFlags("incident "+verb, stderr)
	cfgPath := fs.String("config", "", "config file (required: its clickhouse and kafka blocks)")
	reason := fs.String("reason", "", "why (recorded with the decision)")
	forDur := fs.Duration("for", 7*24*time.Hour, "suppress: how long the integration's signals open no incident")
	actor := fs.String("actor", os.Getenv("USER"), "who decided")
	limit := fs.Int("limit", 50, "list: how many incidents, riskiest first")
	// Flags may follow the incident id.
	var id string
	rest := args[1:]
	if !listing && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	if err := parse(fs, rest, stderr); err != nil {
		return err
	}
	if !listing && id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	}
	if *cfgPath == "" {
		return fmt.Errorf("%w: --config is required", errUsage)
	}
	if !listing && id == "" {
		return fmt.Errorf("%w: tokenwatch incident %s ID --config F", errUsage, verb)
	}
	if action == schemas.DecisionSuppress && *forDur <= 0 {
		return fmt.Errorf("%w: --for must be a positive duration", errUsage)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if !cfg.ClickHouseEnabled() {
		return fmt.Errorf("%w: incidents are kept in ClickHouse: set clickhouse.addr in %s", errUsage, *cfgPath)
	}
	c, err := clickhouse.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer c.Close()
	if verb == "list" {
		rows, err := c.Incidents(ctx, *limit)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tVERSION\tSTATUS\tDECISION\tSEVERITY\tRISK\tLAST SEEN\tTITLE")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.0f\t%s\t%s\n", r.ID, r.Version, r.Status, orDash(r.Decision), strings.ToUpper(r.Severity),
				r.RiskScore, r.LastSeen.UTC().Format("2006-01-02 15:04Z"), r.Title)
		}
		return tw.Flush()
	}
	if verb == "decisions" {
		ds, err := c.Decisions(ctx)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		for i := range ds {
			if err := enc.Encode(&ds[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if verb == "timeline" {
		rows, err := c.Timeline(ctx, id)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return fmt.Errorf("no alerts or actions of incident %s in ClickHouse", id)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tKIND\tWHAT\tSTATE\tACTOR\tDETAIL")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format("2006-01-02 15:04:05Z"), r.Kind, r.What, r.State, orDash(r.Actor), r.Detail)
		}
		return tw.Flush()
	}
	if len(cfg.Kafka.Brokers) == 0 {
		return fmt.Errorf("%w: a decision reaches the detect role through Kafka: set kafka.brokers (another process's in-process broker is not reachable)", errUsage)
	}
	inc, err := c.Incident(ctx, id)
	if err != nil {
		return err
	}
	now := time.Now()
	d := schemas.Decision{IncidentID: inc.ID, Tenant: inc.Tenant, Key: inc.Key, IntegrationID: inc.IntegrationID, Action: action,
		Reason: *reason, Actor: *actor, DecidedAt: schemas.NewTime(now)}
	if action == schemas.DecisionSuppress {
		until := schemas.NewTime(now.Add(*forDur))
		d.Until = &until
	}
	if err := c.WriteDecision(ctx, d); err != nil {
		return err
	}
	if err := sendDecision(ctx, cfg.Kafka, d); err != nil {
		return fmt.Errorf("recorded in ClickHouse, but not sent to the detect role: %w", err)
	}
	msg := fmt.Sprintf("incident %s (%s): %s", inc.ID, inc.Title, action)
	if d.Until != nil {
		msg += fmt.Sprintf(" until %s — %s opens no incident before then", d.Until.Format(time.RFC3339), inc.Key)
	}
	fmt.Fprintln(stdout, msg)
	return nil
}

func sendDecision(ctx context.Context, cfg broker.Config, d schemas.Decision) error {
	if err := broker.EnsureTopics(ctx, cfg, schemas.TopicDecisions); err != nil {
		return err
	}
	v, err := json.Marshal(&d)
	if err != nil {
		return err
	}
	w := broker.NewWriter(cfg, schemas.TopicDecisions)
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(d.IncidentID), Value: v}); err != nil {
		return errors.Join(errors.New("produce the decision"), broker.Condense(err))
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
