package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/html"

	"github.com/consentry/consentry/handlers"
	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
	"github.com/consentry/consentry/storage/storagetest"
)

const (
	testPassword    = "correct horse battery"
	testRedirectURI = "http://127.0.0.1:9/callback"
)

// env is a real provider on SQLite behind a real HTTP server.
type env struct {
	t        testing.TB
	Issuer   string
	Provider *provider.Provider
	Server   *httptest.Server
	User     *storage.User
}

// envSettings are what an envOption may change before the provider starts.
type envSettings struct {
	Config provider.Config
	// Now is the provider's clock; nil is time.Now.
	Now func() time.Time
	// Options are passed to provider.New (test connector types).
	Options []provider.Option
}

type envOption func(*envSettings)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewUnstartedServer(nil)
	settings := envSettings{Config: provider.DefaultConfig()}
	settings.Config.Issuer = "http://" + srv.Listener.Addr().String()
	for _, o := range opts {
		o(&settings)
	}
	if settings.Config.DSN == provider.DefaultConfig().DSN {
		settings.Config.DSN = testDSN(t)
	}
	store, err := storage.Open(ctx, settings.Config.DSN, logger)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	// As serve does: every database call is bounded.
	store.SetQueryTimeout(settings.Config.Database.QueryTimeout.Std())
	if err := store.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	cfg := settings.Config
	p, err := provider.New(ctx, cfg, store, logger, settings.Now, settings.Options...)
	if err != nil {
		t.Fatalf("provider: %v", err)
	}
	h, err := handlers.New(p)
	if err != nil {
		t.Fatalf("handlers: %v", err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)

	user, err := provider.CreateUser(ctx, store, provider.UserSpec{
		Username: "alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice Example", Password: testPassword,
	}, bcrypt.MinCost, time.Now())
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return &env{t: t, Issuer: cfg.Issuer, Provider: p, Server: srv, User: user}
}

// e2eBackendEnv selects the database the end-to-end tests run on: empty for
// SQLite, "postgres" for a fresh PostgreSQL database per test on the server
// named by storagetest.PostgresDSNEnv. make test runs the suite on both.
const e2eBackendEnv = "CONSENTRY_E2E_BACKEND"

func testDSN(t testing.TB) string {
	t.Helper()
	switch backend := os.Getenv(e2eBackendEnv); backend {
	case "", "sqlite":
		return "sqlite://" + filepath.Join(t.TempDir(), "consentry.db")
	case "postgres":
		admin := os.Getenv(storagetest.PostgresDSNEnv)
		if admin == "" {
			t.Fatalf("%s=postgres needs %s", e2eBackendEnv, storagetest.PostgresDSNEnv)
		}
		return storagetest.NewPostgresDatabase(t, admin)
	default:
		t.Fatalf("%s=%q: use sqlite or postgres", e2eBackendEnv, backend)
		return ""
	}
}

// client registers a client and returns it with its plain secret.
func (e *env) client(spec provider.ClientSpec) (*storage.Client, string) {
	e.t.Helper()
	if spec.Name == "" {
		spec.Name = spec.ID
	}
	if spec.RedirectURIs == nil {
		spec.RedirectURIs = []string{testRedirectURI}
	}
	c, secret, err := provider.RegisterClient(context.Background(), e.Provider.Store, e.Provider.Hasher, spec, time.Now())
	if err != nil {
		e.t.Fatalf("register client %q: %v", spec.ID, err)
	}
	return c, secret
}

// browser is a user agent with a cookie jar that follows redirects within
// the provider and stops at the client's redirect URI.
type browser struct {
	t      testing.TB
	client *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, client: &http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), testRedirectURI) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

// page is a fetched response with its body read.
type page struct {
	Status   int
	URL      *url.URL
	Location *url.URL
	Body     string
	Header   http.Header
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := &page{Status: resp.StatusCode, URL: resp.Request.URL, Body: string(body), Header: resp.Header}
	if loc, err := resp.Location(); err == nil {
		p.Location = loc
	}
	return p
}

func (b *browser) get(rawURL string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatalf("new request: %v", err)
	}
	return b.do(req)
}

func (b *browser) post(rawURL string, form url.Values) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// htmlForm is a form found in a page: its action and the values a browser
// would submit (hidden inputs, ticked checkboxes, text values).
type htmlForm struct {
	Action string
	Values url.Values
}

// form returns the form of p whose action is action.
func (p *page) form(t testing.TB, action string) htmlForm {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(p.Body))
	if err != nil {
		t.Fatalf("parse page: %v", err)
	}
	var found *htmlForm
	var walk func(n *html.Node, current *htmlForm)
	walk = func(n *html.Node, current *htmlForm) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "form":
				f := &htmlForm{Action: attr(n, "action"), Values: url.Values{}}
				if f.Action == action && found == nil {
					found = f
				}
				current = f
			case "input":
				if current != nil && attr(n, "name") != "" && !hasAttr(n, "disabled") {
					typ := attr(n, "type")
					if typ != "checkbox" || hasAttr(n, "checked") {
						current.Values.Add(attr(n, "name"), attr(n, "value"))
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, current)
		}
	}
	walk(doc, nil)
	if found == nil {
		t.Fatalf("no form with action %q in page %s (status %d):\n%s", action, p.URL, p.Status, p.Body)
	}
	return *found
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, name string) bool {
	for _, a := range n.Attr {
		if a.Key == name {
			return true
		}
	}
	return false
}

// login submits the login form shown on p.
func (b *browser) login(p *page, issuer, username, password string) *page {
	b.t.Helper()
	f := p.form(b.t, "/login")
	f.Values.Set("username", username)
	f.Values.Set("password", password)
	return b.post(issuer+"/login", f.Values)
}

// consent submits the consent form shown on p with action "allow" or
// "deny"; untick lists scopes to untick first.
func (b *browser) consent(p *page, issuer, decision string, untick ...string) *page {
	b.t.Helper()
	action := "/consent"
	if strings.Contains(p.Body, `action="/device/consent"`) {
		action = "/device/consent"
	}
	f := p.form(b.t, action)
	for _, s := range untick {
		var keep []string
		for _, v := range f.Values["scope"] {
			if v != s {
				keep = append(keep, v)
			}
		}
		f.Values["scope"] = keep
	}
	f.Values.Set("action", decision)
	return b.post(issuer+action, f.Values)
}

// callback returns the query the provider redirected to the client with.
func (p *page) callback(t testing.TB) url.Values {
	t.Helper()
	if p.Location == nil || !strings.HasPrefix(p.Location.String(), testRedirectURI) {
		t.Fatalf("expected a redirect to the client, got status %d at %s, location %v:\n%s", p.Status, p.URL, p.Location, p.Body)
	}
	return p.Location.Query()
}
