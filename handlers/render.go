package handlers

import (
	"log/slog"
	"net/http"

	"github.com/ory/fosite"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
	"github.com/consentry/consentry/templates"
)

// Pages renders the HTML pages. Every HTML error goes through Error, with a
// fixed message chosen here: internal error text never reaches a user.
type Pages struct {
	Templates *templates.Library
	Logger    *slog.Logger
}

// Options returns how to render a page for r: in the language of the
// authorization request's ui_locales or the browser's Accept-Language, and
// in the theme of client, when there is one.
func (p *Pages) Options(r *http.Request, client fosite.Client, uiLocales string) templates.Options {
	opts := templates.Options{Lang: p.Templates.Negotiate(uiLocales, r.Header.Get("Accept-Language"))}
	if c, ok := client.(*storage.Client); ok {
		opts.Theme = c.Theme
	}
	return opts
}

// Render writes page with status in the deployment's theme.
func (p *Pages) Render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	p.RenderWith(w, r, p.Options(r, nil, ""), status, page, data)
}

// RenderWith writes page with status. A template failure becomes the
// generic error page.
func (p *Pages) RenderWith(w http.ResponseWriter, r *http.Request, opts templates.Options, status int, page string, data any) {
	body, err := p.Templates.Render(page, opts, data)
	if err != nil {
		p.Logger.ErrorContext(r.Context(), "render page", "page", page, "theme", opts.Theme, "err", err)
		p.Error(w, r, http.StatusInternalServerError, errorServer)
		return
	}
	setPageHeaders(w.Header())
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// setPageHeaders marks a page as private, unframeable and script-free.
func setPageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	setPageSecurityHeaders(h)
	// No form-action: browsers apply it to the redirect after the consent
	// form, which goes to the client's registered redirect URI.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' https:; frame-ancestors 'none'; base-uri 'none'")
}

// setFormPostHeaders gives fosite's form_post page (response_mode=form_post)
// the headers of every page; its Content-Security-Policy allows the one
// script that submits the form, by its hash, and nothing else. fosite sets
// the Content-Type itself (adding it, so it must not be set here).
func setFormPostHeaders(h http.Header) {
	setPageSecurityHeaders(h)
	// No form-action either: the form posts to the client's redirect URI.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src "+provider.FormPostScriptSource+"; frame-ancestors 'none'; base-uri 'none'")
}

func setPageSecurityHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// userError is a fixed, safe message for an error page: Title and Message
// are message catalogue keys.
type userError struct {
	Title   string
	Message string
	// Code is the OAuth error code, when there is one.
	Code string
	// Reason says what was wrong with an authorization request: the hint
	// fosite wrote for the error code (in English, its fixed sentences,
	// into which fosite may put a parameter's value: html/template escapes
	// it). Never an error's Error(), never for a server fault.
	Reason string
	// RequestID is the id every log line of the request carries, for a
	// user to quote to an administrator; set by Pages.Error.
	RequestID string
}

var (
	errorServer           = userError{Title: "error.server.title", Message: "error.server.message"}
	errorBadRequest       = userError{Title: "error.bad_request.title", Message: "error.bad_request.message"}
	errorExpired          = userError{Title: "error.expired.title", Message: "error.expired.message"}
	errorForbidden        = userError{Title: "error.forbidden.title", Message: "error.forbidden.message"}
	errorNotFound         = userError{Title: "error.not_found.title", Message: "error.not_found.message"}
	errorRemovalForbidden = userError{Title: "error.removal_forbidden.title", Message: "error.removal_forbidden.message"}
	errorNothingToRemove  = userError{Title: "error.nothing_to_remove.title", Message: "error.nothing_to_remove.message"}
	errorUsernameTaken    = userError{Title: "error.username_taken.title", Message: "error.username_taken.message"}
	errorUpstreamFailed   = userError{Title: "error.upstream_failed.title", Message: "error.upstream_failed.message"}
	errorUnavailable      = userError{Title: "error.directory_unavailable.title", Message: "error.directory_unavailable.message"}
)

// oauthErrorPage is shown instead of redirecting when an authorization
// request cannot be trusted to redirect (unknown client, unregistered
// redirect URI). reason is fosite's hint for the error.
func oauthErrorPage(code, reason string) userError {
	return userError{Title: "error.oauth.title", Message: "error.oauth.message", Code: code, Reason: cutReason(reason)}
}

// maxReasonRunes bounds the reason shown: fosite's hints are a sentence or
// two, and a value it quotes must not fill the page.
const maxReasonRunes = 300

func cutReason(s string) string {
	if r := []rune(s); len(r) > maxReasonRunes {
		return string(r[:maxReasonRunes-1]) + "…"
	}
	return s
}

// Error renders the error page.
func (p *Pages) Error(w http.ResponseWriter, r *http.Request, status int, e userError) {
	e.RequestID = RequestID(r.Context())
	body, err := p.Templates.Render("error.html", p.Options(r, nil, ""), e)
	setPageHeaders(w.Header())
	if err != nil {
		// The deployer's error template failed: fall back to plain text.
		p.Logger.ErrorContext(r.Context(), "render error page", "err", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(http.StatusText(status) + "\n"))
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
