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

const csrfRemoveApp = "remove-app"

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
	user, _ := signedIn(r, h.Sessions, h.Provider.Store, h.Logger)
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
			if scope == provider.ScopeOfflineAcces {
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
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.Pages.Error(w, r, http.StatusBadRequest, errorBadRequest)
		return
	}
	clientID := r.PostFormValue("client_id")
	user, _ := signedIn(r, h.Sessions, h.Provider.Store, h.Logger)
	if user == nil || h.Sessions.CheckCSRF(r, csrfRemoveApp, clientID, user.Subject) != nil {
		h.Pages.Error(w, r, http.StatusForbidden, errorForbidden)
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
