package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// LoadFile reads a YAML config file over c. Keys the file leaves out keep their value.
// An unknown key or a value of the wrong type is an error naming the key, its line and
// what is allowed.
func LoadFile(c *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if err := decodeYAML(c, data); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	c.File = path
	return nil
}

func decodeYAML(c *Config, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 { // empty file
		return nil
	}
	// The schema walk gives errors with the key's full path; the decoder's own
	// KnownFields check stays as a safety net.
	if err := checkNode(doc.Content[0], reflect.TypeOf(Config{}), ""); err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

var durationType = reflect.TypeOf(Duration(0))

// checkNode checks node against the Go type t: mapping keys must be fields (by their
// yaml tag), scalars must parse as the field's type.
func checkNode(n *yaml.Node, t reflect.Type, path string) error {
	where := func() string {
		if path == "" {
			return fmt.Sprintf("line %d", n.Line)
		}
		return fmt.Sprintf("line %d: %s", n.Line, path)
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Tag == "!!null" {
		return nil
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s: want a duration such as 500ms, 10s or 5m", where())
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			return fmt.Errorf("%s: %q is not a duration: use a number with a unit, such as 500ms, 10s or 5m", where(), n.Value)
		}
		return nil
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: want a section (keys: %s)", where(), strings.Join(keysOf(t), ", "))
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			if seen[k.Value] {
				return fmt.Errorf("line %d: %s is set twice", k.Line, key)
			}
			seen[k.Value] = true
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				section := "the top level"
				if path != "" {
					section = path
				}
				return fmt.Errorf("line %d: unknown key %s; allowed in %s: %s", k.Line, key, section, strings.Join(keysOf(t), ", "))
			}
			if err := checkNode(v, f.Type, key); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s: want a map of names to values", where())
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkNode(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s: want a single value, not a list or section", where())
	}
	switch t.Kind() {
	case reflect.Bool:
		if _, err := strconv.ParseBool(n.Value); err != nil {
			return fmt.Errorf("%s: %q is not allowed: use true or false", where(), n.Value)
		}
	case reflect.Int, reflect.Int64:
		if _, err := strconv.ParseInt(n.Value, 0, 64); err != nil {
			return fmt.Errorf("%s: %q is not a whole number", where(), n.Value)
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tagName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

func keysOf(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if name := tagName(t.Field(i)); name != "" {
			keys = append(keys, name)
		}
	}
	sort.Strings(keys)
	return keys
}

// UnmarshalYAML reads a duration such as "10s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration: use a number with a unit, such as 500ms, 10s or 5m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string such as "10s".
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }
