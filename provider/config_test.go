package provider

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"https issuer", func(c *Config) { c.Issuer = "https://id.example.com" }, ""},
		{"plain http off loopback", func(c *Config) { c.Issuer = "http://id.example.com" }, "only allowed on loopback"},
		{"http on a name that begins with 127.", func(c *Config) { c.Issuer = "http://127.example.com" }, "only allowed on loopback"},
		{"http on 127.0.0.2", func(c *Config) { c.Issuer = "http://127.0.0.2:8080" }, ""},
		{"http on [::1]", func(c *Config) { c.Issuer = "http://[::1]:8080" }, ""},
		{"issuer with a path", func(c *Config) { c.Issuer = "https://example.com/idp" }, ""},
		{"issuer with a path and a slash", func(c *Config) { c.Issuer = "https://example.com/a/idp/" }, ""},
		{"issuer with a dot segment", func(c *Config) { c.Issuer = "https://example.com/a/../idp" }, "its path must be"},
		{"issuer with an escaped path", func(c *Config) { c.Issuer = "https://example.com/i%2Fdp" }, "its path must be"},
		{"issuer with an empty segment", func(c *Config) { c.Issuer = "https://example.com//idp" }, "its path must be"},
		{"issuer with user information", func(c *Config) { c.Issuer = "https://u:p@example.com" }, "user information"},
		{"relative issuer", func(c *Config) { c.Issuer = "/id" }, "absolute"},
		{"issuer with query", func(c *Config) { c.Issuer = "https://id.example.com/?a=b" }, "query"},
		{"unknown database", func(c *Config) { c.DSN = "mysql://x" }, "dsn"},
		{"zero lifespan", func(c *Config) { c.AccessTokenLifespan = 0 }, "access_token_lifespan"},
		{"zero session idle lifetime", func(c *Config) { c.SessionIdleLifetime = 0 }, "session_idle_lifetime"},
		{"token concurrency set", func(c *Config) { c.TokenConcurrency = 4 }, ""},
		{"negative token concurrency", func(c *Config) { c.TokenConcurrency = -1 }, "token_concurrency"},
		{"rsa signer go", func(c *Config) { c.RSASigner = RSASignerGo }, ""},
		{"rsa signer auto", func(c *Config) { c.RSASigner = RSASignerAuto }, ""},
		{"unknown rsa signer", func(c *Config) { c.RSASigner = "openssl" }, "rsa_signer"},
		{"secrets key of 32 bytes", func(c *Config) { c.SecretsKey = strings.Repeat("k", 32) }, ""},
		{"secrets key of 31 bytes", func(c *Config) { c.SecretsKey = strings.Repeat("k", 31) }, "secrets_key: 31 bytes is too short"},
		{"no secrets key", func(c *Config) { c.SecretsKey = "" }, ""},
		{"trusted proxies", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "::1"} }, ""},
		{"trusted proxy not an address", func(c *Config) { c.TrustedProxies = []string{"proxy.internal"} }, "trusted_proxies"},
		{"trusted proxy bad prefix", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/40"} }, "trusted_proxies"},
		{"negative password hash concurrency", func(c *Config) { c.PasswordHashConcurrency = -1 }, "password_hash_concurrency"},
		{"no login failures allowed", func(c *Config) { c.LoginThrottle.MaxFailures = 0 }, "login_throttle"},
		{"no address failures allowed", func(c *Config) { c.LoginThrottle.AddressMaxFailures = 0 }, "login_throttle"},
		{"zero find time", func(c *Config) { c.LoginThrottle.FindTime = 0 }, "login_throttle.find_time"},
		{"lockout over a day", func(c *Config) { c.LoginThrottle.MaxLockout = Duration(25 * time.Hour) }, "login_throttle.max_lockout"},
		{"max lockout shorter than lockout", func(c *Config) { c.LoginThrottle.Lockout = Duration(2 * time.Hour) }, "login_throttle.max_lockout: must not be shorter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadConfigFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("issuer: https://id.example.com\naccess_token_lifespan: 5m\nsession_idle_lifetime: 2h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	if err := LoadConfigFile(good, &c); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://id.example.com" || c.AccessTokenLifespan.Std() != 5*time.Minute || c.SessionIdleLifetime.Std() != 2*time.Hour || c.Listen != "127.0.0.1:8080" {
		t.Fatalf("config = %+v", c)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("isuer: https://typo.example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := LoadConfigFile(bad, &c); err == nil || !strings.Contains(err.Error(), "isuer") {
		t.Fatalf("unknown key not rejected: %v", err)
	}

	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := LoadConfigFile(empty, &c); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}

func TestBasePath(t *testing.T) {
	for issuer, want := range map[string]string{
		"https://example.com": "", "https://example.com/": "", "https://example.com/idp": "/idp", "https://example.com/a/idp/": "/a/idp",
	} {
		c := Config{Issuer: issuer}
		if got := c.BasePath(); got != want {
			t.Errorf("BasePath of %q = %q; want %q", issuer, got, want)
		}
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.1.2.3": true, "::1": true, "[::1]": false,
		"127.example.com": false, "127.0.0.1.example.com": false, "localhost.example.com": false,
		"example.com": false, "10.0.0.1": false, "::ffff:127.0.0.1": true, "": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v; want %v", host, got, want)
		}
	}
}

func TestConfigFileMistakes(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"misspelt key", "issuer: https://id.example.com\ndns: sqlite://x.db\n", `consentry.yaml: line 2: unknown setting "dns" (did you mean "dsn"?)`},
		{"misspelt nested key", "offline_access:\n  idle_lifetme: 1h\n", `consentry.yaml: line 2: unknown setting "offline_access.idle_lifetme" (did you mean "offline_access.idle_lifetime"?)`},
		{"unknown key far from any", "colour_scheme: dark\n", `consentry.yaml: line 1: unknown setting "colour_scheme"`},
		{"duration typo", "listen: 127.0.0.1:8080\ngc_interval: 1 hour\n", `consentry.yaml: line 2: gc_interval: "1 hour" is not a duration (use Go syntax: 90s, 15m, 1h)`},
		{"nested duration typo", "login_throttle:\n  lockout: 5 minutes\n", `consentry.yaml: line 2: login_throttle.lockout: "5 minutes" is not a duration`},
		{"duration without unit", "access_token_lifespan: 900\n", `access_token_lifespan: "900" is not a duration`},
		{"not a mapping", "- issuer\n", "must be a mapping of settings"},
		{"YAML syntax", "issuer: [\n", "consentry.yaml: line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "consentry.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c := DefaultConfig()
			err := LoadConfigFile(path, &c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v; want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "provider.") || strings.Contains(err.Error(), "type ") {
				t.Errorf("error %q names a Go type", err)
			}
		})
	}
}
