package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/provider/connector"
)

// signIn runs LoginURL, the upstream's forms and HandleCallback.
func signIn(t *testing.T, c *Connector, b *browser, username string) (connector.Identity, error) {
	t.Helper()
	loginURL, data, err := c.LoginURL(context.Background(), callbackURL, "state-"+username)
	if err != nil {
		t.Fatalf("LoginURL: %v", err)
	}
	loc := b.signIn(loginURL, username, "allow")
	return c.HandleCallback(context.Background(), callbackURL, data, callbackRequest(t, loc))
}

func TestSignInAtTheUpstreamMapsTheClaims(t *testing.T) {
	up := startUpstream(t)
	c := up.connector(nil)
	ctx := context.Background()

	loginURL, data, err := c.LoginURL(ctx, callbackURL, "state-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	q := mustParse(t, loginURL).Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") != "state-0123456789" {
		t.Fatalf("login URL lacks PKCE S256, nonce or state: %s", loginURL)
	}
	if scope := q.Get("scope"); scope != "openid profile email" {
		t.Fatalf("default scopes = %q", scope)
	}
	var d loginData
	if err := json.Unmarshal(data, &d); err != nil || d.Verifier == "" || d.Nonce != q.Get("nonce") {
		t.Fatalf("login data %s does not hold the verifier and the nonce: %v", data, err)
	}

	loc := newBrowser(t).signIn(loginURL, "alice", "allow")
	id, err := c.HandleCallback(ctx, callbackURL, data, callbackRequest(t, loc))
	if err != nil {
		t.Fatalf("HandleCallback: %v", err)
	}
	want := connector.Identity{UserID: up.subjects["alice"], Username: "alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice Example"}
	if id.UserID != want.UserID || id.Username != want.Username || id.Email != want.Email || !id.EmailVerified || id.Name != want.Name || id.Groups != nil {
		t.Fatalf("identity = %+v, want %+v", id, want)
	}
	if id.Data != nil {
		t.Fatalf("no offline access asked, yet data %s", id.Data)
	}
	// Without an upstream refresh token, Refresh hands the identity back:
	// the core caps the sign-in's age.
	again, err := c.Refresh(ctx, id)
	if err != nil || again.UserID != id.UserID || again.Email != id.Email {
		t.Fatalf("Refresh without a refresh token = %+v, %v", again, err)
	}

	// The same code cannot be used twice.
	if _, err := c.HandleCallback(ctx, callbackURL, data, callbackRequest(t, loc)); err == nil {
		t.Fatal("a code was redeemed twice")
	}
}

