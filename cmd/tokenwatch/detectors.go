package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/detect/sigma"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
)

// runDetectors is `tokenwatch detectors [--config FILE] [--long|-v] [ID...]`:
// every Go detector and every Sigma rule (the shipped ones and the
// configured folders'), with its metadata, whether the program built from
// the config runs it, and whether in shadow mode. --long (or naming
// detectors) prints each in full, with its runbook, false positives and
// references.
func runDetectors(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("detectors", stderr)
	cfgPath := fs.String("config", "", "config file whose detect section decides what is enabled (default: the defaults)")
	var long bool
	fs.BoolVar(&long, "long", false, "each detector in full: also its runbook, false positives and references")
	fs.BoolVar(&long, "v", false, "short for --long")
	ids, err := parseInterspersed(fs, args, stderr)
	if err != nil {
		return err
	}
	cfg := config.Default()
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	pc := cfg.Program()
	// GeoIP and the catalog do not change what runs; leaving them out lets
	// the listing work on a machine without the databases.
	pc.GeoIP.City, pc.GeoIP.ASN, pc.Catalog.Path = "", "", ""
	prog, err := program.Build(pc, program.Options{})
	if err != nil {
		return err
	}
	defer prog.Close()
	type row struct {
		id, kind, enabled string
		meta              detect.Meta
		note              string // sigma.Rule.TypeNote
	}
	var rows []row
	for _, s := range detect.Specs() {
		rows = append(rows, row{s.ID, "go", "no", s.Meta, ""})
	}
	running := map[string]bool{}
	for _, st := range prog.Stages {
		for _, d := range st.Detectors {
			running[d.ID()] = true
			switch r := d.(type) {
			case *sigma.Detector:
				rows = append(rows, row{d.ID(), "sigma", "no", r.Meta(), r.Rule().TypeNote})
			case *sigma.CorrDetector:
				rows = append(rows, row{d.ID(), "sigma-correlation", "no", r.Meta(), ""})
			}
		}
	}
	// Every rule, shipped or configured, linked as the program links them:
	// the ones not running, and those running inside a correlation only.
	shipped, err := sigma.ShippedRules()
	if err != nil {
		return fmt.Errorf("shipped rules: %w", err)
	}
	var own []*sigma.Rule
	if len(pc.Rules.Paths) > 0 {
		if own, err = sigma.Load(pc.Rules.Paths); err != nil {
			return err
		}
	}
	linked := own
	if pc.Rules.Shipped {
		linked = append(slices.Clone(shipped), own...)
	}
	if err := sigma.Link(linked); err != nil {
		return err
	}
	for _, r := range append(shipped, own...) {
		switch {
		case running[r.DetectorID()]:
		case r.Silent:
			// Runs inside its correlations only: no alerts of its own.
			rows = append(rows, row{r.DetectorID(), "sigma-part", "in:" + strings.Join(r.PartOf, ","), r.Meta(), r.TypeNote})
		case r.Correlation != nil:
			rows = append(rows, row{r.DetectorID(), "sigma-correlation", "no", r.Meta(), ""})
		default:
			rows = append(rows, row{r.DetectorID(), "sigma", "no", r.Meta(), r.TypeNote})
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.id, b.id) })
	if len(ids) > 0 {
		// Named detectors: those, in full.
		long = true
		var picked []row
		for _, id := range ids {
			i := slices.IndexFunc(rows, func(r row) bool { return r.id == id })
			if i < 0 {
				return fmt.Errorf("%w: no detector or rule has the id %q (tokenwatch detectors lists them)", errUsage, id)
			}
			picked = append(picked, rows[i])
		}
		rows = picked
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !long {
		fmt.Fprintln(tw, "ID\tKIND\tSTATUS\tTECHNIQUES\tENABLED\tSHADOW")
	}
	for i, r := range rows {
		if running[r.id] {
			r.enabled = "yes"
		} else if in, ok := strings.CutPrefix(r.enabled, "in:"); ok && !slices.ContainsFunc(strings.Split(in, ","), func(id string) bool { return running[id] }) {
			r.enabled = "no" // none of its correlations runs either
		}
		tech := strings.Join(r.meta.Techniques, ",")
		if tech == "" {
			tech = "-"
		}
		// shadow: runs and records its alerts, never pages, never in an incident
		shadow := "no"
		if prog.Shadow(r.id) {
			shadow = "yes"
		}
		if !long {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.id, r.kind, r.meta.Status, tech, r.enabled, shadow)
			continue
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		writeLong(stdout, r.id, r.kind, tech, r.enabled, shadow, r.meta)
		if r.note != "" {
			fmt.Fprintf(stdout, "  note: %s\n", r.note)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !long {
		// A rule that may never fire is said here too, not only in its long form.
		for _, r := range rows {
			if r.note != "" {
				fmt.Fprintf(stdout, "note: %s %s\n", r.id, r.note)
			}
		}
	}
	return nil
}

// writeLong is one detector in full: what the table says, then what an
// analyst needs beside an alert of it (runbook, when it is benign, where
// to read more).
func writeLong(w io.Writer, id, kind, tech, enabled, shadow string, m detect.Meta) {
	fmt.Fprintf(w, "%s\n  kind: %s  status: %s  techniques: %s  enabled: %s  shadow: %s\n", id, kind, m.Status, tech, enabled, shadow)
	if m.Runbook != "" {
		fmt.Fprintf(w, "  runbook: %s\n", strings.Join(strings.Fields(m.Runbook), " "))
	}
	for _, l := range []struct {
		name  string
		items []string
	}{{"false positives", m.FalsePositives}, {"references", m.References}} {
		if len(l.items) == 0 {
			fmt.Fprintf(w, "  %s: -\n", l.name)
			continue
		}
		fmt.Fprintf(w, "  %s:\n", l.name)
		for _, it := range l.items {
			fmt.Fprintf(w, "    - %s\n", it)
		}
	}
}
