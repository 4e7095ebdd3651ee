package handlers

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/provider/connector"
)

// upstreamCookie carries a sign-in at an upstream provider from its start
// to its callback: signed and encrypted, scoped to the connector's paths,
// short-lived.
const (
	upstreamCookie    = "consentry_upstream"
	upstreamCookieAge = 10 * time.Minute
)

// upstreamState is what the callback needs again. State is compared with
// the callback's, so a callback this browser did not start (login CSRF) is
// refused.
type upstreamState struct {
	Connector string
	State     string
	Data      []byte
	RequestID string
	Next      string
}

// upstreamConnector returns the callback connector the path names, or
// answers 404.
func (h *Authorize) upstreamConnector(w http.ResponseWriter, r *http.Request) *provider.Connector {
	c := h.Provider.Connector(mux.Vars(r)["connector"])
	if c == nil || c.Callback == nil {
		h.Pages.Error(w, r, http.StatusNotFound, errorNotFound)
		return nil
	}
	return c
}

func (h *Authorize) callbackURL(c *provider.Connector) string {
	return strings.TrimSuffix(h.Provider.Config.Issuer, "/") + provider.PathLogin + "/" + c.ID + "/callback"
}

// upstreamLogin sends the browser to the upstream provider, remembering
// state, the connector's data and where to go on in a cookie.
func (h *Authorize) upstreamLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := h.upstreamConnector(w, r)
	if c == nil {
		return
	}
	st := upstreamState{Connector: c.ID, RequestID: r.URL.Query().Get("request"), Next: safeNext(r.URL.Query().Get("next"))}
	if st.RequestID != "" {
		if _, _, ok := h.loadPending(w, r, st.RequestID); !ok {
			return
		}
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		h.serverError(w, r, "upstream state", err)
		return
	}
	st.State = base64.RawURLEncoding.EncodeToString(b)
	loginURL, data, err := c.Callback.LoginURL(ctx, h.callbackURL(c), st.State)
	if errors.Is(err, connector.ErrUnavailable) {
		h.Logger.WarnContext(ctx, "connector unavailable at sign-in", "connector", c.ID, "err", err)
		h.Pages.Error(w, r, http.StatusServiceUnavailable, errorUnavailable)
		return
	}
	if err != nil {
		h.serverError(w, r, "upstream login url", err)
		return
	}
	st.Data = data
	if err := h.Sessions.PutSigned(w, upstreamCookie, provider.PathLogin+"/"+c.ID, st, upstreamCookieAge); err != nil {
		h.serverError(w, r, "upstream cookie", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, loginURL, http.StatusFound)
}

// upstreamCallback completes a sign-in at an upstream provider and then
// goes on exactly as a password sign-in does.
func (h *Authorize) upstreamCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := h.upstreamConnector(w, r)
	if c == nil {
		return
	}
	var st upstreamState
	err := h.Sessions.GetSigned(r, upstreamCookie, &st)
	// The cookie is for one callback: a replay finds none.
	if derr := h.Sessions.PutSigned(w, upstreamCookie, provider.PathLogin+"/"+c.ID, upstreamState{}, -time.Second); derr != nil {
		h.serverError(w, r, "clear upstream cookie", derr)
		return
	}
	if err != nil || st.Connector != c.ID || st.State == "" ||
		subtle.ConstantTimeCompare([]byte(st.State), []byte(r.URL.Query().Get("state"))) != 1 {
		h.Logger.InfoContext(ctx, "upstream callback refused: state missing or wrong", "connector", c.ID)
		h.Pages.Error(w, r, http.StatusForbidden, errorForbidden)
		return
	}
	id, err := c.Callback.HandleCallback(ctx, h.callbackURL(c), st.Data, r)
	if errors.Is(err, connector.ErrUnavailable) {
		h.Logger.WarnContext(ctx, "connector unavailable at sign-in", "connector", c.ID, "err", err)
		h.Pages.Error(w, r, http.StatusServiceUnavailable, errorUnavailable)
		return
	}
	if err != nil {
		// An upstream refusal or a bad callback: the person's or the
		// upstream's doing, not ours.
		h.Logger.InfoContext(ctx, "upstream sign-in failed", "connector", c.ID, "err", err)
		h.Pages.Error(w, r, http.StatusBadRequest, errorUpstreamFailed)
		return
	}
	user, err := h.Provider.SignInIdentity(ctx, c, id)
	switch {
	case errors.Is(err, provider.ErrUsernameTaken):
		h.Logger.InfoContext(ctx, "login refused: the upstream's username belongs to another user", "connector", c.ID)
		h.Pages.Error(w, r, http.StatusConflict, errorUsernameTaken)
		return
	case errors.Is(err, provider.ErrUserDisabled):
		h.Logger.InfoContext(ctx, "login refused: disabled user", "sub", user.Subject)
		h.Pages.Error(w, r, http.StatusForbidden, errorUpstreamFailed)
		return
	case err != nil:
		h.serverError(w, r, "sign in upstream identity", err)
		return
	}
	h.finishLogin(w, r, user, st.RequestID, st.Next, nil)
}
