// Package yamlstrict decodes YAML strictly at every depth. yaml.v3's
// Decoder.KnownFields(true) rejects unknown keys only for the document it
// reads: a yaml.Node handed on (a detector's, sink's or poller's `config:`)
// and the node a type's UnmarshalYAML receives are decoded with Node.Decode,
// which silently drops keys the target has no field for. Every place that
// decodes a sub-node uses Decode (or Func) instead, so a typo fails the
// config check instead of running with the default.
//
// Check walks the node against the target type: a mapping key the struct has
// no field for, or a scalar the field's type cannot hold, is an error naming
// the key path relative to the node ("routes[0].severity: unknown field ...")
// and the line; At prefixes the path of the node in the whole file.
//
// It sits below the stages (ingest, detect, deliver all may import it).
package yamlstrict

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Decode fills v (a pointer) from n after Check: unknown keys and wrongly
// typed scalars at any depth are errors, each naming its path. A nil or empty
// node leaves v as it is, like an absent section.
func Decode(n *yaml.Node, v any) error {
	if n == nil || n.Kind == 0 {
		return nil
	}
	if err := Check(n, reflect.TypeOf(v)); err != nil {
		return err
	}
	return n.Decode(v)
}

// Func is Decode bound to n: the `decode func(any) error` that the sink,
// source and detector registries hand to factories.
func Func(n *yaml.Node) func(any) error {
	return func(v any) error { return Decode(n, v) }
}

// Without returns a copy of the mapping node n without the named keys (a key
// every detector accepts, like `enabled`, that its own config struct lacks).
// Other nodes are returned as they are.
func Without(n *yaml.Node, keys ...string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return n
	}
	c := *n
	c.Content = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !contains(keys, n.Content[i].Value) {
			c.Content = append(c.Content, n.Content[i], n.Content[i+1])
		}
	}
	return &c
}

// Get returns the value node of key in the mapping node n, or nil.
func Get(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// FieldError is an error about one field, Path relative to the node
// decoded ("routes[0].severity"). Check's errors are FieldErrors, and so are
// package validate's.
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Field returns a *FieldError for path.
func Field(path string, err error) error { return &FieldError{Path: path, Err: err} }

// At puts path, the place of a node in the whole file, in front of an error
// about that node: a *FieldError inside err becomes one at path.field (the
// wrapping text around it, like "github: config:", is dropped: the path says
// where); any other error reads "path: err". Each error of a joined error is
// handled alone. nil stays nil.
func At(path string, err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range j.Unwrap() {
			errs = append(errs, At(path, e))
		}
		return errors.Join(errs...)
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{Path: path + "." + fe.Path, Err: fe.Err}
	}
	return fmt.Errorf("%s: %w", path, err)
}

var (
	nodeType        = reflect.TypeFor[yaml.Node]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// Check reports every key in n that t has no field for and every scalar t's
// field cannot hold, with its path. A type with its own UnmarshalYAML is
// checked by running it on a scratch value (so it must be safe to call
// twice; it should use Decode for its own fields); a yaml.Node field or an
// interface takes anything.
func Check(n *yaml.Node, t reflect.Type) error {
	c := checker{}
	c.walk(n, t, "", 0)
	return errors.Join(c.errs...)
}

type checker struct{ errs []error }

func (c *checker) fail(path string, format string, args ...any) {
	err := fmt.Errorf(format, args...)
	if path != "" {
		err = Field(path, err)
	}
	c.errs = append(c.errs, err)
}

func (c *checker) walk(n *yaml.Node, t reflect.Type, path string, depth int) {
	if n == nil || depth > 100 {
		return
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			c.walk(n.Content[0], t, path, depth+1)
		}
		return
	case yaml.AliasNode:
		c.walk(n.Alias, t, path, depth+1)
		return
	}
	if t == nodeType || t.Kind() == reflect.Interface {
		return
	}
	if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(unmarshalerType) {
		c.leaf(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if t.Implements(unmarshalerType) {
			c.leaf(n, t.Elem(), path)
			return
		}
		c.walk(n, t.Elem(), path, depth+1)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.leaf(n, t, path)
			return
		}
		fields, rest := fieldsOf(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" && k.ShortTag() == "!!merge" {
				c.walk(v, t, path, depth+1) // merged mapping(s): the same struct
				continue
			}
			ft, ok := fields[k.Value]
			switch {
			case ok:
				c.walk(v, ft, join(path, k.Value), depth+1)
			case rest != nil:
				c.walk(v, rest, join(path, k.Value), depth+1)
			default:
				c.fail(join(path, k.Value), "unknown field at line %d (known: %s)", k.Line, known(fields))
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.leaf(n, t, path)
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			c.leaf(k, t.Key(), join(path, k.Value))
			c.walk(v, t.Elem(), join(path, k.Value), depth+1)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode || t.Elem().Kind() == reflect.Uint8 {
			c.leaf(n, t, path)
			return
		}
		for i, item := range n.Content {
			c.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	default:
		c.leaf(n, t, path)
	}
}

// leaf decodes n into a scratch value of type t, for yaml.v3's own verdict
// on the value (and a type's own UnmarshalYAML).
func (c *checker) leaf(n *yaml.Node, t reflect.Type, path string) {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, e := range te.Errors {
			c.fail(path, "%s", e)
		}
		return
	}
	if path == "" {
		c.errs = append(c.errs, err)
		return
	}
	c.errs = append(c.errs, At(path, err)) // a type's own UnmarshalYAML: "pollers[0].overlap: …"
}

// fieldsOf maps a struct's YAML keys to their types, flattening `,inline`
// structs; rest is the element type of an `,inline` map (nil without one).
func fieldsOf(t reflect.Type) (fields map[string]reflect.Type, rest reflect.Type) {
	fields = map[string]reflect.Type{}
	var add func(reflect.Type)
	add = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if contains(strings.Split(opts, ","), "inline") {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				switch ft.Kind() {
				case reflect.Struct:
					add(ft)
				case reflect.Map:
					rest = ft.Elem()
				}
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name) // yaml.v3's default key
			}
			fields[name] = f.Type
		}
	}
	add(t)
	return fields, rest
}

func known(fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
