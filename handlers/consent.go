package handlers

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/ory/fosite"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

const csrfConsent = "consent"

// consentView is the data of consent.html.
type consentView struct {
	CSRF       string
	LogoutCSRF string
	RequestID  string
	Client     clientView
	User       userView
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
	view := consentView{RequestID: requestID, User: userView{Username: user.Username, Name: user.Name, Email: user.Email}}
	view.Client = newClientView(ar.GetClient())
	for _, scope := range ar.GetRequestedScopes() {
		d := h.Provider.DescribeScope(scope)
		sv := scopeView{Name: scope, Title: d.Title, Description: d.Description, Optional: scope != provider.ScopeOpenID, Checked: true}
		if scope == provider.ScopeOfflineAcces {
			if offlineAllowed(ar) {
				view.Offline = &sv
			}
			continue
		}
		view.Scopes = append(view.Scopes, sv)
	}
	var err error
	if view.CSRF, err = h.Sessions.CSRFToken(w, r, csrfConsent, requestID, user.Subject); err != nil {
		h.serverError(w, r, "consent csrf token", err)
		return
	}
	if view.LogoutCSRF, err = h.Sessions.CSRFToken(w, r, csrfLogout, requestID, user.Subject); err != nil {
		h.serverError(w, r, "logout csrf token", err)
		return
	}
	h.Pages.Render(w, r, http.StatusOK, "consent.html", view)
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
	user, _ := h.currentUser(r)
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
	if err := h.Provider.Store.DeleteAuthRequest(ctx, requestID); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			h.Pages.Error(w, r, http.StatusBadRequest, errorExpired)
			return
		}
		h.serverError(w, r, "consume pending request", err)
		return
	}

	if r.PostFormValue("action") != "allow" {
		h.Logger.InfoContext(ctx, "consent denied", "client_id", ar.GetClient().GetID(), "sub", user.Subject)
		h.Provider.OAuth2.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
		return
	}
	ticked := fosite.Arguments(r.PostForm["scope"])
	for _, scope := range ar.GetRequestedScopes() {
		switch {
		case scope == provider.ScopeOpenID:
			ar.GrantScope(scope)
		case scope == provider.ScopeOfflineAcces && !offlineAllowed(ar):
		case ticked.Has(scope):
			ar.GrantScope(scope)
		}
	}
	for _, aud := range ar.GetRequestedAudience() {
		ar.GrantAudience(aud)
	}
	session := provider.NewSession(user, pending.AuthTime, pending.CreatedAt, ar.GetGrantedScopes())
	resp, err := h.Provider.OAuth2.NewAuthorizeResponse(ctx, ar, session)
	if err != nil {
		logOAuthError(h.Logger, r, "authorization response refused", err)
		h.Provider.OAuth2.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	h.Logger.InfoContext(ctx, "consent given", "client_id", ar.GetClient().GetID(), "sub", user.Subject, "scopes", ar.GetGrantedScopes())
	h.Provider.OAuth2.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// offlineAllowed reports whether offline_access can mean anything for ar:
// only a response type that returns an authorization code can lead to a
// refresh token (OIDC Core §11).
func offlineAllowed(ar fosite.AuthorizeRequester) bool {
	return ar.GetResponseTypes().Has("code")
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
