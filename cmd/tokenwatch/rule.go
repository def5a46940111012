package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/detect/sigma"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

const ruleUsage = "usage: tokenwatch rule test RULES.yml [--source S] [--tenant T] [--geoip-city F --geoip-asn F] FILE..."

// RuleMatch is one line of `tokenwatch rule test`: an event a rule
// matched and which of its selections did, or a window a correlation rule
// fired on (Correlation set; Selections are then the correlated rules that
// matched in it, EventID and Time the event that completed it).
type RuleMatch struct {
	RuleID        string           `json:"rule_id"`
	Detector      string           `json:"detector"`
	Title         string           `json:"title"`
	Severity      schemas.Severity `json:"severity"`
	EventID       string           `json:"event_id"`
	Time          schemas.Time     `json:"time"`
	Tenant        string           `json:"tenant,omitempty"`
	IntegrationID string           `json:"integration_id"`
	Action        string           `json:"action"`
	Selections    []string         `json:"selections"`
	// PartOf are the correlations using the rule; Silent says the rule
	// raises no alert of its own (none of them has generate: true).
	PartOf      []string          `json:"part_of,omitempty"`
	Silent      bool              `json:"silent,omitempty"`
	Correlation *CorrelationMatch `json:"correlation,omitempty"`
}

// CorrelationMatch is what a correlation alert would carry.
type CorrelationMatch struct {
	sigma.CorrObserved
	EventIDs  []string     `json:"event_ids"`
	FirstSeen schemas.Time `json:"first_seen"`
	LastSeen  schemas.Time `json:"last_seen"`
}

// runRule is `tokenwatch rule test`: the detection engineer's loop. It
// reads raw vendor records as replay does (the same file formats and
// normalizer), enriches them when GeoIP databases are given, and prints
// every event a rule of the file matches as a JSON line; a file holding a
// correlation (a rule collection) replays the events in event-time order
// through it, per integration as the detect program does, and also prints
// each window it fires on. No match is not an error (exit 0); a rule that
// cannot load is, with its file, line and construct.
func runRule(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "test" {
		return fmt.Errorf("%w: %s", errUsage, ruleUsage)
	}
	fs := newFlags("rule test", stderr)
	source := fs.String("source", "", "source whose raw shape the files hold (default: the rules' logsource)")
	tenant := fs.String("tenant", "", "tenant for records that carry none")
	city := fs.String("geoip-city", "", "GeoIP2/GeoLite2 City database, for rules on geo.* fields")
	asn := fs.String("geoip-asn", "", "GeoLite2 ASN database")
	pos, err := parseInterspersed(fs, args[1:], stderr)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return fmt.Errorf("%w: want a rule and at least one input file (%s)", errUsage, ruleUsage)
	}
	rules, err := sigma.LoadFile(pos[0])
	if err != nil {
		return err // a *sigma.LoadError names the file, the line and the construct
	}
	dets, err := sigma.Compile(rules)
	if err != nil {
		return err
	}
	if err := ruleSource(rules, source); err != nil {
		return err
	}
	for _, r := range rules {
		if r.TypeNote != "" {
			fmt.Fprintf(stderr, "tokenwatch rule test: note: %s %s\n", r.DetectorID(), r.TypeNote)
		}
	}
	n, err := ingest.NewNormalizer(*source, *tenant)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	batch, err := readAll(n, pos[1:])
	if err != nil {
		return err
	}
	reportDead(stderr, batch.Dead)
	var corrs []*sigma.CorrDetector
	for _, d := range dets {
		if c, ok := d.(*sigma.CorrDetector); ok {
			corrs = append(corrs, c)
		}
	}
	if len(corrs) > 0 {
		ingest.SortEvents(batch.Events) // correlations judge in event-time order, as replay feeds them
	}
	// Only the enrichment: the rules are matched alone, without the catalogue.
	prog, err := program.Build(program.Config{GeoIP: geoip.Config{City: *city, ASN: *asn}}, program.Options{})
	if err != nil {
		return err
	}
	defer prog.Close()
	w := bufio.NewWriter(stdout)
	enc := json.NewEncoder(w)
	counts := map[string]int{}
	type stateKey struct{ det, tenant, integration string }
	states := map[stateKey]detect.State{}
	for i := range batch.Events {
		ev := &batch.Events[i]
		prog.Enrich(ev)
		var lines []RuleMatch
		for _, r := range rules {
			if m := r.Match(ev); m != nil {
				lines = append(lines, ruleLine(r, ev, m.Selections))
			}
		}
		for _, c := range corrs {
			k := stateKey{c.ID(), ev.Tenant, ev.Integration.ID}
			st := states[k]
			if st == nil {
				st = c.NewState()
				states[k] = st
			}
			for _, f := range c.Observe(ev, st) {
				lines = append(lines, corrLine(c, ev, f))
			}
		}
		if err := writeLines(enc, lines, counts); err != nil {
			return err
		}
	}
	if n := len(batch.Events); n > 0 {
		// The end of the input closes the windows an upper-bound condition
		// judges, as a replay's flush does.
		last := batch.Events[n-1].Time.Time
		var lines []RuleMatch
		for _, c := range corrs {
			for k, st := range states {
				if k.det != c.ID() {
					continue
				}
				at := &schemas.Event{Tenant: k.tenant, Integration: schemas.Integration{ID: k.integration}, Time: schemas.NewTime(last)}
				for _, f := range c.Tick(last, st) {
					lines = append(lines, corrLine(c, at, f))
				}
			}
		}
		slices.SortStableFunc(lines, func(a, b RuleMatch) int {
			return strings.Compare(a.Detector+a.IntegrationID, b.Detector+b.IntegrationID)
		})
		if err := writeLines(enc, lines, counts); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var parts []string
	for _, r := range rules {
		verb := "matched"
		if r.Correlation != nil {
			verb = "fired on"
		}
		parts = append(parts, fmt.Sprintf("%s %s %d", r.DetectorID(), verb, counts[r.DetectorID()]))
	}
	fmt.Fprintf(stderr, "tokenwatch rule test: %s of %d events\n", strings.Join(parts, ", "), len(batch.Events))
	return nil
}

