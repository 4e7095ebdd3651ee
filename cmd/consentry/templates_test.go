package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// exportTemplates runs `templates export` into a new directory and returns it.
func exportTemplates(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "templates")
	r := runCLI(t, "", nil, "templates", "export", dir)
	if r.code != 0 {
		t.Fatalf("export: exit %d, stderr %q", r.code, r.stderr)
	}
	return dir
}

func writeTemplate(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readTemplate(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// brokenConsent has an unclosed action on line 3.
const brokenConsent = `{{define "title"}}Consent{{end}}
{{define "content"}}
<p>{{.Client.Name</p>
{{end}}
`

func TestTemplatesExportThenCheck(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "templates")
	r := runCLI(t, "", nil, "templates", "export", dir)
	if r.code != 0 {
		t.Fatalf("export: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, f := range []string{"layout.html", "consent.html", "login.html", "static/style.css", "i18n/en.yaml", "scopes.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			t.Errorf("export did not write %s: %v", f, err)
		}
		if !strings.Contains(r.stdout, "\n  "+f+"\n") {
			t.Errorf("export output does not list %s:\n%s", f, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "exported the built-in templates to "+dir) || !strings.Contains(r.stdout, "consentry templates check "+dir) {
		t.Errorf("export output:\n%s", r.stdout)
	}

	r = runCLI(t, "", nil, "templates", "check", dir)
	if r.code != 0 || r.stdout != "templates in "+dir+" are valid (no themes)\n" || r.stderr != "" {
		t.Fatalf("check: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// Themes are listed in order; a theme may replace any file, or none.
	consent := readTemplate(t, filepath.Join(dir, "consent.html"))
	writeTemplate(t, filepath.Join(dir, "zeta", "consent.html"), strings.Replace(consent, `<form method="post" action="/consent">`, `<p>Zeta</p><form method="post" action="/consent">`, 1))
	writeTemplate(t, filepath.Join(dir, "acme", "static", "style.css"), "body { color: #123; }\n")
	r = runCLI(t, "", nil, "templates", "check", dir)
	if r.code != 0 || r.stdout != "templates in "+dir+" are valid (themes: acme, zeta)\n" {
		t.Fatalf("check with themes: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// An override directory need not hold every file.
	partial := t.TempDir()
	writeTemplate(t, filepath.Join(partial, "partner", "consent.html"), consent)
	if r := runCLI(t, "", nil, "templates", "check", partial); r.code != 0 || !strings.Contains(r.stdout, "(themes: partner)") {
		t.Errorf("check of a partial directory: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestTemplatesCheckFailures(t *testing.T) {
	exported := exportTemplates(t)
	login := readTemplate(t, filepath.Join(exported, "login.html"))
	if !strings.Contains(login, `{{t "login.heading"}}`) {
		t.Fatalf("login.html does not use login.heading:\n%s", login)
	}
	unknownKey := strings.Replace(login, `{{t "login.heading"}}`, `{{t "login.no_such_key"}}`, 1)

	tests := []struct {
		name  string
		files map[string]string // path under the directory: content
		want  []string          // substrings of stderr
	}{
		{
			name:  "syntax error",
			files: map[string]string{"consent.html": brokenConsent},
			want:  []string{"templates in DIR", "consent.html:3"},
		},
		{
			name:  "syntax error in a theme",
			files: map[string]string{"partner/consent.html": brokenConsent},
			want:  []string{"theme partner", "consent.html:3"},
		},
		{
			name:  "unknown message key in a theme",
			files: map[string]string{"partner/login.html": unknownKey},
			want:  []string{"theme partner", "login.html", `"login.no_such_key"`},
		},
		{
			name:  "unknown message key",
			files: map[string]string{"login.html": unknownKey},
			want:  []string{"templates in DIR", "login.html", `"login.no_such_key"`},
		},
		{
			name:  "missing block",
			files: map[string]string{"partner/login.html": `{{define "title"}}Sign in{{end}}`},
			want:  []string{"theme partner", "login.html", `"content"`},
		},
		{
			name:  "failing template",
			files: map[string]string{"partner/login.html": strings.Replace(login, `{{t "login.heading"}}`, `{{.NoSuchField}}`, 1)},
			want:  []string{"theme partner", "login.html", "NoSuchField"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				writeTemplate(t, filepath.Join(dir, filepath.FromSlash(name)), content)
			}
			r := runCLI(t, "", nil, "templates", "check", dir)
			if r.code != 1 {
				t.Errorf("exit %d; want 1 (stderr %q)", r.code, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q; want nothing", r.stdout)
			}
			for _, want := range tt.want {
				if want = strings.ReplaceAll(want, "DIR", dir); !strings.Contains(r.stderr, want) {
					t.Errorf("stderr %q; want it to contain %q", r.stderr, want)
				}
			}
		})
	}

	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "no directory", args: []string{"templates", "check"}, code: 2, want: "usage: consentry templates check DIR"},
		{name: "empty directory name", args: []string{"templates", "check", ""}, code: 2, want: "DIR must not be empty"},
		{name: "missing directory", args: []string{"templates", "check", filepath.Join(t.TempDir(), "nope")}, code: 1, want: "templates directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, "", nil, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tt.code, tt.want)
			}
		})
	}
}

func TestTemplatesExportRefusesToOverwrite(t *testing.T) {
	dir := exportTemplates(t)
	const mine = "{{/* mine */}}\n"
	writeTemplate(t, filepath.Join(dir, "consent.html"), mine)
	r := runCLI(t, "", nil, "templates", "export", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "export templates to "+dir) || !strings.Contains(r.stderr, "nothing was written") {
		t.Errorf("export into an exported directory: exit %d, stderr %q; want 1 and an error", r.code, r.stderr)
	}
	if got := readTemplate(t, filepath.Join(dir, "consent.html")); got != mine {
		t.Errorf("consent.html overwritten: %q", got)
	}

	// One existing file among new ones: it is named and kept.
	dir = t.TempDir()
	writeTemplate(t, filepath.Join(dir, "consent.html"), mine)
	r = runCLI(t, "", nil, "templates", "export", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "consent.html") || !strings.Contains(r.stderr, "nothing was overwritten") && !strings.Contains(r.stderr, "nothing was written") {
		t.Errorf("export over consent.html: exit %d, stderr %q; want 1 naming consent.html", r.code, r.stderr)
	}
	if got := readTemplate(t, filepath.Join(dir, "consent.html")); got != mine {
		t.Errorf("consent.html overwritten: %q", got)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q; want nothing", r.stdout)
	}
}

func TestServeRefusesBrokenTemplates(t *testing.T) {
	dir := t.TempDir()
	writeTemplate(t, filepath.Join(dir, "partner", "consent.html"), brokenConsent)
	db := filepath.Join(t.TempDir(), "t.db")
	r := runCLI(t, "", map[string]string{"CONSENTRY_DSN": "sqlite://" + db}, "serve", "--listen", "127.0.0.1:0", "--templates-dir", dir)
	if r.code != 1 {
		t.Fatalf("exit %d; want 1 (stdout %q, stderr %q)", r.code, r.stdout, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^consentry: load templates in .*theme partner.*consent\.html:3`).MatchString(r.stderr) {
		t.Errorf("stderr %q; want one line naming the theme, consent.html and line 3", r.stderr)
	}
	if strings.Contains(r.stdout, "listening") {
		t.Errorf("serve listened: %q", r.stdout)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("the database was created before the templates were checked (stat: %v)", err)
	}
}
