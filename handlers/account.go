package handlers

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// PathConnectedApps is the signed-in user's list of applications with access.
const PathConnectedApps = "/account/apps"

// PathSessions is the signed-in user's list of browsers signed in.
const PathSessions = "/account/sessions"

const (
	csrfRemoveApp        = "remove-app"
	csrfEndSession       = "end-session"
	csrfEndOtherSessions = "end-other-sessions"
)

// Account serves the signed-in user's own pages.
type Account struct {
	Provider *provider.Provider
	Pages    *Pages
	Sessions *Sessions
	Logger   *slog.Logger
}

// Mount registers the pages on r.
func (h *Account) Mount(r *mux.Router) {
	r.HandleFunc(PathConnectedApps, h.apps).Methods(http.MethodGet)
	r.HandleFunc(PathConnectedApps+"/remove", h.remove).Methods(http.MethodPost)
	r.HandleFunc(PathSessions, h.sessions).Methods(http.MethodGet)
	r.HandleFunc(PathSessions+"/end", h.endSession).Methods(http.MethodPost)
	r.HandleFunc(PathSessions+"/end-others", h.endOtherSessions).Methods(http.MethodPost)
}

// appsView is the data of account_apps.html.
type appsView struct {
	Username string
	Apps     []appView
	// Removed names the application whose access was just removed.
	Removed string
}

type appView struct {
	ClientID string
	Client   clientView
	// Permissions are the granted scopes in plain words, offline access apart.
	Permissions []scopeView
	Offline     bool
	ByConsent   bool
	// AgreementRef is the reference of the agreement access rests on, if any.
	AgreementRef string
	Granted      string
	// LastUsed is empty when the access was never used.
	LastUsed  string
	CanRemove bool
	CSRF      string
}

func (h *Account) apps(w http.ResponseWriter, r *http.Request) {
	user, _ := signedIn(r, h.Sessions, h.Provider, h.Logger)
	if user == nil {
		http.Redirect(w, r, provider.PathLogin+"?next="+PathConnectedApps, http.StatusSeeOther)
		return
	}
	apps, err := h.Provider.ConnectedApps(r.Context(), user.Subject)
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "list connected apps", "err", err)
		h.Pages.Error(w, r, http.StatusInternalServerError, errorServer)
		return
	}
	view := appsView{Username: user.Username}
	opts := h.Pages.Options(r, nil, "")
	if removed := r.URL.Query().Get("removed"); removed != "" {
		for _, a := range apps {
			if a.Client.ID == removed {
				removed = ""
			}
		}
		view.Removed = removed
	}
	for _, a := range apps {
		v := appView{ClientID: a.Client.ID, Client: newClientView(a.Client), Offline: a.Offline, CanRemove: a.CanRemove,
			ByConsent: a.ByConsent, Granted: a.FirstGranted.UTC().Format(time.DateOnly)}
		if a.LastUsed != nil {
			v.LastUsed = a.LastUsed.UTC().Format("2006-01-02 15:04 UTC")
		}
		for _, scope := range a.Scopes {
			if scope == provider.ScopeOfflineAccess {
				continue
			}
			d := h.Pages.Templates.Scope(opts.Lang, scope)
			v.Permissions = append(v.Permissions, scopeView{Name: scope, Title: d.Title, Description: d.Description})
		}
		if a.Agreement != nil {
			v.AgreementRef = a.Agreement.Reference
		}
		if v.CSRF, err = h.Sessions.CSRFToken(w, r, csrfRemoveApp, a.Client.ID, user.Subject); err != nil {
			h.Logger.ErrorContext(r.Context(), "connected apps csrf token", "err", err)
			h.Pages.Error(w, r, http.StatusInternalServerError, errorServer)
			return
		}
		view.Apps = append(view.Apps, v)
	}
	h.Pages.RenderWith(w, r, opts, http.StatusOK, "account_apps.html", view)
}

// remove is "Remove access": it revokes the grant and every token at once.
func (h *Account) remove(w http.ResponseWriter, r *http.Request) {
	user, _, clientID, ok := h.postForm(w, r, csrfRemoveApp, "client_id")
	if !ok {
		return
	}
	err := h.Provider.RemoveAccess(r.Context(), user.Subject, clientID, clientIP(r), truncate(r.UserAgent(), 512))
	switch {
	case errors.Is(err, provider.ErrRemovalForbidden):
		h.Pages.Error(w, r, http.StatusForbidden, errorRemovalForbidden)
		return
	case errors.Is(err, storage.ErrNotFound):
		h.Pages.Error(w, r, http.StatusNotFound, errorNothingToRemove)
		return
	case err != nil:
		h.Logger.ErrorContext(r.Context(), "remove access", "err", err)
		h.Pages.Error(w, r, http.StatusInternalServerError, errorServer)
		return
	}
	h.Logger.InfoContext(r.Context(), "access removed by user", "client_id", clientID, "sub", user.Subject)
	http.Redirect(w, r, PathConnectedApps+"?removed="+clientID, http.StatusSeeOther)
}

