// Package handlers serves Consentry's HTTP endpoints on a gorilla/mux router:
// the OAuth 2.0 and OpenID Connect protocol endpoints, which follow fosite's
// request/response sequence, and the browser pages (login, consent, logout,
// demo), which finish a pending authorization request.
package handlers
