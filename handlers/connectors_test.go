package handlers_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/provider/connector"
	"github.com/consentry/consentry/storage"
)

// testDirectory is an in-test connector: password sign-in for its people,
// and a callback sign-in whose "upstream" sends the browser straight back.
type testDirectory struct {
	mu     sync.Mutex
	down   bool
	people map[string]string // username -> password
}

func (d *testDirectory) Login(_ context.Context, username, password string) (connector.Identity, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return connector.Identity{}, false, connector.ErrUnavailable
	}
	if pw, ok := d.people[username]; !ok || pw != password {
		return connector.Identity{}, false, nil
	}
	return connector.Identity{UserID: "uid-" + username, Username: username, Name: username}, true, nil
}

func (d *testDirectory) LoginURL(_ context.Context, callbackURL, state string) (string, []byte, error) {
	return callbackURL + "?" + url.Values{"state": {state}, "code": {"code-for-" + state}}.Encode(), []byte("nonce-" + state), nil
}

func (d *testDirectory) HandleCallback(_ context.Context, _ string, data []byte, r *http.Request) (connector.Identity, error) {
	// The data kept with the state comes back: the nonce of this sign-in.
	if string(data) != "nonce-"+r.URL.Query().Get("state") || r.URL.Query().Get("code") != "code-for-"+r.URL.Query().Get("state") {
		return connector.Identity{}, errors.New("callback does not match its sign-in")
	}
	return connector.Identity{UserID: "upstream-uid-1", Username: "uma", Email: "uma@example.com", EmailVerified: true, Name: "Uma"}, nil
}

// callbackOnly is testDirectory's callback sign-in alone: an upstream
// provider.
type callbackOnly struct{ d *testDirectory }

func (c callbackOnly) LoginURL(ctx context.Context, callbackURL, state string) (string, []byte, error) {
	return c.d.LoginURL(ctx, callbackURL, state)
}

func (c callbackOnly) HandleCallback(ctx context.Context, callbackURL string, data []byte, r *http.Request) (connector.Identity, error) {
	return c.d.HandleCallback(ctx, callbackURL, data, r)
}

func withTestDirectory(d *testDirectory, doc string) envOption {
	return func(s *envSettings) {
		var cfg provider.Config
		if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
			panic(err)
		}
		s.Config.Connectors = cfg.Connectors
		s.Options = append(s.Options, provider.WithConnectorType("testdir", func(raw *yaml.Node, _ func(string) string, _ *slog.Logger) (any, error) {
			var none struct{}
			return d, provider.DecodeConnectorConfig(raw, &none)
		}), provider.WithConnectorType("testup", func(raw *yaml.Node, _ func(string) string, _ *slog.Logger) (any, error) {
			var none struct{}
			return callbackOnly{d}, provider.DecodeConnectorConfig(raw, &none)
		}))
	}
}

const corpAndLocal = `
connectors:
  - {id: corp, type: testdir, name: Example Corp}
  - {id: local, type: local, name: Consentry}
`

func TestDirectoryUnavailablePage(t *testing.T) {
	d := &testDirectory{people: map[string]string{"dan": "dan-password"}}
	e := newEnv(t, withTestDirectory(d, corpAndLocal))
	if p := e.browser().loginAt(e.Issuer, "dan", "dan-password"); !signedIn(p) {
		t.Fatalf("directory sign-in: status %d at %s", p.Status, p.URL)
	}
	d.mu.Lock()
	d.down = true
	d.mu.Unlock()
	p := e.browser().loginAt(e.Issuer, "dan", "dan-password")
	if p.Status != http.StatusServiceUnavailable || !strings.Contains(p.Body, "The company directory is unavailable. Try again later.") {
		t.Fatalf("directory down: status %d, want 503 with the message:\n%s", p.Status, p.Body)
	}
	// The local users sign in all the same.
	if p := e.browser().loginAt(e.Issuer, "alice", testPassword); !signedIn(p) {
		t.Fatalf("local sign-in during an outage: status %d at %s", p.Status, p.URL)
	}
}

func TestDirectoryFailuresCountTowardsTheThrottle(t *testing.T) {
	d := &testDirectory{people: map[string]string{"dan": "dan-password"}}
	throttle := provider.DefaultConfig().LoginThrottle
	throttle.MaxFailures = 3
	e := newEnv(t, withTestDirectory(d, corpAndLocal), withLoginThrottle(throttle))
	b := e.browser()
	for i := range 3 {
		if p := b.loginAt(e.Issuer, "dan", "wrong guess"); p.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d", i+1, p.Status)
		}
	}
	// Locked before any connector is asked: the right password is refused.
	p := b.loginAt(e.Issuer, "dan", "dan-password")
	if p.Status != http.StatusTooManyRequests {
		t.Fatalf("after the failures: status %d, want 429", p.Status)
	}
}

