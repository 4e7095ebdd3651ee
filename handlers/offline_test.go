package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// offlineApp is a client registered for offline access, as a standard
// library client sees it.
type offlineApp struct {
	e   *env
	cfg oauth2.Config
	op  *oidc.Provider
}

func (e *env) offlineApp(id string) *offlineApp {
	e.t.Helper()
	_, secret := e.client(provider.ClientSpec{ID: id, Name: "Calendar Sync", Scopes: []string{"openid", "profile", "offline_access"},
		GrantTypes: []string{"authorization_code", "refresh_token"}})
	op, err := oidc.NewProvider(context.Background(), e.Issuer)
	if err != nil {
		e.t.Fatalf("discovery: %v", err)
	}
	return &offlineApp{e: e, op: op, cfg: oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: op.Endpoint(), RedirectURL: testRedirectURI,
		Scopes: []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess}}}
}

// flow is one authorization request of the app, driven in a browser.
type flow struct {
	app      *offlineApp
	verifier string
	url      string
}

func (a *offlineApp) request(prompt string) *flow {
	f := &flow{app: a, verifier: oauth2.GenerateVerifier()}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oauth2.SetAuthURLParam("nonce", "nonce-0123456789")}
	if prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", prompt))
	}
	f.url = a.cfg.AuthCodeURL("state-0123456789", opts...)
	return f
}

// exchange redeems the code the client received.
func (f *flow) exchange(q url.Values) *oauth2.Token {
	t := f.app.e.t
	t.Helper()
	if q.Get("code") == "" {
		t.Fatalf("the client received no code: %v", q)
	}
	tok, err := f.app.cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if _, err := f.app.op.Verifier(&oidc.Config{ClientID: f.app.cfg.ClientID}).Verify(context.Background(), raw); err != nil {
		t.Fatalf("id token: %v", err)
	}
	return tok
}

// refresh redeems the refresh token of tok for new tokens.
func (a *offlineApp) refresh(tok *oauth2.Token) (*oauth2.Token, error) {
	stale := *tok
	stale.Expiry = time.Now().Add(-time.Minute)
	return a.cfg.TokenSource(context.Background(), &stale).Token()
}

// refreshWorks reports whether the refresh token gets new tokens.
func (a *offlineApp) refreshWorks(tok *oauth2.Token) bool {
	_, err := a.refresh(tok)
	return err == nil
}

// signedInBrowser returns a browser in which alice is signed in, without
// any grant to the app.
func (e *env) signedInBrowser(username string) *browser {
	e.t.Helper()
	b := e.browser()
	p := b.get(e.Issuer + "/login")
	p = b.login(p, e.Issuer, username, testPassword)
	if p.Status != http.StatusOK {
		e.t.Fatalf("login: %d", p.Status)
	}
	return b
}

func (e *env) agreement(spec provider.AgreementSpec) *storage.Agreement {
	e.t.Helper()
	if spec.Reference == "" {
		spec.Reference = "POLICY-7"
	}
	if spec.RecordedBy == "" {
		spec.RecordedBy = "admin"
	}
	a, err := provider.RecordAgreement(context.Background(), e.Provider.Store, spec, time.Now())
	if err != nil {
		e.t.Fatalf("record agreement: %v", err)
	}
	return a
}

func withOfflinePolicy(policy string) envOption {
	return func(s *envSettings) { s.Config.OfflineAccess.WithoutPromptConsent = policy }
}

