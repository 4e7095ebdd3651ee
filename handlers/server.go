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

// New returns the HTTP handler serving every endpoint of p.
func New(p *provider.Provider) (http.Handler, error) {
	lib, err := LoadTemplates(p.Config.TemplatesDir)
	if err != nil {
		return nil, err
	}
	logger := p.Logger
	pages := &Pages{Templates: lib, Logger: logger}
	warnMissingThemes(p, lib)
	sessions := NewSessions(p.Secrets.CookieHash, p.Secrets.CookieBlock, p.Config.SessionLifespan.Std(), p.Config.SecureCookies(), p.Now)

	r := mux.NewRouter()
	(&Protocol{Provider: p, Logger: logger}).Mount(r)
	(&Authorize{Provider: p, Pages: pages, Sessions: sessions, Logger: logger}).Mount(r)
	(&Account{Provider: p, Pages: pages, Sessions: sessions, Logger: logger}).Mount(r)
	(&Health{Store: p.Store}).Mount(r)
	if p.Config.Demo {
		(&Demo{Provider: p, Pages: pages, Sessions: sessions, Logger: logger}).Mount(r)
	}
	r.PathPrefix(templates.StaticPrefix).Handler(staticFiles(lib))
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pages.Error(w, r, http.StatusNotFound, errorNotFound)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pages.Error(w, r, http.StatusMethodNotAllowed, errorBadRequest)
	})
	return recoverPanics(logger, pages, logRequests(logger, r)), nil
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
	clients, err := p.Store.ListClients(ctx)
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

// Pinger is what the readiness check needs of the store.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Health serves liveness and readiness probes.
type Health struct {
	Store Pinger
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
