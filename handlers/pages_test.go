package handlers_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/handlers"
	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

func withTemplatesDir(dir string) envOption {
	return func(s *envSettings) { s.Config.TemplatesDir = dir }
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPagesFollowTheBrowsersLanguage(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid", "profile"}})
	b := e.signedInBrowser("alice")
	v := authParams("app")
	v.Set("scope", "openid profile")

	req, _ := http.NewRequest(http.MethodGet, e.Issuer+"/oauth2/auth?"+v.Encode(), nil)
	req.Header.Set("Accept-Language", "de-DE,de;q=0.9,en;q=0.4")
	p := b.do(req)
	for _, want := range []string{"Erlauben", "Ablehnen", "Ihr Profil ansehen", `lang="de"`} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("German consent page lacks %q", want)
		}
	}
	// ui_locales in the authorization request wins over the browser.
	v.Set("ui_locales", "en")
	req, _ = http.NewRequest(http.MethodGet, e.Issuer+"/oauth2/auth?"+v.Encode(), nil)
	req.Header.Set("Accept-Language", "de")
	if p := b.do(req); !strings.Contains(p.Body, ">Allow<") {
		t.Errorf("ui_locales=en did not win over Accept-Language: de")
	}
}

func TestOverrideDirectoryAndClientTheme(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "i18n/en.yaml", "consent.allow: Yes, connect\n")
	writeFile(t, dir, "scopes.yaml", "calendar.read:\n  title:\n    en: Read your calendar\n")
	writeFile(t, dir, "partner/static/style.css", "body { background: #123456 }")
	writeFile(t, dir, "partner/login.html", `{{define "title"}}Partner sign-in{{end}}{{define "content"}}<h1 class="partner">Partner sign-in</h1>
<form method="post" action="/login"><input type="hidden" name="csrf_token" value="{{.CSRF}}"><input type="hidden" name="request" value="{{.RequestID}}">
<label for="username">User</label><input id="username" name="username"><label for="password">Password</label><input id="password" name="password" type="password"><button>Go</button></form>{{end}}`)
	e := newEnv(t, withTemplatesDir(dir))
	e.client(provider.ClientSpec{ID: "plain", Scopes: []string{"openid", "calendar.read", "unknown.scope"}})
	e.client(provider.ClientSpec{ID: "partner", Scopes: []string{"openid"}})
	if err := e.Provider.Store.UpdateClient(context.Background(), "partner", func(c *storage.Client) error { c.Theme = "partner"; return nil }); err != nil {
		t.Fatal(err)
	}

	v := authParams("plain")
	v.Set("scope", "openid calendar.read unknown.scope")
	b := e.browser()
	p := b.get(e.Issuer + "/oauth2/auth?" + v.Encode())
	if strings.Contains(p.Body, "Partner sign-in") {
		t.Fatal("the partner theme was used for another client")
	}
	p = b.login(p, e.Issuer, "alice", testPassword)
	for _, want := range []string{"Yes, connect", "Read your calendar", "unknown.scope"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("consent page lacks %q:\n%s", want, p.Body)
		}
	}

	p = e.browser().get(e.Issuer + "/oauth2/auth?" + authParams("partner").Encode())
	if !strings.Contains(p.Body, "Partner sign-in") || !strings.Contains(p.Body, "/static/t/partner/style.css") {
		t.Fatalf("the partner's login page is not themed:\n%s", p.Body)
	}
	css := e.browser().get(e.Issuer + "/static/t/partner/style.css")
	if css.Status != http.StatusOK || !strings.Contains(css.Body, "#123456") {
		t.Fatalf("theme stylesheet: %d %q", css.Status, css.Body)
	}
	if got := e.browser().get(e.Issuer + "/static/t/nosuch/style.css"); got.Status != http.StatusNotFound {
		t.Fatalf("unknown theme's static file: %d", got.Status)
	}
}

func TestPagesSendStrictHeaders(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "app", Scopes: []string{"openid"}})
	for _, path := range []string{"/login", "/oauth2/auth?client_id=nobody", "/account/apps", "/no/such/page"} {
		p := e.browser().get(e.Issuer + path)
		h := p.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: Content-Security-Policy = %q", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers = %v", path, h)
		}
		if strings.Contains(p.Body, "<script") || strings.Contains(p.Body, " style=") {
			t.Errorf("%s: inline script or style in the page", path)
		}
	}
}

func TestClientValuesAreEscapedAndLogoOnlyWhenRegistered(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "evil", Name: `<script>alert(1)</script>"x`, Scopes: []string{"openid"}})
	e.client(provider.ClientSpec{ID: "nologo", Name: "No Logo", Scopes: []string{"openid"}})
	p := e.signedInBrowser("alice").get(e.Issuer + "/oauth2/auth?" + authParams("evil").Encode())
	if strings.Contains(p.Body, "<script>alert(1)</script>") || !strings.Contains(p.Body, "&lt;script&gt;") {
		t.Fatalf("client name not escaped:\n%s", p.Body)
	}
	p = e.signedInBrowser("alice").get(e.Issuer + "/oauth2/auth?" + authParams("nologo").Encode())
	if strings.Contains(p.Body, "<img") {
		t.Fatal("a logo is shown for a client that registered none")
	}
}

func TestBrokenOverrideStopsStartUp(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "consent.html", `{{define "title"}}x{{end}}{{define "content"}}{{.Client.Colour}}{{end}}`)
	if _, err := handlersLoad(dir); err == nil || !strings.Contains(err.Error(), "consent.html") {
		t.Fatalf("start-up with a broken consent.html: %v", err)
	}
}

func handlersLoad(dir string) (any, error) { return handlers.LoadTemplates(dir) }

// TestDocsExampleChangesTheConsentPage applies the worked example of
// docs/customising-pages.md, as written there, and checks the consent page it
// promises.
func TestDocsExampleChangesTheConsentPage(t *testing.T) {
	readme, err := os.ReadFile("../docs/customising-pages.md")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, file := range []string{"i18n/en.yaml", "scopes.yaml"} {
		start := "cat > branding/" + file + " <<'YAML'\n"
		i := strings.Index(string(readme), start)
		if i < 0 {
			t.Fatalf("docs/customising-pages.md has no example for %s", file)
		}
		body, _, ok := strings.Cut(string(readme)[i+len(start):], "\nYAML\n")
		if !ok {
			t.Fatalf("docs/customising-pages.md: example for %s is not terminated", file)
		}
		writeFile(t, dir, file, body+"\n")
	}
	e := newEnv(t, withTemplatesDir(dir))
	e.client(provider.ClientSpec{ID: "app", Name: "Example App", Scopes: []string{"openid", "calendar.read"}})
	v := authParams("app")
	v.Set("scope", "openid calendar.read")
	p := e.signedInBrowser("alice").get(e.Issuer + "/oauth2/auth?" + v.Encode())
	for _, want := range []string{"Example App would like to connect to your Example Corp account", ">Connect<", "Read your calendar", "Example Corp identity"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("consent page after the docs example lacks %q:\n%s", want, p.Body)
		}
	}
}
