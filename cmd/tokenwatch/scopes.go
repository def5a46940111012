package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokenwatch/tokenwatch/enrich/inventory"
	"github.com/tokenwatch/tokenwatch/enrich/inventory/scopemap"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
)

// scopeOptions are the flags of `tokenwatch inventory --scopes`.
type scopeOptions struct {
	source, tenant, since, until, window *string
	json                                 *bool
}

func scopeFlags(fs *flag.FlagSet) scopeOptions {
	return scopeOptions{
		source: fs.String("source", "", "--scopes: source whose raw shape the files hold (google_workspace, microsoft)"),
		tenant: fs.String("tenant", "", "--scopes: tenant for records that carry none"),
		since:  fs.String("since", "", "--scopes: window start, event time (RFC 3339 or a date); default: --window before the last event"),
		until:  fs.String("until", "", "--scopes: window end, exclusive (RFC 3339 or a date); default: just after the last event"),
		window: fs.String("window", "30d", "--scopes: window length when --since is not given (90d, 720h)"),
		json:   fs.Bool("json", false, "--scopes: one JSON object per integration instead of the table"),
	}
}

// runScopes reads raw records as replay does, maps them through the catalog
// (so source identities become catalog ids and approved scopes count as
// held) and reports least-privilege usage over a window of event time: the
// same files give the same report, whenever it runs.
func runScopes(cfg config.Config, o scopeOptions, files []string, stdout, stderr io.Writer) error {
	if *o.source == "" {
		return fmt.Errorf("%w: --scopes needs --source (one of %v)", errUsage, ingest.Names())
	}
	if len(files) == 0 {
		return fmt.Errorf("%w: --scopes: no input files", errUsage)
	}
	n, err := ingest.NewNormalizer(*o.source, *o.tenant)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	batch, err := readAll(n, files)
	if err != nil {
		return err
	}
	reportDead(stderr, batch.Dead)
	if len(batch.Events) == 0 {
		return fmt.Errorf("--scopes: the input holds no events")
	}
	var cat *inventory.Catalog
	if cfg.Inventory.Path != "" {
		if cat, err = inventory.Load(cfg.Inventory.Path); err != nil {
			return err
		}
	}
	enr := inventory.New(cat, inventory.Options{})
	m, err := scopemap.Default()
	if err != nil {
		return err
	}
	b := scopemap.NewBuilder(m)
	if b.From, b.To, err = scopeWindow(o, batch.Events[len(batch.Events)-1].Time.Time); err != nil {
		return err
	}
	for i := range batch.Events {
		enr.Enrich(&batch.Events[i])
		b.Add(&batch.Events[i])
	}
	usage := b.Usage()
	if *o.json {
		w := bufio.NewWriter(stdout)
		enc := json.NewEncoder(w)
		for i := range usage {
			if err := enc.Encode(&usage[i]); err != nil {
				return err
			}
		}
		return w.Flush()
	}
	printScopes(stdout, usage, b.From, b.To)
	return nil
}

// scopeWindow: --since/--until when given; else the --window up to just
// after the last event (the input's own clock, never the wall clock).
func scopeWindow(o scopeOptions, last time.Time) (from, to time.Time, err error) {
	to = last.Add(time.Millisecond)
	if *o.until != "" {
		if to, err = inventory.ParseTime(*o.until); err != nil {
			return from, to, fmt.Errorf("%w: --until %q: want RFC 3339 or a date", errUsage, *o.until)
		}
	}
	if *o.since != "" {
		if from, err = inventory.ParseTime(*o.since); err != nil {
			return from, to, fmt.Errorf("%w: --since %q: want RFC 3339 or a date", errUsage, *o.since)
		}
		return from, to, nil
	}
	d, err := inventory.ParseDays(*o.window)
	if err != nil {
		return from, to, fmt.Errorf("%w: --window %q: %v", errUsage, *o.window, err)
	}
	return to.Add(-d), to, nil
}

// printScopes writes one block per integration: the table's columns would
// not fit long scope lists on a line.
func printScopes(w io.Writer, usage []scopemap.Usage, from, to time.Time) {
	fmt.Fprintf(w, "scopes held vs exercised, %s to %s (event time): %d integration(s)\n", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), len(usage))
	for _, u := range usage {
		name := u.IntegrationID
		if u.Name != "" && u.Name != u.IntegrationID {
			name += " (" + u.Name + ")"
		}
		fmt.Fprintf(w, "\n%s %s via %s: %d call(s), %d mapped, %d unmapped, %d failed\n", u.Tenant, name, u.Source, u.Calls, u.Mapped, u.Calls-u.Mapped, u.Failed)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		row := func(k string, v string) { fmt.Fprintf(tw, "  %s\t%s\n", k, v) }
		row("held", scopeList(u.Source, u.Held))
		row("needed", scopeList(u.Source, u.Needed))
		row("exercised", scopeList(u.Source, u.Exercised))
		row("unused (remove?)", scopeList(u.Source, u.Unused))
		for _, n := range u.Narrower {
			row("narrower would do", scopeList(u.Source, []string{n.Held})+" -> "+scopeList(u.Source, n.Needs))
		}
		if len(u.Uncovered) > 0 {
			row("not covered by held", countList(u.Uncovered))
		}
		if len(u.Unmapped) > 0 {
			row("unmapped calls", countList(u.Unmapped))
		}
		tw.Flush()
	}
}

// scopeList shortens Google scope URLs to their name for the table (the
// JSON keeps them whole).
func scopeList(source string, ss []string) string {
	if len(ss) == 0 {
		return "-"
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s
		if source == scopemap.Google {
			out[i] = strings.TrimPrefix(s, "https://www.googleapis.com/auth/")
		}
	}
	return strings.Join(out, " ")
}

func countList(cs []scopemap.Count) string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprintf("%s ×%d", c.Call, c.Count)
	}
	return strings.Join(out, ", ")
}
