package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver"
	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/ingest/intake"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/scenario"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
	"github.com/tokenwatch/tokenwatch/schemas"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	dir := fs.String("scenario", "testdata/scenarios/google_oauth_theft", "scenario directory (raw pages + expected alerts)")
	city := fs.String("geoip-city", "testdata/geoip/test-city.mmdb", "GeoIP City database")
	asn := fs.String("geoip-asn", "testdata/geoip/test-asn.mmdb", "GeoIP ASN database")
	chAddr := fs.String("clickhouse", os.Getenv("TOKENWATCH_CLICKHOUSE_ADDR"), "also write events and alerts to this ClickHouse (host:port, native protocol)")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	verbose := fs.Bool("v", false, "log pipeline progress to stderr")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	pages := filepath.Join(*dir, scenario.PagesFile)
	for _, f := range []string{pages, *city, *asn} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%v (run from the repository root, or pass --scenario/--geoip-* flags)", err)
		}
	}
	cfg := config.Default()
	cfg.GeoIP.City, cfg.GeoIP.ASN = *city, *asn
	cfg.HTTP.Listen = "" // the demo serves nothing
	cfg.Ingest.Files = []intake.FileInput{{Source: "google_workspace", Path: pages}}
	if *chAddr != "" {
		cfg.ClickHouse.Addr = []string{*chAddr}
		cfg.Deliver.EventsToClickHouse = true
		if _, err := clickhouse.Migrate(ctx, cfg.ClickHouse); err != nil {
			return err
		}
	} else {
		cfg.Deliver.EventsToClickHouse = false
	}
	level := "error"
	if *verbose {
		level = "info"
	}
	log := newLogger(stderr, level, "text")
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	started := time.Now()
	fmt.Fprintf(stdout, "tokenwatch demo: replaying %s through an in-process Kafka broker…\n", pages)
	p, closeFn, err := wiring.Build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeFn()
	console := &collector{}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- p.Run(runCtx, []string{wiring.RoleIngest, wiring.RoleDetect, wiring.RoleDeliver}, console)
	}()
	finished := func() bool {
		n := p.Stats.EventsPublished.Load()
		if p.Stats.FilesIngested.Load() < int64(len(cfg.Ingest.Files)) || n == 0 || p.Stats.EventsDetected.Load() < n {
			return false
		}
		a := p.Stats.AlertsProduced.Load()
		if int64(console.len()) < a || !console.hasIncidents(p.Stats.Incidents()) {
			return false
		}
		return p.CH == nil || (p.Stats.Delivered("clickhouse-alerts") >= a && p.Stats.EventsWritten.Load() >= n)
	}
	ok := wiring.WaitFor(ctx, *timeout, func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
		}
		return finished()
	})
	stop()
	if err := <-done; err != nil {
		return err
	}
	if !ok || !finished() {
		return fmt.Errorf("timed out before the pipeline drained (published %d, detected %d, alerts %d, shown %d)",
			p.Stats.EventsPublished.Load(), p.Stats.EventsDetected.Load(), p.Stats.AlertsProduced.Load(), console.len())
	}
	alerts := console.sorted()
	incidents := console.sortedIncidents()
	fmt.Fprintf(stdout, "%d events ingested, %d dead-lettered, %d alerts correlated into %d incidents in %.1fs\n\n", p.Stats.EventsPublished.Load(),
		p.Stats.DeadLetters.Load(), len(alerts), len(incidents), time.Since(started).Seconds())
	printIncidents(stdout, incidents)
	fmt.Fprintf(stdout, "\nThe %d alerts behind them (signals: each one alone pages nobody):\n\n", len(alerts))
	printAlerts(stdout, alerts)
	if p.CH != nil {
		fmt.Fprintf(stdout, "\nwritten to ClickHouse %s: %d events, %d alerts (SELECT * FROM %s.alerts FINAL)\n",
			*chAddr, p.Stats.EventsWritten.Load(), p.Stats.Delivered("clickhouse-alerts"), cfg.ClickHouse.Database)
	}
	return nil
}

