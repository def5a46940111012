package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/corpus"
	"github.com/tokenwatch/tokenwatch/internal/app/eval"
)

// runEval scores every detector against a labelled corpus directory, or with
// --generate writes the default corpus there.
func runEval(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", stderr)
	city := fs.String("geoip-city", "", "GeoIP2/GeoLite2 City database (without one the geo detectors cannot fire)")
	asn := fs.String("geoip-asn", "", "GeoLite2 ASN database")
	grace := fs.Duration("grace", eval.DefaultGrace, "how long after a labelled attack ends an alert still counts for it")
	cfgPath := fs.String("config", "", "config file: detector settings, GeoIP databases and the catalog, exactly as run loads them")
	generate := fs.Bool("generate", false, "write the labelled corpus into DIR instead of scoring it")
	def := corpus.DefaultOptions()
	seed := fs.Uint64("seed", def.Seed, "with --generate: random seed")
	ints := fs.Int("integrations", def.Integrations, "with --generate: integrations across all sources")
	days := fs.Int("days", def.Days, "with --generate: days of activity (≥ 40)")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want exactly one corpus directory (tokenwatch eval [--geoip-city F --geoip-asn F] DIR, or eval --generate DIR)", errUsage)
	}
	dir := fs.Arg(0)
	if *generate {
		opt := def
		opt.Seed, opt.Integrations, opt.Days = *seed, *ints, *days
		m, err := corpus.Write(dir, opt)
		if err != nil {
			return err
		}
		records := 0
		for _, f := range m.Files {
			records += f.Records
		}
		fmt.Fprintf(stdout, "wrote %s: %d records from %d integrations over %d days in %d source files, %d labelled attacks\n",
			dir, records, m.Integrations, m.Days, len(m.Files), len(m.Labels))
		return nil
	}
	if _, err := os.Stat(dir); err != nil {
		return err
	}
	cfg := config.Default()
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	if *city != "" {
		cfg.GeoIP.City = *city
	}
	if *asn != "" {
		cfg.GeoIP.ASN = *asn
	}
	if !cfg.GeoIP.Enabled() {
		fmt.Fprintln(stderr, "tokenwatch eval: no GeoIP databases given; the geo detectors cannot fire")
	}
	res, err := eval.Run(dir, eval.Options{Program: cfg.Program(), Grace: *grace})
	if err != nil {
		return err
	}
	return res.WriteTables(stdout)
}
