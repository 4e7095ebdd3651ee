// Package handlers serves Consentry's HTTP endpoints on a gorilla/mux router:
// the OAuth 2.0 and OpenID Connect protocol endpoints, which follow fosite's
// request/response sequence, and the browser pages (login, consent, logout,
// demo), which finish a pending authorization request. They do HTTP only:
// the consent rules are package consent's, and everything stored (pending
// requests, users, clients, grants) is reached through the provider.
//
// New gives every request an id (X-Request-Id, and request_id on every log
// line through NewLogHandler) and, WithMetrics, counts it in Prometheus
// metrics that NewAdmin serves on a separate listener with the health
// probes. A request that fails because the database is unreachable is
// answered 503 temporarily_unavailable, never as the client's mistake.
package handlers
