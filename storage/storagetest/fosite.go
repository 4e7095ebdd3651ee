package storagetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	"github.com/ory/fosite/token/hmac"
	"github.com/ory/fosite/token/jwt"

	"github.com/consentry/consentry/storage"
)

// flowProvider is fosite wired to the store under test with the handlers
// Consentry uses: authorization code with PKCE, refresh, OpenID Connect and
// introspection. It is built by hand, not by fosite's compose package, which
// only the provider package uses.
func flowProvider(t *testing.T, s storage.Store) fosite.OAuth2Provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	cfg := &fosite.Config{
		AccessTokenLifespan:   time.Hour,
		RefreshTokenLifespan:  24 * time.Hour,
		AuthorizeCodeLifespan: 10 * time.Minute,
		IDTokenLifespan:       time.Hour,
		IDTokenIssuer:         "https://id.example",
		GlobalSecret:          []byte("0123456789abcdef0123456789abcdef"),
		EnforcePKCE:           true,
		ScopeStrategy:         fosite.ExactScopeStrategy,
	}
	strategy := oauth2.NewHMACSHAStrategy(&hmac.HMACStrategy{Config: cfg}, cfg)
	signer := &jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) { return key, nil }}
	idTokens := &openid.IDTokenHandleHelper{IDTokenStrategy: &openid.DefaultStrategy{Signer: signer, Config: cfg}}

	code := &oauth2.AuthorizeExplicitGrantHandler{
		AccessTokenStrategy: strategy, RefreshTokenStrategy: strategy, AuthorizeCodeStrategy: strategy,
		CoreStorage: s, TokenRevocationStorage: s, Config: cfg,
	}
	refresh := &oauth2.RefreshTokenGrantHandler{
		AccessTokenStrategy: strategy, RefreshTokenStrategy: strategy, TokenRevocationStorage: s, Config: cfg,
	}
	oidc := &openid.OpenIDConnectExplicitHandler{
		OpenIDConnectRequestStorage:   s,
		IDTokenHandleHelper:           idTokens,
		OpenIDConnectRequestValidator: openid.NewOpenIDConnectRequestValidator(signer, cfg),
		Config:                        cfg,
	}
	oidcRefresh := &openid.OpenIDConnectRefreshHandler{IDTokenHandleHelper: idTokens, Config: cfg}
	pkceHandler := &pkce.Handler{AuthorizeCodeStrategy: strategy, Storage: s, Config: cfg}

	cfg.AuthorizeEndpointHandlers = fosite.AuthorizeEndpointHandlers{code, oidc, pkceHandler}
	cfg.TokenEndpointHandlers = fosite.TokenEndpointHandlers{code, refresh, oidc, oidcRefresh, pkceHandler}
	cfg.TokenIntrospectionHandlers = fosite.TokenIntrospectionHandlers{&oauth2.CoreValidator{CoreStrategy: strategy, CoreStorage: s, Config: cfg}}
	return &fosite.Fosite{Store: s, Config: cfg}
}

// flowClient is a public client, as a browser or native app registers.
func flowClient() *storage.Client {
	return &storage.Client{
		ID:            "spa",
		Public:        true,
		RedirectURIs:  []string{"https://spa.example/callback"},
		GrantTypes:    []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"},
		Scopes:        []string{"openid", "profile", "offline_access"},
	}
}

// authorize runs the authorization endpoint for a signed-in user and returns
// the code.
func authorize(t *testing.T, p fosite.OAuth2Provider, challenge string) string {
	t.Helper()
	ctx := t.Context()
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {"spa"},
		"redirect_uri":          {"https://spa.example/callback"},
		"scope":                 {"openid profile offline_access"},
		"state":                 {"state-" + randomID()},
		"nonce":                 {"nonce-" + randomID()},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "https://id.example/oauth2/auth?"+q.Encode(), nil)
	ar, err := p.NewAuthorizeRequest(ctx, r)
	if err != nil {
		t.Fatalf("NewAuthorizeRequest: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
	}
	for _, sc := range ar.GetRequestedScopes() {
		ar.GrantScope(sc)
	}
	authTime := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	sess := &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{Subject: "sub-alice", AuthTime: authTime, RequestedAt: time.Now().UTC()},
		Headers: &jwt.Headers{},
		Subject: "sub-alice",
	}
	resp, err := p.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		t.Fatalf("NewAuthorizeResponse: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
	}
	code := resp.GetParameters().Get("code")
	if code == "" {
		t.Fatal("no code in the authorization response")
	}
	return code
}

