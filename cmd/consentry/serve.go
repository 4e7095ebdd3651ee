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
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/consentry/consentry/handlers"
	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

const serveHelp = `
Run the provider. SQLite databases are migrated automatically. PostgreSQL
databases are not: run 'consentry migrate' as a deploy step. Until it has
run, serve listens but is not ready: /health/ready answers 503 "migrations
pending" and every other request 503, and it starts serving by itself once
the schema is up to date.

With --admin-listen ADDR (CONSENTRY_ADMIN_LISTEN, admin_listen) a second
listener serves /metrics (Prometheus), /health/alive and /health/ready;
keep it on loopback or a private network.

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
in flight.

Unless GOGC is set, the Go garbage collector runs when the heap has grown to
five times what survived the last collection (GOGC=400) rather than twice.`

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

// serveGCPercent is serve's GOGC unless the environment sets one. A token
// request allocates about 30 KB and keeps almost nothing, so the live heap
// stays near 3 MB; Go's default (GOGC=100) then collected 43 times a second
// under client-credentials load, and each collection's fixed cost (stopping
// the world, scanning every goroutine's stack) added up. 400 collects a
// quarter as often; RSS under load grew from 58 to 75 MiB.
const serveGCPercent = 400

// applyGCDefaults sets serve's GOGC unless the deployer chose one.
func applyGCDefaults(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
}

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
	applyGCDefaults(e.getenv)
	warnUnencryptedAtRest(logger, cfg)

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
	var adminLn net.Listener
	if cfg.AdminListen != "" {
		if adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			return fmt.Errorf("listen on %s (admin): %w", cfg.AdminListen, err)
		}
		defer adminLn.Close()
	}

	// One serve per SQLite file: a second is refused before it touches
	// the database (and the demo seed).
	if db, ok := storage.SQLiteFile(cfg.DSN); ok {
		lock, err := lockSQLiteForServe(db)
		if err != nil {
			return err
		}
		defer lock.release()
	}
	logger.Info("opening the database", "database", storage.DescribeDSN(cfg.DSN))
	st, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	st.ConfigurePool(storage.PoolOptions{
		MaxOpenConns:    cfg.Database.MaxOpenConns,
		MaxIdleConns:    cfg.Database.MaxIdleConns,
		ConnMaxLifetime: cfg.Database.ConnMaxLifetime.Std(),
		ConnMaxIdleTime: cfg.Database.ConnMaxIdleTime.Std(),
	})
	st.SetQueryTimeout(cfg.Database.QueryTimeout.Std())
	metrics := handlers.NewMetrics(st.SQLDB())

	// The public server starts with a handler that is not ready, swapped for
	// the provider's once it is built; it listens before that only while
	// migrations are pending.
	front := &switchHandler{}
	front.set(handlers.NewUnavailable(st))
	run := &servers{logger: logger}
	defer func() { _ = run.shutdown(ctx) }() // on the error paths; run.serve shuts down otherwise
	if adminLn != nil {
		run.start(newHTTPServer(handlers.NewAdmin(metrics, st), logger), adminLn)
		fmt.Fprintf(e.stdout, "metrics on http://%s/metrics\n", adminLn.Addr())
		logger.Info("admin listener serving", "addr", adminLn.Addr().String())
	}
	publicStarted := false
	startPublic := func() {
		publicStarted = true
		run.start(newHTTPServer(front, logger), ln)
		fmt.Fprintf(e.stdout, "listening on http://%s\n", ln.Addr())
		logger.Info("serving", "addr", ln.Addr().String(), "issuer", cfg.Issuer)
	}
	migrated, err := waitForMigrations(ctx, st, logger, startPublic)
	if err != nil {
		return err
	}
	if !migrated {
		return run.serve(ctx) // stopped while waiting
	}

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

	// Signing keys: reload every key_propagation_delay/4 to pick up keys
	// rotated elsewhere, and rotate when key_rotation_interval is set.
	// Stopped like the collector.
	keysCtx, stopKeys := context.WithCancel(ctx)
	keysDone := make(chan struct{})
	go func() {
		defer close(keysDone)
		p.RunKeyMaintenance(keysCtx)
	}()
	defer func() {
		stopKeys()
		<-keysDone
	}()

	p.Observer = metrics
	h, err := handlers.New(p, handlers.WithMetrics(metrics))
	if err != nil {
		return fmt.Errorf("start handlers: %w", err)
	}
	front.set(h)
	if publicStarted {
		logger.Info("migrations applied: ready", "issuer", cfg.Issuer)
	} else {
		startPublic()
	}
	return run.serve(ctx)
}

