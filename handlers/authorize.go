package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/provider/consent"
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
	r.HandleFunc(provider.PathLogin+"/{connector}", h.upstreamLogin).Methods(http.MethodGet)
	r.HandleFunc(provider.PathLogin+"/{connector}/callback", h.upstreamCallback).Methods(http.MethodGet)
	r.HandleFunc(provider.PathLogout, h.logoutPage).Methods(http.MethodGet)
	r.HandleFunc(provider.PathLogout, h.logout).Methods(http.MethodPost)
	r.HandleFunc(provider.PathConsent, h.consentPage).Methods(http.MethodGet)
	r.HandleFunc(provider.PathConsent, h.consent).Methods(http.MethodPost)
	r.HandleFunc("/", h.index).Methods(http.MethodGet)
}

// authorize is the authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2).
func (h *Authorize) authorize(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	// Parsed here as fosite parses it, which it then reuses.
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		h.authorizeError(w, r, nil, fosite.ErrInvalidRequest.WithHint("Unable to parse the request.").WithWrap(err))
		return
	}
	refusal := requestObjectRefusal(r.Form)
	if refusal != nil {
		// Parsed without them, so that the refusal reaches the client at its
		// redirect URI when the rest of the request is trusted to redirect.
		// fosite would fetch a request_uri, or take it for a pushed request.
		r.Form.Del("request")
		r.Form.Del("request_uri")
	}
	ar, err := h.Provider.OAuth2.NewAuthorizeRequest(r.Context(), r)
	if refusal != nil && (err == nil || ar != nil && ar.IsRedirectURIValid()) {
		err = refusal
	}
	if err == nil {
		err = provider.CheckPKCE(ar)
	}
	if err == nil {
		err = provider.CheckResponseMode(ar)
	}
	if err != nil {
		h.authorizeError(w, r, ar, err)
		return
	}
	h.proceed(w, r, ar, nil)
}

// requestObjectRefusal is the answer to a request object, passed by value
// or by reference, which Consentry does not support (OIDC Core §6.1-6.2;
// discovery says request_parameter_supported and
// request_uri_parameter_supported false): request_not_supported or
// request_uri_not_supported, or nil when form has neither. Refused with or
// without the openid scope: a request object ignored would silently drop
// parameters the client meant.
func requestObjectRefusal(form url.Values) error {
	switch {
	case form.Has("request_uri"):
		return fosite.ErrRequestURINotSupported.WithHint("This provider does not support the request_uri parameter.")
	case form.Has("request"):
		return fosite.ErrRequestNotSupported.WithHint("This provider does not support the request parameter.")
	}
	return nil
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
			h.writeAuthorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The user is not signed in."))
			return
		}
		id, err := h.savePending(ctx, ar, pending, nil, nil)
		if err != nil {
			h.serverError(w, r, "save pending request", err)
			return
		}
		http.Redirect(w, r, provider.PathLogin+"?request="+url.QueryEscape(id), http.StatusSeeOther)
		return
	}

	decision, err := h.Provider.DecideConsent(ctx, ar, user.Subject)
	if err != nil {
		h.serverError(w, r, "decide consent", err)
		return
	}
	switch decision.Outcome {
	case consent.OutcomeGrant:
		requestedAt := ar.GetRequestedAt()
		if pending != nil {
			requestedAt = pending.CreatedAt
			if err := h.Provider.ConsumePendingRequest(ctx, pending.ID); err != nil {
				h.consumeError(w, r, err)
				return
			}
		}
		h.finish(w, r, ar, user, sess, requestedAt, decision, decision.Scopes, nil)
	case consent.OutcomeScreen:
		id, err := h.savePending(ctx, ar, pending, sess, decision.Scopes)
		if err != nil {
			h.serverError(w, r, "save pending request", err)
			return
		}
		http.Redirect(w, r, provider.PathConsent+"?request="+url.QueryEscape(id), http.StatusSeeOther)
	case consent.OutcomeLogin:
		// Unreachable: the user is signed in here.
		h.serverError(w, r, "decide consent", errors.New("policy asked for a login after one"))
	default:
		h.writeAuthorizeError(w, r, ar, decision.Err)
	}
}

