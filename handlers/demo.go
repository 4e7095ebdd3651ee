package handlers

import (
	"context"
	"crypto"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/mux"
	"golang.org/x/oauth2"

	"github.com/consentry/consentry/provider"
)

const (
	demoFlowCookie = "consentry_demo"
	csrfDemo       = "demo"
)

// Demo plays the part of a client application on the provider itself, so a
// newcomer can watch the whole flow: it is a real OAuth client that talks to
// the provider over HTTP, with PKCE, state and nonce.
type Demo struct {
	Provider *provider.Provider
	Pages    *Pages
	Sessions *Sessions
	Logger   *slog.Logger
}

// Mount registers the demo pages on r.
func (h *Demo) Mount(r *mux.Router) {
	r.HandleFunc("/demo", h.page).Methods(http.MethodGet)
	r.HandleFunc("/demo/start", h.start).Methods(http.MethodPost)
	r.HandleFunc("/demo/callback", h.callback).Methods(http.MethodGet)
}

// demoFlow is what the demo client remembers between redirect and callback.
type demoFlow struct {
	ClientID, State, Nonce, Verifier string
}

type demoView struct{ CSRF string }

type demoResultView struct {
	ClientName              string
	Error, ErrorDescription string
	Scope                   string
	RefreshTokenIssued      bool
	Claims                  []claimView
}

type claimView struct{ Name, Value string }

func (h *Demo) oauthConfig(clientID string) *oauth2.Config {
	iss := strings.TrimSuffix(h.Provider.Config.Issuer, "/")
	return &oauth2.Config{
		ClientID:    clientID,
		Endpoint:    oauth2.Endpoint{AuthURL: iss + provider.PathAuthorize, TokenURL: iss + provider.PathToken, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: iss + provider.DemoCallbackPath,
	}
}

func (h *Demo) page(w http.ResponseWriter, r *http.Request) {
	token, err := h.Sessions.CSRFToken(w, r, csrfDemo, "", "")
	if err != nil {
		h.Logger.ErrorContext(r.Context(), "demo csrf token", "err", err)
		h.Pages.Error(w, r, http.StatusInternalServerError, errorServer)
		return
	}
	h.Pages.Render(w, r, http.StatusOK, "demo.html", demoView{CSRF: token})
}

func (h *Demo) start(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil || h.Sessions.CheckCSRF(r, csrfDemo, "", "") != nil {
		h.Pages.Error(w, r, http.StatusForbidden, errorForbidden)
		return
	}
	flow := demoFlow{ClientID: provider.DemoClientID, State: oauth2.GenerateVerifier(), Nonce: oauth2.GenerateVerifier(), Verifier: oauth2.GenerateVerifier()}
	scopes := []string{oidc.ScopeOpenID, "profile", "email"}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(flow.Verifier), oauth2.SetAuthURLParam("nonce", flow.Nonce)}
	switch r.PostFormValue("mode") {
	case "offline":
		// OIDC Core §11: offline access is asked for with prompt=consent.
		scopes = append(scopes, oidc.ScopeOfflineAccess)
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "consent"))
	case "agreement":
		// The first-party app asks for offline access without
		// prompt=consent: its standing agreement covers it.
		flow.ClientID = provider.DemoFirstPartyClientID
		scopes = append(scopes, oidc.ScopeOfflineAccess)
	}
	if err := h.Sessions.PutSigned(w, demoFlowCookie, "/demo", flow, 10*time.Minute); err != nil {
		h.Logger.ErrorContext(r.Context(), "demo flow cookie", "err", err)
		h.Pages.Error(w, r, http.StatusInternalServerError, errorServer)
		return
	}
	cfg := h.oauthConfig(flow.ClientID)
	cfg.Scopes = scopes
	http.Redirect(w, r, cfg.AuthCodeURL(flow.State, opts...), http.StatusSeeOther)
}

func (h *Demo) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var flow demoFlow
	q := r.URL.Query()
	if err := h.Sessions.GetSigned(r, demoFlowCookie, &flow); err != nil ||
		subtle.ConstantTimeCompare([]byte(flow.State), []byte(q.Get("state"))) != 1 {
		h.Pages.Error(w, r, http.StatusBadRequest, errorExpired)
		return
	}
	_ = h.Sessions.PutSigned(w, demoFlowCookie, "/demo", demoFlow{}, -time.Second)
	if e := q.Get("error"); e != "" {
		h.Pages.Render(w, r, http.StatusOK, "demo_result.html", demoResultView{ClientName: demoClientName(flow.ClientID), Error: e, ErrorDescription: q.Get("error_description")})
		return
	}
	view, err := h.redeem(ctx, q.Get("code"), flow)
	if err != nil {
		h.Logger.WarnContext(ctx, "demo code exchange failed", "err", err)
		h.Pages.Render(w, r, http.StatusOK, "demo_result.html", demoResultView{ClientName: demoClientName(flow.ClientID), Error: "exchange_failed"})
		return
	}
	h.Pages.Render(w, r, http.StatusOK, "demo_result.html", view)
}

// redeem exchanges the code at the token endpoint and verifies the ID token
// as any relying party would.
func (h *Demo) redeem(ctx context.Context, code string, flow demoFlow) (demoResultView, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tok, err := h.oauthConfig(flow.ClientID).Exchange(ctx, code, oauth2.VerifierOption(flow.Verifier))
	if err != nil {
		return demoResultView{}, fmt.Errorf("exchange code: %w", err)
	}
	rawIDToken, _ := tok.Extra("id_token").(string)
	var keys []crypto.PublicKey
	for _, k := range h.Provider.Keys.Public().Keys {
		keys = append(keys, k.Key)
	}
	verifier := oidc.NewVerifier(strings.TrimSuffix(h.Provider.Config.Issuer, "/"), &oidc.StaticKeySet{PublicKeys: keys},
		&oidc.Config{ClientID: flow.ClientID, SupportedSigningAlgs: []string{provider.AlgRS256, provider.AlgES256}})
	idToken, err := verifier.Verify(ctx, rawIDToken)
	if err != nil {
		return demoResultView{}, fmt.Errorf("verify id token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(flow.Nonce)) != 1 {
		return demoResultView{}, fmt.Errorf("id token nonce mismatch")
	}
	var claims map[string]any
	if err := idToken.Claims(&claims); err != nil {
		return demoResultView{}, fmt.Errorf("decode claims: %w", err)
	}
	view := demoResultView{ClientName: demoClientName(flow.ClientID), RefreshTokenIssued: tok.RefreshToken != ""}
	view.Scope, _ = tok.Extra("scope").(string)
	for name, v := range claims {
		b, _ := json.Marshal(v)
		view.Claims = append(view.Claims, claimView{Name: name, Value: string(b)})
	}
	sort.Slice(view.Claims, func(i, j int) bool { return view.Claims[i].Name < view.Claims[j].Name })
	return view, nil
}

func demoClientName(clientID string) string {
	if clientID == provider.DemoFirstPartyClientID {
		return provider.DemoFirstPartyClientName
	}
	return provider.DemoClientName
}
