package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/provider"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// settingsFor parses args as the flags of a command and resolves the settings.
func settingsFor(t *testing.T, args []string, environ map[string]string) (settings, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g := addGlobalFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return loadSettings(fs, g, func(k string) string { return environ[k] })
}

// Secrets keys of the length Validate asks for, told apart by their source.
const (
	envSecretsKey  = "env-key-0123456789abcdefghijklmnopqrstuv"
	flagSecretsKey = "flag-key-0123456789abcdefghijklmnopqrstuv"
)

func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "consentry.yaml", `
dsn: sqlite://from-file.db
issuer: https://file.example.com
listen: 127.0.0.1:7000
templates_dir: /file/templates
demo: true
access_token_lifespan: 5m
offline_access:
  without_prompt_consent: prompt
remember_consent_for: 48h
`)
	fileListenOnly := writeFile(t, "listen.yaml", "listen: 127.0.0.1:7100\n")
	fileOther := writeFile(t, "other.yaml", "dsn: sqlite://other.db\n")
	fileOffline := writeFile(t, "offline.yaml", "offline_access:\n  without_prompt_consent: reject\nremember_consent_for: 1h\n")
	def := provider.DefaultConfig()

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    func(c *provider.Config)
		derived bool
	}{
		{name: "defaults", want: func(c *provider.Config) {}},
		{
			name: "file over defaults",
			args: []string{"--config", file},
			want: func(c *provider.Config) {
				c.DSN, c.Issuer, c.Listen, c.TemplatesDir, c.Demo = "sqlite://from-file.db", "https://file.example.com", "127.0.0.1:7000", "/file/templates", true
				c.AccessTokenLifespan = provider.Duration(5 * time.Minute)
				c.OfflineAccess.WithoutPromptConsent, c.RememberConsentFor = provider.OfflinePrompt, provider.Duration(48*time.Hour)
			},
		},
		{
			name: "config file named by the environment",
			env:  map[string]string{"CONSENTRY_CONFIG": fileOther},
			want: func(c *provider.Config) { c.DSN = "sqlite://other.db" },
		},
		{
			name: "--config over CONSENTRY_CONFIG",
			args: []string{"--config", fileOther},
			env:  map[string]string{"CONSENTRY_CONFIG": file},
			want: func(c *provider.Config) { c.DSN = "sqlite://other.db" },
		},
		{
			name: "environment over file",
			args: []string{"--config", file},
			env: map[string]string{
				"CONSENTRY_DSN": "sqlite://env.db", "CONSENTRY_ISSUER": "https://env.example.com",
				"CONSENTRY_LISTEN": "127.0.0.1:7200", "CONSENTRY_SECRETS_KEY": envSecretsKey,
				"CONSENTRY_TEMPLATES_DIR": "/env/templates", "CONSENTRY_DEMO": "false",
				"CONSENTRY_OFFLINE_ACCESS_WITHOUT_PROMPT_CONSENT": "reject", "CONSENTRY_REMEMBER_CONSENT_FOR": "72h",
			},
			want: func(c *provider.Config) {
				c.DSN, c.Issuer, c.Listen, c.SecretsKey, c.TemplatesDir, c.Demo = "sqlite://env.db", "https://env.example.com", "127.0.0.1:7200", envSecretsKey, "/env/templates", false
				c.AccessTokenLifespan = provider.Duration(5 * time.Minute)
				c.OfflineAccess.WithoutPromptConsent, c.RememberConsentFor = provider.OfflineReject, provider.Duration(72*time.Hour)
			},
		},
		{
			name: "flags over environment",
			args: []string{"--config", file, "--dsn", "postgres://db.example.com/consentry", "--issuer", "https://flag.example.com",
				"--listen", "127.0.0.1:7300", "--secrets-key", flagSecretsKey, "--templates-dir", "/flag/templates", "--demo",
				"--offline-access-without-prompt-consent", "ignore", "--remember-consent-for", "90m"},
			env: map[string]string{
				"CONSENTRY_DSN": "sqlite://env.db", "CONSENTRY_ISSUER": "https://env.example.com",
				"CONSENTRY_LISTEN": "127.0.0.1:7200", "CONSENTRY_SECRETS_KEY": envSecretsKey,
				"CONSENTRY_TEMPLATES_DIR": "/env/templates", "CONSENTRY_DEMO": "false",
				"CONSENTRY_OFFLINE_ACCESS_WITHOUT_PROMPT_CONSENT": "reject", "CONSENTRY_REMEMBER_CONSENT_FOR": "72h",
			},
			want: func(c *provider.Config) {
				c.DSN, c.Issuer, c.Listen, c.SecretsKey, c.TemplatesDir, c.Demo = "postgres://db.example.com/consentry", "https://flag.example.com", "127.0.0.1:7300", flagSecretsKey, "/flag/templates", true
				c.AccessTokenLifespan = provider.Duration(5 * time.Minute)
				c.OfflineAccess.WithoutPromptConsent, c.RememberConsentFor = provider.OfflineIgnore, provider.Duration(90*time.Minute)
			},
		},
		{
			name: "unset flags do not override",
			args: []string{"--listen", "127.0.0.1:7400"},
			env:  map[string]string{"CONSENTRY_DSN": "sqlite://env.db", "CONSENTRY_ISSUER": "http://localhost:7400"},
			want: func(c *provider.Config) {
				c.DSN, c.Listen, c.Issuer = "sqlite://env.db", "127.0.0.1:7400", "http://localhost:7400"
			},
		},
		{
			name: "trusted proxies from CONSENTRY_TRUSTED_PROXIES, comma-separated, over the file",
			args: []string{"--config", writeFile(t, "proxies.yaml", "trusted_proxies: [192.0.2.1]\n")},
			env:  map[string]string{"CONSENTRY_TRUSTED_PROXIES": "10.0.0.0/8, 2001:db8::1"},
			want: func(c *provider.Config) { c.TrustedProxies = []string{"10.0.0.0/8", "2001:db8::1"} },
		},
		{
			name: "login throttle and password hash concurrency from the file",
			args: []string{"--config", writeFile(t, "throttle.yaml", "password_hash_concurrency: 2\nlogin_throttle:\n  max_failures: 3\n  lockout: 30s\n  max_lockout: 2h\n  address_max_failures: 40\n")},
			want: func(c *provider.Config) {
				c.PasswordHashConcurrency = 2
				c.LoginThrottle.MaxFailures, c.LoginThrottle.AddressMaxFailures = 3, 40
				c.LoginThrottle.Lockout, c.LoginThrottle.MaxLockout = provider.Duration(30*time.Second), provider.Duration(2*time.Hour)
			},
		},
		{
			name: "trusted proxies from the file",
			args: []string{"--config", writeFile(t, "proxies-file.yaml", "trusted_proxies:\n  - 10.0.0.0/8\n  - 192.0.2.7\n")},
			want: func(c *provider.Config) { c.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.7"} },
		},
		{
			name: "--demo=false over CONSENTRY_DEMO",
			args: []string{"--demo=false"},
			env:  map[string]string{"CONSENTRY_DEMO": "true"},
			want: func(c *provider.Config) {},
		},
		{
			name: "offline-access policy and remembered consent: flags alone",
			args: []string{"--offline-access-without-prompt-consent", "reject", "--remember-consent-for", "24h"},
			want: func(c *provider.Config) {
				c.OfflineAccess.WithoutPromptConsent, c.RememberConsentFor = provider.OfflineReject, provider.Duration(24*time.Hour)
			},
		},
		{
			name: "offline-access policy and remembered consent: environment over file",
			args: []string{"--config", fileOffline},
			env:  map[string]string{"CONSENTRY_OFFLINE_ACCESS_WITHOUT_PROMPT_CONSENT": "prompt"},
			want: func(c *provider.Config) {
				c.OfflineAccess.WithoutPromptConsent, c.RememberConsentFor = provider.OfflinePrompt, provider.Duration(time.Hour)
			},
		},
		{
			name: "offline-access policy and remembered consent: unset flags do not override",
			args: []string{"--config", fileOffline, "--remember-consent-for", "2h"},
			want: func(c *provider.Config) {
				c.OfflineAccess.WithoutPromptConsent, c.RememberConsentFor = provider.OfflineReject, provider.Duration(2*time.Hour)
			},
		},
		{
			name:    "issuer derived from the listen flag",
			args:    []string{"--listen", "127.0.0.1:9000"},
			want:    func(c *provider.Config) { c.Listen, c.Issuer = "127.0.0.1:9000", "http://127.0.0.1:9000" },
			derived: true,
		},
		{
			name:    "issuer derived from the listen variable",
			env:     map[string]string{"CONSENTRY_LISTEN": "localhost:9001"},
			want:    func(c *provider.Config) { c.Listen, c.Issuer = "localhost:9001", "http://localhost:9001" },
			derived: true,
		},
		{
			name:    "issuer derived from the listen key of the file",
			args:    []string{"--config", fileListenOnly},
			want:    func(c *provider.Config) { c.Listen, c.Issuer = "127.0.0.1:7100", "http://127.0.0.1:7100" },
			derived: true,
		},
		{
			name: "issuer of the file kept when the listen flag changes",
			args: []string{"--config", file, "--listen", "127.0.0.1:9002"},
			want: func(c *provider.Config) {
				c.DSN, c.Issuer, c.Listen, c.TemplatesDir, c.Demo = "sqlite://from-file.db", "https://file.example.com", "127.0.0.1:9002", "/file/templates", true
				c.AccessTokenLifespan = provider.Duration(5 * time.Minute)
				c.OfflineAccess.WithoutPromptConsent, c.RememberConsentFor = provider.OfflinePrompt, provider.Duration(48*time.Hour)
			},
		},
		{
			name: "issuer flag kept when listen changes",
			args: []string{"--listen", "127.0.0.1:9003", "--issuer", "http://127.0.0.1:8080"},
			want: func(c *provider.Config) { c.Listen = "127.0.0.1:9003" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := settingsFor(t, tt.args, tt.env)
			if err != nil {
				t.Fatalf("loadSettings: %v", err)
			}
			want := def
			tt.want(&want)
			if !reflect.DeepEqual(s.cfg, want) {
				t.Errorf("config\n got %+v\nwant %+v", s.cfg, want)
			}
			if s.issuerDerived != tt.derived {
				t.Errorf("issuerDerived = %t; want %t", s.issuerDerived, tt.derived)
			}
		})
	}
}

