package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// clock is a provider clock the test moves forward, for the retry window.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }
func withClock(c *clock) envOption       { return func(s *envSettings) { s.Now = c.Now } }
func withRetryWindow(d time.Duration) envOption {
	return func(s *envSettings) { s.Config.OfflineAccess.RetryWindow = provider.Duration(d) }
}

// offlineTokens signs alice in to a confidential client with offline access
// and returns the client's secret and the token response.
func offlineTokens(t testing.TB, e *env, clientID string) (string, map[string]any) {
	t.Helper()
	_, secret := e.client(provider.ClientSpec{ID: clientID, Name: "Calendar Sync", Scopes: []string{"openid", "profile", "offline_access"},
		GrantTypes: []string{"authorization_code", "refresh_token"}})
	return secret, consentedTokens(t, e, clientID, secret)
}

func consentedTokens(t testing.TB, e *env, clientID, secret string) map[string]any {
	t.Helper()
	v := authParams(clientID)
	v.Set("scope", "openid profile offline_access")
	v.Set("prompt", "consent")
	code := e.signIn(e.signedInBrowser("alice"), e.Issuer+"/oauth2/auth?"+v.Encode()).Get("code")
	tok := postForm(t, e.Issuer+"/oauth2/token", clientID, secret, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {testRedirectURI}, "code_verifier": {"verifier-0123456789-0123456789-0123456789-abc"}})
	if tok.status != http.StatusOK || tok.json["refresh_token"] == nil {
		t.Fatalf("exchange: %d %v", tok.status, tok.json)
	}
	return tok.json
}

func refreshWith(t *testing.T, e *env, clientID, secret, refreshToken string, extra url.Values) jsonResponse {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	for k, v := range extra {
		form[k] = v
	}
	return postForm(t, e.Issuer+"/oauth2/token", clientID, secret, form)
}

func active(t *testing.T, e *env, clientID, secret, token string) bool {
	t.Helper()
	return introspect(t, e, clientID, secret, token)["active"] == true
}

func TestRefreshRotatesAndDetectsReuse(t *testing.T) {
	c := &clock{}
	e := newEnv(t, withClock(c), withRetryWindow(10*time.Second))
	secret, tok := offlineTokens(t, e, "cal")
	rt0 := tok["refresh_token"].(string)

	first := refreshWith(t, e, "cal", secret, rt0, nil)
	if first.status != http.StatusOK {
		t.Fatalf("refresh: %d %v", first.status, first.json)
	}
	rt1 := first.json["refresh_token"].(string)
	if rt1 == rt0 || active(t, e, "cal", secret, rt0) || !active(t, e, "cal", secret, rt1) {
		t.Fatal("refresh did not rotate the refresh token")
	}
	if active(t, e, "cal", secret, tok["access_token"].(string)) {
		t.Error("the access token of the rotated-out refresh token is still active")
	}

	// Outside the retry window the old token is a reuse: the family dies.
	c.Advance(11 * time.Second)
	reuse := refreshWith(t, e, "cal", secret, rt0, nil)
	if reuse.status != http.StatusBadRequest || reuse.json["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v, want invalid_grant", reuse.status, reuse.json)
	}
	if active(t, e, "cal", secret, rt1) || active(t, e, "cal", secret, first.json["access_token"].(string)) {
		t.Fatal("the family survived a detected reuse")
	}
	if got := refreshWith(t, e, "cal", secret, rt1, nil); got.json["error"] != "invalid_grant" {
		t.Fatalf("refresh with the family's newest token after reuse: %d %v", got.status, got.json)
	}
	events, _ := e.Provider.Store.ListAuditEvents(context.Background(), storage.AuditFilter{Subject: e.User.Subject})
	if !hasEvent(events, storage.EventRefreshReuse) || !hasEvent(events, storage.EventGrantRevoked) {
		t.Errorf("no reuse event in the audit log: %+v", events)
	}
	grants, _ := e.Provider.Store.ListGrants(context.Background(), storage.GrantFilter{Subject: e.User.Subject, ClientID: "cal"})
	if len(grants) != 1 || grants[0].RevokedAt == nil {
		t.Errorf("the grant was not revoked after the reuse: %+v", grants)
	}
}

func hasEvent(events []storage.AuditEvent, typ string) bool {
	for _, ev := range events {
		if ev.Type == typ {
			return true
		}
	}
	return false
}

