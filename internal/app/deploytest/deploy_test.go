package deploytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"

	"github.com/tokenwatch/tokenwatch/internal/app/config"
	"github.com/tokenwatch/tokenwatch/internal/app/wiring"
)

const root = "../../.."

var deployDir = filepath.Join(root, "deploy")

// allowedImages are the image repositories deploy/ may run; a tag is required.
var allowedImages = []string{"apache/kafka", "clickhouse/clickhouse-server", "prom/prometheus", "grafana/grafana", "tokenwatch"}

// roles are what `tokenwatch run --role` accepts besides "all".
var roles = []string{wiring.RoleIngest, wiring.RoleDetect, wiring.RoleDeliver}

// yamlDocs decodes every document of a (multi-document) YAML file.
func yamlDocs(t *testing.T, file string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// get walks nested maps: get(m, "spec", "template") is m["spec"]["template"].
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func list(v any) []any { l, _ := v.([]any); return l }

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func strs(v any) []string {
	var out []string
	for _, x := range list(v) {
		out = append(out, str(x))
	}
	return out
}

func TestEveryYAMLUnderDeployParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir(deployDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(p); ext == ".yml" || ext == ".yaml" {
			if len(yamlDocs(t, p)) == 0 {
				t.Errorf("%s: no YAML document", p)
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("found %d YAML files under deploy/, want the compose, Kubernetes, Prometheus and Grafana files", n)
	}
}

// exposedMetrics registers the binary's instruments on a fresh registry,
// touches every vector with dummy labels so it is gathered, and returns the
// metric family names with their types.
func exposedMetrics(t *testing.T) map[string]dto.MetricType {
	t.Helper()
	reg := &recording{Registry: prometheus.NewRegistry()}
	wiring.NewMetrics(reg)
	for i, c := range reg.collectors {
		get := reflect.ValueOf(c).MethodByName("GetMetricWithLabelValues")
		if !get.IsValid() {
			continue // a plain Counter, Gauge or Histogram: always gathered
		}
		// The label count is not exported; the vector rejects a wrong one.
		ok := false
		for n := 0; n <= 8 && !ok; n++ {
			ok = get.CallSlice([]reflect.Value{reflect.ValueOf(slices.Repeat([]string{"x"}, n))})[1].IsNil()
		}
		if !ok {
			t.Fatalf("collector %d (%T): no label count up to 8 accepted", i, c)
		}
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dto.MetricType{}
	for _, f := range fams {
		out[f.GetName()] = f.GetType()
	}
	if len(out) != len(reg.collectors) {
		t.Fatalf("gathered %d families for %d registered collectors", len(out), len(reg.collectors))
	}
	return out
}

// recording is a registry that remembers what each role registered on it.
type recording struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recording) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
	r.Registry.MustRegister(cs...)
}

var metricName = regexp.MustCompile(`tokenwatch_[a-z_]+`)

// family maps a name used in PromQL to the family that exposes it: a
// histogram's _bucket/_sum/_count series belong to the histogram.
func family(name string, exposed map[string]dto.MetricType) (string, bool) {
	if _, ok := exposed[name]; ok {
		return name, true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		base := strings.TrimSuffix(name, suf)
		if typ, ok := exposed[base]; ok && base != name && (typ == dto.MetricType_HISTOGRAM || typ == dto.MetricType_SUMMARY) {
			return base, true
		}
	}
	return "", false
}

// ruleExprs returns alert name → expr of deploy/prometheus/alerts.yml and
// checks each rule is complete.
func ruleExprs(t *testing.T) map[string]string {
	t.Helper()
	docs := yamlDocs(t, filepath.Join(deployDir, "prometheus", "alerts.yml"))
	out := map[string]string{}
	for _, d := range docs {
		for _, g := range list(d["groups"]) {
			for _, r := range list(get(g, "rules")) {
				name, expr := str(get(r, "alert")), str(get(r, "expr"))
				if name == "" || strings.TrimSpace(expr) == "" {
					t.Errorf("alerts.yml: rule %v needs alert and expr", r)
					continue
				}
				if _, dup := out[name]; dup {
					t.Errorf("alerts.yml: duplicate alert %s", name)
				}
				if str(get(r, "labels", "severity")) == "" || str(get(r, "annotations", "summary")) == "" {
					t.Errorf("alerts.yml: %s needs labels.severity and annotations.summary", name)
				}
				out[name] = expr
			}
		}
	}
	return out
}

// dashboardExprs returns every PromQL string of the Grafana dashboard
// (targets' expr, template variables' query/definition) and its datasource uids.
func dashboardExprs(t *testing.T) (exprs []string, uids map[string]bool, panels int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "grafana", "dashboards", "tokenwatch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("tokenwatch.json: %v", err)
	}
	uids = map[string]bool{}
	ids := map[float64]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				switch k {
				case "expr", "query", "definition":
					if s, ok := x.(string); ok {
						exprs = append(exprs, s)
					}
				case "datasource":
					if u := str(get(x, "uid")); u != "" && !strings.HasPrefix(u, "$") && !strings.HasPrefix(u, "-- ") {
						uids[u] = true
					}
				}
				walk(x)
			}
			if _, ok := v["targets"]; ok {
				panels++
				id, _ := v["id"].(float64)
				if ids[id] {
					t.Errorf("tokenwatch.json: panel id %v used twice", id)
				}
				ids[id] = true
				for _, tg := range list(v["targets"]) {
					if strings.TrimSpace(str(get(tg, "expr"))) == "" {
						t.Errorf("tokenwatch.json: panel %q has a target without expr", str(v["title"]))
					}
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(d)
	return exprs, uids, panels
}

// TestAlertRulesAreValid is `promtool check rules` with Prometheus's own rule
// parser: PromQL syntax, durations, label and annotation templates.
func TestAlertRulesAreValid(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	groups, errs := rulefmt.Parse(b, false, model.UTF8Validation, parser.NewParser(parser.Options{}), nil)
	for _, err := range errs {
		t.Errorf("alerts.yml: %v", err)
	}
	if len(errs) == 0 && (groups == nil || len(groups.Groups) == 0 || len(groups.Groups[0].Rules) == 0) {
		t.Fatal("alerts.yml: no rules")
	}
}

func TestRulesAndDashboardUseOnlyMetricsTheBinaryExposes(t *testing.T) {
	exposed := exposedMetrics(t)
	rules := ruleExprs(t)
	exprs, _, panels := dashboardExprs(t)
	if panels == 0 {
		t.Fatal("tokenwatch.json: no panels with targets")
	}
	check := func(where, expr string, used map[string]bool) {
		for _, n := range metricName.FindAllString(expr, -1) {
			fam, ok := family(n, exposed)
			if !ok {
				t.Errorf("%s uses %s, which the binary does not expose (internal/app/wiring/metrics.go)", where, n)
				continue
			}
			used[fam] = true
		}
	}
	inRules, inDashboard := map[string]bool{}, map[string]bool{}
	for name, expr := range rules {
		check("alerts.yml "+name, expr, inRules)
	}
	for _, e := range exprs {
		check("tokenwatch.json", e, inDashboard)
	}
	// The failure modes the rules must cover.
	for _, m := range []string{"tokenwatch_kafka_consumer_lag", "tokenwatch_poll_cursor_age_seconds", "tokenwatch_dead_letters_total",
		"tokenwatch_sink_dead_letters_total", "tokenwatch_sink_failures_total", "tokenwatch_sink_circuit_open",
		"tokenwatch_clickhouse_events_write_failures_total"} {
		if !inRules[m] {
			t.Errorf("alerts.yml: no rule on %s", m)
		}
	}
	// Every instrument is on the dashboard: a new metric needs a panel.
	for m := range exposed {
		if !inDashboard[m] {
			t.Errorf("tokenwatch.json: no panel shows %s", m)
		}
	}
}

func TestDashboardDatasourcesAreProvisioned(t *testing.T) {
	_, uids, _ := dashboardExprs(t)
	provisioned := map[string]bool{}
	for _, d := range yamlDocs(t, filepath.Join(deployDir, "grafana", "provisioning", "datasources", "prometheus.yml")) {
		for _, ds := range list(d["datasources"]) {
			provisioned[str(get(ds, "uid"))] = true
		}
	}
	if len(uids) == 0 {
		t.Fatal("tokenwatch.json names no datasource uid")
	}
	for u := range uids {
		if !provisioned[u] {
			t.Errorf("tokenwatch.json uses datasource uid %q, not provisioned in grafana/provisioning/datasources", u)
		}
	}
	var paths []string
	for _, d := range yamlDocs(t, filepath.Join(deployDir, "grafana", "provisioning", "dashboards", "tokenwatch.yml")) {
		for _, p := range list(d["providers"]) {
			paths = append(paths, str(get(p, "options", "path")))
		}
	}
	mounts := composeMounts(t, composeServices(t)["grafana"])
	for _, p := range paths {
		if src, ok := mounts[p]; !ok || src != "../grafana/dashboards" {
			t.Errorf("dashboard provider path %s: grafana mounts %v, want ../grafana/dashboards there", p, mounts)
		}
	}
}

// container is one place an image runs: a compose service or a Kubernetes
// (init) container, with what it runs and what it mounts.
type container struct {
	where  string
	image  string
	argv   []string          // command + args (compose command; k8s command + args)
	mounts map[string]string // container path → source
	env    map[string]bool   // names set explicitly
	envRef bool              // has envFrom a Secret (names not visible here)
}

func composeServices(t *testing.T) map[string]any {
	t.Helper()
	docs := yamlDocs(t, filepath.Join(deployDir, "compose", "docker-compose.yml"))
	if len(docs) != 1 {
		t.Fatalf("docker-compose.yml: %d documents", len(docs))
	}
	svcs, _ := docs[0]["services"].(map[string]any)
	if len(svcs) == 0 {
		t.Fatal("docker-compose.yml: no services")
	}
	return svcs
}

// composeMounts maps container path → host path of a service's bind mounts.
func composeMounts(t *testing.T, svc any) map[string]string {
	out := map[string]string{}
	for _, v := range strs(get(svc, "volumes")) {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			out[parts[1]] = parts[0]
		}
	}
	return out
}

