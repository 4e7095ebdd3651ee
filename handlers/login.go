package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
	"github.com/consentry/consentry/templates"
)

const (
	csrfLogin  = "login"
	csrfLogout = "logout"
	// amrPassword is the authentication method of a password login (RFC 8176).
	amrPassword = "pwd"
)

// loginView is the data of login.html.
type loginView struct {
	CSRF      string
	RequestID string
	// Next is a provider page to return to after a login without a pending
	// request; only known pages are accepted, so it cannot redirect away.
	Next       string
	ClientName string
	Username   string
	// Failed reports a wrong username or password.
	Failed bool
	// RetryMinutes, when set, reports that sign-ins are refused after too
	// many failures, for this many more minutes (rounded up).
	RetryMinutes int
	// Unavailable reports that the company directory could not be asked.
	Unavailable bool
	// NoPasswordForm hides the username and password form: no connector
	// checks passwords.
	NoPasswordForm bool
	// Upstreams are the "Sign in with NAME" buttons.
	Upstreams []upstreamButton
	// opts is how to render the page: the client's theme and the request's
	// language.
	opts templates.Options
}

func (h *Authorize) loginPage(w http.ResponseWriter, r *http.Request) {
	view := loginView{RequestID: r.URL.Query().Get("request"), Next: safeNext(r.URL.Query().Get("next"))}
	view.opts = h.Pages.Options(r, nil, "")
	if view.RequestID != "" {
		_, ar, ok := h.loadPending(w, r, view.RequestID)
		if !ok {
			return
		}
		view.ClientName = clientName(ar.GetClient())
		view.opts = h.Pages.Options(r, ar.GetClient(), ar.GetRequestForm().Get("ui_locales"))
	}
	h.renderLogin(w, r, http.StatusOK, view)
}

// upstreamButton is a link to sign in at an upstream provider.
type upstreamButton struct {
	Name string
	// Path is the provider path that starts the sign-in there.
	Path string
}

func (h *Authorize) renderLogin(w http.ResponseWriter, r *http.Request, status int, view loginView) {
	view.NoPasswordForm = true
	view.Upstreams = nil
	for _, c := range h.Provider.Connectors {
		if c.Password != nil {
			view.NoPasswordForm = false
		}
		if c.Callback != nil {
			q := url.Values{}
			if view.RequestID != "" {
				q.Set("request", view.RequestID)
			}
			if view.Next != "/" && view.Next != "" {
				q.Set("next", view.Next)
			}
			path := provider.PathLogin + "/" + c.ID
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			view.Upstreams = append(view.Upstreams, upstreamButton{Name: c.Name, Path: path})
		}
	}
	token, err := h.Sessions.CSRFToken(w, r, csrfLogin, view.RequestID, "")
	if err != nil {
		h.serverError(w, r, "login csrf token", err)
		return
	}
	view.CSRF = token
	h.Pages.RenderWith(w, r, view.opts, status, "login.html", view)
}

// login checks the username and password. Every failure gets the same
// message and costs one password hash, so it does not tell whether the user
// exists. Before the password is looked at, the account's and the address's
// failures are: past their limit the try is refused with no hash computed.
func (h *Authorize) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.Pages.Error(w, r, http.StatusBadRequest, errorBadRequest)
		return
	}
	requestID := r.PostFormValue("request")
	if err := h.Sessions.CheckCSRF(r, csrfLogin, requestID, ""); err != nil {
		h.Pages.Error(w, r, http.StatusForbidden, errorForbidden)
		return
	}
	view := loginView{RequestID: requestID, Username: r.PostFormValue("username"), Next: safeNext(r.PostFormValue("next"))}
	view.opts = h.Pages.Options(r, nil, "")
	if requestID != "" {
		_, ar, ok := h.loadPending(w, r, requestID)
		if !ok {
			return
		}
		view.ClientName = clientName(ar.GetClient())
		view.opts = h.Pages.Options(r, ar.GetClient(), ar.GetRequestForm().Get("ui_locales"))
	}

	ip := clientIP(r)
	wait, err := h.Provider.LoginRetryAfter(ctx, view.Username, ip)
	if err != nil {
		h.serverError(w, r, "check login throttle", err)
		return
	}
	if wait > 0 {
		h.Logger.InfoContext(ctx, "login refused: too many failed attempts", "retry_after", wait.Round(time.Second))
		h.renderThrottled(w, r, view, wait)
		return
	}

	res, err := h.Provider.LoginWithPassword(ctx, view.Username, r.PostFormValue("password"))
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// The client went away while waiting for a hash slot.
		h.Logger.InfoContext(ctx, "login abandoned while waiting to check the password", "err", err)
		h.Pages.Error(w, r, http.StatusServiceUnavailable, errorServer)
		return
	case errors.Is(err, provider.ErrUsernameTaken):
		h.Logger.InfoContext(ctx, "login refused: the directory's username belongs to another user")
		h.Pages.Error(w, r, http.StatusConflict, errorUsernameTaken)
		return
	case err != nil && !errors.Is(err, provider.ErrDirectoryUnavailable) && !errors.Is(err, provider.ErrUserDisabled):
		h.serverError(w, r, "sign in", err)
		return
	}
	if res.User == nil {
		if res.Refused {
			attempt := provider.LoginAttempt{Username: view.Username, Subject: res.Subject, IP: ip, UserAgent: truncate(r.UserAgent(), 512), Reason: res.Reason}
			if _, err := h.Provider.RecordLoginFailure(ctx, attempt); err != nil {
				h.serverError(w, r, "record failed login", err)
				return
			}
			h.Logger.InfoContext(ctx, "login failed", "sub", attempt.Subject)
		}
		if errors.Is(err, provider.ErrDirectoryUnavailable) {
			view.Unavailable = true
			h.renderLogin(w, r, http.StatusServiceUnavailable, view)
			return
		}
		view.Failed = true
		h.renderLogin(w, r, http.StatusUnauthorized, view)
		return
	}
	if err := h.Provider.ClearLoginFailures(ctx, view.Username); err != nil {
		// The user signs in all the same; their old failures stay counted.
		h.Logger.WarnContext(ctx, "clear failed logins", "sub", res.User.Subject, "err", err)
	}
	h.finishLogin(w, r, res.User, requestID, view.Next, []string{amrPassword})
}

