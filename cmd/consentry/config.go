package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/handlers"
	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// globalFlags are the settings every command accepts.
type globalFlags struct {
	config, dsn, issuer, listen, secretsKey, templatesDir string
	adminListen                                           string
	demo                                                  bool
	logFormat, logLevel                                   string
	offlineWithoutPromptConsent, rememberConsentFor       string
	offlineIdleLifetime, offlineAbsoluteLifetime          string
	refreshRetryWindow, gcInterval                        string
	// omitted names the global flags the command defines for itself
	// (command.ownFlags): setting them on its command line does not touch
	// the configuration.
	omitted []string
}

var globalFlagNames = []string{
	"config", "dsn", "issuer", "listen", "admin-listen", "secrets-key", "templates-dir", "demo", "log-format", "log-level",
	"offline-access-without-prompt-consent", "remember-consent-for",
	"offline-idle-lifetime", "offline-absolute-lifetime", "refresh-retry-window", "gc-interval",
}

func isGlobalFlag(name string) bool {
	for _, n := range globalFlagNames {
		if n == name {
			return true
		}
	}
	return false
}

// addGlobalFlags registers the global flags on fs. Defaults are left empty:
// whether a flag was set is read with fs.Visit, and the defaults come from
// provider.DefaultConfig, so that file and environment can sit in between.
func addGlobalFlags(fs *flag.FlagSet) *globalFlags {
	g := &globalFlags{}
	fs.StringVar(&g.config, "config", "", "YAML configuration `FILE`; unknown keys are an error (env CONSENTRY_CONFIG)")
	fs.StringVar(&g.dsn, "dsn", "", "`DSN` of the database: sqlite://PATH or postgres://... (env CONSENTRY_DSN; default sqlite://consentry.db)")
	fs.StringVar(&g.issuer, "issuer", "", "public base `URL` of the provider (env CONSENTRY_ISSUER; default http://127.0.0.1:8080,\nor http://LISTEN when only the listen address is set)")
	fs.StringVar(&g.listen, "listen", "", "`ADDR` to listen on (host:port) (env CONSENTRY_LISTEN; default 127.0.0.1:8080)")
	fs.StringVar(&g.adminListen, "admin-listen", "", "`ADDR` of the admin listener serving /metrics and the health probes;\nkeep it private (env CONSENTRY_ADMIN_LISTEN; default: off)")
	fs.StringVar(&g.secretsKey, "secrets-key", "", "`KEY` that encrypts signing keys and server secrets at rest;\nprefer the environment variable CONSENTRY_SECRETS_KEY")
	fs.StringVar(&g.templatesDir, "templates-dir", "", "`DIR` of templates replacing the built-in ones (env CONSENTRY_TEMPLATES_DIR)")
	fs.BoolVar(&g.demo, "demo", false, "seed a demo user and client and serve the /demo page (env CONSENTRY_DEMO)")
	fs.StringVar(&g.logFormat, "log-format", "", "log `FORMAT`: text or json (env CONSENTRY_LOG_FORMAT; default text)")
	fs.StringVar(&g.logLevel, "log-level", "", "log `LEVEL`: debug, info, warn or error (env CONSENTRY_LOG_LEVEL;\ndefault info for serve, warn otherwise)")
	fs.StringVar(&g.offlineWithoutPromptConsent, "offline-access-without-prompt-consent", "", "`POLICY` for offline_access requested without prompt=consent and without\na standing agreement: ignore (no refresh token), prompt (show the consent\nscreen) or reject (error consent_required)\n(env CONSENTRY_OFFLINE_ACCESS_WITHOUT_PROMPT_CONSENT; default ignore)")
	fs.StringVar(&g.rememberConsentFor, "remember-consent-for", "", "`DURATION` a remembered consent covers later requests, never offline_access\n(env CONSENTRY_REMEMBER_CONSENT_FOR; default 720h)")
	fs.StringVar(&g.offlineIdleLifetime, "offline-idle-lifetime", "", "`DURATION` after which offline access that was not used ends\n(env CONSENTRY_OFFLINE_IDLE_LIFETIME; default 720h)")
	fs.StringVar(&g.offlineAbsoluteLifetime, "offline-absolute-lifetime", "", "`DURATION` after the grant at which offline access ends, however often used\n(env CONSENTRY_OFFLINE_ABSOLUTE_LIFETIME; default 8760h)")
	fs.StringVar(&g.refreshRetryWindow, "refresh-retry-window", "", "`DURATION` after a refresh during which the same refresh token gets the same\nanswer again instead of counting as reuse; 0 turns it off, at most 1m\n(env CONSENTRY_REFRESH_RETRY_WINDOW; default 10s)")
	fs.StringVar(&g.gcInterval, "gc-interval", "", "`DURATION` between deletions of expired codes, tokens and requests by serve\n(env CONSENTRY_GC_INTERVAL; default 1h)")
	return g
}

