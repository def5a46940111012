package wiring

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/detect/program"
	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/platform/yamlstrict"
)

// WatchConfig has prog's rule watcher (program.WatchRules, every
// detect.rules.reload_interval) look at the config file at path too, loaded
// being the bytes the program was built from. When the file changes it is
// read again strictly, as at start (config.Parse). If only detect.rules and
// the detectors' shadow: flags differ from the running config, they are
// applied as a rule-file reload is (program.ApplyRules: state, checkpoints
// and alert ids stay); if anything else differs, the running config stays
// and one WARN names the sections that take a restart. A file that does not
// load is a failed reload (the rules reload metric and a WARN). Logs name
// sections and keys, never values.
func WatchConfig(prog *program.Program, path string, loaded []byte, log *slog.Logger) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(loaded, &doc); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	w := &configWatch{path: path, log: log, print: sha256.Sum256(loaded), running: docRoot(&doc), prog: prog}
	prog.WatchConfig(w.check)
	return nil
}

// WatchConfigFile is WatchConfig for the pipeline's program: the detect
// role then follows edits of path (loaded: the bytes p.Cfg was parsed from).
func (p *Pipeline) WatchConfigFile(path string, loaded []byte) error {
	return WatchConfig(p.Program, path, loaded, p.Log.With("component", "config"))
}

type configWatch struct {
	path    string
	log     *slog.Logger
	prog    *program.Program
	print   [sha256.Size]byte // the file as last read
	readErr string            // the last read error, reported once
	running *yaml.Node        // the running config's root mapping
}

// check is one look at the file (program.WatchConfig).
func (w *configWatch) check() (bool, error) {
	b, err := os.ReadFile(w.path)
	if err != nil {
		if err.Error() == w.readErr {
			return false, nil
		}
		w.readErr = err.Error()
		w.print = [sha256.Size]byte{} // the file back as it was is a change
		w.log.Warn("config reload failed: keeping the running config", "err", err)
		return true, fmt.Errorf("config: %w", err)
	}
	w.readErr = ""
	sum := sha256.Sum256(b)
	if sum == w.print {
		return false, nil
	}
	w.print = sum
	cfg, err := config.Parse(b, w.path)
	if err != nil {
		w.log.Warn("config reload failed: keeping the running config", "err", redact(err))
		return true, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil { // Parse read it: cannot fail
		return true, err
	}
	next := docRoot(&doc)
	restart, reload := diffConfig(w.running, next)
	switch {
	case len(restart) > 0:
		w.log.Warn("config changed in sections that take a restart: the running config stays, this edit's detect.rules and shadow changes included, until the detect role restarts",
			"sections", strings.Join(restart, ", "))
		return true, nil
	case !reload:
		w.running = next // comments, order, layout: nothing runs differently
		return true, nil
	}
	if err := w.prog.ApplyRules(cfg.Detect.Rules, cfg.Detect.Detectors); err != nil {
		w.log.Warn("config reload failed: keeping the running config", "err", redact(err))
		return true, err
	}
	w.running = next
	w.log.Info("config reloaded: detect.rules and the shadow flags applied", "rules", len(w.prog.RuleIDs()))
	return true, nil
}

// quoted is a value an error message quotes ("…", `…`).
var quoted = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`")

// redact keeps an error's key paths and reasons and drops the values it
// quotes: a config holds secrets.
func redact(err error) string { return quoted.ReplaceAllString(err.Error(), `"…"`) }

func docRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0]
	}
	return doc
}

// diffConfig compares two config files' root mappings: restart lists the
// sections that differ and need a restart (top-level keys, detect's keys
// by their path); reload says detect.rules or a detector's shadow: differ.
func diffConfig(old, next *yaml.Node) (restart []string, reload bool) {
	for _, k := range keys(old, next) {
		a, b := yamlstrict.Get(old, k), yamlstrict.Get(next, k)
		if k != "detect" {
			if !sameYAML(a, b) {
				restart = append(restart, k)
			}
			continue
		}
		for _, sk := range keys(a, b) {
			sa, sb := yamlstrict.Get(a, sk), yamlstrict.Get(b, sk)
			switch {
			case sameYAML(sa, sb):
			case sk == "rules":
				reload = true
			case sk == "detectors" && sameYAML(withoutShadow(sa), withoutShadow(sb)):
				reload = true
			default:
				restart = append(restart, "detect."+sk)
			}
		}
	}
	return restart, reload
}

// keys lists the keys of mappings a and b, a's first, each once.
func keys(a, b *yaml.Node) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range []*yaml.Node{a, b} {
		if n == nil || n.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i].Value; !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// withoutShadow is detect.detectors without each detector's shadow: key
// (and without the entries that leave empty).
func withoutShadow(n *yaml.Node) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return n
	}
	c := *n
	c.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		v := yamlstrict.Without(n.Content[i+1], "shadow")
		if !emptyYAML(v) {
			c.Content = append(c.Content, n.Content[i], v)
		}
	}
	return &c
}

func emptyYAML(n *yaml.Node) bool {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null") ||
		((n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && len(n.Content) == 0)
}

// sameYAML: a and b hold the same data, whatever their layout, comments,
// quoting or key order; an absent, null or empty node are the same.
func sameYAML(a, b *yaml.Node) bool {
	for a != nil && a.Kind == yaml.AliasNode {
		a = a.Alias
	}
	for b != nil && b.Kind == yaml.AliasNode {
		b = b.Alias
	}
	if emptyYAML(a) || emptyYAML(b) {
		return emptyYAML(a) && emptyYAML(b)
	}
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case yaml.ScalarNode:
		return a.ShortTag() == b.ShortTag() && a.Value == b.Value
	case yaml.SequenceNode:
		if len(a.Content) != len(b.Content) {
			return false
		}
		for i := range a.Content {
			if !sameYAML(a.Content[i], b.Content[i]) {
				return false
			}
		}
		return true
	case yaml.MappingNode:
		for _, k := range keys(a, b) {
			if !sameYAML(yamlstrict.Get(a, k), yamlstrict.Get(b, k)) {
				return false
			}
		}
		return true
	}
	return false
}