func TestRetryWithinTheWindowGetsTheSameSuccessor(t *testing.T) {
	c := &clock{}
	e := newEnv(t, withClock(c), withRetryWindow(10*time.Second))
	secret, tok := offlineTokens(t, e, "cal")
	rt0 := tok["refresh_token"].(string)

	first := refreshWith(t, e, "cal", secret, rt0, nil)
	c.Advance(3 * time.Second) // the response was lost; the app retries
	retry := refreshWith(t, e, "cal", secret, rt0, nil)
	if first.status != http.StatusOK || retry.status != http.StatusOK {
		t.Fatalf("refresh and retry: %d %v / %d %v", first.status, first.json, retry.status, retry.json)
	}
	if retry.json["refresh_token"] != first.json["refresh_token"] || retry.json["access_token"] != first.json["access_token"] {
		t.Fatal("the retry did not return the same successor: the family would have two live refresh tokens")
	}
	if retry.json["id_token"] == nil {
		t.Error("the retry returned no ID token")
	}
	rt1 := first.json["refresh_token"].(string)
	next := refreshWith(t, e, "cal", secret, rt1, nil)
	if next.status != http.StatusOK {
		t.Fatalf("the successor does not refresh: %d %v", next.status, next.json)
	}
}

func TestRetryWindowZeroTurnsRetriesIntoReuse(t *testing.T) {
	e := newEnv(t, withRetryWindow(0))
	secret, tok := offlineTokens(t, e, "cal")
	rt0 := tok["refresh_token"].(string)
	if got := refreshWith(t, e, "cal", secret, rt0, nil); got.status != http.StatusOK {
		t.Fatalf("refresh: %d %v", got.status, got.json)
	}
	if got := refreshWith(t, e, "cal", secret, rt0, nil); got.json["error"] != "invalid_grant" {
		t.Fatalf("immediate second use with the window off: %d %v", got.status, got.json)
	}
}

func TestConcurrentRefreshesOfOneToken(t *testing.T) {
	for _, n := range []int{2, 16} {
		for _, window := range []time.Duration{10 * time.Second, 0} {
			t.Run(fmt.Sprintf("n=%d/window=%s", n, window), func(t *testing.T) {
				e := newEnv(t, withRetryWindow(window))
				secret, tok := offlineTokens(t, e, "cal")
				rt0 := tok["refresh_token"].(string)

				results := make([]jsonResponse, n)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						results[i] = refreshWith(t, e, "cal", secret, rt0, nil)
					}()
				}
				close(start)
				wg.Wait()

				issued := map[string]bool{}
				for _, r := range results {
					switch {
					case r.status >= 500:
						t.Fatalf("a concurrent refresh answered %d %v", r.status, r.json)
					case r.status == http.StatusOK:
						issued[r.json["refresh_token"].(string)] = true
					case r.json["error"] != "invalid_grant":
						t.Fatalf("a concurrent refresh answered %d %v", r.status, r.json)
					}
				}
				if len(issued) != 1 {
					t.Fatalf("%d different refresh tokens issued from one token: the family forked", len(issued))
				}
				var live string
				for rt := range issued {
					live = rt
				}
				if window > 0 {
					for _, r := range results {
						if r.status != http.StatusOK {
							t.Fatalf("within the retry window a concurrent caller got %d %v", r.status, r.json)
						}
					}
					if got := refreshWith(t, e, "cal", secret, live, nil); got.status != http.StatusOK {
						t.Fatalf("the single successor does not refresh: %d %v", got.status, got.json)
					}
				}
			})
		}
	}
}

