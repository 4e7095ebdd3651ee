package handlers

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

const (
	csrfDevice        = "device"
	csrfDeviceConsent = "device-consent"
)

// Device serves the verification page of the device authorization grant
// (RFC 8628 §3.3): the user signs in, enters or confirms the code shown on
// the device, and decides on the consent screen, which offers the scopes
// under the same rules as the browser flow and is shown for every code.
type Device struct {
	Provider *provider.Provider
	Pages    *Pages
	Sessions *Sessions
	Logger   *slog.Logger
}

// Mount registers the pages on r.
func (h *Device) Mount(r *mux.Router) {
	r.HandleFunc(provider.PathDeviceVerification, h.page).Methods(http.MethodGet)
	r.HandleFunc(provider.PathDeviceVerification, h.submit).Methods(http.MethodPost)
	r.HandleFunc(provider.PathDeviceVerification+"/consent", h.consent).Methods(http.MethodPost)
}

// deviceView is the data of device.html.
type deviceView struct {
	CSRF     string
	Username string
	// UserCode is the code as typed or given in verification_uri_complete.
	UserCode string
	// Invalid reports a code that is wrong, used or expired.
	Invalid bool
	// Blocked reports too many wrong codes.
	Blocked bool
}

// deviceDoneView is the data of device_done.html.
type deviceDoneView struct {
	Approved   bool
	ClientName string
}

func (h *Device) page(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("user_code")
	user, _ := signedIn(r, h.Sessions, h.Provider, h.Logger)
	if user == nil {
		h.toLogin(w, r, code)
		return
	}
	h.renderCodeForm(w, r, user, http.StatusOK, deviceView{UserCode: code})
}

func (h *Device) toLogin(w http.ResponseWriter, r *http.Request, code string) {
	next := provider.PathDeviceVerification
	if code != "" {
		next += "?user_code=" + url.QueryEscape(code)
	}
	http.Redirect(w, r, provider.PathLogin+"?next="+url.QueryEscape(safeNext(next)), http.StatusSeeOther)
}

func (h *Device) renderCodeForm(w http.ResponseWriter, r *http.Request, user *storage.User, status int, view deviceView) {
	token, err := h.Sessions.CSRFToken(w, r, csrfDevice, "", user.Subject)
	if err != nil {
		h.serverError(w, r, "device csrf token", err)
		return
	}
	view.CSRF, view.Username = token, user.Username
	h.Pages.Render(w, r, status, "device.html", view)
}

// verificationKeys are the limits a code entry counts against (RFC 8628
// §5.1): a small one for the server-side browser session, so one user's
// typos block only that session (a guesser needs a new sign-in, which has
// its own throttle, for a fresh budget), and a larger one for the address.
func verificationKeys(r *http.Request, sess *storage.BrowserSession) []provider.VerificationLimit {
	return []provider.VerificationLimit{provider.AddressVerificationLimit(clientIP(r)), provider.SessionVerificationLimit(sess.ID)}
}

// submit takes the code the user typed.
func (h *Device) submit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.Pages.Error(w, r, http.StatusBadRequest, errorBadRequest)
		return
	}
	user, sess := signedIn(r, h.Sessions, h.Provider, h.Logger)
	if user == nil || h.Sessions.CheckCSRF(r, csrfDevice, "", user.Subject) != nil {
		h.Pages.Error(w, r, http.StatusForbidden, errorForbidden)
		return
	}
	code := r.PostFormValue("user_code")
	keys := verificationKeys(r, sess)
	blocked, err := h.Provider.VerificationBlocked(ctx, keys...)
	if err != nil {
		h.serverError(w, r, "device rate limit", err)
		return
	}
	if blocked {
		h.Logger.WarnContext(ctx, "device code entry blocked: too many wrong codes", "sub", user.Subject)
		h.renderCodeForm(w, r, user, http.StatusTooManyRequests, deviceView{UserCode: code, Blocked: true})
		return
	}
	d, err := h.Provider.FindDeviceAuthorization(ctx, code)
	if errors.Is(err, storage.ErrNotFound) {
		if err := h.Provider.RecordFailedVerification(ctx, keys...); err != nil {
			h.serverError(w, r, "record wrong device code", err)
			return
		}
		h.renderCodeForm(w, r, user, http.StatusBadRequest, deviceView{UserCode: code, Invalid: true})
		return
	}
	if err != nil {
		h.serverError(w, r, "find device authorization", err)
		return
	}
	decision, err := h.Provider.DecideDeviceConsent(ctx, d, user.Subject)
	if err != nil {
		h.serverError(w, r, "decide device consent", err)
		return
	}
	client, err := h.Provider.Client(ctx, d.ClientID)
	if err != nil {
		h.serverError(w, r, "load device client", err)
		return
	}
	switch decision.Outcome {
	case consent.OutcomeGrant, consent.OutcomeScreen:
		// Always the screen, even when the policy needs no consent (an
		// agreement, a remembered consent): a code typed here may be shown
		// by someone else's device, sent to the user to approve (RFC 8628
		// §5.4). Only the user can tell, seeing the application and the code.
		h.renderConsent(w, r, user, client, d.UserCode, decision.Scopes)
	default:
		h.Provider.Logger.InfoContext(ctx, "device authorization refused by policy", "client_id", d.ClientID)
		h.done(w, r, h.Provider.DenyDevice(ctx, d.ID, user.Subject, clientIP(r), truncate(r.UserAgent(), 512)), false, client)
	}
}