// addGlobalFlagsExcept is addGlobalFlags for a command that defines the
// flags named in own itself: those global flags are left out of fs.
func addGlobalFlagsExcept(fs *flag.FlagSet, own []string) *globalFlags {
	all := flag.NewFlagSet("", flag.ContinueOnError)
	g := addGlobalFlags(all)
	g.omitted = own
	all.VisitAll(func(f *flag.Flag) {
		if !slices.Contains(own, f.Name) {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
	return g
}

// settings is the resolved configuration of one command invocation.
type settings struct {
	cfg provider.Config
	// issuerDerived is set when the issuer was set nowhere and follows the
	// listen address, so serve can put in the port actually bound.
	issuerDerived bool
	logFormat     string
	logLevel      string // empty: the command's default
}

// loadSettings layers defaults < YAML file < environment < flags. Only
// flags actually given on the command line (fs.Visit) override.
func loadSettings(fs *flag.FlagSet, g *globalFlags, getenv func(string) string) (settings, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = !slices.Contains(g.omitted, f.Name) })

	s := settings{cfg: provider.DefaultConfig(), logFormat: "text"}
	cfg := &s.cfg
	var issuerSet, listenSet bool

	path := getenv("CONSENTRY_CONFIG")
	if set["config"] {
		path = g.config
	}
	if path != "" {
		if err := provider.LoadConfigFile(path, cfg); err != nil {
			return s, &usageError{msg: err.Error()}
		}
		// Decoding again into an empty Config tells which keys the file set,
		// even when a value equals its default.
		var fromFile provider.Config
		if err := provider.LoadConfigFile(path, &fromFile); err != nil {
			return s, &usageError{msg: err.Error()}
		}
		issuerSet, listenSet = fromFile.Issuer != "", fromFile.Listen != ""
	}

	for _, v := range []struct {
		env  string
		dst  *string
		seen *bool
	}{
		{"CONSENTRY_DSN", &cfg.DSN, nil},
		{"CONSENTRY_ISSUER", &cfg.Issuer, &issuerSet},
		{"CONSENTRY_LISTEN", &cfg.Listen, &listenSet},
		{"CONSENTRY_ADMIN_LISTEN", &cfg.AdminListen, nil},
		{"CONSENTRY_SECRETS_KEY", &cfg.SecretsKey, nil},
		{"CONSENTRY_TEMPLATES_DIR", &cfg.TemplatesDir, nil},
		{"CONSENTRY_LOG_FORMAT", &s.logFormat, nil},
		{"CONSENTRY_LOG_LEVEL", &s.logLevel, nil},
		{"CONSENTRY_OFFLINE_ACCESS_WITHOUT_PROMPT_CONSENT", &cfg.OfflineAccess.WithoutPromptConsent, nil},
	} {
		if val := getenv(v.env); val != "" {
			*v.dst = val
			if v.seen != nil {
				*v.seen = true
			}
		}
	}
	if val := getenv("CONSENTRY_TRUSTED_PROXIES"); val != "" {
		// Comma-separated; validated with the rest of the configuration.
		cfg.TrustedProxies = nil
		for _, p := range strings.Split(val, ",") {
			if p = strings.TrimSpace(p); p != "" {
				cfg.TrustedProxies = append(cfg.TrustedProxies, p)
			}
		}
	}
	if val := getenv("CONSENTRY_DEMO"); val != "" {
		b, err := strconv.ParseBool(val)
		if err != nil {
			return s, usagef("CONSENTRY_DEMO=%q: want true or false", val)
		}
		cfg.Demo = b
	}
	durations := []struct {
		env, flag string
		flagValue *string
		dst       *provider.Duration
	}{
		{"CONSENTRY_REMEMBER_CONSENT_FOR", "remember-consent-for", &g.rememberConsentFor, &cfg.RememberConsentFor},
		{"CONSENTRY_OFFLINE_IDLE_LIFETIME", "offline-idle-lifetime", &g.offlineIdleLifetime, &cfg.OfflineAccess.IdleLifetime},
		{"CONSENTRY_OFFLINE_ABSOLUTE_LIFETIME", "offline-absolute-lifetime", &g.offlineAbsoluteLifetime, &cfg.OfflineAccess.AbsoluteLifetime},
		{"CONSENTRY_REFRESH_RETRY_WINDOW", "refresh-retry-window", &g.refreshRetryWindow, &cfg.OfflineAccess.RetryWindow},
		{"CONSENTRY_GC_INTERVAL", "gc-interval", &g.gcInterval, &cfg.GCInterval},
	}
	for _, v := range durations {
		if val := getenv(v.env); val != "" {
			d, err := parseDuration(v.env, val)
			if err != nil {
				return s, err
			}
			*v.dst = d
		}
	}

	for name, apply := range map[string]func(){
		"dsn":           func() { cfg.DSN = g.dsn },
		"issuer":        func() { cfg.Issuer, issuerSet = g.issuer, true },
		"listen":        func() { cfg.Listen, listenSet = g.listen, true },
		"admin-listen":  func() { cfg.AdminListen = g.adminListen },
		"secrets-key":   func() { cfg.SecretsKey = g.secretsKey },
		"templates-dir": func() { cfg.TemplatesDir = g.templatesDir },
		"demo":          func() { cfg.Demo = g.demo },
		"log-format":    func() { s.logFormat = g.logFormat },
		"log-level":     func() { s.logLevel = g.logLevel },
		"offline-access-without-prompt-consent": func() {
			cfg.OfflineAccess.WithoutPromptConsent = g.offlineWithoutPromptConsent
		},
	} {
		if set[name] {
			apply()
		}
	}
	for _, v := range durations {
		if set[v.flag] {
			d, err := parseDuration("--"+v.flag, *v.flagValue)
			if err != nil {
				return s, err
			}
			*v.dst = d
		}
	}

	if !issuerSet && listenSet {
		cfg.Issuer = "http://" + cfg.Listen
		s.issuerDerived = true
	}
	if err := cfg.Validate(); err != nil {
		if s.issuerDerived && strings.HasPrefix(err.Error(), "issuer ") {
			return s, usagef("invalid configuration: %v (the issuer was derived from the listen address; set it with --issuer or CONSENTRY_ISSUER)", err)
		}
		return s, usagef("invalid configuration: %v", err)
	}
	if s.logFormat != "text" && s.logFormat != "json" {
		return s, usagef("log format %q: want text or json", s.logFormat)
	}
	if s.logLevel != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(s.logLevel)); err != nil {
			return s, usagef("log level %q: want debug, info, warn or error", s.logLevel)
		}
	}
	return s, nil
}

