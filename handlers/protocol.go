package handlers

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// maxFormBytes bounds request bodies of the protocol endpoints; real OAuth
// requests are a few hundred bytes.
const maxFormBytes = 64 << 10

// Protocol serves the back-channel OAuth 2.0 and OpenID Connect endpoints:
// token, revocation, introspection, userinfo, discovery and JWKS.
type Protocol struct {
	Provider *provider.Provider
	Logger   *slog.Logger
}

// Mount registers the endpoints on r.
func (h *Protocol) Mount(r *mux.Router) {
	r.HandleFunc(provider.PathToken, h.token).Methods(http.MethodPost)
	r.HandleFunc(provider.PathDeviceAuthorize, h.deviceAuthorize).Methods(http.MethodPost)
	r.HandleFunc(provider.PathRevoke, h.revoke).Methods(http.MethodPost)
	r.HandleFunc(provider.PathIntrospect, h.introspect).Methods(http.MethodPost)
	r.HandleFunc(provider.PathUserinfo, h.userinfo).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc(provider.PathDiscovery, h.discovery).Methods(http.MethodGet)
	r.HandleFunc(provider.PathJWKS, h.jwks).Methods(http.MethodGet)
}

func (h *Protocol) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	session := provider.EmptySession()
	oauth := h.Provider.OAuth2
	ar, err := oauth.NewAccessRequest(ctx, r, session)
	if err != nil {
		if gt := r.PostForm.Get("grant_type"); gt != "" && !h.Provider.SupportsGrantType(gt) {
			// fosite answers invalid_request when no handler claims the
			// grant; RFC 6749 §5.2 names this case.
			err = fosite.ErrUnsupportedGrantType
		}
		err = unavailable(err)
		h.logOAuthError(r, "token request refused", err)
		oauth.WriteAccessError(ctx, w, ar, err)
		return
	}
	if ar.GetGrantTypes().ExactOne("client_credentials") {
		// A client acting for itself: its own id is the subject, and it gets
		// the registered scopes it asked for. openid and offline_access
		// concern a user and mean nothing here.
		session.Subject = ar.GetClient().GetID()
		id, err := provider.NewRequestID()
		if err != nil {
			h.logOAuthError(r, "token request refused", err)
			oauth.WriteAccessError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
			return
		}
		ar.SetID(id)
		for _, scope := range ar.GetRequestedScopes() {
			if scope != provider.ScopeOpenID && scope != provider.ScopeOfflineAccess {
				ar.GrantScope(scope)
			}
		}
		for _, aud := range ar.GetRequestedAudience() {
			ar.GrantAudience(aud)
		}
	}
	resp, err := oauth.NewAccessResponse(ctx, ar)
	if err != nil {
		err = unavailable(err)
		h.logOAuthError(r, "token response refused", err)
		oauth.WriteAccessError(ctx, w, ar, err)
		return
	}
	oauth.WriteAccessResponse(ctx, w, ar, resp)
}

func (h *Protocol) revoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	err := h.Provider.OAuth2.NewRevocationRequest(ctx, r)
	if err != nil {
		err = unavailable(err)
		h.logOAuthError(r, "revocation refused", err)
		if fosite.ErrorToRFC6749Error(err).CodeField >= http.StatusInternalServerError {
			// fosite would answer 200; RFC 7009 §2.2.1: 503 tells the client
			// the token was not revoked and to try again.
			writeUnavailable(w)
			return
		}
	}
	h.Provider.OAuth2.WriteRevocationResponse(ctx, w, err)
}

func (h *Protocol) introspect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	ir, err := h.Provider.Introspect(ctx, r)
	if err != nil {
		err = unavailable(err)
		h.logOAuthError(r, "introspection refused", err)
		if errors.Is(err, fosite.ErrTemporarilyUnavailable) {
			// Not "active": false, which a resource server would take as
			// a revoked token.
			writeUnavailable(w)
			return
		}
		h.Provider.OAuth2.WriteAccessError(ctx, w, nil, err)
		return
	}
	writeIntrospection(w, ir)
}

// writeIntrospection writes an RFC 7662 response. An inactive token gets
// {"active": false} and nothing else (§2.2).
func writeIntrospection(w http.ResponseWriter, ir fosite.IntrospectionResponder) {
	if !ir.IsActive() {
		writeJSON(w, http.StatusOK, map[string]bool{"active": false})
		return
	}
	ar := ir.GetAccessRequester()
	session := ar.GetSession()
	out := map[string]any{"active": true, "token_type": ir.GetAccessTokenType(), "client_id": ar.GetClient().GetID()}
	// For a refresh token RFC 7662 means its own expiry, not that of the
	// access tokens issued with it.
	expiresAt := session.GetExpiresAt(fosite.AccessToken)
	if ir.GetTokenUse() == fosite.RefreshToken {
		expiresAt = session.GetExpiresAt(fosite.RefreshToken)
	}
	if !expiresAt.IsZero() {
		out["exp"] = expiresAt.Unix()
	}
	if at := ar.GetRequestedAt(); !at.IsZero() {
		out["iat"] = at.Unix()
	}
	if scopes := ar.GetGrantedScopes(); len(scopes) > 0 {
		out["scope"] = strings.Join(scopes, " ")
	}
	if sub := session.GetSubject(); sub != "" {
		out["sub"] = sub
	}
	if username := session.GetUsername(); username != "" {
		out["username"] = username
	}
	if aud := ar.GetGrantedAudience(); len(aud) > 0 {
		out["aud"] = aud
	}
	writeJSON(w, http.StatusOK, out)
}