func TestOfflineAccessWithoutPromptConsentFollowsThePolicy(t *testing.T) {
	t.Run("ignore: tokens without a refresh token", func(t *testing.T) {
		e := newEnv(t, withOfflinePolicy(provider.OfflineIgnore))
		app := e.offlineApp("cal")
		f := app.request("")
		b := e.signedInBrowser("alice")
		p := b.get(f.url)
		if strings.Contains(p.Body, "Access while you are away") {
			t.Fatal("the screen offers offline access although it is ignored")
		}
		tok := f.exchange(b.consent(p, e.Issuer, "allow").callback(t))
		if tok.RefreshToken != "" {
			t.Fatal("refresh token issued without prompt=consent under the ignore policy")
		}
	})
	t.Run("prompt: the consent screen offers offline access", func(t *testing.T) {
		e := newEnv(t, withOfflinePolicy(provider.OfflinePrompt))
		app := e.offlineApp("cal")
		f := app.request("")
		b := e.signedInBrowser("alice")
		p := b.get(f.url)
		if !strings.Contains(p.Body, "Access while you are away") {
			t.Fatalf("no offline access on the screen:\n%s", p.Body)
		}
		if tok := f.exchange(b.consent(p, e.Issuer, "allow").callback(t)); !app.refreshWorks(tok) {
			t.Fatal("consented offline access gave no working refresh token")
		}
	})
	t.Run("reject: consent_required", func(t *testing.T) {
		e := newEnv(t, withOfflinePolicy(provider.OfflineReject))
		app := e.offlineApp("cal")
		q := e.signedInBrowser("alice").get(app.request("").url).callback(t)
		if q.Get("error") != "consent_required" || q.Get("code") != "" {
			t.Fatalf("client received %v, want error=consent_required", q)
		}
	})
}

func TestStandingAgreements(t *testing.T) {
	e := newEnv(t)
	if _, err := provider.CreateUser(context.Background(), e.Provider.Store, provider.UserSpec{Username: "bob", Password: testPassword}, bcrypt.MinCost, time.Now()); err != nil {
		t.Fatal(err)
	}

	t.Run("all-users agreement: refresh token without a screen", func(t *testing.T) {
		app := e.offlineApp("first-party")
		e.agreement(provider.AgreementSpec{ClientID: "first-party", AllUsers: true, Scopes: []string{"openid", "profile", "offline_access"}})
		for _, user := range []string{"alice", "bob"} {
			f := app.request("")
			p := e.signedInBrowser(user).get(f.url)
			tok := f.exchange(p.callback(t))
			if !app.refreshWorks(tok) {
				t.Fatalf("%s: no working refresh token under the agreement", user)
			}
		}
		grants, err := e.Provider.Store.ListGrants(context.Background(), storage.GrantFilter{Subject: e.User.Subject, ClientID: "first-party"})
		if err != nil || len(grants) != 1 || grants[0].Basis != storage.BasisAgreement || grants[0].AgreementID == "" {
			t.Fatalf("grant not recorded on the agreement's basis: %+v %v", grants, err)
		}
		if !strings.Contains(strings.Join(grants[0].Scopes, " "), "offline_access") || grants[0].IPAddress == "" || grants[0].UserAgent == "" {
			t.Errorf("grant = %+v", grants[0])
		}
	})
	t.Run("prompt=consent shows the screen despite the agreement", func(t *testing.T) {
		app := e.offlineApp("first-party-2")
		e.agreement(provider.AgreementSpec{ClientID: "first-party-2", AllUsers: true, Scopes: []string{"openid", "profile", "offline_access"}})
		f := app.request("consent")
		b := e.signedInBrowser("alice")
		p := b.get(f.url)
		if p.Location != nil || !strings.Contains(p.Body, "Access while you are away") {
			t.Fatalf("prompt=consent skipped the screen: %v", p.Location)
		}
		if tok := f.exchange(b.consent(p, e.Issuer, "allow").callback(t)); tok.RefreshToken == "" {
			t.Fatal("no refresh token after consenting on the screen")
		}
	})
	t.Run("per-user agreement covers only that user", func(t *testing.T) {
		app := e.offlineApp("partner")
		e.agreement(provider.AgreementSpec{ClientID: "partner", Username: "bob", Scopes: []string{"openid", "profile", "offline_access"}})
		if tok := app.request("").exchangeIn(e.signedInBrowser("bob")); tok == nil || tok.RefreshToken == "" {
			t.Fatal("bob's agreement gave bob no refresh token")
		}
		p := e.signedInBrowser("alice").get(app.request("").url)
		if p.Location != nil {
			t.Fatalf("alice was granted under bob's agreement: %v", p.Location)
		}
	})
	t.Run("revoking the agreement ends offline access at the next refresh", func(t *testing.T) {
		app := e.offlineApp("ends")
		a := e.agreement(provider.AgreementSpec{ClientID: "ends", AllUsers: true, Scopes: []string{"openid", "profile", "offline_access"}})
		tok, err := app.refresh(app.request("").exchangeIn(e.signedInBrowser("alice")))
		if err != nil {
			t.Fatalf("no working refresh token under the agreement: %v", err)
		}
		if err := provider.RevokeAgreement(context.Background(), e.Provider.Store, a.ID, "admin", time.Now()); err != nil {
			t.Fatal(err)
		}
		_, err = app.refresh(tok)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("refresh after the agreement was revoked: %v, want invalid_grant", err)
		}
	})
	t.Run("revoked agreement no longer covers", func(t *testing.T) {
		app := e.offlineApp("revoked")
		a := e.agreement(provider.AgreementSpec{ClientID: "revoked", AllUsers: true, Scopes: []string{"openid", "profile", "offline_access"}})
		if err := provider.RevokeAgreement(context.Background(), e.Provider.Store, a.ID, "admin", time.Now()); err != nil {
			t.Fatal(err)
		}
		if p := e.signedInBrowser("alice").get(app.request("").url); p.Location != nil {
			t.Fatalf("granted under a revoked agreement: %v", p.Location)
		}
	})
	t.Run("expired agreement no longer covers", func(t *testing.T) {
		app := e.offlineApp("expired")
		a := e.agreement(provider.AgreementSpec{ClientID: "expired", AllUsers: true, Scopes: []string{"openid", "profile", "offline_access"},
			StartsAt: time.Now().Add(-time.Hour), ExpiresAt: timePtr(time.Now().Add(time.Second))})
		time.Sleep(time.Until(*a.ExpiresAt) + 50*time.Millisecond)
		if p := e.signedInBrowser("alice").get(app.request("").url); p.Location != nil {
			t.Fatalf("granted under an expired agreement: %v", p.Location)
		}
	})
	t.Run("prompt=none grants offline access only under an agreement", func(t *testing.T) {
		covered := e.offlineApp("none-covered")
		e.agreement(provider.AgreementSpec{ClientID: "none-covered", AllUsers: true, Scopes: []string{"openid", "profile", "offline_access"}})
		if tok := covered.request("none").exchangeIn(e.signedInBrowser("alice")); tok == nil || tok.RefreshToken == "" {
			t.Fatal("prompt=none under an agreement gave no refresh token")
		}
		uncovered := e.offlineApp("none-uncovered")
		q := e.signedInBrowser("alice").get(uncovered.request("none").url).callback(t)
		if q.Get("error") != "consent_required" {
			t.Fatalf("prompt=none without agreement or consent: %v", q)
		}
	})
}