// tokenRequest runs the token endpoint with form and returns the response.
func tokenRequest(t *testing.T, p fosite.OAuth2Provider, form url.Values) (fosite.AccessResponder, error) {
	t.Helper()
	ctx := t.Context()
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "https://id.example/oauth2/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req, err := p.NewAccessRequest(ctx, r, openid.NewDefaultSession())
	if err != nil {
		return nil, err
	}
	return p.NewAccessResponse(ctx, req)
}

func introspect(t *testing.T, p fosite.OAuth2Provider, token string) error {
	t.Helper()
	_, ar, err := p.IntrospectToken(t.Context(), token, fosite.AccessToken, openid.NewDefaultSession())
	if err == nil && ar.GetSession().GetSubject() != "sub-alice" {
		t.Errorf("introspection subject: got %q", ar.GetSession().GetSubject())
	}
	return err
}

func describe(err error) string {
	if err == nil {
		return "<nil>"
	}
	return fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription()
}

// testFositeFlow drives fosite's authorization code, refresh and reuse
// detection flows against the store: the store must satisfy what fosite's
// handlers expect of it, not just its interface.
func testFositeFlow(t *testing.T, s storage.Store) {
	mustOK(t, s.CreateClient(t.Context(), flowClient()), "CreateClient")
	p := flowProvider(t, s)

	verifier := randomID() + randomID()
	sum := sha256.Sum256([]byte(verifier))
	code := authorize(t, p, base64.RawURLEncoding.EncodeToString(sum[:]))

	exchange := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {"https://spa.example/callback"},
		"client_id":     {"spa"},
		"code_verifier": {verifier},
	}
	resp, err := tokenRequest(t, p, exchange)
	if err != nil {
		t.Fatalf("code exchange: %s", describe(err))
	}
	access := resp.GetAccessToken()
	refresh, _ := resp.GetExtra("refresh_token").(string)
	idToken, _ := resp.GetExtra("id_token").(string)
	if access == "" || refresh == "" || idToken == "" {
		t.Fatalf("code exchange: access %t, refresh %t, id token %t", access != "", refresh != "", idToken != "")
	}
	if err := introspect(t, p, access); err != nil {
		t.Fatalf("introspect access token: %s", describe(err))
	}

	// The code works once.
	_, err = tokenRequest(t, p, exchange)
	if !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Fatalf("second code exchange: got %s, want invalid_grant", describe(err))
	}
	// ... and its reuse revokes what it was exchanged for.
	if err := introspect(t, p, access); err == nil {
		t.Fatal("access token still valid after the code was replayed")
	}

	// A fresh code for the refresh flow.
	verifier = randomID() + randomID()
	sum = sha256.Sum256([]byte(verifier))
	exchange.Set("code", authorize(t, p, base64.RawURLEncoding.EncodeToString(sum[:])))
	exchange.Set("code_verifier", verifier)
	resp, err = tokenRequest(t, p, exchange)
	if err != nil {
		t.Fatalf("code exchange: %s", describe(err))
	}
	access = resp.GetAccessToken()
	refresh, _ = resp.GetExtra("refresh_token").(string)

	refreshForm := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {"spa"}}
	resp, err = tokenRequest(t, p, refreshForm)
	if err != nil {
		t.Fatalf("refresh: %s", describe(err))
	}
	access2 := resp.GetAccessToken()
	refresh2, _ := resp.GetExtra("refresh_token").(string)
	if access2 == "" || refresh2 == "" || refresh2 == refresh {
		t.Fatal("refresh did not issue new tokens")
	}
	if err := introspect(t, p, access); err == nil {
		t.Error("the access token before the refresh is still valid")
	}
	if err := introspect(t, p, access2); err != nil {
		t.Fatalf("introspect refreshed access token: %s", describe(err))
	}

	// Reusing the old refresh token is refused and revokes the whole grant.
	if _, err := tokenRequest(t, p, refreshForm); err == nil {
		t.Fatal("old refresh token accepted twice")
	}
	if err := introspect(t, p, access2); err == nil {
		t.Error("access token still valid after refresh token reuse")
	}
	refreshForm.Set("refresh_token", refresh2)
	if _, err := tokenRequest(t, p, refreshForm); err == nil {
		t.Error("refresh token still valid after refresh token reuse")
	}
}