// parseDuration reads a Go duration given by the environment variable or
// flag named what.
func parseDuration(what, val string) (provider.Duration, error) {
	d, err := time.ParseDuration(val)
	if err != nil {
		return 0, usagef("%s=%q: want a duration such as 720h or 30m", what, val)
	}
	return provider.Duration(d), nil
}

// logger returns the logger for a command, writing to w; defaultLevel
// applies when no level was configured.
func (s settings) logger(w io.Writer, defaultLevel slog.Level) *slog.Logger {
	level := defaultLevel
	if s.logLevel != "" {
		_ = level.UnmarshalText([]byte(s.logLevel)) // validated by loadSettings
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if s.logFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	// Every line logged while serving a request carries its request_id.
	return slog.New(handlers.NewLogHandler(h))
}

func isSQLite(dsn string) bool { return strings.HasPrefix(dsn, "sqlite://") }

// openStore opens the database. SQLite databases are migrated on open: they
// serve a single instance, so there is no separate deployment step to forget.
// PostgreSQL is migrated only by 'consentry migrate': with several
// instances, migrating is a deploy step.
func openStore(ctx context.Context, cfg provider.Config, logger *slog.Logger) (*storage.GormStore, error) {
	// The store's errors already say "open database", "migrate database" and
	// so on, and never contain the DSN, which may carry a password.
	st, err := storage.Open(ctx, cfg.DSN, logger)
	if err != nil {
		return nil, err
	}
	if isSQLite(cfg.DSN) {
		if err := st.Migrate(ctx); err != nil {
			return nil, errors.Join(err, st.Close())
		}
	}
	return st, nil
}

// closeStore closes st and adds a failure to *err.
func closeStore(st *storage.GormStore, err *error) {
	if cerr := st.Close(); cerr != nil {
		*err = errors.Join(*err, cerr)
	}
}

// setup is the common start of commands that use the database: load the
// settings, open the store with a logger on stderr.
func setup(ctx context.Context, e *env, fs *flag.FlagSet, g *globalFlags) (settings, *storage.GormStore, error) {
	s, err := loadSettings(fs, g, e.getenv)
	if err != nil {
		return s, nil, err
	}
	st, err := openStore(ctx, s.cfg, s.logger(e.stderr, slog.LevelWarn))
	return s, st, err
}