func containers(t *testing.T) []container {
	t.Helper()
	var out []container
	for name, svc := range composeServices(t) {
		c := container{where: "compose service " + name, image: str(get(svc, "image")), argv: strs(get(svc, "command")),
			mounts: composeMounts(t, svc), env: map[string]bool{}}
		if s, ok := get(svc, "command").(string); ok {
			c.argv = strings.Fields(s)
		}
		for k := range asMap(get(svc, "environment")) {
			c.env[k] = true
		}
		out = append(out, c)
	}
	files, err := filepath.Glob(filepath.Join(deployDir, "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Kubernetes manifests: %v", err)
	}
	for _, f := range files {
		for _, d := range yamlDocs(t, f) {
			pod := get(d, "spec", "template", "spec")
			if pod == nil {
				continue
			}
			for _, kind := range []string{"initContainers", "containers"} {
				for _, kc := range list(get(pod, kind)) {
					c := container{where: fmt.Sprintf("%s %s/%s %s", filepath.Base(f), d["kind"], str(get(d, "metadata", "name")), str(get(kc, "name"))),
						image: str(get(kc, "image")), argv: append(strs(get(kc, "command")), strs(get(kc, "args"))...),
						mounts: map[string]string{}, env: map[string]bool{}}
					for _, m := range list(get(kc, "volumeMounts")) {
						c.mounts[str(get(m, "mountPath"))] = str(get(m, "name"))
					}
					for _, e := range list(get(kc, "env")) {
						c.env[str(get(e, "name"))] = true
					}
					for _, e := range list(get(kc, "envFrom")) {
						if get(e, "secretRef") != nil {
							c.envRef = true
						}
					}
					out = append(out, c)
				}
			}
		}
	}
	return out
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// imageRepo splits "registry/repo:tag" into repo (registry kept) and tag.
func imageRepo(image string) (repo, tag string) {
	repo = image
	if i := strings.Index(repo, "@"); i >= 0 {
		return repo[:i], repo[i+1:]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		return repo[:i], repo[i+1:]
	}
	return repo, ""
}

func TestImagesAreAllowedAndPinned(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range containers(t) {
		repo, tag := imageRepo(c.image)
		if !slices.Contains(allowedImages, repo) {
			t.Errorf("%s: image %q is not one of %v", c.where, c.image, allowedImages)
		}
		if tag == "" || tag == "latest" {
			t.Errorf("%s: image %q needs a pinned tag", c.where, c.image)
		}
		seen[repo] = true
	}
	for _, img := range allowedImages {
		if !seen[img] {
			t.Errorf("no compose service or Kubernetes container runs %s", img)
		}
	}
}

// subcommands reads the binary's subcommands and each one's flags from
// cmd/tokenwatch: commands() lists {"name", …}; <name>.go declares fs.X("flag", …).
func subcommands(t *testing.T) map[string][]string {
	t.Helper()
	dir := filepath.Join(root, "cmd", "tokenwatch")
	src, err := os.ReadFile(filepath.Join(dir, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	body := string(src)
	i := strings.Index(body, "func commands()")
	if i < 0 {
		t.Fatal("cmd/tokenwatch/main.go: no func commands()")
	}
	body = body[i:]
	body = body[:strings.Index(body, "\n}\n")]
	out := map[string][]string{}
	flagDecl := regexp.MustCompile(`fs\.[A-Z][A-Za-z]*\("([a-z][a-z0-9-]*)"`)
	for _, m := range regexp.MustCompile(`\{"([a-z]+)",`).FindAllStringSubmatch(body, -1) {
		flags := []string{"h", "help"}
		if b, err := os.ReadFile(filepath.Join(dir, m[1]+".go")); err == nil {
			for _, f := range flagDecl.FindAllStringSubmatch(string(b), -1) {
				flags = append(flags, f[1])
			}
		}
		out[m[1]] = flags
	}
	if len(out) < 3 || out["run"] == nil || out["migrate"] == nil {
		t.Fatalf("subcommands read from cmd/tokenwatch: %v", out)
	}
	return out
}

// parseArgv splits a tokenwatch argv (after the subcommand) into flags; a
// flag's value is "=v" or the next word.
func parseArgv(argv []string) (flags map[string]string, rest []string) {
	flags = map[string]string{}
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "-") {
			rest = append(rest, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if k, v, ok := strings.Cut(name, "="); ok {
			flags[k] = v
			continue
		}
		if i+1 < len(argv) && !strings.HasPrefix(argv[i+1], "-") {
			flags[name] = argv[i+1]
			i++
			continue
		}
		flags[name] = ""
	}
	return flags, rest
}

func TestTokenwatchRunsRealSubcommandsFlagsAndRoles(t *testing.T) {
	cmds := subcommands(t)
	rolesRun := map[string]map[string]bool{"compose": {}, "kubernetes": {}}
	for _, c := range containers(t) {
		if repo, _ := imageRepo(c.image); repo != "tokenwatch" {
			continue
		}
		argv := c.argv
		if len(argv) > 0 && path.Base(argv[0]) == "tokenwatch" {
			argv = argv[1:] // an explicit binary path instead of the image's ENTRYPOINT
		}
		if len(argv) == 0 {
			t.Errorf("%s: no subcommand (the image's ENTRYPOINT is the bare binary)", c.where)
			continue
		}
		flagsOK, ok := cmds[argv[0]]
		if !ok {
			t.Errorf("%s: %q is not a tokenwatch subcommand (%v)", c.where, argv[0], keys(cmds))
			continue
		}
		flags, rest := parseArgv(argv[1:])
		for f := range flags {
			if !slices.Contains(flagsOK, f) {
				t.Errorf("%s: tokenwatch %s has no flag --%s (has %v)", c.where, argv[0], f, flagsOK)
			}
		}
		if argv[0] == "run" || argv[0] == "migrate" {
			if len(rest) > 0 {
				t.Errorf("%s: stray arguments %v", c.where, rest)
			}
			cfg := flags["config"]
			if cfg == "" {
				t.Errorf("%s: tokenwatch %s without --config", c.where, argv[0])
			} else if !mounted(c.mounts, cfg) {
				t.Errorf("%s: --config %s is not under any mount %v", c.where, cfg, c.mounts)
			}
		}
		if argv[0] == "run" {
			v, ok := flags["role"]
			if !ok || v == "" {
				t.Errorf("%s: tokenwatch run without --role (each role is its own service)", c.where)
			}
			for _, r := range strings.Split(v, ",") {
				if !slices.Contains(roles, r) {
					t.Errorf("%s: --role %q, want among %v", c.where, r, roles)
				}
				if strings.HasPrefix(c.where, "compose") {
					rolesRun["compose"][r] = true
				} else {
					rolesRun["kubernetes"][r] = true
				}
			}
		}
	}
	for where, got := range rolesRun {
		for _, r := range roles {
			if !got[r] {
				t.Errorf("%s: no tokenwatch runs role %s", where, r)
			}
		}
	}
}

func mounted(mounts map[string]string, file string) bool {
	for m := range mounts {
		if file == m || strings.HasPrefix(file, strings.TrimSuffix(m, "/")+"/") {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var envRef = regexp.MustCompile(`env:([A-Z][A-Z0-9_]*)`)

// parseConfig decodes a config as a role would at start, with every env:
// secret it names set to a dummy value.
func parseConfig(t *testing.T, name string, b []byte) config.Config {
	t.Helper()
	for _, m := range envRef.FindAllStringSubmatch(string(b), -1) {
		t.Setenv(m[1], "dummy-"+strings.ToLower(m[1]))
	}
	cfg, err := config.Parse(b, name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return cfg
}

func TestConfigsParseAndMatchTheManifests(t *testing.T) {
	// The example names testdata/ paths relative to the repository root.
	example, err := os.ReadFile(filepath.Join(deployDir, "tokenwatch.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	composeCfgBytes, err := os.ReadFile(filepath.Join(deployDir, "compose", "tokenwatch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k8sCfgBytes []byte
	var hpaMax int
	for _, d := range yamlDocs(t, filepath.Join(deployDir, "kubernetes", "configmap.yaml")) {
		if d["kind"] == "ConfigMap" {
			k8sCfgBytes = []byte(str(get(d, "data", "tokenwatch.yaml")))
		}
	}
	for _, d := range yamlDocs(t, filepath.Join(deployDir, "kubernetes", "hpa.yaml")) {
		if d["kind"] == "HorizontalPodAutoscaler" && str(get(d, "spec", "scaleTargetRef", "name")) == "tokenwatch-detect" {
			hpaMax, _ = get(d, "spec", "maxReplicas").(int)
		}
	}
	if len(k8sCfgBytes) == 0 || hpaMax == 0 {
		t.Fatalf("kubernetes: config map data tokenwatch.yaml (%d bytes) and detect HPA maxReplicas (%d) are required", len(k8sCfgBytes), hpaMax)
	}
	for _, env := range []string{"TOKENWATCH_KAFKA_BROKERS", "TOKENWATCH_CLICKHOUSE_ADDR", "TOKENWATCH_LOG_LEVEL", "TOKENWATCH_GEOIP_CITY", "TOKENWATCH_GEOIP_ASN"} {
		if v, ok := os.LookupEnv(env); ok {
			t.Setenv(env, v) // restored after the test
			os.Unsetenv(env)
		}
	}
	t.Chdir(root)
	parseConfig(t, "deploy/tokenwatch.example.yaml", example)
	composeCfg := parseConfig(t, "deploy/compose/tokenwatch.yaml", composeCfgBytes)
	k8sCfg := parseConfig(t, "deploy/kubernetes/configmap.yaml", k8sCfgBytes)
	t.Chdir("internal/app/deploytest")

	if hpaMax > k8sCfg.Kafka.Partitions {
		t.Errorf("hpa.yaml: detect maxReplicas %d > kafka.partitions %d: the extra consumers would idle", hpaMax, k8sCfg.Kafka.Partitions)
	}
	// Every env: secret the config names reaches every tokenwatch container
	// (secrets resolve when any role parses the config).
	for _, c := range containers(t) {
		if repo, _ := imageRepo(c.image); repo != "tokenwatch" {
			continue
		}
		cfg := composeCfgBytes
		if !strings.HasPrefix(c.where, "compose") {
			cfg = k8sCfgBytes
		}
		for _, m := range envRef.FindAllStringSubmatch(string(cfg), -1) {
			if !c.env[m[1]] && !c.envRef {
				t.Errorf("%s: config needs %s, which the container does not set", c.where, m[1])
			}
		}
	}
	// Prometheus scrapes the port the roles listen on.
	_, port, err := net.SplitHostPort(composeCfg.HTTP.Listen)
	if err != nil || port == "" {
		t.Fatalf("compose config http.listen %q", composeCfg.HTTP.Listen)
	}
	prom := yamlDocs(t, filepath.Join(deployDir, "prometheus", "prometheus.yml"))[0]
	var targets []string
	for _, sc := range list(prom["scrape_configs"]) {
		if str(get(sc, "job_name")) != "tokenwatch" {
			continue
		}
		for _, st := range list(get(sc, "static_configs")) {
			targets = append(targets, strs(get(st, "targets"))...)
		}
	}
	services := composeServices(t)
	for _, r := range roles {
		want := r + ":" + port
		if !slices.Contains(targets, want) {
			t.Errorf("prometheus.yml: job tokenwatch does not scrape %s (targets %v)", want, targets)
		}
		if services[r] == nil {
			t.Errorf("docker-compose.yml: no service %s for Prometheus to scrape", r)
		}
	}
	rules := composeMounts(t, services["prometheus"])
	for _, rf := range strs(prom["rule_files"]) {
		if src := rules[rf]; src != "../prometheus/alerts.yml" {
			t.Errorf("prometheus.yml loads %s, but the compose prometheus service mounts %q there", rf, src)
		}
	}
}

func TestComposeBuildAndMountsPointAtRealFiles(t *testing.T) {
	composeDir := filepath.Join(deployDir, "compose")
	for name, svc := range composeServices(t) {
		for _, src := range composeMounts(t, svc) {
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(composeDir, src)); err != nil {
					t.Errorf("compose service %s mounts %s: %v", name, src, err)
				}
			}
		}
		if b := get(svc, "build"); b != nil {
			ctx := str(get(b, "context"))
			df := str(get(b, "dockerfile"))
			if _, err := os.Stat(filepath.Join(composeDir, ctx, df)); err != nil {
				t.Errorf("compose service %s builds %s in %s: %v", name, df, ctx, err)
			}
			if _, err := os.Stat(filepath.Join(composeDir, ctx, "go.mod")); err != nil {
				t.Errorf("compose service %s: build context %s is not the repository root", name, ctx)
			}
		}
	}
	// The builder's Go is the one go.mod asks for.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	df, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	from := regexp.MustCompile(`(?m)^FROM golang:(\d+\.\d+)`).FindSubmatch(df)
	if goLine == nil || from == nil || string(goLine[1]) != string(from[1]) {
		t.Errorf("deploy/Dockerfile builds with golang:%s, go.mod says go %s", from, goLine)
	}
	if !regexp.MustCompile(`(?m)^FROM gcr\.io/distroless/`).Match(df) || !bytes.Contains(df, []byte(`ENTRYPOINT ["/tokenwatch"]`)) {
		t.Error("deploy/Dockerfile: want a distroless final stage with ENTRYPOINT [\"/tokenwatch\"]")
	}
}