func TestCustomClaimNamesAndUserIDClaim(t *testing.T) {
	up := startUpstream(t)
	c := up.connector(func(cfg *Config) {
		cfg.Claims = Claims{Username: "email", Name: "preferred_username"}
		cfg.UserIDClaim = "email"
	})
	id, err := signIn(t, c, newBrowser(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if id.UserID != "alice@example.com" || id.Username != "alice@example.com" || id.Name != "alice" {
		t.Fatalf("identity with custom claim names = %+v", id)
	}
}

func TestUnverifiedUpstreamEmailIsNotReportedVerified(t *testing.T) {
	up := startUpstream(t)
	id, err := signIn(t, up.connector(nil), newBrowser(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if id.Email != "bob@example.com" || id.EmailVerified {
		t.Fatalf("bob's unverified email came back as %q verified=%v", id.Email, id.EmailVerified)
	}
	// Only the explicit, documented override reports it verified.
	id, err = signIn(t, up.connector(func(cfg *Config) { cfg.InsecureSkipEmailVerified = true }), newBrowser(t), "bob")
	if err != nil || !id.EmailVerified {
		t.Fatalf("insecure_skip_email_verified: %+v, %v", id, err)
	}
}

func TestCallbackRefusesWrongStateNonceVerifierAndDenial(t *testing.T) {
	up := startUpstream(t)
	c := up.connector(nil)
	ctx := context.Background()
	b := newBrowser(t)

	begin := func() (*url.URL, loginData) {
		t.Helper()
		loginURL, data, err := c.LoginURL(ctx, callbackURL, "state-0123456789")
		if err != nil {
			t.Fatal(err)
		}
		var d loginData
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatal(err)
		}
		return b.signIn(loginURL, "alice", "allow"), d
	}
	callback := func(loc *url.URL, d loginData) error {
		data, _ := json.Marshal(d)
		_, err := c.HandleCallback(ctx, callbackURL, data, callbackRequest(t, loc))
		return err
	}

	t.Run("wrong state", func(t *testing.T) {
		loc, d := begin()
		q := loc.Query()
		q.Set("state", "state-of-another-sign-in")
		forged := *loc
		forged.RawQuery = q.Encode()
		if err := callback(&forged, d); err == nil || !strings.Contains(err.Error(), "state") {
			t.Fatalf("wrong state: %v", err)
		}
		// The code itself was fine: the right state still completes.
		if err := callback(loc, d); err != nil {
			t.Fatalf("right state after a refused one: %v", err)
		}
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		loc, d := begin()
		d.Verifier = strings.Repeat("A", 43)
		err := callback(loc, d)
		if err == nil || errors.Is(err, connector.ErrGone) || errors.Is(err, connector.ErrUnavailable) {
			t.Fatalf("wrong verifier: %v", err)
		}
	})
	t.Run("wrong nonce", func(t *testing.T) {
		loc, d := begin()
		d.Nonce = "nonce-of-another-sign-in"
		if err := callback(loc, d); err == nil || !strings.Contains(err.Error(), "nonce") {
			t.Fatalf("wrong nonce: %v", err)
		}
	})
	t.Run("no data", func(t *testing.T) {
		loc, _ := begin()
		if _, err := c.HandleCallback(ctx, callbackURL, nil, callbackRequest(t, loc)); err == nil {
			t.Fatal("a callback without its data was accepted")
		}
	})
	t.Run("consent denied", func(t *testing.T) {
		// prompt=consent makes the upstream show its consent screen again.
		oc := up.connector(func(cfg *Config) { cfg.Offline = true })
		loginURL, data, err := oc.LoginURL(ctx, callbackURL, "state-0123456789")
		if err != nil {
			t.Fatal(err)
		}
		loc := b.signIn(loginURL, "alice", "deny")
		if loc.Query().Get("error") != "access_denied" {
			t.Fatalf("deny redirected to %s", loc)
		}
		if _, err := oc.HandleCallback(ctx, callbackURL, data, callbackRequest(t, loc)); !errors.Is(err, ErrAccessDenied) {
			t.Fatalf("access_denied: %v", err)
		}
	})
}

func TestRefreshUsesTheUpstreamRefreshToken(t *testing.T) {
	up := startUpstream(t)
	c := up.connector(func(cfg *Config) { cfg.Offline = true })
	ctx := context.Background()

	loginURL, data, err := c.LoginURL(ctx, callbackURL, "state-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	q := mustParse(t, loginURL).Query()
	if !slices.Contains(strings.Fields(q.Get("scope")), "offline_access") || q.Get("prompt") != "consent" {
		t.Fatalf("offline: true asks for %q with prompt %q", q.Get("scope"), q.Get("prompt"))
	}
	id, err := c.HandleCallback(ctx, callbackURL, data, callbackRequest(t, newBrowser(t).signIn(loginURL, "alice", "allow")))
	if err != nil {
		t.Fatal(err)
	}
	first := refreshToken(t, id)

	// What the refresh returns comes from the upstream's new ID token,
	// not from the identity handed in.
	stale := id
	stale.Username, stale.Email, stale.EmailVerified, stale.Name = "old-name", "old@example.com", false, "Old"
	refreshed, err := c.Refresh(ctx, stale)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if refreshed.UserID != id.UserID || refreshed.Email != "alice@example.com" || !refreshed.EmailVerified || refreshed.Username != "alice" || refreshed.Name != "Alice Example" {
		t.Fatalf("refreshed identity = %+v", refreshed)
	}
	if rotated := refreshToken(t, refreshed); rotated == first {
		t.Fatal("the upstream rotated its refresh token but Data kept the old one")
	}

	// The upstream down: unavailable, not gone.
	up.stop()
	if _, err := c.Refresh(ctx, refreshed); !errors.Is(err, connector.ErrUnavailable) {
		t.Fatalf("Refresh with the upstream down: %v", err)
	}
	up.start()
	if refreshed, err = c.Refresh(ctx, refreshed); err != nil {
		t.Fatalf("Refresh with the upstream back: %v", err)
	}

	// Disabled at the upstream: gone.
	up.run("", "users", "disable", "alice")
	if _, err := c.Refresh(ctx, refreshed); !errors.Is(err, connector.ErrGone) {
		t.Fatalf("Refresh after the upstream disabled alice: %v", err)
	}
}

func refreshToken(t *testing.T, id connector.Identity) string {
	t.Helper()
	var d identityData
	if err := json.Unmarshal(id.Data, &d); err != nil || d.RefreshToken == "" {
		t.Fatalf("identity data %q holds no upstream refresh token: %v", id.Data, err)
	}
	return d.RefreshToken
}

func TestUpstreamDownAtStartIsRetriedAtFirstUse(t *testing.T) {
	up := newUpstream(t, freeAddr(t))
	c := up.connector(nil) // nothing listens yet: New must still succeed
	ctx := context.Background()
	if _, _, err := c.LoginURL(ctx, callbackURL, "state-0123456789"); !errors.Is(err, connector.ErrUnavailable) {
		t.Fatalf("LoginURL with the upstream down: %v", err)
	}
	stale := connector.Identity{UserID: "x", Data: []byte(`{"refresh_token":"rt"}`)}
	if _, err := c.Refresh(ctx, stale); !errors.Is(err, connector.ErrUnavailable) {
		t.Fatalf("Refresh with the upstream never discovered: %v", err)
	}

	up.start()
	// Within retryAfter the failure is remembered, not retried.
	if _, _, err := c.LoginURL(ctx, callbackURL, "state-0123456789"); !errors.Is(err, connector.ErrUnavailable) {
		t.Fatalf("LoginURL right after a failed discovery: %v", err)
	}
	c.mu.Lock()
	c.lastTry = time.Now().Add(-retryAfter)
	c.mu.Unlock()
	id, err := signIn(t, c, newBrowser(t), "alice")
	if err != nil || id.UserID != up.subjects["alice"] {
		t.Fatalf("sign-in once the upstream is up: %+v, %v", id, err)
	}

	// Down after discovery: the code exchange is unavailable.
	loginURL, data, err := c.LoginURL(ctx, callbackURL, "state-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	loc := newBrowser(t).signIn(loginURL, "alice", "allow")
	up.stop()
	if _, err := c.HandleCallback(ctx, callbackURL, data, callbackRequest(t, loc)); !errors.Is(err, connector.ErrUnavailable) {
		t.Fatalf("HandleCallback with the upstream down: %v", err)
	}
}

func TestNewRefusesBadConfiguration(t *testing.T) {
	getenv := func(name string) string { return map[string]string{"SET": "s3cret"}[name] }
	for _, tt := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no issuer", Config{ClientID: "a"}, "issuer is required"},
		{"plain http off loopback", Config{Issuer: "http://idp.example.com", ClientID: "a"}, "plain http"},
		{"no client id", Config{Issuer: "https://idp.example.com"}, "client_id is required"},
		{"secret variable unset", Config{Issuer: "https://idp.example.com", ClientID: "a", ClientSecretEnv: "UNSET"}, "UNSET is empty or unset"},
		{"scopes without openid", Config{Issuer: "https://idp.example.com", ClientID: "a", Scopes: []string{"email"}}, "openid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), tt.cfg, getenv, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
