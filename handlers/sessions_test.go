package handlers_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// sessionCookie returns b's session cookie at the provider.
func (e *env) sessionCookie(b *browser) *http.Cookie {
	e.t.Helper()
	u, _ := url.Parse(e.Issuer)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "consentry_session" {
			return c
		}
	}
	e.t.Fatal("the browser has no session cookie")
	return nil
}

// browserWithCookie is a fresh browser holding a copy of c, as someone who
// copied the cookie out of another browser would.
func (e *env) browserWithCookie(c *http.Cookie) *browser {
	b := e.browser()
	u, _ := url.Parse(e.Issuer)
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/"}})
	return b
}

// signedInAs reports whether the home page greets b as username.
func (e *env) signedInAs(b *browser, username string) bool {
	e.t.Helper()
	return strings.Contains(b.get(e.Issuer+"/").Body, "Signed in as "+username)
}

// signOut presses "Sign out" on the sign-out page.
func (e *env) signOut(b *browser) {
	e.t.Helper()
	f := b.get(e.Issuer+"/logout").form(e.t, "/logout")
	if p := b.post(e.Issuer+"/logout", f.Values); p.Status != http.StatusOK || !strings.Contains(p.Body, "You are signed out") {
		e.t.Fatalf("sign out: %d\n%s", p.Status, p.Body)
	}
}

// TestSignOutEndsEveryCopyOfTheCookie: a copy of the session cookie taken
// before sign-out can no longer walk the consent screen to offline access.
func TestSignOutEndsEveryCopyOfTheCookie(t *testing.T) {
	e := newEnv(t)
	app := e.offlineApp("cal")
	b := e.signedInBrowser("alice")
	thief := e.browserWithCookie(e.sessionCookie(b))

	// The copy works while the session lasts: it reaches the consent screen.
	if p := thief.get(app.request("consent").url); !strings.HasSuffix(p.URL.Path, "/consent") {
		t.Fatalf("the copied cookie did not reach the consent page: %s (%d)", p.URL, p.Status)
	}

	e.signOut(b)
	if e.signedInAs(b, "alice") {
		t.Fatal("still signed in after signing out")
	}
	p := thief.get(app.request("consent").url)
	if !strings.HasSuffix(p.URL.Path, "/login") {
		t.Fatalf("after sign-out the copied cookie landed on %s (%d), want the login page", p.URL, p.Status)
	}
	if e.signedInAs(thief, "alice") {
		t.Fatal("the copied cookie is still signed in after sign-out")
	}
	if p := thief.get(e.Issuer + "/account/apps"); !strings.HasSuffix(p.URL.Path, "/login") {
		t.Fatalf("the copied cookie opened %s after sign-out", p.URL)
	}
}

// TestDisablingAUserEndsTheirSessions: enabling the user again does not
// bring the sessions back.
func TestDisablingAUserEndsTheirSessions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.signedInBrowser("alice")
	if !e.signedInAs(b, "alice") {
		t.Fatal("not signed in")
	}
	for _, disabled := range []bool{true, false} {
		if err := e.Provider.Store.UpdateUser(ctx, e.User.Subject, func(u *storage.User) error { u.Disabled = disabled; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if e.signedInAs(b, "alice") {
		t.Fatal("a session of a disabled user survived the user being enabled again")
	}
}

func withSessionLifetimes(absolute, idle time.Duration) envOption {
	return func(s *envSettings) {
		s.Config.SessionLifespan = provider.Duration(absolute)
		s.Config.SessionIdleLifetime = provider.Duration(idle)
	}
}

func TestSessionIdleAndAbsoluteExpiry(t *testing.T) {
	var c clock
	e := newEnv(t, withClock(&c), withSessionLifetimes(3*time.Hour, time.Hour))

	t.Run("idle", func(t *testing.T) {
		b := e.signedInBrowser("alice")
		// Seen every 50 minutes, the session lives past its idle lifetime.
		for range 2 {
			c.Advance(50 * time.Minute)
			if !e.signedInAs(b, "alice") {
				t.Fatal("signed out while in use")
			}
		}
		c.Advance(61 * time.Minute)
		if e.signedInAs(b, "alice") {
			t.Fatal("signed in after an hour unseen")
		}
	})
	t.Run("absolute", func(t *testing.T) {
		b := e.signedInBrowser("alice")
		for range 3 {
			c.Advance(55 * time.Minute)
			if !e.signedInAs(b, "alice") {
				t.Fatal("signed out while in use")
			}
		}
		c.Advance(20 * time.Minute) // 3h15m after signing in, 20 minutes after the last use
		if e.signedInAs(b, "alice") {
			t.Fatal("signed in past the session's lifespan")
		}
	})
}

// TestSessionsPage: the user sees every browser signed in and signs out one
// of them, then every other one.
func TestSessionsPage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mine, second, third := e.signedInBrowser("alice"), e.signedInBrowser("alice"), e.signedInBrowser("alice")

	p := mine.get(e.Issuer + "/account/sessions")
	if p.Status != http.StatusOK || strings.Count(p.Body, "<section") != 3 || strings.Count(p.Body, "This browser") != 1 ||
		!strings.Contains(p.Body, "127.0.0.1") || !strings.Contains(p.Body, "Sign out everywhere else") {
		t.Fatalf("sessions page: %d\n%s", p.Status, p.Body)
	}

	f := p.form(t, "/account/sessions/end")
	forged := url.Values{"id": f.Values["id"], "csrf_token": {"forged"}}
	if got := mine.post(e.Issuer+"/account/sessions/end", forged); got.Status != http.StatusForbidden {
		t.Fatalf("forged sign-out accepted: %d", got.Status)
	}
	// A signed-out browser cannot use the form.
	if got := e.browser().post(e.Issuer+"/account/sessions/end", f.Values); got.Status != http.StatusForbidden {
		t.Fatalf("sign-out from a signed-out browser: %d", got.Status)
	}
	p = mine.post(e.Issuer+"/account/sessions/end", f.Values)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Signed out.") || strings.Count(p.Body, "<section") != 2 {
		t.Fatalf("after signing out one session: %d\n%s", p.Status, p.Body)
	}
	if e.signedInAs(second, "alice") == e.signedInAs(third, "alice") {
		t.Fatal("signing out one session did not end exactly one of the other two")
	}
	if !e.signedInAs(mine, "alice") {
		t.Fatal("this browser was signed out")
	}

	p = mine.get(e.Issuer + "/account/sessions")
	p = mine.post(e.Issuer+"/account/sessions/end-others", p.form(t, "/account/sessions/end-others").Values)
	if p.Status != http.StatusOK || strings.Count(p.Body, "<section") != 1 || !strings.Contains(p.Body, "not signed in anywhere else") {
		t.Fatalf("after signing out everywhere else: %d\n%s", p.Status, p.Body)
	}
	if e.signedInAs(second, "alice") || e.signedInAs(third, "alice") {
		t.Fatal("another browser is still signed in")
	}
	if !e.signedInAs(mine, "alice") {
		t.Fatal("this browser was signed out")
	}
	events, err := e.Provider.Store.ListAuditEvents(ctx, storage.AuditFilter{Subject: e.User.Subject})
	if err != nil {
		t.Fatal(err)
	}
	var revoked int
	for _, ev := range events {
		if ev.Type == storage.EventSessionRevoked && ev.Actor == storage.ActorUser {
			revoked++
		}
	}
	if revoked != 2 {
		t.Errorf("%d session_revoked events by the user, want 2: %+v", revoked, events)
	}
}