// ruleSource checks --source against the rules' logsources, or sets it to
// their one source.
func ruleSource(rules []*sigma.Rule, source *string) error {
	var srcs []string
	for _, r := range rules {
		if !slices.Contains(srcs, r.Source) {
			srcs = append(srcs, r.Source)
		}
	}
	switch {
	case *source == "" && len(srcs) == 1:
		*source = srcs[0]
	case *source == "":
		return fmt.Errorf("%w: the rules read %s events: say which with --source", errUsage, strings.Join(srcs, ", "))
	case !slices.Contains(srcs, *source):
		r := rules[0]
		return fmt.Errorf("%w: rule %s reads %s events (logsource product %q, service %q), not %s", errUsage, r.DetectorID(), r.Source, r.Product, r.Service, *source)
	}
	return nil
}

// corrLine is a correlation's window: at is the event that completed it.
// A window an upper-bound condition judged when it closed (at is then the
// event or the end of input that closed it) is told by its last event.
func corrLine(c *sigma.CorrDetector, at *schemas.Event, f detect.Finding) RuleMatch {
	o := f.Observed.(sigma.CorrObserved)
	line := ruleLine(c.Rule(), at, o.Rules)
	if c.Rule().Correlation.Closed && len(f.EventIDs) > 0 {
		line.EventID, line.Time, line.Action = f.EventIDs[len(f.EventIDs)-1], schemas.NewTime(f.LastSeen), ""
	}
	line.Correlation = &CorrelationMatch{CorrObserved: o, EventIDs: f.EventIDs, FirstSeen: schemas.NewTime(f.FirstSeen), LastSeen: schemas.NewTime(f.LastSeen)}
	return line
}

func writeLines(enc *json.Encoder, lines []RuleMatch, counts map[string]int) error {
	for _, l := range lines {
		counts[l.Detector]++
		if err := enc.Encode(l); err != nil {
			return fmt.Errorf("write match: %w", err)
		}
	}
	return nil
}

func ruleLine(r *sigma.Rule, ev *schemas.Event, selections []string) RuleMatch {
	return RuleMatch{RuleID: r.ID, Detector: r.DetectorID(), Title: r.Title, Severity: r.Severity(),
		EventID: ev.EventID, Time: ev.Time, Tenant: ev.Tenant, IntegrationID: ev.Integration.ID, Action: ev.Action.Name,
		Selections: selections, PartOf: r.PartOf, Silent: r.Silent}
}

// parseInterspersed parses flags anywhere among the positional arguments
// (`rule test RULE.yml --source okta FILE`), which flag.Parse alone stops
// at; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args, stderr); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
