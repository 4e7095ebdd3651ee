package templates_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/consentry/consentry/handlers"
	"github.com/consentry/consentry/templates"
)

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func render(t *testing.T, lib *templates.Library, page string, opts templates.Options) string {
	t.Helper()
	out, err := lib.Render(page, opts, handlers.SampleViews()[page])
	if err != nil {
		t.Fatalf("render %s: %v", page, err)
	}
	return string(out)
}

func TestDefaultsPassTheCheck(t *testing.T) {
	lib, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if err := lib.Check(handlers.SampleViews()); err != nil {
		t.Fatal(err)
	}
	if got := lib.Languages(); len(got) < 2 || got[0] != "en" || got[1] != "de" {
		t.Fatalf("languages = %v, want English and German", got)
	}
}

func TestOverrideDirectoryAndThemes(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "i18n/en.yaml", "consent.allow: Yes, go ahead\n")
	write(t, dir, "static/style.css", "body { color: red }")
	write(t, dir, "partner/consent.html", `{{define "title"}}Partner{{end}}{{define "content"}}<p class="partner">Partner consent for {{.Client.Name}}</p>{{end}}`)
	lib, err := templates.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := lib.Check(handlers.SampleViews()); err != nil {
		t.Fatal(err)
	}
	if got := lib.Themes(); len(got) != 1 || got[0] != "partner" {
		t.Fatalf("themes = %v", got)
	}

	global := render(t, lib, "consent.html", templates.Options{Lang: "en"})
	if !strings.Contains(global, "Yes, go ahead") || strings.Contains(global, "Partner consent") {
		t.Errorf("global consent page does not use the overridden message:\n%s", global)
	}
	if !strings.Contains(global, "Access while you are away") {
		t.Error("a message the override did not replace lost its default")
	}
	themed := render(t, lib, "consent.html", templates.Options{Theme: "partner", Lang: "en"})
	if !strings.Contains(themed, "Partner consent for Example Calendar") || !strings.Contains(themed, `/static/t/partner/style.css`) {
		t.Errorf("theme's consent page not used:\n%s", themed)
	}
	// A page the theme does not replace comes from the global override,
	// then the defaults.
	if login := render(t, lib, "login.html", templates.Options{Theme: "partner"}); !strings.Contains(login, `name="password"`) {
		t.Errorf("theme fell back to nothing for login.html:\n%s", login)
	}
	if unknown := render(t, lib, "consent.html", templates.Options{Theme: "nosuch"}); strings.Contains(unknown, "Partner") {
		t.Error("an unknown theme did not fall back to the deployment's pages")
	}
	css, _ := lib.Static("partner")
	if b, err := fsRead(css, "style.css"); err != nil || !strings.Contains(b, "red") {
		t.Errorf("theme static files do not fall back to the global override: %q %v", b, err)
	}
}

