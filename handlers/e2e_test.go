package handlers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// signIn drives the browser through authorize, login and consent and
// returns the query the client receives.
func (e *env) signIn(b *browser, authURL string, untick ...string) url.Values {
	e.t.Helper()
	p := b.get(authURL)
	if strings.Contains(p.URL.Path, "/login") {
		p = b.login(p, e.Issuer, "alice", testPassword)
	}
	if p.Location == nil {
		p = b.consent(p, e.Issuer, "allow", untick...)
	}
	return p.callback(e.t)
}

func TestEndToEndCodeFlowWithStandardClient(t *testing.T) {
	e := newEnv(t)
	_, secret := e.client(provider.ClientSpec{
		ID: "webapp", Scopes: []string{"openid", "profile", "email", "offline_access"},
		GrantTypes: []string{"authorization_code", "refresh_token"},
	})
	ctx := context.Background()

	op, err := oidc.NewProvider(ctx, e.Issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	cfg := oauth2.Config{
		ClientID: "webapp", ClientSecret: secret, Endpoint: op.Endpoint(), RedirectURL: testRedirectURI,
		Scopes: []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess},
	}
	verifier := oauth2.GenerateVerifier()
	nonce := "nonce-" + oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("state-123456789", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("nonce", nonce), oauth2.SetAuthURLParam("prompt", "consent"))

	before := time.Now().Add(-time.Second)
	q := e.signIn(e.browser(), authURL)
	if q.Get("state") != "state-123456789" {
		t.Fatalf("state = %q", q.Get("state"))
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token although offline_access was consented with prompt=consent")
	}

	rawIDToken, _ := tok.Extra("id_token").(string)
	idToken, err := op.Verifier(&oidc.Config{ClientID: "webapp"}).Verify(ctx, rawIDToken)
	if err != nil {
		t.Fatalf("verify id token: %v", err)
	}
	if idToken.Nonce != nonce {
		t.Errorf("nonce = %q, want %q", idToken.Nonce, nonce)
	}
	if idToken.Subject != e.User.Subject {
		t.Errorf("sub = %q, want %q", idToken.Subject, e.User.Subject)
	}
	if err := idToken.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var claims struct {
		AuthTime int64  `json:"auth_time"`
		Email    string `json:"email"`
	}
	if err := idToken.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.AuthTime < before.Unix() || claims.AuthTime > time.Now().Unix() {
		t.Errorf("auth_time = %d, not the time of this login", claims.AuthTime)
	}
	if header := jwtHeader(t, rawIDToken); header["alg"] != "RS256" || header["kid"] == "" {
		t.Errorf("id token header = %v, want RS256 with a kid", header)
	}

	info, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Subject != e.User.Subject || info.Email != "alice@example.com" || !info.EmailVerified {
		t.Errorf("userinfo = %+v", info)
	}

	if got := introspect(t, e, "webapp", secret, tok.AccessToken); got["active"] != true || got["sub"] != e.User.Subject {
		t.Errorf("introspect access token = %v", got)
	}

	// The refresh token works while the user is away.
	expired := *tok
	expired.Expiry = time.Now().Add(-time.Minute)
	refreshed, err := cfg.TokenSource(ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if refreshed.AccessToken == tok.AccessToken || refreshed.RefreshToken == "" {
		t.Fatal("refresh did not issue new tokens")
	}

	revoke(t, e, "webapp", secret, refreshed.RefreshToken)
	if got := introspect(t, e, "webapp", secret, refreshed.RefreshToken); got["active"] != false {
		t.Errorf("revoked refresh token is still active: %v", got)
	}
	if got := introspect(t, e, "webapp", secret, refreshed.AccessToken); got["active"] != false {
		t.Errorf("access token of a revoked refresh token is still active: %v", got)
	}
	if _, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshed.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token(); err == nil {
		t.Error("a revoked refresh token still refreshes")
	}
}

func TestIDTokenSignedWithTheClientsRegisteredAlgorithm(t *testing.T) {
	e := newEnv(t)
	_, secret := e.client(provider.ClientSpec{ID: "es-client", Scopes: []string{"openid"}, IDTokenSignedResponseAlg: "ES256"})
	ctx := context.Background()
	op, err := oidc.NewProvider(ctx, e.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := oauth2.Config{ClientID: "es-client", ClientSecret: secret, Endpoint: op.Endpoint(), RedirectURL: testRedirectURI, Scopes: []string{"openid"}}
	verifier := oauth2.GenerateVerifier()
	q := e.signIn(e.browser(), cfg.AuthCodeURL("state-abcdefgh", oauth2.S256ChallengeOption(verifier)))
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if header := jwtHeader(t, raw); header["alg"] != "ES256" || header["kid"] == "" {
		t.Fatalf("header = %v, want ES256 with a kid", header)
	}
	if _, err := op.Verifier(&oidc.Config{ClientID: "es-client", SupportedSigningAlgs: []string{"ES256"}}).Verify(ctx, raw); err != nil {
		t.Fatalf("verify ES256 id token against the JWKS: %v", err)
	}
	if tok.RefreshToken != "" {
		t.Error("refresh token issued without offline_access")
	}
}

func TestClientCredentialsGrant(t *testing.T) {
	e := newEnv(t)
	_, secret := e.client(provider.ClientSpec{ID: "backend", Scopes: []string{"reports"}, GrantTypes: []string{"client_credentials"}, RedirectURIs: []string{}})
	resp := postForm(t, e.Issuer+"/oauth2/token", "backend", secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"reports"}})
	if resp.status != http.StatusOK || resp.json["access_token"] == nil || resp.json["scope"] != "reports" {
		t.Fatalf("client credentials: %d %v", resp.status, resp.json)
	}
	if resp.json["refresh_token"] != nil {
		t.Error("client credentials issued a refresh token")
	}
	got := introspect(t, e, "backend", secret, resp.json["access_token"].(string))
	if got["active"] != true || got["client_id"] != "backend" {
		t.Errorf("introspect = %v", got)
	}
}

