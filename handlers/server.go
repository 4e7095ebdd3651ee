package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/templates"
)

// Option configures New.
type Option func(*options)

type options struct {
	metrics *Metrics
}

// WithMetrics counts and times every request in m. Set p.Observer = m too,
// for the grant and refresh counters.
func WithMetrics(m *Metrics) Option {
	return func(o *options) { o.metrics = m }
}

// New returns the HTTP handler serving every endpoint of p. Every request
// gets an id (see RequestID), which every line it logs carries.
func New(p *provider.Provider, opts ...Option) (http.Handler, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	trusted, err := provider.ParseTrustedProxies(p.Config.TrustedProxies)
	if err != nil {
		return nil, err
	}
	lib, err := LoadTemplates(p.Config.TemplatesDir)
	if err != nil {
		return nil, err
	}
	logger := slog.New(NewLogHandler(p.Logger.Handler()))
	pages := &Pages{Templates: lib, Logger: logger}
	warnMissingThemes(p, lib)
	sessions := NewSessions(p, p.Secrets.CookieHash, p.Secrets.CookieBlock, p.Config.SessionLifespan.Std(), p.Config.SecureCookies())
	// An issuer with a path (https://example.com/idp) serves everything
	// under it: links, static files and cookies too.
	base := p.Config.BasePath()
	lib.SetBasePath(base)
	sessions.basePath = base

	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pages.Error(w, r, http.StatusNotFound, errorNotFound)
	})
	r := mux.NewRouter()
	(&Protocol{Provider: p, Logger: logger}).Mount(r)
	(&Authorize{Provider: p, Pages: pages, Sessions: sessions, Logger: logger}).Mount(r)
	(&Account{Provider: p, Pages: pages, Sessions: sessions, Logger: logger}).Mount(r)
	(&Device{Provider: p, Pages: pages, Sessions: sessions, Logger: logger}).Mount(r)
	(&Health{Store: p.Store}).Mount(r)
	if p.Config.Demo {
		(&Demo{Provider: p, Pages: pages, Sessions: sessions, Logger: logger}).Mount(r)
	}
	r.PathPrefix(templates.StaticPrefix).Handler(staticFiles(lib))
	r.NotFoundHandler = notFound
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pages.Error(w, r, http.StatusMethodNotAllowed, errorBadRequest)
	})
	h := recoverPanics(logger, pages, logRequests(logger, r))
	if o.metrics != nil {
		r.Use(recordRoute)
		h = o.metrics.instrument(h)
	}
	// Outermost but for the request id: every handler, the access log and
	// the metrics see the client behind the proxies.
	return withRequestID(withClientAddress(trusted, underBasePath(base, notFound, h))), nil
}

// NewAdmin returns the handler of the admin listener: /metrics,
// /health/alive and /health/ready. Serve it on loopback or a private
// network only.
func NewAdmin(m *Metrics, store ReadinessStore) http.Handler {
	r := mux.NewRouter()
	r.Handle("/metrics", m.Handler()).Methods(http.MethodGet)
	(&Health{Store: store}).Mount(r)
	return r
}

// NewUnavailable returns the handler of a server that cannot serve yet
// (its database lacks migrations): the health probes answer, /health/ready
// 503 with the reason, and every other request 503 temporarily_unavailable.
func NewUnavailable(store ReadinessStore) http.Handler {
	r := mux.NewRouter()
	(&Health{Store: store, Starting: true}).Mount(r)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeUnavailable(w)
	})
	r.MethodNotAllowedHandler = r.NotFoundHandler
	return withRequestID(r)
}

// LoadTemplates loads the pages (with the override directory and its
// themes, when dir is set) and renders every page of every theme in every
// language with sample data, so a broken template stops start-up with a
// message naming it instead of failing the first user.
func LoadTemplates(dir string) (*templates.Library, error) {
	lib, err := templates.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	if err := lib.Check(SampleViews()); err != nil {
		return nil, fmt.Errorf("check templates: %w", err)
	}
	return lib, nil
}

// warnMissingThemes logs clients whose theme the templates directory lacks:
// their pages fall back to the deployment's, which works but is likely not
// what the deployer meant.
func warnMissingThemes(p *provider.Provider, lib *templates.Library) {
	ctx := context.Background()
	clients, err := p.Clients(ctx)
	if err != nil {
		p.Logger.WarnContext(ctx, "list clients to check their themes", "err", err)
		return
	}
	for _, c := range clients {
		if c.Theme != "" && !lib.HasTheme(c.Theme) {
			p.Logger.WarnContext(ctx, "client theme not found in the templates directory; using the default pages", "client_id", c.ID, "theme", c.Theme)
		}
	}
}

// staticFiles serves the deployment's static files under /static/ and a
// theme's under /static/t/NAME/.
func staticFiles(lib *templates.Library) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, templates.StaticPrefix)
		theme := ""
		if after, ok := strings.CutPrefix(rest, "t/"); ok {
			theme, rest, _ = strings.Cut(after, "/")
		}
		files, ok := lib.Static(theme)
		if !ok || rest == "" || strings.HasSuffix(rest, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		http.ServeFileFS(w, r, files, rest)
	})
}

// ReadinessStore is what the readiness check needs of the store.
type ReadinessStore interface {
	// Ping fails when the database does not answer.
	Ping(ctx context.Context) error
	// PendingMigrations counts the schema migrations not yet applied.
	PendingMigrations(ctx context.Context) (int, error)
}

// Health serves liveness and readiness probes.
type Health struct {
	Store ReadinessStore
	// Starting keeps /health/ready at 503 even once the store is ready:
	// the server is not serving yet.
	Starting bool
}

// Mount registers the probes on r.
func (h *Health) Mount(r *mux.Router) {
	r.HandleFunc("/health/alive", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet)
	r.HandleFunc("/health/ready", h.ready).Methods(http.MethodGet)
}

func (h *Health) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.Store.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "database"})
		return
	}
	// An instance whose schema lacks migrations stays out of the load
	// balancer until `consentry migrate` has run.
	n, err := h.Store.PendingMigrations(ctx)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "database"})
		return
	}
	if n > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "migrations pending"})
		return
	}
	if h.Starting {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "starting"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// statusRecorder remembers the status a handler wrote, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// logRequests logs each request's method, path, status and duration. The
// query string is left out: it can carry authorization codes.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		logger.LogAttrs(r.Context(), slog.LevelDebug, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Duration("duration", time.Since(start)))
	})
}

// recoverPanics turns a panic into a logged 500 instead of a dropped
// connection.
func recoverPanics(logger *slog.Logger, pages *Pages, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				logger.ErrorContext(r.Context(), "panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(v))
				pages.Error(w, r, http.StatusInternalServerError, errorServer)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
