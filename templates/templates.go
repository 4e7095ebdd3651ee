// Package templates holds Consentry's HTML pages, stylesheet, message
// catalogues and scope catalogue, embedded in the binary. A deployer can
// replace any file by putting one of the same name in an override directory,
// give one client its own look with a theme (a subdirectory of the override
// directory with the same layout), add scopes and add languages. Everything
// is parsed and checked at start-up, so a broken template stops the server
// instead of failing the first user.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

//go:embed *.html static i18n scopes.yaml
var defaults embed.FS

// Pages are the templates every deployment has. Each page defines "title"
// and "content" and is rendered inside layout.html.
var Pages = []string{"login.html", "consent.html", "error.html", "logout.html", "index.html", "demo.html", "demo_result.html", "account_apps.html", "account_sessions.html", "device.html", "device_done.html"}

// reserved are override subdirectories that are not themes.
var reserved = []string{"static", "i18n"}

var themeName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// Library is every theme's parsed pages with the message and scope
// catalogues.
type Library struct {
	// basePath is the issuer's path ("/idp"), or "" at the root; see
	// SetBasePath.
	basePath string
	themes   map[string]*theme
	messages *catalogue
	scopes   scopeCatalogue
}

// theme is one parsed set of pages; "" is the deployment's own.
type theme struct {
	name  string
	pages map[string]*template.Template // as parsed, never executed
	// bound holds each page with its functions bound to one language,
	// made once at load: cloning and escaping a page on every request
	// cost more than executing it.
	bound  map[boundPage]*template.Template
	static fs.FS
}

type boundPage struct{ page, lang string }

