package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/provider"
)

func TestLoginRefusesWrongCredentialsWithOneGenericMessage(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid"}})
	b := e.browser()
	loginPage := b.get(e.Issuer + "/oauth2/auth?" + authParams("app").Encode())

	var bodies []string
	for _, creds := range [][2]string{{"alice", "wrong password"}, {"mallory", testPassword}} {
		p := b.login(loginPage, e.Issuer, creds[0], creds[1])
		if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "Wrong username or password.") {
			t.Fatalf("login %s: status %d\n%s", creds[0], p.Status, p.Body)
		}
		if p.Header.Get("Set-Cookie") != "" && strings.Contains(p.Header.Get("Set-Cookie"), "consentry_session") {
			t.Fatal("a failed login set a session cookie")
		}
		bodies = append(bodies, strings.ReplaceAll(p.Body, creds[0], ""))
	}
	// Apart from the echoed username, both answers are the same page.
	strip := func(s string) string { return s[:strings.Index(s, "csrf_token")] }
	if strip(bodies[0]) != strip(bodies[1]) {
		t.Error("wrong password and unknown user are told apart")
	}
}

func TestLoginFormRequiresItsCSRFToken(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid"}})
	b := e.browser()
	p := b.get(e.Issuer + "/oauth2/auth?" + authParams("app").Encode())
	f := p.form(t, "/login")
	f.Values.Set("username", "alice")
	f.Values.Set("password", testPassword)

	forged := url.Values{"request": f.Values["request"], "username": {"alice"}, "password": {testPassword}, "csrf_token": {"forged"}}
	if got := b.post(e.Issuer+"/login", forged); got.Status != http.StatusForbidden {
		t.Fatalf("forged token: status %d", got.Status)
	}
	// A token from another browser (another CSRF cookie) is refused too.
	if got := e.browser().post(e.Issuer+"/login", f.Values); got.Status != http.StatusForbidden {
		t.Fatalf("token replayed from another browser: status %d", got.Status)
	}
	if got := b.post(e.Issuer+"/login", f.Values); !strings.HasSuffix(got.URL.Path, "/consent") {
		t.Fatalf("genuine login did not reach consent: %d %s", got.Status, got.URL)
	}
}

func TestSessionCookieIsHttpOnlyAndLax(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid"}})
	b := e.browser()
	b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p := b.get(e.Issuer + "/oauth2/auth?" + authParams("app").Encode())
	p = b.get(p.Location.String())
	p = b.login(p, e.Issuer, "alice", testPassword)
	var found bool
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if c.Name == "consentry_session" {
			found = true
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
				t.Errorf("session cookie = %+v", c)
			}
		}
	}
	if !found {
		t.Fatal("login set no session cookie")
	}
}

func TestPromptAndMaxAge(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid"}})
	b := e.browser()
	e.signIn(b, e.Issuer+"/oauth2/auth?"+authParams("app").Encode())

	t.Run("session is reused without a new login", func(t *testing.T) {
		p := b.get(e.Issuer + "/oauth2/auth?" + authParams("app").Encode())
		if !strings.HasSuffix(p.URL.Path, "/consent") {
			t.Fatalf("landed on %s, want the consent page", p.URL.Path)
		}
	})
	t.Run("prompt=login asks for the password again", func(t *testing.T) {
		v := authParams("app")
		v.Set("prompt", "login")
		p := b.get(e.Issuer + "/oauth2/auth?" + v.Encode())
		if !strings.HasSuffix(p.URL.Path, "/login") {
			t.Fatalf("landed on %s, want the login page", p.URL.Path)
		}
		p = b.login(p, e.Issuer, "alice", testPassword)
		if !strings.HasSuffix(p.URL.Path, "/consent") {
			t.Fatalf("after login landed on %s, want consent (no login loop)", p.URL.Path)
		}
		if q := b.consent(p, e.Issuer, "allow").callback(t); q.Get("code") == "" {
			t.Fatalf("no code: %v", q)
		}
	})
	t.Run("max_age exceeded asks for the password again", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond) // auth_time has one-second resolution
		v := authParams("app")
		v.Set("max_age", "0")
		p := b.get(e.Issuer + "/oauth2/auth?" + v.Encode())
		if !strings.HasSuffix(p.URL.Path, "/login") {
			t.Fatalf("landed on %s, want the login page", p.URL.Path)
		}
		p = b.login(p, e.Issuer, "alice", testPassword)
		if q := b.consent(p, e.Issuer, "allow").callback(t); q.Get("code") == "" {
			t.Fatalf("no code after re-authentication: %v", q)
		}
	})
	t.Run("prompt=none with a session but no consent", func(t *testing.T) {
		v := authParams("app")
		v.Set("prompt", "none")
		q := b.get(e.Issuer + "/oauth2/auth?" + v.Encode()).callback(t)
		if q.Get("error") != "consent_required" {
			t.Fatalf("error = %q, want consent_required", q.Get("error"))
		}
	})
}

