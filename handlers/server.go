package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/templates"
)

// New returns the HTTP handler serving every endpoint of p.
func New(p *provider.Provider) (http.Handler, error) {
	set, err := templates.Load(p.Config.TemplatesDir)
	if err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	logger := p.Logger
	pages := &Pages{Templates: set, Logger: logger}
	sessions := NewSessions(p.Secrets.CookieHash, p.Secrets.CookieBlock, p.Config.SessionLifespan.Std(), p.Config.SecureCookies(), p.Now)

	r := mux.NewRouter()
	(&Protocol{Provider: p, Logger: logger}).Mount(r)
	(&Authorize{Provider: p, Pages: pages, Sessions: sessions, Logger: logger}).Mount(r)
	(&Account{Provider: p, Pages: pages, Sessions: sessions, Logger: logger}).Mount(r)
	(&Health{Store: p.Store}).Mount(r)
	if p.Config.Demo {
		(&Demo{Provider: p, Pages: pages, Sessions: sessions, Logger: logger}).Mount(r)
	}
	r.PathPrefix("/static/").Handler(http.StripPrefix("/static/", staticFiles(set)))
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pages.Error(w, r, http.StatusNotFound, errorNotFound)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pages.Error(w, r, http.StatusMethodNotAllowed, errorBadRequest)
	})
	return recoverPanics(logger, pages, logRequests(logger, r)), nil
}

func staticFiles(set *templates.Set) http.Handler {
	files := http.FileServerFS(set.Static())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
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