func TestSessionsPageRequiresSignIn(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get(e.Issuer + "/account/sessions")
	if !strings.HasSuffix(p.URL.Path, "/login") {
		t.Fatalf("landed on %s, want the login page", p.URL)
	}
	p = b.login(p, e.Issuer, "alice", testPassword)
	if !strings.HasSuffix(p.URL.Path, "/account/sessions") {
		t.Fatalf("after login landed on %s, want the sessions page", p.URL)
	}
}

func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode jwt claims: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIDTokenCarriesTheSessionID: sid is the public id of the browser
// session, in the ID token and its refreshes, not in userinfo.
func TestIDTokenCarriesTheSessionID(t *testing.T) {
	e := newEnv(t)
	secret, tok := offlineTokens(t, e, "cal")
	sessions, err := e.Provider.Store.ListSessions(context.Background(), e.User.Subject, time.Now())
	if err != nil || len(sessions) != 1 {
		t.Fatalf("sessions: %v, %v", sessions, err)
	}
	want := sessions[0].ID
	var discovery struct {
		Claims []string `json:"claims_supported"`
	}
	resp, err := http.Get(e.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&discovery)
	resp.Body.Close()
	if err != nil || !slices.Contains(discovery.Claims, "sid") {
		t.Errorf("discovery claims_supported = %v (%v), want sid among them", discovery.Claims, err)
	}
	if got := jwtClaims(t, tok["id_token"].(string))["sid"]; got != want {
		t.Fatalf("sid = %v, want the session's id %q", got, want)
	}
	refreshed := refreshWith(t, e, "cal", secret, tok["refresh_token"].(string), nil)
	if refreshed.status != http.StatusOK {
		t.Fatalf("refresh: %d %v", refreshed.status, refreshed.json)
	}
	if got := jwtClaims(t, refreshed.json["id_token"].(string))["sid"]; got != want {
		t.Fatalf("sid after refresh = %v, want %q", got, want)
	}

	req, _ := http.NewRequest(http.MethodGet, e.Issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+refreshed.json["access_token"].(string))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: %d %v", resp.StatusCode, err)
	}
	if _, ok := info["sid"]; ok {
		t.Errorf("userinfo has sid: %v", info)
	}
}

// TestSessionCookieCarriesARandomIDAlone: the cookie is a random 256-bit
// id; the database holds its SHA-256, never the id itself.
func TestSessionCookieCarriesARandomIDAlone(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p := b.login(b.get(e.Issuer+"/login"), e.Issuer, "alice", testPassword)
	var value string
	for _, c := range (&http.Response{Header: p.Header}).Cookies() {
		if c.Name == "consentry_session" {
			value = c.Value
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) != 32 {
		t.Fatalf("cookie value %q is not 32 bytes in base64url", value)
	}
	ctx := context.Background()
	if _, err := e.Provider.Store.GetSession(ctx, value); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a session is stored under the cookie's value: %v", err)
	}
	sum := sha256.Sum256(raw)
	sess, err := e.Provider.Store.GetSession(ctx, hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatalf("no session under the cookie's hash: %v", err)
	}
	if sess.Subject != e.User.Subject || len(sess.AMR) != 1 || sess.AMR[0] != "pwd" || sess.ID == value || sess.IPAddress != "127.0.0.1" {
		t.Errorf("stored session: %+v", sess)
	}
}