// warnUnencryptedAtRest warns, at every start, of a production issuer
// (https) without a secrets key: the signing keys and server secrets are
// then in the database in the clear, and a copy of it (a backup, a replica)
// is enough to sign ID tokens and forge access tokens and session cookies.
func warnUnencryptedAtRest(logger *slog.Logger, cfg provider.Config) {
	if cfg.SecretsKey == "" && strings.HasPrefix(cfg.Issuer, "https://") {
		logger.Warn("no secrets key: signing keys and server secrets are stored unencrypted, so anyone with a copy of the database can sign tokens as this provider; set CONSENTRY_SECRETS_KEY (secrets_key) to at least 32 random bytes",
			"issuer", cfg.Issuer)
	}
}

// migrationPoll is how often a serve waiting for 'consentry migrate'
// checks the schema again.
const migrationPoll = 2 * time.Second

// waitForMigrations returns once the schema has no pending migrations
// (true), or when ctx ends first (false). While it waits it calls
// onPending once, to serve "not ready".
func waitForMigrations(ctx context.Context, st storage.Store, logger *slog.Logger, onPending func()) (bool, error) {
	n, err := st.PendingMigrations(ctx)
	if err != nil {
		return false, err
	}
	if n == 0 {
		return true, nil
	}
	logger.Warn("the database schema lacks migrations: run 'consentry migrate'; not ready until then", "pending", n)
	onPending()
	tick := time.NewTicker(migrationPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case <-tick.C:
		}
		n, err := st.PendingMigrations(ctx)
		switch {
		case err != nil:
			logger.Warn("check schema migrations", "err", err)
		case n == 0:
			return true, nil
		}
	}
}

func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// switchHandler serves the handler last set: "not ready" until the
// provider is built.
type switchHandler struct{ h atomic.Pointer[http.Handler] }

func (s *switchHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// servers are the HTTP servers of serve (public and admin): started one by
// one, stopped together.
type servers struct {
	logger  *slog.Logger
	list    []*http.Server
	errc    chan error
	running int // Serve calls not yet returned
	stopped bool
}

func (s *servers) start(srv *http.Server, ln net.Listener) {
	if s.errc == nil {
		s.errc = make(chan error, 2) // one per server: public and admin
	}
	s.list = append(s.list, srv)
	s.running++
	go func() { s.errc <- srv.Serve(ln) }()
}

// serve waits until ctx ends or a server fails, then shuts every server
// down gracefully.
func (s *servers) serve(ctx context.Context) error {
	var serveErr error
	if s.running > 0 {
		select {
		case err := <-s.errc:
			s.running--
			serveErr = fmt.Errorf("serve: %w", err)
		case <-ctx.Done():
		}
	} else {
		<-ctx.Done()
	}
	return errors.Join(serveErr, s.shutdown(ctx))
}

// shutdown stops every server, waiting up to shutdownTimeout for requests
// in flight. Calls after the first do nothing.
func (s *servers) shutdown(ctx context.Context) error {
	if s.stopped || len(s.list) == 0 {
		return nil
	}
	s.stopped = true
	s.logger.Info("shutting down", "timeout", shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	errs := make([]error, len(s.list))
	var wg sync.WaitGroup
	for i, srv := range s.list {
		wg.Go(func() {
			if err := srv.Shutdown(shutdownCtx); err != nil {
				_ = srv.Close()
				errs[i] = fmt.Errorf("shut down: %w", err)
			}
		})
	}
	wg.Wait()
	for ; s.running > 0; s.running-- {
		if err := <-s.errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serve: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.logger.Info("stopped")
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
