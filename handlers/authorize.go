package handlers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// Authorize serves the front-channel flow: the authorization endpoint and
// the login and consent pages that finish a pending authorization request.
type Authorize struct {
	Provider *provider.Provider
	Pages    *Pages
	Sessions *Sessions
	Logger   *slog.Logger
}

// Mount registers the endpoints on r.
func (h *Authorize) Mount(r *mux.Router) {
	r.HandleFunc(provider.PathAuthorize, h.authorize).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc(provider.PathResume, h.resume).Methods(http.MethodGet)
	r.HandleFunc(provider.PathLogin, h.loginPage).Methods(http.MethodGet)
	r.HandleFunc(provider.PathLogin, h.login).Methods(http.MethodPost)
	r.HandleFunc(provider.PathLogout, h.logoutPage).Methods(http.MethodGet)
	r.HandleFunc(provider.PathLogout, h.logout).Methods(http.MethodPost)
	r.HandleFunc(provider.PathConsent, h.consentPage).Methods(http.MethodGet)
	r.HandleFunc(provider.PathConsent, h.consent).Methods(http.MethodPost)
	r.HandleFunc("/", h.index).Methods(http.MethodGet)
}

// authorize is the authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2).
func (h *Authorize) authorize(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	ar, err := h.Provider.OAuth2.NewAuthorizeRequest(r.Context(), r)
	if err == nil {
		err = provider.CheckPKCE(ar)
	}
	if err != nil {
		h.authorizeError(w, r, ar, err)
		return
	}
	h.proceed(w, r, ar, nil)
}

// resume continues a pending request after the user signed in.
func (h *Authorize) resume(w http.ResponseWriter, r *http.Request) {
	pending, ar, ok := h.loadPending(w, r, r.URL.Query().Get("request"))
	if !ok {
		return
	}
	h.proceed(w, r, ar, pending)
}

// proceed decides what a valid authorization request needs next: a login,
// the consent screen, or an error. pending is nil on the first pass.
func (h *Authorize) proceed(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, pending *storage.AuthRequest) {
	ctx := r.Context()
	prompt := fosite.Arguments(fosite.RemoveEmpty(strings.Split(ar.GetRequestForm().Get("prompt"), " ")))
	user, sess := h.currentUser(r)

	// A login done for this very request satisfies prompt=login and max_age.
	signedInForRequest := pending != nil && user != nil && pending.Subject == user.Subject &&
		!pending.AuthTime.Before(pending.CreatedAt)
	needLogin := user == nil
	if !signedInForRequest && user != nil {
		if prompt.Has("login") {
			needLogin = true
		}
		if maxAge, err := strconv.ParseInt(ar.GetRequestForm().Get("max_age"), 10, 64); err == nil && maxAge >= 0 &&
			h.Provider.Now().After(sess.AuthTime.Add(time.Duration(maxAge)*time.Second)) {
			needLogin = true
		}
	}
	if needLogin {
		if prompt.Has("none") {
			h.Provider.OAuth2.WriteAuthorizeError(ctx, w, ar, fosite.ErrLoginRequired.WithHint("The user is not signed in."))
			return
		}
		id, err := h.savePending(ctx, r, ar, pending, nil)
		if err != nil {
			h.serverError(w, r, "save pending request", err)
			return
		}
		http.Redirect(w, r, provider.PathLogin+"?request="+url.QueryEscape(id), http.StatusSeeOther)
		return
	}

	// The consent screen is always shown until the consent policy decides
	// otherwise, so prompt=none cannot be satisfied without a screen.
	if prompt.Has("none") {
		h.Provider.OAuth2.WriteAuthorizeError(ctx, w, ar, fosite.ErrConsentRequired.WithHint("The user has not consented to this request."))
		return
	}
	id, err := h.savePending(ctx, r, ar, pending, &browserSession{Subject: user.Subject, AuthTime: sess.AuthTime})
	if err != nil {
		h.serverError(w, r, "save pending request", err)
		return
	}
	http.Redirect(w, r, provider.PathConsent+"?request="+url.QueryEscape(id), http.StatusSeeOther)
}