func TestBrokenTemplatesFailWithFileAndLine(t *testing.T) {
	tests := []struct {
		name, file, content, want string
	}{
		{"syntax error", "consent.html", "{{define \"title\"}}x{{end}}\n{{define \"content\"}}\n{{if}}\n{{end}}", "consent.html:3"},
		{"missing block", "login.html", `{{define "title"}}x{{end}}`, `login.html: block "content" is not defined`},
		{"theme syntax error", "acme/error.html", "{{define \"title\"}}{{.Nope}\n{{end}}", "theme acme: parse error.html"},
		{"bad language file", "i18n/fr.yaml", "- not a map", "i18n/fr.yaml"},
		{"scope without English title", "scopes.yaml", "calendar.read:\n  title:\n    de: Kalender\n", `scope "calendar.read" has no English title`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tt.file, tt.content)
			_, err := templates.Load(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCheckCatchesWhatOnlyRenderingShows(t *testing.T) {
	tests := []struct {
		name, file, content, want string
	}{
		{"unknown field", "consent.html", `{{define "title"}}x{{end}}{{define "content"}}{{.Client.Colour}}{{end}}`, "consent.html"},
		{"unknown message key", "acme/login.html", `{{define "title"}}x{{end}}{{define "content"}}{{t "login.no_such_key"}}{{end}}`, "theme acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tt.file, tt.content)
			lib, err := templates.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			err = lib.Check(handlers.SampleViews())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("check error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestLanguages(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "i18n/fr.yaml", "consent.allow: Autoriser\nconsent.deny: Refuser\n")
	lib, err := templates.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ uiLocales, accept, want string }{
		{"", "", "en"},
		{"", "de-DE,de;q=0.9,en;q=0.5", "de"},
		{"", "fr-CH, fr;q=0.9", "fr"},
		{"de", "fr", "de"},
		{"xx-YY de", "", "de"},
		{"", "ja", "en"},
		{"", "garbage;;q=x", "en"},
	}
	for _, tt := range tests {
		if got := lib.Negotiate(tt.uiLocales, tt.accept); got != tt.want {
			t.Errorf("Negotiate(%q, %q) = %q, want %q", tt.uiLocales, tt.accept, got, tt.want)
		}
	}
	de := render(t, lib, "consent.html", templates.Options{Lang: "de"})
	if !strings.Contains(de, "Erlauben") || !strings.Contains(de, `lang="de"`) {
		t.Errorf("German consent page:\n%s", de)
	}
	fr := render(t, lib, "consent.html", templates.Options{Lang: "fr"})
	if !strings.Contains(fr, "Autoriser") || !strings.Contains(fr, "Access while you are away") {
		t.Errorf("a deployer's French file is not used, or missing keys do not fall back to English:\n%s", fr)
	}
}

// Pages are bound to a language and theme once and shared by every request:
// renders running at the same time must each get their own.
func TestParallelRendersKeepTheirLanguageAndTheme(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "partner/static/logo.css", "")
	lib, err := templates.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		opts      templates.Options
		want      []string
		wantStyle string
	}{
		{templates.Options{Lang: "en"}, []string{`lang="en"`, "Allow"}, `href="/static/style.css"`},
		{templates.Options{Lang: "de"}, []string{`lang="de"`, "Erlauben"}, `href="/static/style.css"`},
		{templates.Options{Theme: "partner", Lang: "de"}, []string{`lang="de"`, "Erlauben"}, `href="/static/t/partner/style.css"`},
		{templates.Options{Theme: "partner", Lang: "fr"}, []string{`lang="en"`, "Allow"}, `href="/static/t/partner/style.css"`},
	}
	var wg sync.WaitGroup
	for i := range 4 * len(cases) {
		c := cases[i%len(cases)]
		wg.Go(func() {
			for range 20 {
				out, err := lib.Render("consent.html", c.opts, handlers.SampleViews()["consent.html"])
				if err != nil {
					t.Errorf("render %+v: %v", c.opts, err)
					return
				}
				for _, want := range append(c.want, c.wantStyle) {
					if !strings.Contains(string(out), want) {
						t.Errorf("render %+v lacks %q", c.opts, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestScopeCatalogue(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "scopes.yaml", "calendar.read:\n  title:\n    en: Read your calendar\n    de: Ihren Kalender lesen\n  description:\n    en: Events and free/busy times.\n")
	lib, err := templates.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := lib.Scope("de", "calendar.read"); got.Title != "Ihren Kalender lesen" || got.Description != "Events and free/busy times." {
		t.Errorf("custom scope in German = %+v", got)
	}
	if got := lib.Scope("en", "profile"); got.Title != "View your profile" {
		t.Errorf("a default scope was lost when a deployer added one: %+v", got)
	}
	if got := lib.Scope("en", "admin.everything"); got.Title != "admin.everything" {
		t.Errorf("unknown scope = %+v, want its raw name", got)
	}
}

func TestExport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mine")
	if err := templates.Export(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"consent.html", "layout.html", "static/style.css", "i18n/en.yaml", "i18n/de.yaml", "scopes.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("export lacks %s", f)
		}
	}
	lib, err := templates.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := lib.Check(handlers.SampleViews()); err != nil {
		t.Fatalf("exported templates do not pass the check: %v", err)
	}
	if err := templates.Export(dir); err == nil {
		t.Fatal("export overwrote existing files")
	}
}

func fsRead(fsys fs.FS, name string) (string, error) {
	b, err := fs.ReadFile(fsys, name)
	return string(b), err
}

func BenchmarkRenderConsent(b *testing.B) {
	lib, err := templates.Load("")
	if err != nil {
		b.Fatal(err)
	}
	data := handlers.SampleViews()["consent.html"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := lib.Render("consent.html", templates.Options{Lang: "de"}, data); err != nil {
			b.Fatal(err)
		}
	}
}
