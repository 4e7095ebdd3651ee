package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/consentry/consentry/handlers"
	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// loginAt signs in on the plain login page of the server at base.
func (b *browser) loginAt(base, username, password string) *page {
	b.t.Helper()
	return b.login(b.get(base+"/login"), base, username, password)
}

func signedIn(p *page) bool { return p.Status == http.StatusOK && p.URL.Path == "/" }

func (e *env) user(username string) *storage.User {
	e.t.Helper()
	u, err := provider.CreateUser(context.Background(), e.Provider.Store, provider.UserSpec{Username: username, Password: testPassword},
		bcrypt.MinCost, time.Now())
	if err != nil {
		e.t.Fatalf("create user %q: %v", username, err)
	}
	return u
}

func withLoginThrottle(c provider.LoginThrottleConfig) envOption {
	return func(s *envSettings) { s.Config.LoginThrottle = c }
}

// refusedWithoutHash asserts that p is the 429 sign-in refusal and that no
// password hash was computed for it.
func (e *env) refusedWithoutHash(t *testing.T, try func() *page, minutes string) {
	t.Helper()
	before := e.Provider.Passwords.Computed()
	p := try()
	if p.Status != http.StatusTooManyRequests || !strings.Contains(p.Body, "Too many failed sign-in attempts. Try again in "+minutes+".") {
		t.Fatalf("throttled try: status %d, want 429 with \"Try again in %s\":\n%s", p.Status, minutes, p.Body)
	}
	if p.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if got := e.Provider.Passwords.Computed(); got != before {
		t.Errorf("a refused try computed %d password hashes", got-before)
	}
}

func TestLoginThrottlesAnAccountAfterFailures(t *testing.T) {
	e := newEnv(t)
	e.user("bob")
	b := e.browser()
	for i := range 5 {
		before := e.Provider.Passwords.Computed()
		if p := b.loginAt(e.Issuer, "alice", "hunter2-guess"); p.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d", i+1, p.Status)
		}
		if e.Provider.Passwords.Computed() != before+1 {
			t.Fatalf("failure %d did not cost exactly one hash", i+1)
		}
	}
	// Even the right password is refused now, without a hash.
	e.refusedWithoutHash(t, func() *page { return b.loginAt(e.Issuer, "alice", testPassword) }, "1 minute")
	// Another account from the same address signs in.
	if p := e.browser().loginAt(e.Issuer, "bob", testPassword); !signedIn(p) {
		t.Fatalf("bob from the same address: status %d at %s", p.Status, p.URL)
	}

	events, err := e.Provider.Store.ListAuditEvents(t.Context(), storage.AuditFilter{Subject: e.User.Subject})
	if err != nil {
		t.Fatal(err)
	}
	var failed, throttled int
	for _, ev := range events {
		switch ev.Type {
		case storage.EventLoginFailed:
			failed++
			if ev.IPAddress != "127.0.0.1" || ev.UserAgent == "" || !strings.Contains(ev.Detail, `"alice"`) {
				t.Errorf("login_failed event: %+v", ev)
			}
		case storage.EventLoginThrottled:
			throttled++
		}
		if strings.Contains(ev.Detail, "hunter2") {
			t.Errorf("audit event holds the password: %+v", ev)
		}
	}
	if failed != 5 || throttled != 1 {
		t.Errorf("audit: %d login_failed, %d login_throttled; want 5 and 1", failed, throttled)
	}
}

// An unknown username is locked like a known one: a refusal tells nothing.
func TestLoginThrottlesUnknownUsernamesAlike(t *testing.T) {
	// Two failures: an unknown username costs a hash at the default cost.
	e := newEnv(t, withLoginThrottle(provider.LoginThrottleConfig{
		MaxFailures: 2, FindTime: provider.Duration(15 * time.Minute),
		Lockout: provider.Duration(time.Minute), MaxLockout: provider.Duration(time.Hour),
		AddressMaxFailures: 100, AddressFindTime: provider.Duration(10 * time.Minute),
	}))
	b := e.browser()
	for range 2 {
		b.loginAt(e.Issuer, "mallory", "wrong password")
	}
	e.refusedWithoutHash(t, func() *page { return b.loginAt(e.Issuer, "Mallory ", "another guess") }, "1 minute")
}

func TestLoginLockoutGrows(t *testing.T) {
	c := &clock{}
	e := newEnv(t, withClock(c))
	b := e.browser()
	for _, want := range []string{"1 minute", "2 minutes", "4 minutes"} {
		for range 5 {
			if p := b.loginAt(e.Issuer, "alice", "wrong password"); p.Status != http.StatusUnauthorized {
				t.Fatalf("failure: status %d", p.Status)
			}
		}
		e.refusedWithoutHash(t, func() *page { return b.loginAt(e.Issuer, "alice", testPassword) }, want)
		c.Advance(5 * time.Minute)
	}
	// Once the lockout is over the right password works, and clears the
	// history: the next lockout is the first again.
	if p := b.loginAt(e.Issuer, "alice", testPassword); !signedIn(p) {
		t.Fatalf("after the lockout: status %d at %s", p.Status, p.URL)
	}
	for range 5 {
		e.browser().loginAt(e.Issuer, "alice", "wrong password")
	}
	e.refusedWithoutHash(t, func() *page { return b.loginAt(e.Issuer, "alice", testPassword) }, "1 minute")
}

