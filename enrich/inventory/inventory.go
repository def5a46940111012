package inventory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwatch/tokenwatch/enrich"
	"github.com/tokenwatch/tokenwatch/schemas"
)

// Options tune an Enricher. The zero value is usable.
type Options struct {
	// Logger receives reload lifecycle messages; nil discards them.
	Logger *slog.Logger
	// OnReload, when set, is called after each reload attempt of a changed
	// file: err nil means the new catalog is live, non-nil means the file was
	// rejected and the previous catalog stays in force.
	OnReload func(cat *Catalog, err error)
}

// Enricher attaches catalog entries to events. The catalog is swapped
// atomically on reload, so Enrich never blocks and never sees a half-loaded
// catalog. Safe for concurrent use.
type Enricher struct {
	path string
	opt  Options
	cat  atomic.Pointer[Catalog]

	mu   sync.Mutex  // serializes Reload
	last fingerprint // of the file last attempted, good or bad
}

var _ enrich.Enricher = (*Enricher)(nil)

// New returns an Enricher over a fixed catalog (tests, or a catalog built in
// code). Its Reload and Watch do nothing.
func New(cat *Catalog, opt Options) *Enricher {
	e := &Enricher{opt: opt}
	if cat == nil {
		cat = &Catalog{}
	}
	e.cat.Store(cat)
	return e
}

// Open loads the catalog at path (an error if it is missing or invalid: a
// service should not start with a broken catalog) and returns an Enricher
// whose Reload and Watch follow the file.
func Open(path string, opt Options) (*Enricher, error) {
	e := &Enricher{path: path, opt: opt}
	fp, b, err := read(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	cat, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", path, err)
	}
	e.cat.Store(cat)
	e.last = fp
	return e, nil
}

// Catalog returns the catalog in force.
func (e *Enricher) Catalog() *Catalog { return e.cat.Load() }

// Enrich maps (ev.Source, ev.Integration.SourceAppID) to its catalog entry:
// ev.Integration.ID becomes the catalog id, Name is filled when the connector
// left it empty, and ev.Inventory says what the catalog knows. An event of an
// integration not in the catalog gets Inventory{Catalogued: false}, which is
// itself a finding (inventory.unowned). The Inventory value of a catalogued
// integration is shared between events: detectors treat events as read-only.
func (e *Enricher) Enrich(ev *schemas.Event) {
	app := ev.Integration.SourceAppID
	if app == "" {
		app = ev.Integration.ID
	}
	entry, ok := e.cat.Load().Lookup(ev.Source, app)
	if !ok {
		ev.Inventory = &schemas.Inventory{Catalogued: false}
		return
	}
	if ev.Integration.SourceAppID == "" {
		ev.Integration.SourceAppID = app
	}
	ev.Integration.ID = entry.ID
	if ev.Integration.Name == "" {
		ev.Integration.Name = entry.Name
	}
	ev.Inventory = entry.view
}

// fingerprint identifies one version of the catalog file. mtime and size
// catch nearly every edit cheaply; the hash catches an edit that kept both
// (coarse mtime, same length) and ignores a touch that changed nothing.
type fingerprint struct {
	mod  time.Time
	size int64
	hash [sha256.Size]byte
	err  string // a read failure, so the same failure is reported once
}

func read(path string) (fingerprint, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return fingerprint{err: err.Error()}, nil, err
	}
	fp := fingerprint{size: int64(len(b)), hash: sha256.Sum256(b)}
	if fi, err := os.Stat(path); err == nil {
		fp.mod = fi.ModTime()
	}
	return fp, b, nil
}

// Reload re-reads the file when it changed since the last attempt and, if it
// is valid, swaps it in. An invalid or unreadable file leaves the catalog in
// force and is returned (and passed to OnReload) once per change, not on every
// poll. changed reports whether a new catalog went live.
func (e *Enricher) Reload() (changed bool, err error) {
	if e.path == "" {
		return false, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if fi, err := os.Stat(e.path); err == nil && e.last.err == "" &&
		fi.ModTime().Equal(e.last.mod) && fi.Size() == e.last.size {
		return false, nil
	}
	fp, b, err := read(e.path)
	if err != nil {
		if fp.err == e.last.err {
			return false, nil
		}
		e.last = fp
		return false, e.report(nil, fmt.Errorf("inventory: %w", err))
	}
	sameBytes := e.last.err == "" && bytes.Equal(fp.hash[:], e.last.hash[:])
	e.last = fp
	if sameBytes {
		return false, nil
	}
	cat, err := Parse(b)
	if err != nil {
		return false, e.report(nil, fmt.Errorf("inventory %s: %w", e.path, err))
	}
	e.cat.Store(cat)
	e.report(cat, nil)
	return true, nil
}

func (e *Enricher) report(cat *Catalog, err error) error {
	if l := e.opt.Logger; l != nil {
		if err != nil {
			l.Error("inventory reload rejected; keeping the previous catalog", "path", e.path, "err", err)
		} else {
			l.Info("inventory reloaded", "path", e.path, "integrations", len(cat.Entries))
		}
	}
	if e.opt.OnReload != nil {
		e.opt.OnReload(cat, err)
	}
	return err
}

// Watch polls the file every interval until ctx is done, reloading it when it
// changes. Errors go to OnReload and the logger; Watch itself never fails, so
// a catalog being rewritten (or briefly missing during an atomic rename)
// cannot stop the pipeline. It returns when ctx is done.
func (e *Enricher) Watch(ctx context.Context, interval time.Duration) {
	if e.path == "" || interval <= 0 {
		return
	}
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			_, _ = e.Reload() // already reported
		}
	}
}
