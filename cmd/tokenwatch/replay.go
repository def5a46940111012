package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/tokenwatch/tokenwatch/detect/correlate"
	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/enrich/inventory"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/schemas"
)

func runReplay(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("replay", stderr)
	source := fs.String("source", "", "source whose raw shape the files hold (e.g. google_workspace)")
	tenant := fs.String("tenant", "", "tenant for records that carry none")
	city := fs.String("geoip-city", "", "GeoIP2/GeoLite2 City database (overrides config)")
	asn := fs.String("geoip-asn", "", "GeoLite2 ASN database (overrides config)")
	incidents := fs.Bool("incidents", false, "print incidents (the last version of each) instead of alerts")
	cfgPath := fs.String("config", "", "config file: detector settings, GeoIP databases and the catalog, exactly as run loads them")
	actions := fs.String("actions", "", "also write the actions the config's respond policy would have taken, as JSON lines, to this file (nothing is sent)")
	decisions := fs.String("decisions", "", "analysts' decisions to honour, as JSON lines (`tokenwatch incident decisions` writes them): suppressions and resolutions as the live correlator honours them")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *source == "" {
		return fmt.Errorf("%w: --source is required (one of %v)", errUsage, ingest.Names())
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: no input files", errUsage)
	}
	cfg := config.Default()
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	if *actions != "" && cfg.Respond == nil {
		return fmt.Errorf("%w: --actions rehearses the respond policy: --config must have a respond: section", errUsage)
	}
	if *city != "" {
		cfg.GeoIP.City = *city
	}
	if *asn != "" {
		cfg.GeoIP.ASN = *asn
	}
	n, err := ingest.NewNormalizer(*source, *tenant)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	batch, err := readAll(n, fs.Args())
	if err != nil {
		return err
	}
	reportDead(stderr, batch.Dead)
	// The same program run builds from the same config: detectors, GeoIP and
	// the catalog.
	prog, err := program.Build(cfg.Program(), program.Options{})
	if err != nil {
		return err
	}
	defer prog.Close()
	if *decisions != "" {
		ds, err := readDecisions(*decisions)
		if err != nil {
			return err
		}
		prog.SetDecisions(correlate.NewBook(ds))
	}
	r := prog.NewReplay()
	for i := range batch.Events {
		r.Observe(&batch.Events[i])
	}
	alerts := r.Finish()
	if *actions != "" {
		if err := writeActionsFile(*actions, &cfg, r.Incidents()); err != nil {
			return err
		}
	}
	w := bufio.NewWriter(stdout)
	enc := json.NewEncoder(w)
	if *incidents {
		latest := program.Latest(r.Incidents())
		for i := range latest {
			if err := enc.Encode(&latest[i]); err != nil {
				return err
			}
		}
		return w.Flush()
	}
	for i := range alerts {
		if err := enc.Encode(&alerts[i]); err != nil {
			return err
		}
	}
	return w.Flush()
}

// readDecisions reads JSON lines of schemas.Decision (the records of
// tokenwatch.incident_decisions); a line that is not one is an error naming it.
func readDecisions(path string) ([]schemas.Decision, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--decisions: %w", err)
	}
	defer f.Close()
	var out []schemas.Decision
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var d schemas.Decision
		if err := dec.Decode(&d); err != nil {
			return nil, fmt.Errorf("--decisions %s:%d: %w", path, line, err)
		}
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("--decisions %s:%d: %w", path, line, err)
		}
		out = append(out, d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--decisions %s: %w", path, err)
	}
	return out, nil
}

// readAll reads and normalizes files; events come out merged in time order.
func readAll(n ingest.Normalizer, paths []string) (ingest.Batch, error) {
	var all ingest.Batch
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return all, err
		}
		recs, err := ingest.ReadFile(p)
		if err != nil {
			return all, err
		}
		b := ingest.NormalizeRecords(n, p, recs)
		all.Events = append(all.Events, b.Events...)
		all.Dead = append(all.Dead, b.Dead...)
	}
	ingest.SortEvents(all.Events)
	if len(all.Events) == 0 && len(all.Dead) > 0 {
		return all, errors.New("no record could be normalized (see the dead letters above)")
	}
	return all, nil
}

// reportDead writes dead letters to stderr as JSON lines: offline commands keep
// stdout for their output and still lose nothing.
func reportDead(stderr io.Writer, dead []schemas.DeadLetter) {
	if len(dead) == 0 {
		return
	}
	fmt.Fprintf(stderr, "tokenwatch: %d record(s) dead-lettered:\n", len(dead))
	enc := json.NewEncoder(stderr)
	for i := range dead {
		_ = enc.Encode(&dead[i])
	}
}

// writeActionsFile plans every incident version of the replay with the
// config's respond policy and catalog, into path.
func writeActionsFile(path string, cfg *config.Config, incidents []schemas.Incident) error {
	var cat *inventory.Catalog
	if cfg.Inventory.Path != "" {
		var err error
		if cat, err = inventory.Load(cfg.Inventory.Path); err != nil {
			return err
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--actions: %w", err)
	}
	w := bufio.NewWriter(f)
	if err := writeActions(w, cfg.Respond, cat, incidents); err != nil {
		f.Close()
		return fmt.Errorf("--actions %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("--actions %s: %w", path, err)
	}
	return f.Close()
}