// exchangeIn runs the flow in b, expecting no page on the way, and redeems
// the code.
func (f *flow) exchangeIn(b *browser) *oauth2.Token {
	return f.exchange(b.get(f.url).callback(f.app.e.t))
}

func timePtr(t time.Time) *time.Time { return &t }

func TestClientWithoutOfflineAccessNeverGetsARefreshToken(t *testing.T) {
	e := newEnv(t)
	_, secret := e.client(provider.ClientSpec{ID: "plain", Scopes: []string{"openid", "profile"}, GrantTypes: []string{"authorization_code"}})
	v := authParams("plain")
	v.Set("scope", "openid offline_access")
	v.Set("prompt", "consent")
	if q := e.signedInBrowser("alice").get(e.Issuer + "/oauth2/auth?" + v.Encode()).callback(t); q.Get("error") != "invalid_scope" {
		t.Fatalf("offline_access for an unregistered client: %v", q)
	}
	v.Set("scope", "openid profile")
	q := e.signIn(e.signedInBrowser("alice"), e.Issuer+"/oauth2/auth?"+v.Encode())
	tok := postForm(t, e.Issuer+"/oauth2/token", "plain", secret, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {testRedirectURI}, "code_verifier": {"verifier-0123456789-0123456789-0123456789-abc"}})
	if tok.status != http.StatusOK || tok.json["refresh_token"] != nil {
		t.Fatalf("exchange: %d %v", tok.status, tok.json)
	}
}

