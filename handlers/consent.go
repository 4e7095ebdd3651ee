package handlers

import (
	"net/http"
	"net/url"

	"github.com/ory/fosite"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

const csrfConsent = "consent"

// consentView is the data of consent.html.
type consentView struct {
	CSRF       string
	LogoutCSRF string
	// FormAction is where the decision is posted: /consent, or
	// /device/consent for the device flow.
	FormAction string
	// RequestID identifies what is being decided: a pending authorization
	// request, or the user code of a device.
	RequestID string
	// NotYouNext, for the device flow, is the page "not you?" returns to
	// after signing out.
	NotYouNext string
	// UserCode, for the device flow, is the code as the device shows it
	// ("WDJB-MJHT"): the page shows it with a warning against approving a
	// code that someone else sent.
	UserCode string
	Client   clientView
	User     userView
	// Scopes are the requested permissions other than offline access.
	Scopes []scopeView
	// Offline is offline access, set apart, when it was requested.
	Offline     *scopeView
	CanRemember bool
}

type clientView struct {
	Name, LogoURI, ClientURI, PolicyURI, TosURI string
}

type userView struct {
	Username, Name, Email string
}

// Display is how the signed-in user is named on the page.
func (u userView) Display() string {
	if u.Name != "" {
		return u.Name + " (" + u.Username + ")"
	}
	return u.Username
}

type scopeView struct {
	Name, Title, Description string
	// Optional scopes can be unticked; openid cannot.
	Optional, Checked bool
}

func (h *Authorize) consentPage(w http.ResponseWriter, r *http.Request) {
	requestID := r.URL.Query().Get("request")
	pending, ar, ok := h.loadPending(w, r, requestID)
	if !ok {
		return
	}
	user, _ := h.currentUser(r)
	if user == nil {
		http.Redirect(w, r, provider.PathLogin+"?request="+url.QueryEscape(requestID), http.StatusSeeOther)
		return
	}
	if pending.Subject != user.Subject {
		h.Pages.Error(w, r, http.StatusForbidden, errorForbidden)
		return
	}
	opts := h.Pages.Options(r, ar.GetClient(), ar.GetRequestForm().Get("ui_locales"))
	view := consentView{FormAction: provider.PathConsent, RequestID: requestID, User: userView{Username: user.Username, Name: user.Name, Email: user.Email}}
	view.Client = newClientView(ar.GetClient())
	for _, scope := range pending.OfferedScopes {
		d := h.Pages.Templates.Scope(opts.Lang, scope)
		sv := scopeView{Name: scope, Title: d.Title, Description: d.Description, Optional: scope != provider.ScopeOpenID, Checked: true}
		if scope == provider.ScopeOfflineAccess {
			view.Offline = &sv
			continue
		}
		view.Scopes = append(view.Scopes, sv)
	}
	view.CanRemember = len(consent.Remembered(pending.OfferedScopes)) > 0
	var err error
	if view.CSRF, err = h.Sessions.CSRFToken(w, r, csrfConsent, requestID, user.Subject); err != nil {
		h.serverError(w, r, "consent csrf token", err)
		return
	}
	if view.LogoutCSRF, err = h.Sessions.CSRFToken(w, r, csrfLogout, requestID, user.Subject); err != nil {
		h.serverError(w, r, "logout csrf token", err)
		return
	}
	h.Pages.RenderWith(w, r, opts, http.StatusOK, "consent.html", view)
}

// consent receives the user's decision. The pending request is consumed
// before anything is issued, so a replayed form is refused.
func (h *Authorize) consent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.Pages.Error(w, r, http.StatusBadRequest, errorBadRequest)
		return
	}
	requestID := r.PostFormValue("request")
	user, sess := h.currentUser(r)
	if user == nil || h.Sessions.CheckCSRF(r, csrfConsent, requestID, user.Subject) != nil {
		h.Pages.Error(w, r, http.StatusForbidden, errorForbidden)
		return
	}
	pending, ar, ok := h.loadPending(w, r, requestID)
	if !ok {
		return
	}
	if pending.Subject != user.Subject {
		h.Pages.Error(w, r, http.StatusForbidden, errorForbidden)
		return
	}
	if err := h.Provider.ConsumePendingRequest(ctx, requestID); err != nil {
		h.consumeError(w, r, err)
		return
	}
	policy := h.Provider.Policy
	granted, err := policy.Choose(pending.OfferedScopes, r.PostForm["scope"], r.PostFormValue("action") == "allow")
	if err != nil {
		h.Logger.InfoContext(ctx, "consent denied", "client_id", ar.GetClient().GetID(), "sub", user.Subject)
		h.Provider.ConsentDenied(ctx, user.Subject, ar.GetClient().GetID(), pending.OfferedScopes, clientIP(r), truncate(r.UserAgent(), 512))
		h.writeAuthorizeError(w, r, ar, err)
		return
	}
	// The user allowed on the screen: the grant rests on their consent.
	until := policy.RememberUntil(granted, r.PostFormValue("remember") == "1", h.Provider.Now())
	h.finish(w, r, ar, user, sess, pending.CreatedAt, consent.Decision{Outcome: consent.OutcomeScreen}, granted, until)
}

func clientName(c fosite.Client) string {
	if sc, ok := c.(*storage.Client); ok && sc.Name != "" {
		return sc.Name
	}
	return c.GetID()
}

func newClientView(c fosite.Client) clientView {
	v := clientView{Name: clientName(c)}
	if sc, ok := c.(*storage.Client); ok {
		v.LogoURI, v.ClientURI, v.PolicyURI, v.TosURI = sc.LogoURI, sc.ClientURI, sc.PolicyURI, sc.TosURI
	}
	return v
}