func printAlerts(w io.Writer, alerts []schemas.Alert) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIRST SEEN\tSEVERITY\tDETECTOR\tINTEGRATION\tTITLE")
	for _, a := range alerts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.FirstSeen.Format("2006-01-02 15:04:05Z"), strings.ToUpper(string(a.Severity)),
			a.Detector, shorten(a.IntegrationID, 44), a.Title)
	}
	tw.Flush()
	for _, a := range alerts {
		fmt.Fprintf(w, "\n[%s] %s\n  %s\n  observed: %s\n  baseline: %s\n  evidence: %d events, first %s\n  pivot:    %s\n", a.ID, a.Title, a.Summary,
			a.Observed, a.Baseline, len(a.EventIDs), first(a.EventIDs), a.Query)
	}
}

// printIncidents shows each incident as an analyst reads it: what, how
// sure, whose, the signals in order, what it touched, what to do.
func printIncidents(w io.Writer, incidents []schemas.Incident) {
	for _, inc := range incidents {
		fmt.Fprintf(w, "INCIDENT %s v%d  %s  risk %.0f  %s\n  %s\n  %s\n", inc.ID, inc.Version, strings.ToUpper(string(inc.Severity)),
			inc.RiskScore, inc.Status, inc.Title, inc.Summary)
		owner := inc.Owner
		if owner == "" {
			owner = "(not catalogued)"
		}
		fmt.Fprintf(w, "  integration: %s  source: %s  owner: %s\n  signals:\n", strings.Join(inc.IntegrationIDs, ", "), inc.Source, owner)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, sg := range inc.Timeline {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t+%.0f\t%s\n", sg.Time.Format("2006-01-02 15:04:05Z"), strings.ToUpper(string(sg.Severity)), sg.Detector, sg.Risk, sg.Title)
		}
		tw.Flush()
		b := inc.Blast
		fmt.Fprintf(w, "  blast radius: %d calls, %d bytes, %d records; apps %s; principals %s; IPs %s\n", b.Events, b.Bytes, b.Records,
			orNone(b.Apps), orNone(b.Principals), orNone(b.IPs))
		fmt.Fprintln(w, "  next:")
		for _, n := range inc.Next {
			fmt.Fprintf(w, "    - %s\n", n)
		}
		fmt.Fprintln(w)
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func first(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return s[0]
}

// collector is the demo's console sink: it keeps the alerts and the newest
// version of each incident to print.
type collector struct {
	mu        sync.Mutex
	alerts    map[string]schemas.Alert
	incidents map[string]schemas.Incident
}

// SendIncident implements deliver.IncidentSink.
func (c *collector) SendIncident(_ context.Context, inc schemas.Incident, _ deliver.Receipt) (deliver.Receipt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.incidents == nil {
		c.incidents = map[string]schemas.Incident{}
	}
	if old, ok := c.incidents[inc.ID]; !ok || inc.Version > old.Version {
		c.incidents[inc.ID] = inc
	}
	return "", nil
}

// hasIncidents reports whether the console holds each id at its version.
func (c *collector) hasIncidents(want map[string]int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, v := range want {
		if c.incidents[id].Version < v {
			return false
		}
	}
	return true
}

func (c *collector) sortedIncidents() []schemas.Incident {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]schemas.Incident, 0, len(c.incidents))
	for _, inc := range c.incidents {
		out = append(out, inc)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].RiskScore != out[j].RiskScore {
			return out[i].RiskScore > out[j].RiskScore
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (c *collector) Name() string { return "console" }

func (c *collector) Send(_ context.Context, alerts []schemas.Alert) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.alerts == nil {
		c.alerts = map[string]schemas.Alert{}
	}
	for _, a := range alerts {
		c.alerts[a.ID] = a
	}
	return nil
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.alerts)
}

func (c *collector) sorted() []schemas.Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]schemas.Alert, 0, len(c.alerts))
	for _, a := range c.alerts {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].FirstSeen.Equal(out[j].FirstSeen.Time) {
			return out[i].FirstSeen.Before(out[j].FirstSeen.Time)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
