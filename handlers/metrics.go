package handlers

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// Metrics is the Prometheus instrumentation of one server, on a registry of
// its own (never the global default registry). It is the provider's
// Observer for the grant and refresh counters.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	grants   *prometheus.CounterVec
	refresh  *prometheus.CounterVec
}

var _ provider.Observer = (*Metrics)(nil)

// routeUnmatched is the route label of requests no route matched, so that
// scanners probing random paths cannot create new series.
const routeUnmatched = "unmatched"

// NewMetrics creates the metrics. db, when not nil, adds the connection
// pool's statistics (go_sql_* with db_name="consentry").
func NewMetrics(db *sql.DB) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentry_http_requests_total",
			Help: "HTTP requests served, by route template, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "consentry_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route template and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		grants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentry_grants_issued_total",
			Help: "Grants recorded, by basis: consent, remembered or agreement.",
		}, []string{"basis"}),
		refresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentry_refresh_total",
			Help: "Refresh token requests, by outcome: rotated, retry_window, reuse_detected or refused.",
		}, []string{"outcome"}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.grants, m.refresh,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if db != nil {
		m.registry.MustRegister(collectors.NewDBStatsCollector(db, "consentry"))
	}
	// Every known series from the start, so that rates work from the first
	// scrape and dashboards show zeros rather than gaps.
	for _, basis := range []string{storage.BasisConsent, storage.BasisRemembered, storage.BasisAgreement} {
		m.grants.WithLabelValues(basis)
	}
	for _, outcome := range provider.RefreshOutcomes() {
		m.refresh.WithLabelValues(outcome)
	}
	return m
}

// GrantIssued implements provider.Observer.
func (m *Metrics) GrantIssued(basis string) { m.grants.WithLabelValues(basis).Inc() }

// RefreshOutcome implements provider.Observer.
func (m *Metrics) RefreshOutcome(outcome string) { m.refresh.WithLabelValues(outcome).Inc() }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// routeKey is the context key of the *matchedRoute of a request.
type routeKey struct{}

// matchedRoute is filled in by recordRoute, inside the router, and read by
// instrument, outside it: the router hands its handlers a new request, so
// the route cannot travel back any other way.
type matchedRoute struct{ template string }

// recordRoute is router middleware (it runs only for matched routes).
func recordRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m, ok := r.Context().Value(routeKey{}).(*matchedRoute); ok {
			if route := mux.CurrentRoute(r); route != nil {
				if tpl, err := route.GetPathTemplate(); err == nil {
					m.template = tpl
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// instrument counts and times every request by route template, never by
// raw path.
func (m *Metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		route := &matchedRoute{template: routeUnmatched}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), routeKey{}, route)))
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		method := metricMethod(r.Method)
		m.requests.WithLabelValues(route.template, method, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(route.template, method).Observe(time.Since(start).Seconds())
	})
}

// metricMethod bounds the method label to the standard methods.
func metricMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}
