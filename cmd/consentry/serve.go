package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/consentry/consentry/handlers"
	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

const serveHelp = `
Run the provider. SQLite databases are migrated automatically; PostgreSQL
databases are migrated too for now, but run 'consentry migrate' before
starting a new version so that instances never race on the schema.

With --demo (CONSENTRY_DEMO=true) a demo user and a public client are created
on first start, and their credentials are printed once; the /demo page then
walks through a sign-in with offline access.

Before listening, the templates (--templates-dir, with every theme in it)
are checked as 'consentry templates check' does; a broken template stops
start-up with a message naming it, and exit status 1.

Every gc_interval (--gc-interval, default 1h), starting at start-up, expired
authorization codes, tokens and pending requests are deleted in small
batches; 'consentry gc' does the same once.

Stops gracefully on SIGINT or SIGTERM, waiting up to 15 seconds for requests
in flight.`

// HTTP server limits: generous for browsers and token requests, short enough
// that slow clients cannot hold connections open.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	shutdownTimeout   = 15 * time.Second
)

func runServe(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	s, err := loadSettings(fs, g, e.getenv)
	if err != nil {
		return err
	}
	logger := s.logger(e.stderr, slog.LevelInfo)
	cfg := s.cfg

	// A broken template stops start-up before the port, the database and
	// the demo seed are touched. handlers.New loads the templates again;
	// checking costs milliseconds.
	if _, err := loadTemplates(cfg.TemplatesDir); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Listen before anything else but the templates check: the address is
	// taken or not, and with port 0 the real port is known before the
	// issuer is fixed.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	defer ln.Close() // after Serve it is already closed; the error is moot
	if s.issuerDerived {
		cfg.Issuer = derivedIssuer(cfg.Listen, ln.Addr())
	}

	// TODO: on PostgreSQL, require that 'consentry migrate' was run (a schema
	// version check) instead of migrating from every instance at start-up.
	st, err := openStore(ctx, cfg, logger, true)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	if cfg.Demo {
		if err := seedDemo(ctx, e.stdout, st, cfg); err != nil {
			return err
		}
	}

	p, err := provider.New(ctx, cfg, st, logger, time.Now)
	if err != nil {
		return fmt.Errorf("start provider: %w", err)
	}

	// The collector stops with the server, and before the store is closed
	// (deferred calls run last-in, first-out).
	gcCtx, stopGC := context.WithCancel(ctx)
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		provider.RunGarbageCollector(gcCtx, st, cfg.GCInterval.Std(), cfg.OfflineAccess.RetryWindow.Std(), time.Now, logger.With("component", "gc"))
	}()
	defer func() {
		stopGC()
		<-gcDone
	}()

	h, err := handlers.New(p)
	if err != nil {
		return fmt.Errorf("start handlers: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return serveUntilDone(ctx, e.stdout, logger, srv, ln, cfg.Issuer)
}

// serveUntilDone serves on ln until ctx ends, then shuts down gracefully.
func serveUntilDone(ctx context.Context, stdout io.Writer, logger *slog.Logger, srv *http.Server, ln net.Listener, issuer string) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	logger.Info("serving", "addr", ln.Addr().String(), "issuer", issuer)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// derivedIssuer is http://LISTEN with the port actually bound, which differs
// from the configured one for port 0. The host stays as configured, so that
// "localhost:8080" keeps a localhost issuer.
func derivedIssuer(listen string, addr net.Addr) string {
	host, _, err := net.SplitHostPort(listen)
	_, port, perr := net.SplitHostPort(addr.String())
	if err != nil || perr != nil {
		return "http://" + listen
	}
	return "http://" + net.JoinHostPort(host, port)
}

// seedDemo creates the demo user and client if missing and prints how to use them.
func seedDemo(ctx context.Context, stdout io.Writer, st storage.Store, cfg provider.Config) error {
	secrets, err := provider.LoadServerSecrets(ctx, st, cfg.SecretsKey, time.Now)
	if err != nil {
		return fmt.Errorf("load server secrets: %w", err)
	}
	hasher := provider.ClientSecretHasher{Key: secrets.ClientSecretKey}
	creds, created, err := provider.SeedDemo(ctx, st, hasher, cfg.Issuer, time.Now())
	if err != nil {
		return fmt.Errorf("seed demo: %w", err)
	}
	printDemo(stdout, cfg.Issuer, creds, created)
	return nil
}

// printDemo tells the person who started the demo where to go and, on the
// first start only, how to sign in.
func printDemo(w io.Writer, issuer string, creds provider.DemoCredentials, created bool) {
	base := strings.TrimSuffix(issuer, "/")
	fmt.Fprintf(w, "\nDemo: open %s/demo\n", base)
	if created {
		fmt.Fprintf(w, "  username:  %s\n", creds.Username)
		fmt.Fprintf(w, "  password:  %s   (shown once: note it now)\n", creds.Password)
	} else {
		fmt.Fprintf(w, "  The demo user %q already exists; its password was shown at the first start.\n", creds.Username)
		fmt.Fprintln(w, "  To reset it, delete the database.")
	}
	fmt.Fprintf(w, "  client id: %s (public, PKCE)\n", creds.ClientID)
	fmt.Fprintf(w, "  discovery: %s%s\n\n", base, "/.well-known/openid-configuration")
}