func TestConfigPrecedenceOfOfflineLifetimesAndGC(t *testing.T) {
	file := writeFile(t, "lifetimes.yaml", `
offline_access:
  idle_lifetime: 240h
  absolute_lifetime: 2160h
  retry_window: 30s
gc_interval: 2h
`)
	partial := writeFile(t, "partial.yaml", "offline_access:\n  retry_window: 5s\n")
	allEnv := map[string]string{
		"CONSENTRY_OFFLINE_IDLE_LIFETIME": "168h", "CONSENTRY_OFFLINE_ABSOLUTE_LIFETIME": "4320h",
		"CONSENTRY_REFRESH_RETRY_WINDOW": "20s", "CONSENTRY_GC_INTERVAL": "30m",
	}
	d := func(v time.Duration) provider.Duration { return provider.Duration(v) }
	tests := []struct {
		name                            string
		args                            []string
		env                             map[string]string
		idle, absolute, retry, interval time.Duration
	}{
		{name: "defaults", idle: 720 * time.Hour, absolute: 8760 * time.Hour, retry: 10 * time.Second, interval: time.Hour},
		{name: "file over defaults", args: []string{"--config", file}, idle: 240 * time.Hour, absolute: 2160 * time.Hour, retry: 30 * time.Second, interval: 2 * time.Hour},
		{name: "environment over file", args: []string{"--config", file}, env: allEnv, idle: 168 * time.Hour, absolute: 4320 * time.Hour, retry: 20 * time.Second, interval: 30 * time.Minute},
		{
			name: "flags over environment",
			args: []string{"--config", file, "--offline-idle-lifetime", "48h", "--offline-absolute-lifetime", "96h", "--refresh-retry-window", "0", "--gc-interval", "15m"},
			env:  allEnv,
			idle: 48 * time.Hour, absolute: 96 * time.Hour, retry: 0, interval: 15 * time.Minute,
		},
		{
			name: "unset flags do not override",
			args: []string{"--config", partial, "--gc-interval", "5m"},
			env:  map[string]string{"CONSENTRY_OFFLINE_IDLE_LIFETIME": "1h"},
			idle: time.Hour, absolute: 8760 * time.Hour, retry: 5 * time.Second, interval: 5 * time.Minute,
		},
		{name: "retry window off by environment", env: map[string]string{"CONSENTRY_REFRESH_RETRY_WINDOW": "0s"}, idle: 720 * time.Hour, absolute: 8760 * time.Hour, interval: time.Hour},
		{name: "retry window of one minute", args: []string{"--refresh-retry-window", "1m"}, idle: 720 * time.Hour, absolute: 8760 * time.Hour, retry: time.Minute, interval: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := settingsFor(t, tt.args, tt.env)
			if err != nil {
				t.Fatalf("loadSettings: %v", err)
			}
			want := provider.DefaultConfig()
			want.OfflineAccess.IdleLifetime, want.OfflineAccess.AbsoluteLifetime = d(tt.idle), d(tt.absolute)
			want.OfflineAccess.RetryWindow, want.GCInterval = d(tt.retry), d(tt.interval)
			if !reflect.DeepEqual(s.cfg, want) {
				t.Errorf("config\n got %+v\nwant %+v", s.cfg, want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	unknownKey := writeFile(t, "unknown.yaml", "dsn: sqlite://x.db\nissuer_url: https://id.example.com\n")
	badDuration := writeFile(t, "duration.yaml", "access_token_lifespan: soon\n")
	badPolicy := writeFile(t, "policy.yaml", "offline_access:\n  without_prompt_consent: always\n")
	unknownOfflineKey := writeFile(t, "offline-key.yaml", "offline_access:\n  without_consent: ignore\n")
	removedKey := writeFile(t, "removed.yaml", "refresh_token_lifespan: 2160h\n")
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{name: "unknown YAML key", args: []string{"--config", unknownKey}, wantErr: `line 2: unknown setting "issuer_url" (did you mean "issuer"?)`},
		{name: "bad duration", args: []string{"--config", badDuration}, wantErr: `line 1: access_token_lifespan: "soon" is not a duration`},
		{name: "missing file", args: []string{"--config", filepath.Join(t.TempDir(), "nope.yaml")}, wantErr: "read config"},
		{name: "bad CONSENTRY_DEMO", env: map[string]string{"CONSENTRY_DEMO": "maybe"}, wantErr: "CONSENTRY_DEMO"},
		{name: "http issuer off loopback", args: []string{"--issuer", "http://id.example.com"}, wantErr: "plain http is only allowed on loopback"},
		{name: "derived issuer off loopback", args: []string{"--listen", "0.0.0.0:8080"}, wantErr: "set it with --issuer"},
		{name: "listen without a host", args: []string{"--listen", "8081"}, wantErr: `listen "8081": must be host:port, such as 127.0.0.1:8081`},
		{name: "admin listen without a host", args: []string{"--admin-listen", "9090"}, wantErr: `admin_listen "9090": must be host:port, such as 127.0.0.1:9090`},
		{name: "bad DSN", env: map[string]string{"CONSENTRY_DSN": "mysql://x"}, wantErr: "dsn: must start with"},
		{name: "bad log format", args: []string{"--log-format", "xml"}, wantErr: "log format"},
		{name: "bad log level", env: map[string]string{"CONSENTRY_LOG_LEVEL": "loud"}, wantErr: "log level"},
		{name: "unknown offline-access policy flag", args: []string{"--offline-access-without-prompt-consent", "allow"}, wantErr: `offline_access.without_prompt_consent "allow": must be ignore, prompt or reject`},
		{name: "unknown offline-access policy variable", env: map[string]string{"CONSENTRY_OFFLINE_ACCESS_WITHOUT_PROMPT_CONSENT": "Ignore"}, wantErr: "must be ignore, prompt or reject"},
		{name: "unknown offline-access policy in the file", args: []string{"--config", badPolicy}, wantErr: "must be ignore, prompt or reject"},
		{name: "unknown offline_access key", args: []string{"--config", unknownOfflineKey}, wantErr: `unknown setting "offline_access.without_consent"`},
		{name: "bad remember-consent-for flag", args: []string{"--remember-consent-for", "a month"}, wantErr: `--remember-consent-for="a month": want a duration`},
		{name: "bad CONSENTRY_REMEMBER_CONSENT_FOR", env: map[string]string{"CONSENTRY_REMEMBER_CONSENT_FOR": "30d"}, wantErr: "CONSENTRY_REMEMBER_CONSENT_FOR"},
		{name: "zero remember-consent-for", args: []string{"--remember-consent-for", "0s"}, wantErr: "remember_consent_for: must be positive"},
		{name: "bad offline-idle-lifetime flag", args: []string{"--offline-idle-lifetime", "30d"}, wantErr: `--offline-idle-lifetime="30d": want a duration`},
		{name: "bad CONSENTRY_OFFLINE_ABSOLUTE_LIFETIME", env: map[string]string{"CONSENTRY_OFFLINE_ABSOLUTE_LIFETIME": "1y"}, wantErr: `CONSENTRY_OFFLINE_ABSOLUTE_LIFETIME="1y"`},
		{name: "bad CONSENTRY_REFRESH_RETRY_WINDOW", env: map[string]string{"CONSENTRY_REFRESH_RETRY_WINDOW": "ten"}, wantErr: "CONSENTRY_REFRESH_RETRY_WINDOW"},
		{name: "bad gc-interval flag", args: []string{"--gc-interval", "hourly"}, wantErr: `--gc-interval="hourly"`},
		{name: "zero offline idle lifetime", args: []string{"--offline-idle-lifetime", "0s"}, wantErr: "offline_access.idle_lifetime: must be positive"},
		{name: "negative offline absolute lifetime", env: map[string]string{"CONSENTRY_OFFLINE_ABSOLUTE_LIFETIME": "-1h"}, wantErr: "offline_access.absolute_lifetime: must be positive"},
		{name: "zero gc interval", env: map[string]string{"CONSENTRY_GC_INTERVAL": "0"}, wantErr: "gc_interval: must be positive"},
		{name: "retry window over a minute", args: []string{"--refresh-retry-window", "61s"}, wantErr: "offline_access.retry_window: must be between 0 (off) and 1m"},
		{name: "negative retry window", env: map[string]string{"CONSENTRY_REFRESH_RETRY_WINDOW": "-1s"}, wantErr: "offline_access.retry_window: must be between 0 (off) and 1m"},
		{name: "unknown login_throttle key", args: []string{"--config", writeFile(t, "throttle-key.yaml", "login_throttle:\n  ban_time: 1m\n")}, wantErr: `unknown setting "login_throttle.ban_time"`},
		{name: "login_throttle lockout longer than its maximum", args: []string{"--config", writeFile(t, "throttle-bad.yaml", "login_throttle:\n  lockout: 2h\n")}, wantErr: "login_throttle.max_lockout"},
		{name: "bad trusted proxy", env: map[string]string{"CONSENTRY_TRUSTED_PROXIES": "10.0.0.0/8,proxy.internal"}, wantErr: `trusted_proxies: "proxy.internal" is neither`},
		{name: "bad trusted proxy prefix", env: map[string]string{"CONSENTRY_TRUSTED_PROXIES": "10.0.0.0/33"}, wantErr: `trusted_proxies: "10.0.0.0/33" is not a CIDR prefix`},
		{name: "removed refresh_token_lifespan key", args: []string{"--config", removedKey}, wantErr: `unknown setting "refresh_token_lifespan"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := settingsFor(t, tt.args, tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v; want one containing %q", err, tt.wantErr)
			}
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Errorf("error %q is not a usage error (exit status 2)", err)
			}
		})
	}
}

func TestUnknownYAMLKeyExitStatus(t *testing.T) {
	path := writeFile(t, "unknown.yaml", "listen: 127.0.0.1:8080\nlisten_addr: 127.0.0.1:9090\n")
	r := runCLI(t, "", nil, "migrate", "--config", path, "--dsn", tempDSN(t))
	if r.code != 2 || !strings.Contains(r.stderr, `line 2: unknown setting "listen_addr"`) {
		t.Fatalf("exit %d, stderr %q; want 2 and the unknown key named", r.code, r.stderr)
	}
}

func TestDerivedIssuer(t *testing.T) {
	tests := []struct{ listen, addr, want string }{
		{"127.0.0.1:0", "127.0.0.1:43210", "http://127.0.0.1:43210"},
		{"localhost:8080", "127.0.0.1:8080", "http://localhost:8080"},
		{"[::1]:0", "[::1]:5555", "http://[::1]:5555"},
	}
	for _, tt := range tests {
		got := derivedIssuer(tt.listen, fakeAddr(tt.addr))
		if got != tt.want {
			t.Errorf("derivedIssuer(%q, %q) = %q; want %q", tt.listen, tt.addr, got, tt.want)
		}
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

// A port alone is a listen address mistake, not an issuer one, although
// the issuer derived from it is not loopback either.
func TestListenWithoutHostBlamesListen(t *testing.T) {
	_, err := settingsFor(t, []string{"--listen", "8081"}, nil)
	if err == nil || strings.Contains(err.Error(), "issuer") || strings.Contains(err.Error(), "plain http") {
		t.Fatalf("error %v; want one about the listen address only", err)
	}
}
