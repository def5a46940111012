package yamlstrict

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type inner struct {
	URL     string            `yaml:"url"`
	Timeout time.Duration     `yaml:"timeout"`
	Headers map[string]string `yaml:"headers"`
}

type base struct {
	Level string `yaml:"level"`
}

type own struct{ v string }

func (o *own) UnmarshalYAML(n *yaml.Node) error {
	var p struct {
		Value string `yaml:"value"`
	}
	if err := Decode(n, &p); err != nil {
		return err
	}
	o.v = p.Value
	return nil
}

type outer struct {
	base     `yaml:",inline"`
	Name     string           `yaml:"name"`
	Count    int              `yaml:"count"`
	On       *bool            `yaml:"on"`
	Sinks    []inner          `yaml:"sinks"`
	ByName   map[string]inner `yaml:"by_name"`
	Raw      yaml.Node        `yaml:"raw"`
	Any      any              `yaml:"any"`
	Own      own              `yaml:"own"`
	OwnPtr   *own             `yaml:"own_ptr"`
	Skipped  string           `yaml:"-"`
	Defaults inner            `yaml:"defaults"`
}

func node(t *testing.T, doc string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	return &n
}

func TestDecodeRejectsUnknownKeysAndWrongTypesAtEveryDepth(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"ok", "name: a\ncount: 2\nlevel: x\nsinks: [{url: 'http://a', timeout: 1s}]\nraw: {anything: [1]}\nany: {x: 1}\nown: {value: v}\nown_ptr: {value: w}\n", ""},
		{"top", "nmae: a", "nmae: unknown field at line 1"},
		{"inline struct key is known", "level: debug", ""},
		{"in a slice element", "sinks: [{url: a}, {ulr: b}]", "sinks[1].ulr: unknown field"},
		{"in a map value", "by_name: {x: {timeot: 1s}}", "by_name.x.timeot: unknown field"},
		{"nested struct", "defaults: {urll: x}", "defaults.urll: unknown field"},
		{"wrong type", "count: many", "count: line 1: cannot unmarshal !!str `many` into int"},
		{"wrong type deep", "sinks: [{timeout: soon}]", "sinks[0].timeout: line 1: cannot unmarshal"},
		{"bool", "on: yes please", "on: line 1"},
		{"mapping for a scalar", "name: {a: 1}", "name: line 1: cannot unmarshal !!map"},
		{"scalar for a struct", "defaults: 5", "defaults: line 1: cannot unmarshal !!int"},
		{"sequence for a map", "by_name: [a]", "by_name: line 1"},
		{"own unmarshaler, strict inside", "own: {valeu: v}", "own.valeu: unknown field"},
		{"own unmarshaler behind a pointer", "own_ptr: {valeu: v}", "own_ptr.valeu: unknown field"},
		{"dash field is not a key", "skipped: x", "skipped: unknown field"},
		{"merge keys", "base: &b {url: a}\ndefaults:\n  <<: *b\n  timeout: 1s\n", "base: unknown field"},
		{"merged unknown", "x: &b {urll: a}\ndefaults:\n  <<: *b\n", "defaults.urll: unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v outer
			err := Decode(node(t, tc.doc), &v)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDecodeFillsLikeNodeDecode(t *testing.T) {
	v := outer{Name: "default", Defaults: inner{Timeout: time.Second}}
	if err := Decode(node(t, "count: 3\ndefaults: {url: u}\nown: {value: v}"), &v); err != nil {
		t.Fatal(err)
	}
	if v.Name != "default" || v.Count != 3 || v.Defaults.URL != "u" || v.Defaults.Timeout != time.Second || v.Own.v != "v" {
		t.Fatalf("%+v", v)
	}
	// Absent node: nothing changes.
	if err := Decode(nil, &v); err != nil || v.Count != 3 {
		t.Fatal(err, v.Count)
	}
	if err := Decode(&yaml.Node{}, &v); err != nil || v.Count != 3 {
		t.Fatal(err, v.Count)
	}
}

func TestDecodeNamesEveryUnknownKey(t *testing.T) {
	var v outer
	err := Decode(node(t, "a: 1\nb: 2\n"), &v)
	if err == nil || !strings.Contains(err.Error(), "a: unknown") || !strings.Contains(err.Error(), "b: unknown") {
		t.Fatal(err)
	}
}

func TestWithoutAndGet(t *testing.T) {
	n := node(t, "enabled: false\nname: x\n").Content[0]
	if g := Get(n, "enabled"); g == nil || g.Value != "false" {
		t.Fatal(g)
	}
	var v outer
	if err := Decode(Without(n, "enabled"), &v); err != nil || v.Name != "x" {
		t.Fatal(err, v)
	}
	if len(n.Content) != 4 {
		t.Fatal("Without changed its argument")
	}
}

func TestAt(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{Field("url", errors.New("required")), "deliver.sinks[0].config.url: required"},
		{fmt.Errorf("github: config: %w", Field("routes[0].severity", errors.New("unknown field"))), "deliver.sinks[0].config.routes[0].severity: unknown field"},
		{errors.New("url: required"), "deliver.sinks[0].config: url: required"},
		{errors.New("yaml: unmarshal errors"), "deliver.sinks[0].config: yaml: unmarshal errors"},
	} {
		if got := At("deliver.sinks[0].config", tc.err).Error(); got != tc.want {
			t.Errorf("At(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
	j := At("p", errors.Join(Field("a", errors.New("x")), errors.New("b: y")))
	if j.Error() != "p.a: x\np: b: y" {
		t.Fatalf("%q", j.Error())
	}
	if At("p", nil) != nil {
		t.Fatal("nil")
	}
	base := errors.New("required")
	if !errors.Is(At("p", Field("url", base)), base) || !errors.Is(At("p", base), base) {
		t.Fatal("At hides the cause")
	}
}
