package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/detect/sigma"
	"github.com/tokenwatch/tokenwatch/enrich/geoip"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/schemas"
)

const ruleUsage = "usage: tokenwatch rule test RULE.yml [--source S] [--tenant T] [--geoip-city F --geoip-asn F] FILE..."

// RuleMatch is one line of `tokenwatch rule test`: an event the rule
// matched and which of its selections did.
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
}

// runRule is `tokenwatch rule test`: the detection engineer's loop. It
// reads raw vendor records as replay does (the same file formats and
// normalizer), enriches them when GeoIP databases are given, and prints
// every event the one rule matches as a JSON line. No match is not an
// error (exit 0); a rule that cannot load is, with its file, line and
// construct.
func runRule(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "test" {
		return fmt.Errorf("%w: %s", errUsage, ruleUsage)
	}
	fs := newFlags("rule test", stderr)
	source := fs.String("source", "", "source whose raw shape the files hold (default: the rule's logsource)")
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
	r, err := sigma.LoadFile(pos[0])
	if err != nil {
		return err // a *sigma.LoadError names the file, the line and the construct
	}
	if *source == "" {
		*source = r.Source
	}
	if *source != r.Source {
		return fmt.Errorf("%w: rule %s reads %s events (logsource product %q, service %q), not %s", errUsage, r.DetectorID(), r.Source, r.Product, r.Service, *source)
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
	// Only the enrichment: the rule is matched alone, without the catalogue.
	prog, err := program.Build(program.Config{GeoIP: geoip.Config{City: *city, ASN: *asn}}, program.Options{})
	if err != nil {
		return err
	}
	defer prog.Close()
	w := bufio.NewWriter(stdout)
	enc := json.NewEncoder(w)
	matched := 0
	for i := range batch.Events {
		ev := &batch.Events[i]
		prog.Enrich(ev)
		m := r.Match(ev)
		if m == nil {
			continue
		}
		matched++
		if err := enc.Encode(RuleMatch{RuleID: r.ID, Detector: r.DetectorID(), Title: r.Title, Severity: r.Severity(),
			EventID: ev.EventID, Time: ev.Time, Tenant: ev.Tenant, IntegrationID: ev.Integration.ID, Action: ev.Action.Name,
			Selections: m.Selections}); err != nil {
			return fmt.Errorf("write match: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "tokenwatch rule test: %s matched %d of %d events\n", r.DetectorID(), matched, len(batch.Events))
	return nil
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