func TestLoginThrottlesAnAddress(t *testing.T) {
	e := newEnv(t, withLoginThrottle(provider.LoginThrottleConfig{
		MaxFailures: 50, FindTime: provider.Duration(15 * time.Minute),
		Lockout: provider.Duration(time.Minute), MaxLockout: provider.Duration(time.Hour),
		AddressMaxFailures: 3, AddressFindTime: provider.Duration(10 * time.Minute),
	}))
	e.user("bob")
	e.user("carol")
	b := e.browser()
	for _, name := range []string{"alice", "bob", "carol"} {
		if p := b.loginAt(e.Issuer, name, "wrong password"); p.Status != http.StatusUnauthorized {
			t.Fatalf("failure for %s: status %d", name, p.Status)
		}
	}
	// Every account from that address is refused now, for the window.
	e.refusedWithoutHash(t, func() *page { return e.browser().loginAt(e.Issuer, "alice", testPassword) }, "10 minutes")
}

// Two instances on one database count the same failures.
func TestLoginFailuresAreSharedBetweenInstances(t *testing.T) {
	e := newEnv(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	p2, err := provider.New(t.Context(), e.Provider.Config, e.Provider.Store, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := handlers.New(p2)
	if err != nil {
		t.Fatal(err)
	}
	second := httptest.NewServer(h2)
	t.Cleanup(second.Close)

	b := e.browser()
	for i := range 5 {
		base := e.Issuer
		if i%2 == 1 {
			base = second.URL
		}
		if p := b.loginAt(base, "alice", "wrong password"); p.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d", i+1, p.Status)
		}
	}
	for _, base := range []string{e.Issuer, second.URL} {
		p := b.loginAt(base, "alice", testPassword)
		if p.Status != http.StatusTooManyRequests {
			t.Errorf("instance %s after 5 failures on both: status %d, want 429", base, p.Status)
		}
	}
}

func TestUnlockClearsALockout(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for range 5 {
		b.loginAt(e.Issuer, "alice", "wrong password")
	}
	if p := b.loginAt(e.Issuer, "alice", testPassword); p.Status != http.StatusTooManyRequests {
		t.Fatalf("before unlock: status %d, want 429", p.Status)
	}
	cleared, err := provider.UnlockLogin(t.Context(), e.Provider.Store, "alice", "root", time.Now())
	if err != nil || !cleared {
		t.Fatalf("UnlockLogin = %v, %v", cleared, err)
	}
	if p := b.loginAt(e.Issuer, "alice", testPassword); !signedIn(p) {
		t.Fatalf("after unlock: status %d at %s", p.Status, p.URL)
	}
	events, err := e.Provider.Store.ListAuditEvents(t.Context(), storage.AuditFilter{Subject: e.User.Subject})
	if err != nil {
		t.Fatal(err)
	}
	if last := events[len(events)-1]; last.Type != storage.EventLoginUnlocked || last.Actor != storage.ActorAdmin || last.ActorName != "root" {
		t.Errorf("last audit event %+v, want login_unlocked by admin root", last)
	}
}

// The per-address limit counts the client behind a trusted proxy, not the
// proxy: one client's failures do not refuse another's sign-in.
func TestLoginThrottleCountsTheForwardedAddress(t *testing.T) {
	e := newEnv(t, trustedProxies("127.0.0.1"), withLoginThrottle(provider.LoginThrottleConfig{
		MaxFailures: 50, FindTime: provider.Duration(15 * time.Minute),
		Lockout: provider.Duration(time.Minute), MaxLockout: provider.Duration(time.Hour),
		AddressMaxFailures: 2, AddressFindTime: provider.Duration(10 * time.Minute),
	}))
	guesser := e.browser().behindProxy(http.Header{"X-Forwarded-For": {"198.51.100.7"}})
	for range 2 {
		guesser.loginAt(e.Issuer, "alice", "wrong password")
	}
	if p := guesser.loginAt(e.Issuer, "alice", testPassword); p.Status != http.StatusTooManyRequests {
		t.Fatalf("guesser's address: status %d, want 429", p.Status)
	}
	colleague := e.browser().behindProxy(http.Header{"X-Forwarded-For": {"198.51.100.8"}})
	if p := colleague.loginAt(e.Issuer, "alice", testPassword); !signedIn(p) {
		t.Fatalf("another client behind the same proxy: status %d at %s", p.Status, p.URL)
	}
}