func TestDisabledDirectoryUserCannotSignIn(t *testing.T) {
	d := &testDirectory{people: map[string]string{"dan": "dan-password"}}
	e := newEnv(t, withTestDirectory(d, corpAndLocal))
	if p := e.browser().loginAt(e.Issuer, "dan", "dan-password"); !signedIn(p) {
		t.Fatalf("directory sign-in: status %d", p.Status)
	}
	ctx := context.Background()
	u, err := e.Provider.Store.GetUserByUsername(ctx, "dan")
	if err != nil || u.ConnectorID != "corp" {
		t.Fatalf("user from the directory: %+v, %v", u, err)
	}
	if err := e.Provider.Store.UpdateUser(ctx, u.Subject, func(u *storage.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if p := e.browser().loginAt(e.Issuer, "dan", "dan-password"); p.Status != http.StatusUnauthorized {
		t.Fatalf("disabled directory user: status %d, want 401", p.Status)
	}
}

const upstreamOnly = `
connectors:
  - {id: up, type: testup, name: Upstream Co}
`

// noRedirects is b without following redirects.
func noRedirects(b *browser) *browser {
	c := *b.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: b.t, client: &c}
}

func TestUpstreamCallbackSignIn(t *testing.T) {
	d := &testDirectory{}
	e := newEnv(t, withTestDirectory(d, upstreamOnly))
	b := e.browser()
	page := b.get(e.Issuer + "/login")
	if !strings.Contains(page.Body, "Sign in with Upstream Co") || !strings.Contains(page.Body, `href="/login/up"`) {
		t.Fatalf("login page lacks the upstream button:\n%s", page.Body)
	}
	if strings.Contains(page.Body, `name="password"`) {
		t.Fatal("password form shown without a password connector")
	}

	// The whole flow: start, the upstream sends the browser back, signed in.
	start := noRedirects(b).get(e.Issuer + "/login/up")
	if start.Status != http.StatusFound || start.Location == nil {
		t.Fatalf("start: status %d", start.Status)
	}
	callback := start.Location.String()
	if p := b.get(callback); !signedIn(p) {
		t.Fatalf("callback: status %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	u, err := e.Provider.Store.GetUserByUsername(context.Background(), "uma")
	if err != nil || u.ConnectorID != "up" || !u.EmailVerified {
		t.Fatalf("user created at the callback: %+v, %v", u, err)
	}
	// The cookie was for one callback: a replay is refused.
	if p := b.get(callback); p.Status != http.StatusForbidden {
		t.Fatalf("replayed callback: status %d, want 403", p.Status)
	}

	// A wrong state: refused.
	other := e.browser()
	start = noRedirects(other).get(e.Issuer + "/login/up")
	wrong := *start.Location
	q := wrong.Query()
	q.Set("state", "attacker-state")
	wrong.RawQuery = q.Encode()
	if p := other.get(wrong.String()); p.Status != http.StatusForbidden {
		t.Fatalf("wrong state: status %d, want 403", p.Status)
	}
	// A callback this browser did not start (login CSRF): refused.
	start = noRedirects(e.browser()).get(e.Issuer + "/login/up")
	if p := e.browser().get(start.Location.String()); p.Status != http.StatusForbidden {
		t.Fatalf("callback without the starting cookie: status %d, want 403", p.Status)
	}
	// No state at all: refused.
	if p := e.browser().get(e.Issuer + "/login/up/callback"); p.Status != http.StatusForbidden {
		t.Fatalf("callback without state: status %d, want 403", p.Status)
	}
	// An unknown connector: 404.
	if p := e.browser().get(e.Issuer + "/login/nope"); p.Status != http.StatusNotFound {
		t.Fatalf("unknown connector: status %d, want 404", p.Status)
	}

}

// refreshingUpstream is an upstream that can be asked at refresh whether
// the person is still there.
type refreshingUpstream struct {
	callbackOnly
	mu   sync.Mutex
	gone bool
}

func (u *refreshingUpstream) Refresh(_ context.Context, id connector.Identity) (connector.Identity, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.gone {
		return connector.Identity{}, connector.ErrGone
	}
	return id, nil
}

func TestUpstreamSignInCompletesTheRequestAndOffboardingEndsOfflineAccess(t *testing.T) {
	up := &refreshingUpstream{callbackOnly: callbackOnly{&testDirectory{}}}
	e := newEnv(t, func(s *envSettings) {
		var cfg provider.Config
		if err := yaml.Unmarshal([]byte("connectors:\n  - {id: up, type: testrefresh, name: Upstream Co}\n"), &cfg); err != nil {
			t.Fatal(err)
		}
		s.Config.Connectors = cfg.Connectors
		s.Config.ConnectorRefreshCache = 0
		s.Options = append(s.Options, provider.WithConnectorType("testrefresh", func(*yaml.Node, func(string) string, *slog.Logger) (any, error) {
			return up, nil
		}))
	})
	app := e.offlineApp("calsync")
	f := app.request("consent")
	b := e.browser()
	login := b.get(f.url)
	href := ""
	if i := strings.Index(login.Body, `href="/login/up?`); i >= 0 {
		rest := login.Body[i+len(`href="`):]
		href = strings.ReplaceAll(rest[:strings.Index(rest, `"`)], "&amp;", "&")
	}
	if !strings.Contains(href, "request=") {
		t.Fatalf("login page of a pending request: no upstream link with the request:\n%s", login.Body)
	}
	consent := b.get(e.Issuer + href)
	q := b.consent(consent, e.Issuer, "allow").callback(t)
	tok := f.exchange(q)
	tok, err := app.refresh(tok)
	if err != nil {
		t.Fatalf("refresh of a person still upstream: %v", err)
	}
	up.mu.Lock()
	up.gone = true
	up.mu.Unlock()
	if _, err := app.refresh(tok); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("refresh after the upstream dropped the person: %v, want invalid_grant", err)
	}
}
