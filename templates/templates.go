// Package templates holds Consentry's HTML pages and stylesheet, embedded in
// the binary. A deployer can replace any file by putting one of the same name
// in an override directory; every page is parsed at start-up so that a broken
// template stops the server instead of failing the first user.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"os"
)

//go:embed *.html static
var defaults embed.FS

// Pages are the templates every deployment must have. Each page defines
// "title" and "content" and is rendered inside layout.html.
var Pages = []string{"login.html", "consent.html", "error.html", "logout.html", "index.html", "demo.html", "demo_result.html", "account_apps.html"}

// Set is the parsed set of pages.
type Set struct {
	pages  map[string]*template.Template
	static fs.FS
}

// Load parses the pages, taking each file from overrideDir when it exists
// there and from the embedded defaults otherwise. An empty overrideDir uses
// the defaults only.
func Load(overrideDir string) (*Set, error) {
	files := fs.FS(defaults)
	if overrideDir != "" {
		info, err := os.Stat(overrideDir)
		if err != nil {
			return nil, fmt.Errorf("templates directory: %w", err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("templates directory %q is not a directory", overrideDir)
		}
		files = overlay{top: os.DirFS(overrideDir), bottom: defaults}
	}
	set := &Set{pages: map[string]*template.Template{}}
	for _, page := range Pages {
		t, err := template.New(page).Option("missingkey=error").ParseFS(files, "layout.html", page)
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", page, err)
		}
		for _, block := range []string{"layout", "title", "content"} {
			if t.Lookup(block) == nil {
				return nil, fmt.Errorf("template %s: block %q is not defined", page, block)
			}
		}
		set.pages[page] = t
	}
	static, err := fs.Sub(files, "static")
	if err != nil {
		return nil, fmt.Errorf("static files: %w", err)
	}
	set.static = static
	return set, nil
}

// Static returns the stylesheet and images, served under /static/.
func (s *Set) Static() fs.FS { return s.static }

// Render executes page with data. It returns the whole page, so that a
// failing template never leaves half a page or a wrong status behind.
func (s *Set) Render(page string, data any) ([]byte, error) {
	t, ok := s.pages[page]
	if !ok {
		return nil, fmt.Errorf("render %s: no such page", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return nil, fmt.Errorf("render %s: %w", page, err)
	}
	return buf.Bytes(), nil
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