func TestRememberedConsent(t *testing.T) {
	e := newEnv(t)
	app := e.offlineApp("cal")
	b := e.signedInBrowser("alice")

	f := app.request("consent")
	p := b.get(f.url)
	form := p.form(t, "/consent")
	form.Values.Set("remember", "1")
	form.Values.Set("action", "allow")
	tok := f.exchange(b.post(e.Issuer+"/consent", form.Values).callback(t))
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token after consenting to offline access")
	}

	// Without prompt=consent the remembered consent covers openid and
	// profile, and offline access is not remembered: no screen, no refresh token.
	later := app.request("")
	tok2 := later.exchange(b.get(later.url).callback(t))
	if tok2.RefreshToken != "" {
		t.Fatal("a remembered consent granted offline access")
	}
	grants, _ := e.Provider.Store.ListGrants(context.Background(), storage.GrantFilter{Subject: e.User.Subject, ClientID: "cal"})
	if len(grants) != 2 || grants[0].Basis != storage.BasisRemembered || grants[0].RememberedFrom != grants[1].ID {
		t.Fatalf("grants = %+v", grants)
	}
	// prompt=consent asks again, offline access included.
	if p := b.get(app.request("consent").url); p.Location != nil || !strings.Contains(p.Body, "Access while you are away") {
		t.Fatal("prompt=consent did not ask again")
	}

	// Revoking the consent ends the refresh token at once and the memory.
	n, err := provider.RevokeConsents(context.Background(), e.Provider.Store, "alice", "cal", "admin", time.Now())
	if err != nil || n != 2 {
		t.Fatalf("revoke consents: %d %v", n, err)
	}
	if app.refreshWorks(tok) {
		t.Fatal("the refresh token still works after the consent was revoked")
	}
	if p := b.get(app.request("").url); p.Location != nil {
		t.Fatal("a revoked remembered consent still skips the screen")
	}
}

func TestOfflineAccessIsDroppedForCodelessResponseTypes(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "signin-only", Scopes: []string{"openid", "offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"id_token"}})
	v := url.Values{"client_id": {"signin-only"}, "response_type": {"id_token"}, "redirect_uri": {testRedirectURI},
		"scope": {"openid offline_access"}, "state": {"state-0123456789"}, "nonce": {"nonce-0123456789"}, "prompt": {"consent"}}
	b := e.signedInBrowser("alice")
	p := b.get(e.Issuer + "/oauth2/auth?" + v.Encode())
	if strings.Contains(p.Body, "Access while you are away") {
		t.Fatal("offline access offered for response_type=id_token")
	}
	p = b.consent(p, e.Issuer, "allow")
	if p.Location == nil || !strings.HasPrefix(p.Location.String(), testRedirectURI) {
		t.Fatalf("no redirect to the client: %d %v", p.Status, p.Location)
	}
	fragment, _ := url.ParseQuery(p.Location.Fragment)
	if fragment.Get("id_token") == "" || fragment.Get("refresh_token") != "" || fragment.Get("code") != "" {
		t.Fatalf("fragment = %v", fragment)
	}
	grants, _ := e.Provider.Store.ListGrants(context.Background(), storage.GrantFilter{Subject: e.User.Subject})
	if len(grants) != 1 || strings.Contains(strings.Join(grants[0].Scopes, " "), "offline_access") {
		t.Fatalf("grant = %+v", grants)
	}
}

func TestConsentFormOfAnotherUserIsRefused(t *testing.T) {
	e := newEnv(t)
	if _, err := provider.CreateUser(context.Background(), e.Provider.Store, provider.UserSpec{Username: "bob", Password: testPassword}, bcrypt.MinCost, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid"}})
	alice := e.signedInBrowser("alice")
	form := alice.get(e.Issuer+"/oauth2/auth?"+authParams("app").Encode()).form(t, "/consent")
	form.Values.Set("action", "allow")

	// Bob's browser submits alice's form: his own CSRF cookie and session
	// do not match the token, and the request belongs to alice.
	bob := e.signedInBrowser("bob")
	if p := bob.post(e.Issuer+"/consent", form.Values); p.Status != http.StatusForbidden {
		t.Fatalf("alice's consent form accepted in bob's session: %d %v", p.Status, p.Location)
	}
	// Bob's own CSRF token for alice's request id is refused too.
	bobForm := bob.get(e.Issuer+"/oauth2/auth?"+authParams("app").Encode()).form(t, "/consent")
	bobForm.Values.Set("request", form.Values.Get("request"))
	bobForm.Values.Set("action", "allow")
	if p := bob.post(e.Issuer+"/consent", bobForm.Values); p.Status != http.StatusForbidden {
		t.Fatalf("bob consented to alice's request: %d %v", p.Status, p.Location)
	}
}
