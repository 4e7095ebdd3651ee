package provider

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// LoadConfigFile reads a YAML file over cfg. Unknown keys are an error, so a
// misspelt setting is caught at start-up instead of being silently ignored.
// Errors name the file, the line and the setting as the user typed it
// (`consentry.yaml: line 3: unknown setting "dns" (did you mean "dsn"?)`),
// never a Go type.
func LoadConfigFile(path string, cfg *Config) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config %q: %w", path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil // an empty file sets nothing
	}
	if err := checkSettings(doc.Content[0], reflect.TypeFor[Config](), ""); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true) // checkSettings found none; kept as a second guard
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return nil
}

var durationType = reflect.TypeFor[Duration]()

// checkSettings walks the mapping n against the yaml tags of struct t: a key
// t lacks is reported with the closest known one, and a duration that does
// not parse with its setting's name. prefix is the dotted name of the
// enclosing setting ("offline_access.").
func checkSettings(n *yaml.Node, t reflect.Type, prefix string) error {
	if n.Kind != yaml.MappingNode {
		if prefix == "" {
			return fmt.Errorf("line %d: the configuration must be a mapping of settings (key: value)", n.Line)
		}
		return fmt.Errorf("line %d: %s: must be a mapping of settings (key: value)", n.Line, strings.TrimSuffix(prefix, "."))
	}
	fields := map[string]reflect.StructField{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = f
		names = append(names, name)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		f, ok := fields[key.Value]
		if !ok {
			msg := fmt.Sprintf("line %d: unknown setting %q", key.Line, prefix+key.Value)
			if near := closest(key.Value, names); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", prefix+near)
			}
			return errors.New(msg)
		}
		switch {
		case f.Type == durationType:
			if value.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: %s: must be a duration (use Go syntax: 90s, 15m, 1h)", value.Line, prefix+key.Value)
			}
			if _, err := time.ParseDuration(value.Value); err != nil {
				return fmt.Errorf("line %d: %s: %q is not a duration (use Go syntax: 90s, 15m, 1h)", value.Line, prefix+key.Value, value.Value)
			}
		case f.Type.Kind() == reflect.Struct:
			if err := checkSettings(value, f.Type, prefix+key.Value+"."); err != nil {
				return err
			}
		}
	}
	return nil
}

// closest returns the name of names nearest to s when it is near enough to
// be a typo of it, else "".
func closest(s string, names []string) string {
	best, bestDist := "", len(s)/3+2 // a few edits, more for long names
	for _, name := range names {
		if d := editDistance(s, name); d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