// finishLogin starts the browser session of user and goes on: to the
// pending request, bound to the sign-in, or to next.
func (h *Authorize) finishLogin(w http.ResponseWriter, r *http.Request, user *storage.User, requestID, next string, amr []string) {
	ctx := r.Context()
	sess, err := h.Sessions.Start(w, r, user.Subject, h.Provider.Now(), amr)
	if err != nil {
		h.serverError(w, r, "start session", err)
		return
	}
	authTime := sess.AuthTime
	h.Logger.InfoContext(ctx, "login succeeded", "sub", user.Subject, "connector", user.ConnectorID)
	if requestID == "" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	err = h.Provider.SignInPendingRequest(ctx, requestID, user.Subject, authTime)
	if errors.Is(err, storage.ErrNotFound) {
		h.Pages.Error(w, r, http.StatusBadRequest, errorExpired)
		return
	}
	if err != nil {
		h.serverError(w, r, "bind pending request to login", err)
		return
	}
	http.Redirect(w, r, provider.PathResume+"?request="+url.QueryEscape(requestID), http.StatusSeeOther)
}

// renderThrottled refuses a sign-in with 429 and how many minutes to wait.
func (h *Authorize) renderThrottled(w http.ResponseWriter, r *http.Request, view loginView, wait time.Duration) {
	view.RetryMinutes = int((wait + time.Minute - 1) / time.Minute)
	w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	h.renderLogin(w, r, http.StatusTooManyRequests, view)
}

// logoutView is the data of logout.html.
type logoutView struct {
	CSRF     string
	Username string
}

func (h *Authorize) logoutPage(w http.ResponseWriter, r *http.Request) {
	user, _ := h.currentUser(r)
	view := logoutView{}
	if user != nil {
		token, err := h.Sessions.CSRFToken(w, r, csrfLogout, "", user.Subject)
		if err != nil {
			h.serverError(w, r, "logout csrf token", err)
			return
		}
		view.CSRF, view.Username = token, user.Username
	}
	h.Pages.Render(w, r, http.StatusOK, "logout.html", view)
}

// logout ends the browser session. With a pending request ("not you?" on
// the consent page) it restarts that request at the login page.
func (h *Authorize) logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.Pages.Error(w, r, http.StatusBadRequest, errorBadRequest)
		return
	}
	requestID := r.PostFormValue("request")
	subject := ""
	if user, _ := h.currentUser(r); user != nil {
		subject = user.Subject
	}
	if err := h.Sessions.CheckCSRF(r, csrfLogout, requestID, subject); err != nil {
		h.Pages.Error(w, r, http.StatusForbidden, errorForbidden)
		return
	}
	if err := h.Sessions.End(w, r); err != nil {
		h.serverError(w, r, "end session", err)
		return
	}
	if requestID == "" {
		if next := safeNext(r.PostFormValue("next")); next != "/" {
			// "Not you?" on the device consent page: sign in as someone else.
			http.Redirect(w, r, provider.PathLogin+"?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		}
		h.Pages.Render(w, r, http.StatusOK, "logout.html", logoutView{})
		return
	}
	err := h.Provider.SignInPendingRequest(ctx, requestID, "", time.Time{})
	if errors.Is(err, storage.ErrNotFound) {
		h.Pages.Render(w, r, http.StatusOK, "logout.html", logoutView{})
		return
	}
	if err != nil {
		h.serverError(w, r, "unbind pending request", err)
		return
	}
	http.Redirect(w, r, provider.PathLogin+"?request="+url.QueryEscape(requestID), http.StatusSeeOther)
}

// indexView is the data of index.html.
type indexView struct {
	Username string
	Demo     bool
}

func (h *Authorize) index(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		h.Pages.Error(w, r, http.StatusNotFound, errorNotFound)
		return
	}
	view := indexView{Demo: h.Provider.Config.Demo}
	if user, _ := h.currentUser(r); user != nil {
		view.Username = user.Username
	}
	h.Pages.Render(w, r, http.StatusOK, "index.html", view)
}

// deviceNext matches the device verification page with an optional user
// code, the one page with a query a login may return to.
var deviceNext = regexp.MustCompile(`^/device(\?user_code=[A-Za-z0-9-]{1,16})?$`)

// safeNext returns next when it is a page of this provider a login may
// return to, and "/" otherwise, so it can never redirect elsewhere.
func safeNext(next string) string {
	if next == PathConnectedApps || next == PathSessions || deviceNext.MatchString(next) {
		return next
	}
	return "/"
}
