package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// offlineClientArgs registers a public client with offline access.
func offlineClientArgs(id string, extra ...string) []string {
	return append([]string{"clients", "create", "--id", id, "--public", "--redirect-uri", "com.example.app:/cb",
		"--scope", "openid offline_access", "--grant-type", "authorization_code", "--grant-type", "refresh_token"}, extra...)
}

func TestClientsOfflineLifetimes(t *testing.T) {
	dsn := tempDSN(t)
	// The deployment settings in the environment do not leak into clients.
	environ := map[string]string{"CONSENTRY_DSN": dsn, "CONSENTRY_OFFLINE_IDLE_LIFETIME": "48h", "CONSENTRY_OFFLINE_ABSOLUTE_LIFETIME": "96h"}

	r := runCLI(t, "", environ, offlineClientArgs("own", "--offline-idle-lifetime", "168h", "--offline-absolute-lifetime", "2160h")...)
	if r.code != 0 {
		t.Fatalf("create: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"offline_idle_lifetime:", "168h", "offline_absolute_lifetime:", "2160h"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("create output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := runCLI(t, "", environ, offlineClientArgs("defaults")...); r.code != 0 {
		t.Fatalf("create defaults: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", environ, offlineClientArgs("idle-only", "--offline-idle-lifetime", "90m")...); r.code != 0 {
		t.Fatalf("create idle-only: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", environ, "clients", "create", "--id", "web", "--public", "--redirect-uri", "https://www.example.com/cb"); r.code != 0 {
		t.Fatalf("create web: exit %d, stderr %q", r.code, r.stderr)
	}

	st := openTestStore(t, dsn)
	for id, want := range map[string][2]time.Duration{
		"own": {168 * time.Hour, 2160 * time.Hour}, "defaults": {}, "idle-only": {90 * time.Minute, 0}, "web": {},
	} {
		c, err := st.GetStoredClient(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if c.OfflineIdleLifetime != want[0] || c.OfflineAbsoluteLifetime != want[1] {
			t.Errorf("client %s stored with idle %v, absolute %v; want %v, %v", id, c.OfflineIdleLifetime, c.OfflineAbsoluteLifetime, want[0], want[1])
		}
	}

	get := runCLI(t, "", environ, "clients", "get", "defaults")
	if get.code != 0 || strings.Count(get.stdout, "deployment default") != 2 {
		t.Errorf("get defaults: exit %d, stdout:\n%s", get.code, get.stdout)
	}
	get = runCLI(t, "", environ, "clients", "get", "web")
	if get.code != 0 || strings.Contains(get.stdout, "offline_") {
		t.Errorf("get of a client without offline access shows lifetimes: exit %d, stdout:\n%s", get.code, get.stdout)
	}

	list := runCLI(t, "", environ, "clients", "list")
	if list.code != 0 {
		t.Fatalf("list: exit %d, stderr %q", list.code, list.stderr)
	}
	for _, want := range []string{"OFFLINE IDLE/ABSOLUTE", "168h/2160h", "default/default", "1h30m/default"} {
		if !strings.Contains(list.stdout, want) {
			t.Errorf("list lacks %q:\n%s", want, list.stdout)
		}
	}

	list = runCLI(t, "", environ, "clients", "list", "--json")
	var views []map[string]any
	if err := json.Unmarshal([]byte(list.stdout), &views); err != nil {
		t.Fatalf("list --json %q: %v", list.stdout, err)
	}
	byID := map[string]map[string]any{}
	for _, v := range views {
		byID[v["client_id"].(string)] = v
	}
	if v := byID["own"]; v["offline_idle_lifetime"] != "168h" || v["offline_absolute_lifetime"] != "2160h" {
		t.Errorf("own in JSON: %v", v)
	}
	if v := byID["idle-only"]; v["offline_idle_lifetime"] != "1h30m" || v["offline_absolute_lifetime"] != nil {
		t.Errorf("idle-only in JSON: %v", v)
	}
	for _, id := range []string{"defaults", "web"} {
		if _, ok := byID[id]["offline_idle_lifetime"]; ok {
			t.Errorf("%s in JSON has a lifetime: %v", id, byID[id])
		}
	}
	var one map[string]any
	if r := runCLI(t, "", environ, "clients", "get", "own", "--json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &one) != nil || one["offline_idle_lifetime"] != "168h" {
		t.Errorf("get own --json: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestClientsOfflineLifetimeRefusals(t *testing.T) {
	dsn := tempDSN(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "idle under a minute", args: offlineClientArgs("a", "--offline-idle-lifetime", "30s"), wantErr: "offline idle lifetime 30s is too short: it must be at least 1m"},
		{name: "absolute under a minute", args: offlineClientArgs("a", "--offline-absolute-lifetime", "59s"), wantErr: "offline absolute lifetime 59s is too short"},
		{name: "negative idle", args: offlineClientArgs("a", "--offline-idle-lifetime", "-24h"), wantErr: "offline idle lifetime -24h must be positive"},
		{name: "idle longer than absolute", args: offlineClientArgs("a", "--offline-idle-lifetime", "720h", "--offline-absolute-lifetime", "168h"), wantErr: "offline idle lifetime 720h must not exceed the offline absolute lifetime 168h"},
		{name: "not a duration", args: offlineClientArgs("a", "--offline-idle-lifetime", "30d"), wantErr: `--offline-idle-lifetime="30d": want a duration`},
		{
			name:    "client without offline_access",
			args:    []string{"clients", "create", "--id", "web", "--redirect-uri", "https://www.example.com/cb", "--offline-idle-lifetime", "24h"},
			wantErr: "offline lifetimes only apply to a client with scope offline_access",
		},
		{
			name:    "deployment flag before the command",
			args:    append([]string{"--offline-idle-lifetime", "24h"}, offlineClientArgs("a")...),
			wantErr: "--offline-idle-lifetime before 'clients create' is ambiguous",
		},
		{
			name:    "both deployment flags before the command",
			args:    append([]string{"--offline-absolute-lifetime", "24h", "--offline-idle-lifetime", "1h"}, offlineClientArgs("a")...),
			wantErr: "--offline-absolute-lifetime and --offline-idle-lifetime before 'clients create' is ambiguous",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, "", environ, tt.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tt.wantErr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q; want nothing", r.stdout)
			}
		})
	}
	if list := runCLI(t, "", environ, "clients", "list", "--json"); strings.TrimSpace(list.stdout) != "[]" {
		t.Errorf("refused clients were stored: %s", list.stdout)
	}

	// Elsewhere the same flags are the deployment's settings, before or after the command.
	for _, args := range [][]string{
		{"--offline-idle-lifetime", "24h", "clients", "list"},
		{"clients", "list", "--offline-idle-lifetime", "24h"},
	} {
		if r := runCLI(t, "", environ, args...); r.code != 0 {
			t.Errorf("%q: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if r := runCLI(t, "", environ, "clients", "list", "--offline-idle-lifetime", "0s"); r.code != 2 || !strings.Contains(r.stderr, "offline_access.idle_lifetime: must be positive") {
		t.Errorf("clients list with a zero deployment idle lifetime: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestClientsCreateHelpShowsLifetimeFlags(t *testing.T) {
	r := runCLI(t, "", nil, "help", "clients", "create")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	flags, _, _ := strings.Cut(r.stdout, "Global flags")
	for _, want := range []string{"--offline-idle-lifetime DURATION", "--offline-absolute-lifetime DURATION", "this client's"} {
		if !strings.Contains(flags, want) {
			t.Errorf("clients create help lacks %q among its flags:\n%s", want, r.stdout)
		}
	}
	if strings.Count(r.stdout, "--offline-idle-lifetime DURATION") != 1 {
		t.Errorf("--offline-idle-lifetime listed more than once:\n%s", r.stdout)
	}
	// The global help describes the deployment settings.
	r = runCLI(t, "", nil, "help")
	for _, want := range []string{"--offline-idle-lifetime DURATION", "CONSENTRY_OFFLINE_IDLE_LIFETIME", "--offline-absolute-lifetime DURATION",
		"--refresh-retry-window DURATION", "CONSENTRY_REFRESH_RETRY_WINDOW", "--gc-interval DURATION", "CONSENTRY_GC_INTERVAL"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestClientsTheme(t *testing.T) {
	dsn := tempDSN(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	web := []string{"--public", "--redirect-uri", "https://www.example.com/cb"}

	r := runCLI(t, "", environ, append([]string{"clients", "create", "--id", "themed", "--theme", "partner"}, web...)...)
	if r.code != 0 {
		t.Fatalf("create: exit %d, stderr %q", r.code, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^theme:\s+partner$`).MatchString(r.stdout) {
		t.Errorf("create output lacks the theme:\n%s", r.stdout)
	}
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("warning without a configured templates directory: %q", r.stderr)
	}
	if r := runCLI(t, "", environ, append([]string{"clients", "create", "--id", "plain"}, web...)...); r.code != 0 {
		t.Fatalf("create plain: exit %d, stderr %q", r.code, r.stderr)
	}
	c, err := openTestStore(t, dsn).GetStoredClient(context.Background(), "themed")
	if err != nil || c.Theme != "partner" {
		t.Fatalf("stored theme %q (err %v); want partner", c.Theme, err)
	}

	get := runCLI(t, "", environ, "clients", "get", "plain")
	if get.code != 0 || !regexp.MustCompile(`(?m)^theme:\s+- \(the deployment's pages\)$`).MatchString(get.stdout) {
		t.Errorf("get plain: exit %d, stdout:\n%s", get.code, get.stdout)
	}
	var one map[string]any
	if r := runCLI(t, "", environ, "clients", "get", "themed", "--json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &one) != nil || one["theme"] != "partner" {
		t.Errorf("get themed --json: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := runCLI(t, "", environ, "clients", "get", "plain", "--json"); r.code != 0 || strings.Contains(r.stdout, `"theme"`) {
		t.Errorf("get plain --json shows a theme: exit %d, stdout %q", r.code, r.stdout)
	}

	list := runCLI(t, "", environ, "clients", "list")
	if list.code != 0 {
		t.Fatalf("list: exit %d, stderr %q", list.code, list.stderr)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^ID .*OFFLINE IDLE/ABSOLUTE\s+THEME$`),
		regexp.MustCompile(`(?m)^themed .*\s+partner$`),
		regexp.MustCompile(`(?m)^plain .*\s+-$`),
	} {
		if !want.MatchString(list.stdout) {
			t.Errorf("list does not match %s:\n%s", want, list.stdout)
		}
	}

	for _, tt := range []struct{ theme, wantErr string }{
		{"Partner", `theme "Partner" may only contain lowercase letters`},
		{"../x", `theme "../x" may only contain`},
		{"static", `theme "static" is not allowed`},
		{"i18n", `theme "i18n" is not allowed`},
		{strings.Repeat("t", 65), "must have 1 to 64 characters"},
	} {
		r := runCLI(t, "", environ, append([]string{"clients", "create", "--id", "bad", "--theme", tt.theme}, web...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.wantErr) || r.stdout != "" {
			t.Errorf("--theme %q: exit %d, stdout %q, stderr %q; want 2 and %q", tt.theme, r.code, r.stdout, r.stderr, tt.wantErr)
		}
	}
	if r := runCLI(t, "", environ, "clients", "get", "bad"); r.code != 1 {
		t.Errorf("a client with a refused theme was stored: %q", r.stdout)
	}
}

func TestClientsThemeWarnsWhenMissing(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "partner"), 0o755); err != nil {
		t.Fatal(err)
	}
	environ := map[string]string{"CONSENTRY_DSN": tempDSN(t), "CONSENTRY_TEMPLATES_DIR": dir}
	web := []string{"--public", "--redirect-uri", "https://www.example.com/cb"}

	r := runCLI(t, "", environ, append([]string{"clients", "create", "--id", "a", "--theme", "partner"}, web...)...)
	if r.code != 0 || r.stderr != "" {
		t.Errorf("existing theme: exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
	}
	r = runCLI(t, "", environ, append([]string{"clients", "create", "--id", "b", "--theme", "partnr"}, web...)...)
	if r.code != 0 || !strings.Contains(r.stderr, `warning: the templates directory `+dir+` has no theme "partnr"`) {
		t.Errorf("missing theme on create: exit %d, stderr %q; want 0 and a warning", r.code, r.stderr)
	}
	r = runCLI(t, "", environ, "clients", "update", "a", "--theme", "other")
	if r.code != 0 || !strings.Contains(r.stderr, `has no theme "other"`) {
		t.Errorf("missing theme on update: exit %d, stderr %q; want 0 and a warning", r.code, r.stderr)
	}
	// Clearing the theme or leaving it alone warns of nothing.
	for _, args := range [][]string{{"--theme", ""}, {"--name", "A"}} {
		r = runCLI(t, "", environ, append([]string{"clients", "update", "b"}, args...)...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("update %q: exit %d, stderr %q; want 0 and nothing", args, r.code, r.stderr)
		}
	}
}

func TestClientsUpdate(t *testing.T) {
	dsn := tempDSN(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	create := runCLI(t, "", environ, "clients", "create", "--id", "app", "--name", "Example App",
		"--redirect-uri", "https://app.example.com/cb", "--theme", "old",
		"--logo-uri", "https://app.example.com/logo.png", "--policy-uri", "https://app.example.com/privacy")
	if create.code != 0 {
		t.Fatalf("create: exit %d, stderr %q", create.code, create.stderr)
	}
	st := openTestStore(t, dsn)
	orig, err := st.GetStoredClient(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}

	// Only the flags given change anything.
	r := runCLI(t, "", environ, "clients", "update", "app", "--name", "New Name", "--json")
	if r.code != 0 {
		t.Fatalf("update --name: exit %d, stderr %q", r.code, r.stderr)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("update --json output %q: %v", r.stdout, err)
	}
	if v["client_name"] != "New Name" || v["theme"] != "old" || v["logo_uri"] != "https://app.example.com/logo.png" || v["policy_uri"] != "https://app.example.com/privacy" {
		t.Errorf("after update --name: %v", v)
	}

	// Text output is that of clients get, after one line; "" clears a field.
	r = runCLI(t, "", environ, "clients", "update", "--theme", "partner", "app", "--logo-uri", "", "--tos-uri", "https://app.example.com/terms")
	if r.code != 0 {
		t.Fatalf("update: exit %d, stderr %q", r.code, r.stderr)
	}
	head, rest, _ := strings.Cut(r.stdout, "\n")
	if head != `updated client "app"` {
		t.Errorf("first line %q; want `updated client \"app\"`", head)
	}
	get := runCLI(t, "", environ, "clients", "get", "app")
	if get.code != 0 || rest != get.stdout {
		t.Errorf("update output after its first line:\n%s\ndiffers from clients get:\n%s", rest, get.stdout)
	}
	c, err := st.GetStoredClient(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "New Name" || c.Theme != "partner" || c.LogoURI != "" || c.PolicyURI != "https://app.example.com/privacy" || c.TosURI != "https://app.example.com/terms" {
		t.Errorf("stored %+v", c)
	}
	if string(c.SecretHash) != string(orig.SecretHash) || !slices.Equal(c.RedirectURIs, orig.RedirectURIs) || !c.CreatedAt.Equal(orig.CreatedAt) || !c.UpdatedAt.After(orig.UpdatedAt) {
		t.Errorf("update touched other fields or not updated_at:\nbefore %+v\nafter  %+v", orig, c)
	}
	if r := runCLI(t, "", environ, "clients", "update", "app", "--theme="); r.code != 0 {
		t.Fatalf("update --theme=: exit %d, stderr %q", r.code, r.stderr)
	}
	if c, err := st.GetStoredClient(context.Background(), "app"); err != nil || c.Theme != "" {
		t.Errorf("theme %q after clearing (err %v)", c.Theme, err)
	}

	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{name: "no field", args: []string{"app"}, code: 2, wantErr: "nothing to update: give at least one of --name, --theme, --logo-uri, --client-uri, --policy-uri, --tos-uri"},
		{name: "only --json", args: []string{"app", "--json"}, code: 2, wantErr: "nothing to update"},
		{name: "no id", args: []string{"--name", "x"}, code: 2, wantErr: "usage: consentry clients update ID"},
		{name: "empty name", args: []string{"app", "--name", ""}, code: 2, wantErr: "client name cannot be empty"},
		{name: "bad theme", args: []string{"app", "--theme", "Partner"}, code: 2, wantErr: `theme "Partner" may only contain`},
		{name: "reserved theme", args: []string{"app", "--theme", "static"}, code: 2, wantErr: `theme "static" is not allowed`},
		{name: "relative URL", args: []string{"app", "--client-uri", "/home"}, code: 2, wantErr: `client URI "/home" must be an absolute http(s) URL`},
		{name: "unknown client", args: []string{"nope", "--name", "x"}, code: 1, wantErr: `client "nope" not found`},
		{name: "unknown flag", args: []string{"app", "--scope", "openid"}, code: 2, wantErr: "flag provided but not defined: -scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, "", environ, append([]string{"clients", "update"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tt.code, tt.wantErr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q; want nothing", r.stdout)
			}
		})
	}
	after, err := st.GetStoredClient(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	if after.Name != "New Name" || after.Theme != "" || after.ClientURI != "" {
		t.Errorf("a refused update changed the client: %+v", after)
	}
}

func TestClientsIntrospect(t *testing.T) {
	dsn := tempDSN(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	api := []string{"clients", "create", "--id", "api", "--grant-type", "client_credentials", "--scope", "reports", "--introspect"}
	if r := runCLI(t, "", environ, api...); r.code != 0 || !regexp.MustCompile(`(?m)^introspect:\s+yes`).MatchString(r.stdout) {
		t.Fatalf("create --introspect: exit %d, stdout:\n%s\nstderr %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, "", environ, "clients", "create", "--id", "app", "--redirect-uri", "https://app.example.com/cb"); r.code != 0 {
		t.Fatalf("create: exit %d, stderr %q", r.code, r.stderr)
	}
	if get := runCLI(t, "", environ, "clients", "get", "app"); get.code != 0 || !regexp.MustCompile(`(?m)^introspect:\s+no`).MatchString(get.stdout) {
		t.Errorf("get app: exit %d, stdout:\n%s", get.code, get.stdout)
	}
	var one map[string]any
	if r := runCLI(t, "", environ, "clients", "get", "api", "--json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &one) != nil || one["introspect"] != true {
		t.Errorf("get api --json: exit %d, stdout %q", r.code, r.stdout)
	}
	c, err := openTestStore(t, dsn).GetStoredClient(context.Background(), "api")
	if err != nil || !c.Introspect {
		t.Fatalf("stored client %+v (err %v): want Introspect", c, err)
	}
	r := runCLI(t, "", environ, "clients", "create", "--id", "spa", "--public", "--redirect-uri", "https://spa.example.com/cb", "--introspect")
	if r.code != 2 || !strings.Contains(r.stderr, "public client cannot introspect") {
		t.Errorf("public --introspect: exit %d, stderr %q; want 2", r.code, r.stderr)
	}
}
