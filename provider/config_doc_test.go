package provider

import (
	"bytes"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const configDocPath = "../docs/configuration.md"

// configKeys lists the YAML keys of every setting of t, nested keys as
// "parent.child". A struct field whose type is one of our own structs is a
// group (offline_access:, database:); its leaves are the settings.
func configKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == t.PkgPath() {
			keys = append(keys, configKeys(f.Type, prefix+name+".")...)
			continue
		}
		keys = append(keys, prefix+name)
	}
	return keys
}

// yamlBlocks returns the contents of the ```yaml blocks of a markdown page.
func yamlBlocks(doc string) []string {
	var blocks []string
	for {
		_, rest, ok := strings.Cut(doc, "```yaml\n")
		if !ok {
			return blocks
		}
		block, after, _ := strings.Cut(rest, "\n```")
		blocks = append(blocks, block)
		doc = after
	}
}

// nodeKeys lists the keys of a YAML mapping as configKeys does: nested
// mappings as "parent.child".
func nodeKeys(n *yaml.Node, prefix string) []string {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return nodeKeys(n.Content[0], prefix)
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var keys []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i].Value, n.Content[i+1]
		if value.Kind == yaml.MappingNode {
			keys = append(keys, nodeKeys(value, prefix+key+".")...)
			continue
		}
		keys = append(keys, prefix+key)
	}
	return keys
}

// documentedKeys returns the settings the YAML blocks of doc show, failing
// when a block is not a valid configuration file.
func documentedKeys(t *testing.T, doc string) []string {
	t.Helper()
	var keys []string
	for i, block := range yamlBlocks(doc) {
		// Each block must be a configuration file that serve would accept
		// key by key, so that the page never shows a setting that is gone.
		cfg := DefaultConfig()
		dec := yaml.NewDecoder(bytes.NewReader([]byte(block)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			t.Errorf("yaml block %d of %s is not a valid configuration: %v\n%s", i+1, configDocPath, err, block)
			continue
		}
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(block), &n); err != nil {
			t.Fatalf("yaml block %d: %v", i+1, err)
		}
		keys = append(keys, nodeKeys(&n, "")...)
	}
	return keys
}

// TestConfigurationDocCoversEverySetting fails when a setting of Config has
// no place in docs/configuration.md, shown as the nested YAML a user types.
func TestConfigurationDocCoversEverySetting(t *testing.T) {
	raw, err := os.ReadFile(configDocPath)
	if err != nil {
		t.Fatal(err)
	}
	documented := documentedKeys(t, string(raw))
	for _, key := range configKeys(reflect.TypeFor[Config](), "") {
		if !slices.Contains(documented, key) {
			parent, leaf, nested := strings.Cut(key, ".")
			if nested {
				t.Errorf("%s does not document the setting %s: add it to a yaml block as\n%s:\n  %s: ...", configDocPath, key, parent, leaf)
			} else {
				t.Errorf("%s does not document the setting %s: add it to a yaml block as\n%s: ...", configDocPath, key, key)
			}
		}
	}
}

// TestConfigurationDocCheckNoticesAMissingSetting keeps the test above able
// to fail: a page without one of the settings is caught.
func TestConfigurationDocCheckNoticesAMissingSetting(t *testing.T) {
	doc := "```yaml\noffline_access:\n  idle_lifetime: 720h\n```\n"
	keys := documentedKeys(t, doc)
	if !slices.Equal(keys, []string{"offline_access.idle_lifetime"}) {
		t.Fatalf("documented keys = %q", keys)
	}
	all := configKeys(reflect.TypeFor[Config](), "")
	for _, want := range []string{"issuer", "offline_access.retry_window", "database.query_timeout", "login_throttle.max_failures", "trusted_proxies"} {
		if !slices.Contains(all, want) {
			t.Errorf("configKeys lacks %s: %q", want, all)
		}
	}
	if slices.Contains(all, "offline_access") || slices.Contains(all, "database") {
		t.Errorf("configKeys lists a group as a setting: %q", all)
	}
}