// savePending stores the request so it survives the round trip through the
// login or consent page, or binds an already stored one to who signed in.
func (h *Authorize) savePending(ctx context.Context, r *http.Request, ar fosite.AuthorizeRequester, pending *storage.AuthRequest, signedIn *browserSession) (string, error) {
	if pending != nil {
		if signedIn == nil || pending.Subject == signedIn.Subject {
			return pending.ID, nil
		}
		err := h.Provider.Store.UpdateAuthRequest(ctx, pending.ID, func(p *storage.AuthRequest) error {
			p.Subject, p.AuthTime = signedIn.Subject, signedIn.AuthTime
			return nil
		})
		return pending.ID, err
	}
	id, err := randomID()
	if err != nil {
		return "", err
	}
	now := h.Provider.Now()
	p := &storage.AuthRequest{
		ID:        id,
		Query:     ar.GetRequestForm().Encode(),
		CreatedAt: now,
		ExpiresAt: now.Add(h.Provider.Config.LoginRequestLifespan.Std()),
	}
	if signedIn != nil {
		p.Subject, p.AuthTime = signedIn.Subject, signedIn.AuthTime
	}
	if err := h.Provider.Store.CreateAuthRequest(ctx, p); err != nil {
		return "", fmt.Errorf("create auth request: %w", err)
	}
	return id, nil
}

// loadPending loads a pending request and parses it again through fosite, so
// that the client, redirect URI and scopes are checked against the current
// registration. It writes the error page itself when it returns false.
func (h *Authorize) loadPending(w http.ResponseWriter, r *http.Request, id string) (*storage.AuthRequest, fosite.AuthorizeRequester, bool) {
	ctx := r.Context()
	if id == "" {
		h.Pages.Error(w, r, http.StatusBadRequest, errorBadRequest)
		return nil, nil, false
	}
	pending, err := h.Provider.Store.GetAuthRequest(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		h.Pages.Error(w, r, http.StatusBadRequest, errorExpired)
		return nil, nil, false
	}
	if err != nil {
		h.serverError(w, r, "load pending request", err)
		return nil, nil, false
	}
	ar, err := h.reparse(ctx, pending)
	if err != nil {
		h.authorizeError(w, r, ar, err)
		return nil, nil, false
	}
	return pending, ar, true
}

func (h *Authorize) reparse(ctx context.Context, pending *storage.AuthRequest) (fosite.AuthorizeRequester, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, provider.PathAuthorize+"?"+pending.Query, nil)
	if err != nil {
		return nil, fosite.ErrInvalidRequest.WithWrap(err)
	}
	return h.Provider.OAuth2.NewAuthorizeRequest(ctx, req)
}

// authorizeError redirects the error to the client when its redirect URI is
// registered and otherwise shows an error page: never redirect to a URI the
// client did not register (RFC 6749 §4.1.2.1).
func (h *Authorize) authorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	logOAuthError(h.Logger, r, "authorization request refused", err)
	if ar != nil && ar.IsRedirectURIValid() {
		h.Provider.OAuth2.WriteAuthorizeError(r.Context(), w, ar, err)
		return
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	status := rfc.CodeField
	if status < 400 || status >= 500 {
		status = http.StatusBadRequest
	}
	h.Pages.Error(w, r, status, oauthErrorPage(rfc.ErrorField))
}

// currentUser returns the signed-in, enabled user of this browser, if any.
func (h *Authorize) currentUser(r *http.Request) (*storage.User, *browserSession) {
	sess := h.Sessions.Get(r)
	if sess == nil {
		return nil, nil
	}
	user, err := h.Provider.Store.GetUser(r.Context(), sess.Subject)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			h.Logger.ErrorContext(r.Context(), "load session user", "err", err)
		}
		return nil, nil
	}
	if user.Disabled {
		return nil, nil
	}
	return user, sess
}

func (h *Authorize) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.Logger.ErrorContext(r.Context(), what, "err", err)
	h.Pages.Error(w, r, http.StatusInternalServerError, errorServer)
}

func randomID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