// finish issues the authorization response for the granted scopes and
// records the grant on the basis of decision, so that the tokens of the flow
// (which carry fosite's request id) can be traced to it and revoked with
// it. The ID token names the browser session sess (sid) and its sign-in
// time.
func (h *Authorize) finish(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, user *storage.User, sess *storage.BrowserSession,
	requestedAt time.Time, decision consent.Decision, granted fosite.Arguments, rememberUntil *time.Time,
) {
	ctx := r.Context()
	for _, scope := range granted {
		ar.GrantScope(scope)
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	requestID, err := provider.NewRequestID()
	if err != nil {
		h.serverError(w, r, "request id", err)
		return
	}
	ar.SetID(requestID)
	session := provider.NewSession(user, sess.ID, sess.AuthTime, requestedAt, ar.GetGrantedScopes())
	resp, err := h.Provider.OAuth2.NewAuthorizeResponse(ctx, ar, session)
	if err != nil {
		logOAuthError(h.Logger, r, "authorization response refused", err)
		h.writeAuthorizeError(w, r, ar, err)
		return
	}
	g, err := h.Provider.Grant(ctx, provider.GrantRequest{
		Subject:       user.Subject,
		ClientID:      ar.GetClient().GetID(),
		RequestID:     ar.GetID(),
		Decision:      decision,
		Scopes:        ar.GetGrantedScopes(),
		RememberUntil: rememberUntil,
		IPAddress:     clientIP(r),
		UserAgent:     truncate(r.UserAgent(), 512),
	})
	if err != nil {
		// The code was stored but is never delivered, so it is never used.
		h.serverError(w, r, "record grant", err)
		return
	}
	h.Logger.InfoContext(ctx, "authorization granted", "client_id", ar.GetClient().GetID(), "sub", user.Subject,
		"scopes", strings.Join(ar.GetGrantedScopes(), " "), "basis", g.Basis, "agreement_id", g.AgreementID)
	if ar.GetResponseMode() == fosite.ResponseModeFormPost {
		setFormPostHeaders(w.Header())
	}
	h.Provider.OAuth2.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// writeAuthorizeError sends err to the client's redirect URI, which must be
// valid. A form_post answer is a page: it gets the headers of every page.
func (h *Authorize) writeAuthorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	if ar.GetResponseMode() == fosite.ResponseModeFormPost {
		setFormPostHeaders(w.Header())
	}
	h.Provider.OAuth2.WriteAuthorizeError(r.Context(), w, ar, err)
}

func (h *Authorize) consumeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, storage.ErrNotFound) {
		h.Pages.Error(w, r, http.StatusBadRequest, errorExpired)
		return
	}
	h.serverError(w, r, "consume pending request", err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// savePending stores the request so it survives the round trip through the
// login or consent page, or binds an already stored one to who signed in.
func (h *Authorize) savePending(ctx context.Context, ar fosite.AuthorizeRequester, pending *storage.AuthRequest, signedIn *storage.BrowserSession, offered []string) (string, error) {
	if pending != nil {
		if signedIn == nil {
			return pending.ID, nil
		}
		return pending.ID, h.Provider.OfferPendingRequest(ctx, pending.ID, signedIn.Subject, signedIn.AuthTime, offered)
	}
	if signedIn == nil {
		return h.Provider.NewPendingRequest(ctx, ar.GetRequestForm().Encode(), "", time.Time{}, nil)
	}
	return h.Provider.NewPendingRequest(ctx, ar.GetRequestForm().Encode(), signedIn.Subject, signedIn.AuthTime, offered)
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
	pending, err := h.Provider.PendingRequest(ctx, id)
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
	// With the database unreachable fosite reports invalid_client: make
	// it temporarily_unavailable (RFC 6749 §4.1.2.1).
	err = unavailable(err)
	logOAuthError(h.Logger, r, "authorization request refused", err)
	if ar != nil && ar.IsRedirectURIValid() {
		h.writeAuthorizeError(w, r, ar, err)
		return
	}
	if errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		h.Pages.Error(w, r, http.StatusServiceUnavailable, errorServer)
		return
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	status := rfc.CodeField
	if status < 400 || status >= 500 {
		status = http.StatusBadRequest
	}
	reason := rfc.HintField
	if rfc.CodeField >= http.StatusInternalServerError {
		reason = "" // a server fault: the log has it, the user gets no detail
	}
	h.Pages.Error(w, r, status, oauthErrorPage(rfc.ErrorField, reason))
}

// currentUser returns the signed-in, enabled user of this browser, if any.
func (h *Authorize) currentUser(r *http.Request) (*storage.User, *storage.BrowserSession) {
	return signedIn(r, h.Sessions, h.Provider, h.Logger)
}

// userFinder finds users by subject.
type userFinder interface {
	User(ctx context.Context, subject string) (*storage.User, error)
}

// signedIn returns the signed-in, enabled user of r and their session, if
// any. A database failure is logged and counts as signed out.
func signedIn(r *http.Request, sessions *Sessions, users userFinder, logger *slog.Logger) (*storage.User, *storage.BrowserSession) {
	sess, err := sessions.Get(r)
	if err != nil {
		logger.ErrorContext(r.Context(), "load session", "err", err)
		return nil, nil
	}
	if sess == nil {
		return nil, nil
	}
	user, err := users.User(r.Context(), sess.Subject)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			logger.ErrorContext(r.Context(), "load session user", "err", err)
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
