package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/consentry/consentry/provider"
)

// An issuer with a path, as behind a proxy at https://example.com/idp:
// discovery, every page, form, redirect, static file and cookie is under
// the path, and nothing is served outside it.
func TestIssuerWithPath(t *testing.T) {
	e := newEnv(t, func(s *envSettings) { s.Config.Issuer += "/idp" })
	root := e.Server.URL
	if e.Issuer != root+"/idp" {
		t.Fatalf("issuer %q", e.Issuer)
	}
	_, secret := e.client(provider.ClientSpec{
		ID: "webapp", Scopes: []string{"openid", "profile", "offline_access"},
		GrantTypes: []string{"authorization_code", "refresh_token"},
	})
	ctx := context.Background()

	op, err := oidc.NewProvider(ctx, e.Issuer)
	if err != nil {
		t.Fatalf("discovery under the issuer's path: %v", err)
	}
	if got := op.Endpoint().AuthURL; got != e.Issuer+provider.PathAuthorize {
		t.Errorf("authorization endpoint %q", got)
	}
	cfg := oauth2.Config{
		ClientID: "webapp", ClientSecret: secret, Endpoint: op.Endpoint(), RedirectURL: testRedirectURI,
		Scopes: []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess},
	}
	verifier := oauth2.GenerateVerifier()
	b := e.browser()
	p := b.get(cfg.AuthCodeURL("state-123456789", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "consent")))
	if p.Status != http.StatusOK || p.URL.Path != "/idp/login" {
		t.Fatalf("authorize led to %s (status %d), want the login page under /idp", p.URL, p.Status)
	}
	if !strings.Contains(p.Body, `href="/idp/static/style.css"`) {
		t.Errorf("login page does not link the stylesheet under /idp:\n%s", p.Body)
	}
	css := b.get(root + "/idp/static/style.css")
	if css.Status != http.StatusOK || !strings.Contains(css.Header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: status %d, type %q", css.Status, css.Header.Get("Content-Type"))
	}

	f := p.form(t, "/idp/login")
	f.Values.Set("username", "alice")
	f.Values.Set("password", testPassword)
	p = b.post(root+f.Action, f.Values)
	if p.Status != http.StatusOK || p.URL.Path != "/idp/consent" {
		t.Fatalf("sign-in led to %s (status %d), want the consent page under /idp:\n%s", p.URL, p.Status, p.Body)
	}
	idp, _ := url.Parse(e.Issuer + "/")
	if !hasCookie(b.client.Jar.Cookies(idp), "consentry_session") {
		t.Fatal("the session cookie is not sent under /idp")
	}
	rootURL, _ := url.Parse(root + "/")
	for _, c := range b.client.Jar.Cookies(rootURL) {
		t.Errorf("cookie %s is sent outside the issuer's path", c.Name)
	}
	if !strings.Contains(p.Body, `action="/idp/logout"`) {
		t.Errorf("consent page's sign-out form does not post under /idp")
	}

	f = p.form(t, "/idp/consent")
	f.Values.Set("action", "allow")
	q := b.post(root+f.Action, f.Values).callback(t)
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idToken, err := op.Verifier(&oidc.Config{ClientID: "webapp"}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify id token: %v", err)
	}
	if idToken.Issuer != e.Issuer {
		t.Errorf("iss %q", idToken.Issuer)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token")
	}
	if _, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err != nil {
		t.Errorf("userinfo under the issuer's path: %v", err)
	}

	// The signed-in home page links under /idp, and a page behind sign-in
	// redirects there.
	home := b.get(root + "/idp")
	if home.Status != http.StatusOK || !strings.Contains(home.Body, `href="/idp/account/apps"`) {
		t.Errorf("home under /idp: status %d:\n%s", home.Status, home.Body)
	}
	device := b.get(root + "/idp/device")
	if device.Status != http.StatusOK || !strings.Contains(device.Body, `action="/idp/device"`) {
		t.Errorf("device page under /idp: status %d:\n%s", device.Status, device.Body)
	}
	apps := e.browser().get(root + "/idp" + "/account/apps")
	if apps.URL.Path != "/idp/login" {
		t.Errorf("signed-out account page led to %s, want /idp/login", apps.URL)
	}

	// Nothing outside the path: a proxy passing only /idp would not send
	// these, and answering them would hide a wrong proxy configuration.
	for _, path := range []string{"/login", "/.well-known/openid-configuration", "/static/style.css", "/idpx/login"} {
		if got := e.browser().get(root + path); got.Status != http.StatusNotFound {
			t.Errorf("GET %s outside the issuer's path: status %d, want 404", path, got.Status)
		}
	}
}

func hasCookie(cookies []*http.Cookie, name string) bool {
	for _, c := range cookies {
		if c.Name == name {
			return true
		}
	}
	return false
}