// userinfo returns the claims the access token's scopes release (OIDC Core §5.3).
func (h *Protocol) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	token := fosite.AccessTokenFromRequest(r)
	if token == "" {
		writeBearerError(w, http.StatusUnauthorized, "invalid_request", "An access token is required.")
		return
	}
	use, ar, err := h.Provider.OAuth2.IntrospectToken(ctx, token, fosite.AccessToken, provider.EmptySession())
	if err == nil && use != fosite.AccessToken {
		// fosite's introspection also accepts a refresh token; a refresh
		// token is never a bearer credential (RFC 6750 §1.2).
		err = fosite.ErrRequestUnauthorized.WithHint("A refresh token is not an access token.")
	}
	if err != nil {
		err = unavailable(err)
		h.logOAuthError(r, "userinfo token refused", err)
		if errors.Is(err, fosite.ErrTemporarilyUnavailable) {
			writeUnavailable(w)
			return
		}
		writeBearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is not valid.")
		return
	}
	if !ar.GetGrantedScopes().Has(provider.ScopeOpenID) {
		writeBearerError(w, http.StatusForbidden, "insufficient_scope", "The access token was not granted the openid scope.")
		return
	}
	session, ok := ar.GetSession().(*openid.DefaultSession)
	if !ok {
		writeBearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is not valid.")
		return
	}
	user, err := h.Provider.User(ctx, session.Subject)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && user.Disabled) {
		writeBearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is not valid.")
		return
	}
	if err != nil {
		h.Logger.ErrorContext(ctx, "userinfo: load user", "err", err)
		if storage.IsUnavailable(err) {
			writeUnavailable(w)
			return
		}
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	writeJSON(w, http.StatusOK, provider.UserClaims(user, ar.GetGrantedScopes()))
}

func (h *Protocol) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.Provider.Discovery())
}

func (h *Protocol) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.Provider.Keys.Public())
}

// logOAuthError logs a refused protocol request at a level matching its
// cause: client mistakes are info, server faults are errors.
func (h *Protocol) logOAuthError(r *http.Request, msg string, err error) {
	logOAuthError(h.Logger, r, msg, err)
}

func logOAuthError(logger *slog.Logger, r *http.Request, msg string, err error) {
	rfc := fosite.ErrorToRFC6749Error(err)
	attrs := []slog.Attr{
		slog.String("error", rfc.ErrorField),
		slog.String("hint", redactCredentials(r, rfc.HintField)),
		// The debug text is logged, never sent: it may name internals.
		slog.String("debug", redactCredentials(r, rfc.DebugField)),
		slog.String("path", r.URL.Path),
	}
	level := slog.LevelInfo
	if rfc.CodeField >= http.StatusInternalServerError {
		level = slog.LevelError
		// A server fault's cause is what an operator needs; fosite often
		// wraps it without debug text.
		if cause := oauthCause(err); cause != "" && cause != rfc.DebugField {
			attrs = append(attrs, slog.String("cause", redactCredentials(r, cause)))
		}
	}
	logger.LogAttrs(r.Context(), level, msg, attrs...)
}

// oauthCause is the text of the innermost error err wraps that is not an
// OAuth error itself, or "".
func oauthCause(err error) string {
	for {
		var rfc *fosite.RFC6749Error
		if !errors.As(err, &rfc) {
			break
		}
		if err = rfc.Unwrap(); err == nil {
			return ""
		}
	}
	return err.Error()
}

// unavailable turns err into temporarily_unavailable (503) when the
// database could not be reached. fosite would report a failed client
// lookup as invalid_client, and a failed token lookup as an invalid
// token; nothing the client sent was wrong, and it should retry.
func unavailable(err error) error {
	if !storage.IsUnavailable(err) {
		return err
	}
	return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithDebug(fosite.ErrorToRFC6749Error(err).DebugField)
}

// writeUnavailable answers 503 temporarily_unavailable in JSON.
func writeUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{
		"error":             "temporarily_unavailable",
		"error_description": "The service is temporarily unavailable. Try again later.",
	})
}

func writeBearerError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="`+code+`", error_description="`+description+`"`)
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