func TestEveryRefreshChecksTheGrant(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, e *env)
	}{
		{"consent revoked", func(t *testing.T, e *env) {
			if _, err := e.Provider.Store.RevokeGrants(context.Background(), e.User.Subject, "cal", time.Now()); err != nil {
				t.Fatal(err)
			}
		}},
		{"user disabled", func(t *testing.T, e *env) {
			if err := e.Provider.Store.UpdateUser(context.Background(), e.User.Subject, func(u *storage.User) error { u.Disabled = true; return nil }); err != nil {
				t.Fatal(err)
			}
		}},
		{"client lost offline_access", func(t *testing.T, e *env) {
			err := e.Provider.Store.UpdateClient(context.Background(), "cal", func(c *storage.Client) error {
				c.Scopes = []string{"openid", "profile"}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"user deleted", func(t *testing.T, e *env) {
			if err := e.Provider.Store.DeleteUser(context.Background(), e.User.Subject); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			secret, tok := offlineTokens(t, e, "cal")
			tt.break_(t, e)
			got := refreshWith(t, e, "cal", secret, tok["refresh_token"].(string), nil)
			if got.status != http.StatusBadRequest || got.json["error"] != "invalid_grant" {
				t.Fatalf("refresh after %s: %d %v", tt.name, got.status, got.json)
			}
		})
	}
}

func TestRefreshLifetimes(t *testing.T) {
	t.Run("idle lifetime", func(t *testing.T) {
		e := newEnv(t, func(s *envSettings) { s.Config.OfflineAccess.IdleLifetime = provider.Duration(2 * time.Second) })
		secret, tok := offlineTokens(t, e, "cal")
		time.Sleep(2500 * time.Millisecond)
		if got := refreshWith(t, e, "cal", secret, tok["refresh_token"].(string), nil); got.json["error"] != "invalid_grant" {
			t.Fatalf("refresh after the idle lifetime: %d %v", got.status, got.json)
		}
	})
	t.Run("absolute lifetime caps the idle one", func(t *testing.T) {
		e := newEnv(t, func(s *envSettings) { s.Config.OfflineAccess.AbsoluteLifetime = provider.Duration(time.Hour) })
		secret, tok := offlineTokens(t, e, "cal")
		exp := int64(introspect(t, e, "cal", secret, tok["refresh_token"].(string))["exp"].(float64))
		if limit := time.Now().Add(time.Hour + time.Minute).Unix(); exp > limit {
			t.Fatalf("refresh token expires at %d, after the absolute lifetime (%d)", exp, limit)
		}
		got := refreshWith(t, e, "cal", secret, tok["refresh_token"].(string), nil)
		exp = int64(introspect(t, e, "cal", secret, got.json["refresh_token"].(string))["exp"].(float64))
		if limit := time.Now().Add(time.Hour + time.Minute).Unix(); exp > limit {
			t.Fatalf("a refreshed token expires at %d, after the absolute lifetime (%d)", exp, limit)
		}
	})
	t.Run("default idle lifetime is 30 days", func(t *testing.T) {
		e := newEnv(t)
		secret, tok := offlineTokens(t, e, "cal")
		exp := time.Unix(int64(introspect(t, e, "cal", secret, tok["refresh_token"].(string))["exp"].(float64)), 0)
		if d := time.Until(exp); d < 29*24*time.Hour || d > 31*24*time.Hour {
			t.Fatalf("refresh token lives %v", d)
		}
		if in := tok["expires_in"].(float64); in > 15*60 || in < 14*60 {
			t.Fatalf("access token lives %vs, want 15 minutes", in)
		}
	})
	t.Run("a client's own idle lifetime", func(t *testing.T) {
		e := newEnv(t)
		_, secret := e.client(provider.ClientSpec{ID: "bank", Scopes: []string{"openid", "profile", "offline_access"},
			GrantTypes: []string{"authorization_code", "refresh_token"}, OfflineIdleLifetime: time.Hour})
		tok := consentedTokens(t, e, "bank", secret)
		exp := time.Unix(int64(introspect(t, e, "bank", secret, tok["refresh_token"].(string))["exp"].(float64)), 0)
		if d := time.Until(exp); d > time.Hour+time.Minute || d < time.Hour-time.Minute {
			t.Fatalf("refresh token of a client with a 1h idle lifetime lives %v", d)
		}
	})
	t.Run("an agreement's end caps the refresh token", func(t *testing.T) {
		e := newEnv(t)
		app := e.offlineApp("ends")
		end := time.Now().Add(2 * time.Hour)
		e.agreement(provider.AgreementSpec{ClientID: "ends", AllUsers: true, Scopes: []string{"openid", "profile", "offline_access"}, ExpiresAt: &end})
		tok := app.request("").exchangeIn(e.signedInBrowser("alice"))
		exp := int64(introspect(t, e, "ends", app.cfg.ClientSecret, tok.RefreshToken)["exp"].(float64))
		if exp > end.Unix()+1 {
			t.Fatalf("refresh token expires at %d, after the agreement ends at %d", exp, end.Unix())
		}
	})
	t.Run("an ended agreement ends offline access", func(t *testing.T) {
		e := newEnv(t)
		app := e.offlineApp("short")
		end := time.Now().Add(1500 * time.Millisecond)
		e.agreement(provider.AgreementSpec{ClientID: "short", AllUsers: true, Scopes: []string{"openid", "profile", "offline_access"}, ExpiresAt: &end})
		tok := app.request("").exchangeIn(e.signedInBrowser("alice"))
		time.Sleep(time.Until(end) + 100*time.Millisecond)
		if _, err := app.refresh(tok); err == nil {
			t.Fatal("offline access outlived the agreement it rested on")
		}
	})
}

func TestRefreshDownScoping(t *testing.T) {
	e := newEnv(t)
	secret, tok := offlineTokens(t, e, "cal")
	narrow := refreshWith(t, e, "cal", secret, tok["refresh_token"].(string), url.Values{"scope": {"openid offline_access"}})
	if narrow.status != http.StatusOK || narrow.json["scope"] != "openid offline_access" {
		t.Fatalf("narrowed refresh: %d %v", narrow.status, narrow.json)
	}
	if got := introspect(t, e, "cal", secret, narrow.json["access_token"].(string))["scope"]; got != "openid offline_access" {
		t.Fatalf("narrowed access token has scope %v", got)
	}
	// The refresh token still carries the whole grant.
	full := refreshWith(t, e, "cal", secret, narrow.json["refresh_token"].(string), nil)
	if full.status != http.StatusOK || full.json["scope"] != "openid profile offline_access" {
		t.Fatalf("refresh after narrowing: %d %v", full.status, full.json)
	}
	wide := refreshWith(t, e, "cal", secret, full.json["refresh_token"].(string), url.Values{"scope": {"openid profile email offline_access"}})
	if wide.status != http.StatusBadRequest || wide.json["error"] != "invalid_scope" {
		t.Fatalf("widened refresh: %d %v", wide.status, wide.json)
	}
}

func TestRevokingAnAccessTokenLeavesTheRefreshToken(t *testing.T) {
	e := newEnv(t)
	secret, tok := offlineTokens(t, e, "cal")
	revoke(t, e, "cal", secret, tok["access_token"].(string))
	if active(t, e, "cal", secret, tok["access_token"].(string)) {
		t.Fatal("revoked access token still active")
	}
	if got := refreshWith(t, e, "cal", secret, tok["refresh_token"].(string), nil); got.status != http.StatusOK {
		t.Fatalf("refresh after revoking the access token: %d %v", got.status, got.json)
	}
}

func TestAuditTrail(t *testing.T) {
	e := newEnv(t)
	secret, tok := offlineTokens(t, e, "cal")
	got := refreshWith(t, e, "cal", secret, tok["refresh_token"].(string), nil)
	ctx := context.Background()
	if _, err := provider.RevokeConsents(ctx, e.Provider.Store, "alice", "cal", "ops@example.com", time.Now()); err != nil {
		t.Fatal(err)
	}
	events, err := e.Provider.Store.ListAuditEvents(ctx, storage.AuditFilter{Subject: e.User.Subject})
	if err != nil {
		t.Fatal(err)
	}
	if !hasEvent(events, storage.EventConsentGiven) || !hasEvent(events, storage.EventGrantRevoked) {
		t.Fatalf("events = %+v", events)
	}
	for _, ev := range events {
		if ev.Type == storage.EventConsentGiven && (ev.ClientID != "cal" || ev.Basis != storage.BasisConsent || ev.IPAddress == "" || len(ev.Scopes) == 0) {
			t.Errorf("consent event = %+v", ev)
		}
	}
	raw, _ := json.Marshal(events)
	for _, secretValue := range []string{secret, tok["access_token"].(string), tok["refresh_token"].(string), got.json["refresh_token"].(string)} {
		if strings.Contains(string(raw), secretValue) {
			t.Fatal("the audit log contains a token or secret")
		}
	}
}

// With one signing slot, parallel refreshes of independent families queue
// for it and all succeed: nothing holding the slot waits for another
// request.
func TestRefreshesQueueForTheSigningLimit(t *testing.T) {
	e := newEnv(t, func(s *envSettings) { s.Config.TokenConcurrency = 1 })
	const families, rounds = 6, 3
	secret, _ := offlineTokens(t, e, "cal")
	tokens := make([]string, families)
	for i := range tokens {
		tokens[i] = consentedTokens(t, e, "cal", secret)["refresh_token"].(string)
	}
	errs := make(chan string, families*rounds)
	var wg sync.WaitGroup
	for i := range families {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt := tokens[i]
			for range rounds {
				got := refreshWith(t, e, "cal", secret, rt, nil)
				if got.status != http.StatusOK {
					errs <- fmt.Sprintf("family %d: %d %v", i, got.status, got.json)
					return
				}
				rt = got.json["refresh_token"].(string)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}