func TestDenyAndUntick(t *testing.T) {
	e := newEnv(t)
	_, secret := e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid", "profile", "offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"}})
	v := authParams("app")
	v.Set("scope", "openid profile offline_access")
	v.Set("prompt", "consent")

	b := e.browser()
	p := b.get(e.Issuer + "/oauth2/auth?" + v.Encode())
	p = b.login(p, e.Issuer, "alice", testPassword)
	if q := b.consent(p, e.Issuer, "deny").callback(t); q.Get("error") != "access_denied" || q.Get("code") != "" {
		t.Fatalf("deny: %v", q)
	}

	q := e.signIn(b, e.Issuer+"/oauth2/auth?"+v.Encode(), "offline_access", "openid")
	tok := postForm(t, e.Issuer+"/oauth2/token", "app", secret, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {testRedirectURI}, "code_verifier": {"verifier-0123456789-0123456789-0123456789-abc"}})
	if tok.status != http.StatusOK {
		t.Fatalf("exchange: %d %v", tok.status, tok.json)
	}
	if tok.json["refresh_token"] != nil {
		t.Error("refresh token issued although offline_access was unticked")
	}
	if scope, _ := tok.json["scope"].(string); scope != "openid profile" {
		t.Errorf("granted scope = %q, want openid (cannot be unticked) and profile", scope)
	}
}

func TestConsentFormIsBoundToItsRequestAndUser(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid"}})
	b := e.browser()
	p := b.get(e.Issuer + "/oauth2/auth?" + authParams("app").Encode())
	p = b.login(p, e.Issuer, "alice", testPassword)
	first := p.form(t, "/consent")

	second := b.get(e.Issuer+"/oauth2/auth?"+authParams("app").Encode()).form(t, "/consent")
	swapped := url.Values{"request": second.Values["request"], "csrf_token": first.Values["csrf_token"], "action": {"allow"}, "scope": {"openid"}}
	if got := b.post(e.Issuer+"/consent", swapped); got.Status != http.StatusForbidden {
		t.Fatalf("CSRF token of another request accepted: %d", got.Status)
	}
	if got := e.browser().post(e.Issuer+"/consent", first.Values); got.Status != http.StatusForbidden {
		t.Fatalf("consent posted without the user's session accepted: %d", got.Status)
	}
	first.Values.Set("action", "allow")
	if q := b.post(e.Issuer+"/consent", first.Values).callback(t); q.Get("code") == "" {
		t.Fatalf("genuine consent: %v", q)
	}
	if got := b.post(e.Issuer+"/consent", first.Values); got.Location != nil || got.Status < 400 {
		t.Fatalf("replayed consent form: %d %v", got.Status, got.Location)
	}
}

func TestUserinfoRequiresAValidBearerToken(t *testing.T) {
	e := newEnv(t)
	for _, auth := range []string{"", "Bearer not-a-token"} {
		req, _ := http.NewRequest(http.MethodGet, e.Issuer+"/userinfo", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp := doJSON(t, req)
		if resp.status != http.StatusUnauthorized || !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("auth %q: %d %v", auth, resp.status, resp.header)
		}
	}
}