func TestHealthAndDiscovery(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/health/alive", "/health/ready"} {
		resp, err := http.Get(e.Issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	resp, err := http.Get(e.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["issuer"] != e.Issuer {
		t.Errorf("issuer = %v", doc["issuer"])
	}
	for _, key := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "revocation_endpoint", "introspection_endpoint"} {
		if s, _ := doc[key].(string); !strings.HasPrefix(s, e.Issuer+"/") {
			t.Errorf("%s = %v", key, doc[key])
		}
	}
	if !contains(doc["scopes_supported"], "offline_access") || !contains(doc["code_challenge_methods_supported"], "S256") ||
		contains(doc["code_challenge_methods_supported"], "plain") {
		t.Errorf("discovery = %v", doc)
	}
}

func contains(list any, want string) bool {
	items, _ := list.([]any)
	for _, v := range items {
		if v == want {
			return true
		}
	}
	return false
}

func jwtHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	part, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatalf("decode jwt header: %v", err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

type jsonResponse struct {
	status int
	json   map[string]any
	header http.Header
}

// postForm posts form to rawURL with HTTP basic client authentication when
// clientID is set.
func postForm(t testing.TB, rawURL, clientID, secret string, form url.Values) jsonResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	return doJSON(t, req)
}

func doJSON(t testing.TB, req *http.Request) jsonResponse {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := jsonResponse{status: resp.StatusCode, header: resp.Header}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		if resp.StatusCode != http.StatusOK || resp.ContentLength != 0 {
			t.Fatalf("%s %s: status %d with Content-Type %q, want JSON", req.Method, req.URL.Path, resp.StatusCode, ct)
		}
		return out
	}
	if err := json.NewDecoder(resp.Body).Decode(&out.json); err != nil {
		t.Fatalf("decode JSON from %s: %v", req.URL.Path, err)
	}
	return out
}

func introspect(t testing.TB, e *env, clientID, secret, token string) map[string]any {
	t.Helper()
	r := postForm(t, e.Issuer+"/oauth2/introspect", clientID, secret, url.Values{"token": {token}})
	if r.status != http.StatusOK {
		t.Fatalf("introspect: %d %v", r.status, r.json)
	}
	return r.json
}

func revoke(t *testing.T, e *env, clientID, secret, token string) {
	t.Helper()
	r := postForm(t, e.Issuer+"/oauth2/revoke", clientID, secret, url.Values{"token": {token}})
	if r.status != http.StatusOK {
		t.Fatalf("revoke: %d %v", r.status, r.json)
	}
}

func TestDisabledUserLosesOfflineAccessAtTheNextRefresh(t *testing.T) {
	e := newEnv(t)
	_, secret := e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid", "offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"}})
	v := authParams("app")
	v.Set("scope", "openid offline_access")
	v.Set("prompt", "consent")
	code := e.signIn(e.browser(), e.Issuer+"/oauth2/auth?"+v.Encode()).Get("code")
	tok := postForm(t, e.Issuer+"/oauth2/token", "app", secret, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {testRedirectURI}, "code_verifier": {"verifier-0123456789-0123456789-0123456789-abc"}})
	refresh, _ := tok.json["refresh_token"].(string)
	if refresh == "" {
		t.Fatalf("no refresh token: %v", tok.json)
	}
	err := e.Provider.Store.UpdateUser(context.Background(), e.User.Subject, func(u *storage.User) error {
		u.Disabled = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := postForm(t, e.Issuer+"/oauth2/token", "app", secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if got.status != http.StatusBadRequest || got.json["error"] != "invalid_grant" {
		t.Fatalf("refresh for a disabled user: %d %v", got.status, got.json)
	}
}