// Load parses the embedded defaults, the override directory (which may be
// empty) and every theme in it. Syntax errors and missing blocks fail here,
// with messages naming the file and line.
func Load(overrideDir string) (*Library, error) {
	base := fs.FS(defaults)
	var themeDirs []string
	if overrideDir != "" {
		info, err := os.Stat(overrideDir)
		if err != nil {
			return nil, fmt.Errorf("templates directory: %w", err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("templates directory %q is not a directory", overrideDir)
		}
		base = overlay{top: os.DirFS(overrideDir), bottom: defaults}
		entries, err := os.ReadDir(overrideDir)
		if err != nil {
			return nil, fmt.Errorf("read templates directory: %w", err)
		}
		for _, e := range entries {
			if !e.IsDir() || slices.Contains(reserved, e.Name()) || e.Name()[0] == '.' {
				continue
			}
			if !themeName.MatchString(e.Name()) {
				return nil, fmt.Errorf("theme directory %q: theme names use a-z, 0-9, - and _", e.Name())
			}
			themeDirs = append(themeDirs, e.Name())
		}
	}
	lib := &Library{themes: map[string]*theme{}}
	global, err := parseTheme("", base)
	if err != nil {
		return nil, err
	}
	lib.themes[""] = global
	for _, name := range themeDirs {
		files := overlay{top: os.DirFS(filepath.Join(overrideDir, name)), bottom: base}
		t, err := parseTheme(name, files)
		if err != nil {
			return nil, err
		}
		lib.themes[name] = t
	}
	if lib.messages, err = loadCatalogue(base); err != nil {
		return nil, err
	}
	if lib.scopes, err = loadScopes(base); err != nil {
		return nil, err
	}
	languages := lib.messages.languages()
	for _, th := range lib.themes {
		th.bound = map[boundPage]*template.Template{}
		for page, tmpl := range th.pages {
			for _, lang := range languages {
				bound, err := lib.bind(th, tmpl, lang, nil)
				if err != nil {
					return nil, fmt.Errorf("bind %s in %s: %w", page, lang, err)
				}
				th.bound[boundPage{page, lang}] = bound
			}
		}
	}
	return lib, nil
}

func parseTheme(name string, files fs.FS) (*theme, error) {
	where := "templates"
	if name != "" {
		where = "theme " + name
	}
	t := &theme{name: name, pages: map[string]*template.Template{}}
	for _, page := range Pages {
		tmpl, err := template.New(page).Option("missingkey=error").Funcs(placeholderFuncs).ParseFS(files, "layout.html", page)
		if err != nil {
			return nil, fmt.Errorf("%s: parse %s: %w", where, page, err)
		}
		for _, block := range []string{"layout", "title", "content"} {
			if tmpl.Lookup(block) == nil {
				return nil, fmt.Errorf("%s: %s: block %q is not defined", where, page, block)
			}
		}
		t.pages[page] = tmpl
	}
	static, err := fs.Sub(files, "static")
	if err != nil {
		return nil, fmt.Errorf("%s: static files: %w", where, err)
	}
	t.static = static
	return t, nil
}

// placeholderFuncs lets the pages parse; Render binds the real functions
// for the request's language and theme.
var placeholderFuncs = template.FuncMap{
	"t":      func(string, ...any) string { return "" },
	"lang":   func() string { return "" },
	"static": func(string) string { return "" },
	"path":   func(string) string { return "" },
}

// SetBasePath makes the pages' links, form actions and static files
// point under base, the path of the issuer ("/idp" for an issuer
// https://example.com/idp), so the provider works behind a proxy that
// serves it there. Templates write links as {{path "/login"}} and static
// files as {{static "style.css"}}; a template writing a bare "/login"
// still works at the root only. Call it before the first Render.
func (l *Library) SetBasePath(base string) { l.basePath = strings.TrimSuffix(base, "/") }

// Themes lists the themes of the override directory.
func (l *Library) Themes() []string {
	var names []string
	for name := range l.themes {
		if name != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// HasTheme reports whether a theme of that name exists.
func (l *Library) HasTheme(name string) bool {
	_, ok := l.themes[name]
	return ok
}

// Options choose how a page is rendered.
type Options struct {
	// Theme is a client's theme; an unknown or empty one renders the
	// deployment's pages.
	Theme string
	// Lang is a language of the message catalogue; others fall back to English.
	Lang string
}

// Render executes page with data. It returns the whole page, so that a
// failing template never leaves half a page or a wrong status behind.
func (l *Library) Render(page string, opts Options, data any) ([]byte, error) {
	return l.render(page, opts, data, false)
}

func (l *Library) render(page string, opts Options, data any, strict bool) ([]byte, error) {
	th, ok := l.themes[opts.Theme]
	if !ok {
		th = l.themes[""]
	}
	lang := l.messages.resolve(opts.Lang)
	tmpl, ok := th.bound[boundPage{page, lang}]
	if !ok {
		return nil, fmt.Errorf("render %s: no such page", page)
	}
	var missing []string
	if strict {
		// A clone of its own, to collect the messages this render lacks.
		var err error
		if tmpl, err = l.bind(th, th.pages[page], lang, &missing); err != nil {
			return nil, fmt.Errorf("render %s: %w", page, err)
		}
	}
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, "layout", data); err != nil {
		return nil, fmt.Errorf("render %s: %w", page, err)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("render %s: no message %q in language %q or in English", page, missing[0], lang)
	}
	return buf.Bytes(), nil
}

// bind clones a parsed page with its functions bound to lang and th. A
// message missing in lang and in English renders as its key, and is added to
// missing when that is not nil.
func (l *Library) bind(th *theme, parsed *template.Template, lang string, missing *[]string) (*template.Template, error) {
	clone, err := parsed.Clone()
	if err != nil {
		return nil, err
	}
	return clone.Funcs(template.FuncMap{
		"t": func(key string, args ...any) string {
			msg, ok := l.messages.message(lang, key)
			if !ok {
				if missing != nil {
					*missing = append(*missing, key)
				}
				return key
			}
			if len(args) > 0 {
				return fmt.Sprintf(msg, args...)
			}
			return msg
		},
		"lang":   func() string { return lang },
		"static": func(file string) string { return l.basePath + th.staticURL(file) },
		"path":   func(p string) string { return l.basePath + p },
	}), nil
}

// StaticPrefix is where the deployment's static files are served; a theme's
// are under StaticPrefix + "t/NAME/".
const StaticPrefix = "/static/"

func (t *theme) staticURL(file string) string {
	if t.name == "" {
		return StaticPrefix + file
	}
	return StaticPrefix + "t/" + t.name + "/" + file
}

// Static returns the static files (stylesheet, images) of a theme, falling
// back to the deployment's for files the theme does not replace.
func (l *Library) Static(themeName string) (fs.FS, bool) {
	th, ok := l.themes[themeName]
	if !ok {
		return nil, false
	}
	return th.static, true
}

// Check renders every page of every theme in every language with the
// sample data, strictly: an execution error or a message missing in both the
// language and English fails, naming theme, page and language.
func (l *Library) Check(samples map[string]any) error {
	for _, name := range append([]string{""}, l.Themes()...) {
		for _, page := range Pages {
			data, ok := samples[page]
			if !ok {
				return fmt.Errorf("no sample data for %s", page)
			}
			for _, lang := range l.messages.languages() {
				if _, err := l.render(page, Options{Theme: name, Lang: lang}, data, true); err != nil {
					where := "templates"
					if name != "" {
						where = "theme " + name
					}
					return fmt.Errorf("%s, language %s: %w", where, lang, err)
				}
			}
		}
	}
	return nil
}

// Export writes the embedded defaults into dir as a starting point for an
// override directory. It never overwrites an existing file: when any target
// exists it writes nothing.
func Export(dir string) error {
	var files []string
	err := fs.WalkDir(defaults, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) == ".go" {
			return err
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err == nil {
			return fmt.Errorf("export: %s already exists", filepath.Join(dir, filepath.FromSlash(p)))
		}
		files = append(files, p)
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range files {
		target := filepath.Join(dir, filepath.FromSlash(p))
		data, err := fs.ReadFile(defaults, p)
		if err != nil {
			return fmt.Errorf("export %s: %w", p, err)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fmt.Errorf("export %s: %w", p, err)
		}
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("export %s: %w", p, err)
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return fmt.Errorf("export %s: %w", p, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("export %s: %w", p, err)
		}
	}
	return nil
}

// overlay serves a file from top when it exists there, else from bottom.
type overlay struct{ top, bottom fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	f, err := o.top.Open(name)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return o.bottom.Open(name)
}
