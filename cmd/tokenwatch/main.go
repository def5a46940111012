// Command tokenwatch watches what SaaS integrations (OAuth apps, API keys,
// personal access tokens, service accounts) do with their access, and raises
// explained alerts when that behaviour leaves its baseline.
//
// Subcommands: demo, replay, normalize, migrate, run, respond, detectors, rule, version. Each prints a
// one-line error and exits non-zero on unknown flags, missing files or bad
// config.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	_ "github.com/tokenwatch/tokenwatch/deliver/all"
	_ "github.com/tokenwatch/tokenwatch/deliver/respond/all"
	_ "github.com/tokenwatch/tokenwatch/detect/all"
	_ "github.com/tokenwatch/tokenwatch/ingest/all"
)

// version is set by the linker (-X main.version=...).
var version = "dev"

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "replay the bundled attack scenario through the whole pipeline on an in-process broker and print the alerts", runDemo},
		{"replay", "offline normalize → enrich → detect → correlate of raw files; alerts (or --incidents) as JSON lines on stdout", runReplay},
		{"normalize", "normalize raw vendor records; events as JSON lines on stdout", runNormalize},
		{"migrate", "create or upgrade the ClickHouse schema", runMigrate},
		{"run", "run the long-running roles (ingest, detect, deliver) from a config file", runRun},
		{"redrive", "send the alerts a sink dead-lettered to it again", runRedrive},
		{"topic", "topic --config FILE [--partition N] [--last N] [--meta] [--follow] TOPIC: print a topic's records as JSON lines (events decoded from MessagePack or JSON)", runTopic},
		{"incident", "incident list | timeline ID | ack | resolve | suppress ID: review incidents, their alerts and actions, and record decisions the correlator honours", runIncident},
		{"respond", "respond revoke --source S --integration ID [--principal P] [--dry-run] | list | approve ID | deny ID: revoke through the vendor's admin API, print the requests, answer approval requests", runRespond},
		{"eval", "score every detector against a labelled multi-source corpus (eval --generate DIR writes one)", runEval},
		{"config", "config check FILE: validate a config file as every role does at start", runConfig},
		{"inventory", "report catalogued vs discovered integrations: unowned, expired, review overdue, stale; --scopes: held vs used scopes", runInventory},
		{"hosting", "hosting refresh --out FILE: download cloud ranges, the Tor exit list and ASN lists into geo.hosting_or_anonymizer's ranges file", runHosting},
		{"detectors", "list every detector and Sigma rule: kind, status, ATT&CK techniques, enabled, shadow (--long or IDs: also runbook, false positives, references)", runDetectors},
		{"rule", "rule test RULE.yml [--source S] FILE...: replay raw records through one Sigma rule; each match as a JSON line", runRule},
		{"version", "print the version", runVersion},
	}
}

// errUsage marks errors whose message is the whole story (exit 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					return 0
				}
				fmt.Fprintf(stderr, "tokenwatch %s: %s\n", c.name, oneLine(err))
				if errors.Is(err, errUsage) {
					return 2
				}
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "tokenwatch: unknown command %q (try: tokenwatch help)\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tokenwatch <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
}

// oneLine folds a (possibly joined) error onto one line.
func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

// newFlags builds a flag set that reports errors through the return value
// rather than printing usage.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args; -h prints the flags to stderr.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stderr)
		fmt.Fprintf(stderr, "usage of tokenwatch %s:\n", fs.Name())
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stderr)
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "tokenwatch", version)
	return nil
}
