package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/tokenwatch/tokenwatch/ingest"
)

func runNormalize(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("normalize", stderr)
	source := fs.String("source", "", "source whose raw shape the files hold (e.g. google_workspace)")
	tenant := fs.String("tenant", "", "tenant for records that carry none")
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *source == "" {
		return fmt.Errorf("%w: --source is required (one of %v)", errUsage, ingest.Names())
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: no input files", errUsage)
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
	w := bufio.NewWriter(stdout)
	enc := json.NewEncoder(w)
	for i := range batch.Events {
		if err := enc.Encode(&batch.Events[i]); err != nil {
			return err
		}
	}
	return w.Flush()
}