// sessionsView is the data of account_sessions.html.
type sessionsView struct {
	Username string
	Sessions []sessionView
	// OthersCSRF is the token of "Sign out everywhere else"; empty when
	// this browser is the only one.
	OthersCSRF string
	// Ended reports that sessions were just signed out.
	Ended bool
}

type sessionView struct {
	ID string
	// Browser and OS come from the User-Agent; "" when not recognised.
	Browser, OS string
	// IPAddress is the place: there is no GeoIP database.
	IPAddress string
	SignedIn  string
	LastSeen  string
	// Current is this browser, which "Sign out" (of /logout) ends instead.
	Current bool
	CSRF    string
}

const sessionTimeLayout = "2006-01-02 15:04 UTC"

func (h *Account) sessions(w http.ResponseWriter, r *http.Request) {
	user, current := signedIn(r, h.Sessions, h.Provider, h.Logger)
	if user == nil {
		http.Redirect(w, r, provider.PathLogin+"?next="+PathSessions, http.StatusSeeOther)
		return
	}
	list, err := h.Provider.Sessions(r.Context(), user.Subject)
	if err != nil {
		h.serverError(w, r, "list sessions", err)
		return
	}
	view := sessionsView{Username: user.Username, Ended: r.URL.Query().Get("ended") == "1"}
	for _, sess := range list {
		d := provider.ParseUserAgent(sess.UserAgent)
		v := sessionView{ID: sess.ID, Browser: d.Browser, OS: d.OS, IPAddress: sess.IPAddress, Current: sess.ID == current.ID,
			SignedIn: sess.CreatedAt.UTC().Format(sessionTimeLayout), LastSeen: sess.LastSeenAt.UTC().Format(sessionTimeLayout)}
		if !v.Current {
			if v.CSRF, err = h.Sessions.CSRFToken(w, r, csrfEndSession, sess.ID, user.Subject); err != nil {
				h.serverError(w, r, "sessions csrf token", err)
				return
			}
			if view.OthersCSRF == "" {
				if view.OthersCSRF, err = h.Sessions.CSRFToken(w, r, csrfEndOtherSessions, "", user.Subject); err != nil {
					h.serverError(w, r, "sessions csrf token", err)
					return
				}
			}
		}
		view.Sessions = append(view.Sessions, v)
	}
	h.Pages.Render(w, r, http.StatusOK, "account_sessions.html", view)
}

// endSession is "Sign out" of one of the user's other browsers.
func (h *Account) endSession(w http.ResponseWriter, r *http.Request) {
	user, _, id, ok := h.postForm(w, r, csrfEndSession, "id")
	if !ok {
		return
	}
	// Only the user's own sessions: the store matches the subject too.
	err := h.Provider.SignOutSession(r.Context(), user.Subject, id, clientIP(r), truncate(r.UserAgent(), 512))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.serverError(w, r, "end session", err)
		return
	}
	h.Logger.InfoContext(r.Context(), "session signed out by user", "sub", user.Subject, "session_id", id)
	http.Redirect(w, r, PathSessions+"?ended=1", http.StatusSeeOther)
}

// endOtherSessions is "Sign out everywhere else".
func (h *Account) endOtherSessions(w http.ResponseWriter, r *http.Request) {
	user, current, _, ok := h.postForm(w, r, csrfEndOtherSessions, "")
	if !ok {
		return
	}
	n, err := h.Provider.SignOutOtherSessions(r.Context(), user.Subject, current.IDHash, clientIP(r), truncate(r.UserAgent(), 512))
	if err != nil {
		h.serverError(w, r, "end other sessions", err)
		return
	}
	h.Logger.InfoContext(r.Context(), "other sessions signed out by user", "sub", user.Subject, "count", n)
	http.Redirect(w, r, PathSessions+"?ended=1", http.StatusSeeOther)
}

// postForm reads an account page's POST: the signed-in user and session,
// and the form's field (the value the CSRF token is bound to, "" for none).
// It writes the error page itself and returns false for a malformed form,
// no signed-in user or a CSRF token that does not match.
func (h *Account) postForm(w http.ResponseWriter, r *http.Request, purpose, field string) (*storage.User, *storage.BrowserSession, string, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.Pages.Error(w, r, http.StatusBadRequest, errorBadRequest)
		return nil, nil, "", false
	}
	value := ""
	if field != "" {
		value = r.PostFormValue(field)
	}
	user, sess := signedIn(r, h.Sessions, h.Provider, h.Logger)
	if user == nil || h.Sessions.CheckCSRF(r, purpose, value, user.Subject) != nil {
		h.Pages.Error(w, r, http.StatusForbidden, errorForbidden)
		return nil, nil, "", false
	}
	return user, sess, value, true
}

func (h *Account) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.Logger.ErrorContext(r.Context(), what, "err", err)
	status := http.StatusInternalServerError
	if storage.IsUnavailable(err) {
		status = http.StatusServiceUnavailable
	}
	h.Pages.Error(w, r, status, errorServer)
}
