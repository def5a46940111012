// Command gen writes the bundled scenario:
//
//	go run ./internal/app/scenario/gen -out testdata/scenarios/google_oauth_theft
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tokenwatch/tokenwatch/internal/app/scenario"
)

func main() {
	out := flag.String("out", "testdata/scenarios/google_oauth_theft", "output directory")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	s, err := scenario.Generate(scenario.DefaultOptions())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	z, err := scenario.Gzip(s.Pages)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, scenario.PagesFile), z, 0o644); err != nil {
		return err
	}
	var exp []byte
	for _, e := range s.Expected {
		b, _ := json.Marshal(e)
		exp = append(append(exp, b...), '\n')
	}
	if err := os.WriteFile(filepath.Join(dir, scenario.ExpectedFile), exp, 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %d records, %d expected alerts\n", dir, s.Records, len(s.Expected))
	return nil
}
