package main

import (
	"context"
	"encoding/json"
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