// renderConsent shows the consent screen for a device, offering scopes,
// with the code as the device shows it and the warning against codes that
// someone else sent.
func (h *Device) renderConsent(w http.ResponseWriter, r *http.Request, user *storage.User, client *storage.Client, userCode string, offered []string) {
	opts := h.Pages.Options(r, client, "")
	view := consentView{FormAction: provider.PathDeviceVerification + "/consent", RequestID: userCode, UserCode: provider.FormatUserCode(userCode),
		NotYouNext: provider.PathDeviceVerification + "?user_code=" + userCode,
		User:       userView{Username: user.Username, Name: user.Name, Email: user.Email}, Client: newClientView(client)}
	for _, scope := range offered {
		d := h.Pages.Templates.Scope(opts.Lang, scope)
		sv := scopeView{Name: scope, Title: d.Title, Description: d.Description, Optional: scope != provider.ScopeOpenID, Checked: true}
		if scope == provider.ScopeOfflineAccess {
			view.Offline = &sv
			continue
		}
		view.Scopes = append(view.Scopes, sv)
	}
	var err error
	if view.CSRF, err = h.Sessions.CSRFToken(w, r, csrfDeviceConsent, userCode, user.Subject); err != nil {
		h.serverError(w, r, "device consent csrf token", err)
		return
	}
	if view.LogoutCSRF, err = h.Sessions.CSRFToken(w, r, csrfLogout, "", user.Subject); err != nil {
		h.serverError(w, r, "logout csrf token", err)
		return
	}
	h.Pages.RenderWith(w, r, opts, http.StatusOK, "consent.html", view)
}

// consent receives the decision for a device.
func (h *Device) consent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.Pages.Error(w, r, http.StatusBadRequest, errorBadRequest)
		return
	}
	userCode := r.PostFormValue("request")
	user, sess := signedIn(r, h.Sessions, h.Provider, h.Logger)
	if user == nil || h.Sessions.CheckCSRF(r, csrfDeviceConsent, userCode, user.Subject) != nil {
		h.Pages.Error(w, r, http.StatusForbidden, errorForbidden)
		return
	}
	d, err := h.Provider.FindDeviceAuthorization(ctx, userCode)
	if errors.Is(err, storage.ErrNotFound) {
		h.Pages.Error(w, r, http.StatusBadRequest, errorExpired)
		return
	}
	if err != nil {
		h.serverError(w, r, "find device authorization", err)
		return
	}
	client, err := h.Provider.Client(ctx, d.ClientID)
	if err != nil {
		h.serverError(w, r, "load device client", err)
		return
	}
	// The offer is decided again rather than trusted from the form: the
	// user can only narrow it.
	decision, err := h.Provider.DecideDeviceConsent(ctx, d, user.Subject)
	if err != nil {
		h.serverError(w, r, "decide device consent", err)
		return
	}
	granted, err := h.Provider.Policy.Choose(decision.Scopes, r.PostForm["scope"], r.PostFormValue("action") == "allow")
	if err != nil || (decision.Outcome != consent.OutcomeGrant && decision.Outcome != consent.OutcomeScreen) {
		if err == nil {
			h.Provider.Logger.InfoContext(ctx, "device authorization refused by policy", "client_id", d.ClientID)
		}
		h.done(w, r, h.Provider.DenyDevice(ctx, d.ID, user.Subject, clientIP(r), truncate(r.UserAgent(), 512)), false, client)
		return
	}
	// The grant's basis is what the policy decided, not "consent" because
	// a screen was shown: the screen confirms the device, and where the
	// policy needed no consent the grant still rests on the agreement (its
	// revocation or end must end the device's offline access, and its end
	// caps the refresh token) or on the remembered consent it reused (see
	// consent.Decision.GrantBasis). The user can only narrow the scopes,
	// which the same basis still covers.
	_, err = h.Provider.Grant(ctx, provider.GrantRequest{
		DeviceID: d.ID, Subject: user.Subject, AuthTime: sess.AuthTime, Decision: decision, Scopes: granted,
		IPAddress: clientIP(r), UserAgent: truncate(r.UserAgent(), 512),
	})
	h.done(w, r, err, true, client)
}

// done tells the user to return to the device.
func (h *Device) done(w http.ResponseWriter, r *http.Request, err error, approved bool, client *storage.Client) {
	if errors.Is(err, storage.ErrNotFound) {
		h.Pages.Error(w, r, http.StatusBadRequest, errorExpired)
		return
	}
	if err != nil {
		h.serverError(w, r, "record device decision", err)
		return
	}
	h.Pages.RenderWith(w, r, h.Pages.Options(r, client, ""), http.StatusOK, "device_done.html", deviceDoneView{Approved: approved, ClientName: clientName(client)})
}

func (h *Device) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.Logger.ErrorContext(r.Context(), what, "err", err)
	status := http.StatusInternalServerError
	if storage.IsUnavailable(err) {
		status = http.StatusServiceUnavailable
	}
	h.Pages.Error(w, r, status, errorServer)
}
