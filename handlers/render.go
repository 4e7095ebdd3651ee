package handlers

import (
	"log/slog"
	"net/http"

	"github.com/consentry/consentry/templates"
)

// Pages renders the HTML pages. Every HTML error goes through Error, with a
// fixed message chosen here: internal error text never reaches a user.
type Pages struct {
	Templates *templates.Set
	Logger    *slog.Logger
}

// setPageHeaders marks a page as private, unframeable and script-free.
func setPageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	// No form-action: browsers apply it to the redirect after the consent
	// form, which goes to the client's registered redirect URI.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' https:; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// Render writes page with status. A template failure becomes the generic
// error page.
func (p *Pages) Render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	body, err := p.Templates.Render(page, data)
	if err != nil {
		p.Logger.ErrorContext(r.Context(), "render page", "page", page, "err", err)
		p.Error(w, r, http.StatusInternalServerError, errorServer)
		return
	}
	setPageHeaders(w.Header())
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// userError is a fixed, safe message for an error page.
type userError struct {
	Title   string
	Message string
	// Code is the OAuth error code, when there is one.
	Code string
}

var (
	errorServer     = userError{Title: "Something went wrong", Message: "The server could not complete your request. Please try again in a moment."}
	errorBadRequest = userError{Title: "Invalid request", Message: "The request could not be understood. Please go back to the application and try again."}
	errorExpired    = userError{Title: "This sign-in has expired", Message: "The sign-in request is no longer valid. Please go back to the application and start again."}
	errorForbidden  = userError{Title: "Request refused", Message: "This form was not accepted because it did not come from this page in this browser. Please go back to the application and start again."}
	errorNotFound   = userError{Title: "Page not found", Message: "There is nothing at this address."}
)

// oauthErrorPage is shown instead of redirecting when an authorization
// request cannot be trusted to redirect (unknown client, unregistered
// redirect URI).
func oauthErrorPage(code string) userError {
	return userError{
		Title:   "The application's sign-in request is not valid",
		Message: "The application that sent you here made a request this provider cannot accept. Please contact the application's developers.",
		Code:    code,
	}
}

// Error renders the error page.
func (p *Pages) Error(w http.ResponseWriter, r *http.Request, status int, e userError) {
	body, err := p.Templates.Render("error.html", e)
	setPageHeaders(w.Header())
	if err != nil {
		// The deployer's error template failed: fall back to plain text.
		p.Logger.ErrorContext(r.Context(), "render error page", "err", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(e.Title + "\n"))
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
