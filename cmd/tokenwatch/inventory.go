package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokenwatch/tokenwatch/deliver/clickhouse"
	"github.com/tokenwatch/tokenwatch/enrich/inventory"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
)

// runInventory reports catalogued vs discovered integrations: the review an
// owner of non-human identities does each quarter.
func runInventory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("inventory", stderr)
	cfgPath := fs.String("config", "", "config file (its inventory.path and clickhouse block)")
	addr := fs.String("clickhouse", "", "ClickHouse native address (overrides config)")
	staleAfter := fs.Duration("stale", 90*24*time.Hour, "unused this long: a candidate for revocation")
	scopes := fs.Bool("scopes", false, "least privilege: per integration, the scopes held against those its API calls needed, from raw records FILE... of --source (offline)")
	so := scopeFlags(fs)
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	cfg := config.Default()
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	if *scopes {
		return runScopes(cfg, so, fs.Args(), stdout, stderr)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: input files are read with --scopes only", errUsage)
	}
	if *addr != "" {
		cfg.ClickHouse.Addr = []string{*addr}
	}
	if !cfg.ClickHouseEnabled() {
		return fmt.Errorf("%w: the report reads the integrations table: set clickhouse.addr or --clickhouse", errUsage)
	}
	var cat *inventory.Catalog
	if cfg.Inventory.Path != "" {
		var err error
		if cat, err = inventory.Load(cfg.Inventory.Path); err != nil {
			return err
		}
	}
	c, err := clickhouse.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer c.Close()
	rows, err := c.ReadIntegrations(ctx)
	if err != nil {
		return err
	}
	// The wall clock is right here: this is today's review of what is live,
	// not a replay.
	r := BuildInventoryReport(cat, rows, time.Now(), *staleAfter)
	r.Print(stdout)
	return nil
}

// InventoryReport is the content of `tokenwatch inventory`.
type InventoryReport struct {
	Catalogued, Discovered, Unowned, Expired, Stale, NeverSeen []InventoryLine
	// ReviewOverdue lists catalog entries, seen or not, whose periodic
	// review (reviewed_at + review_every) is past due.
	ReviewOverdue []InventoryLine
}

// InventoryLine is one integration in a section.
type InventoryLine struct {
	Tenant, ID, Name, Owner, Note string
	LastSeen                      time.Time
}

// BuildInventoryReport joins the catalog with what was seen.
func BuildInventoryReport(cat *inventory.Catalog, seen []clickhouse.IntegrationRow, now time.Time, staleAfter time.Duration) InventoryReport {
	var r InventoryReport
	seenIDs := map[string]bool{}
	lastSeen := map[string]time.Time{}
	for _, s := range seen {
		seenIDs[s.IntegrationID] = true
		if s.LastSeen.After(lastSeen[s.IntegrationID]) {
			lastSeen[s.IntegrationID] = s.LastSeen
		}
		l := InventoryLine{Tenant: s.Tenant, ID: s.IntegrationID, Name: s.Name, Owner: s.Owner, LastSeen: s.LastSeen,
			Note: strings.Join(s.Sources, ",")}
		var e *inventory.Entry
		if cat != nil {
			e, _ = cat.Entry(s.IntegrationID)
		}
		if e != nil {
			r.Catalogued = append(r.Catalogued, l)
			if exp := e.Expires(); exp != nil && s.LastSeen.After(*exp) {
				l.Note = "expired " + exp.Format("2006-01-02") + ", still used"
				r.Expired = append(r.Expired, l)
			}
		} else {
			r.Discovered = append(r.Discovered, l)
		}
		if s.Owner == "" {
			r.Unowned = append(r.Unowned, l)
		}
		if now.Sub(s.LastSeen) > staleAfter {
			l.Note = fmt.Sprintf("unused %d days", int(now.Sub(s.LastSeen).Hours()/24))
			r.Stale = append(r.Stale, l)
		}
	}
	if cat != nil {
		for _, e := range cat.Entries {
			if !seenIDs[e.ID] {
				r.NeverSeen = append(r.NeverSeen, InventoryLine{ID: e.ID, Name: e.Name, Owner: e.Owner, Note: "catalogued, never seen"})
			}
			if due, ok := e.ReviewDue(); ok && e.ReviewOverdue(now) {
				r.ReviewOverdue = append(r.ReviewOverdue, InventoryLine{ID: e.ID, Name: e.Name, Owner: e.Owner, LastSeen: lastSeen[e.ID],
					Note: fmt.Sprintf("review due %s, %d days overdue", due.Format("2006-01-02"), int(now.Sub(due).Hours()/24))})
			}
		}
	}
	return r
}

// Print writes the report as sections of aligned tables.
func (r InventoryReport) Print(w io.Writer) {
	fmt.Fprintf(w, "integrations: %d catalogued and seen, %d discovered (not catalogued), %d unowned, %d expired but used, %d stale, %d catalogued but never seen, %d review overdue\n",
		len(r.Catalogued), len(r.Discovered), len(r.Unowned), len(r.Expired), len(r.Stale), len(r.NeverSeen), len(r.ReviewOverdue))
	for _, sec := range []struct {
		title string
		lines []InventoryLine
	}{{"Discovered, not catalogued (name, own and review them)", r.Discovered}, {"Unowned", r.Unowned},
		{"Expired but still used", r.Expired}, {"Review overdue (catalog reviewed_at + review_every passed)", r.ReviewOverdue}, {"Stale (candidates for revocation)", r.Stale},
		{"Catalogued but never seen", r.NeverSeen}, {"Catalogued", r.Catalogued}} {
		if len(sec.lines) == 0 {
			continue
		}
		sort.Slice(sec.lines, func(i, j int) bool { return sec.lines[i].Tenant+sec.lines[i].ID < sec.lines[j].Tenant+sec.lines[j].ID })
		fmt.Fprintf(w, "\n%s\n", sec.title)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TENANT\tINTEGRATION\tNAME\tOWNER\tLAST SEEN\tNOTE")
		for _, l := range sec.lines {
			last := "-"
			if !l.LastSeen.IsZero() {
				last = l.LastSeen.UTC().Format("2006-01-02")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", l.Tenant, l.ID, l.Name, l.Owner, last, l.Note)
		}
		tw.Flush()
	}
}
