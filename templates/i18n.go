package templates

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"golang.org/x/text/language"
	"gopkg.in/yaml.v3"
)

// fallbackLanguage has every message; other languages may leave keys out.
const fallbackLanguage = "en"

// catalogue holds the messages of every language, by language tag.
type catalogue struct {
	byLang  map[string]map[string]string
	tags    []language.Tag
	matcher language.Matcher
}

// loadCatalogue reads i18n/LANG.yaml files: the embedded ones, each
// extended or overridden key by key by a file of the same name in the
// override directory, and new languages from files only found there.
func loadCatalogue(files fs.FS) (*catalogue, error) {
	c := &catalogue{byLang: map[string]map[string]string{}}
	names := map[string]bool{}
	for _, src := range layers(files) {
		entries, err := fs.ReadDir(src, "i18n")
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list i18n: %w", err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".yaml") {
				names[e.Name()] = true
			}
		}
	}
	for name := range names {
		lang := strings.TrimSuffix(name, ".yaml")
		tag, err := language.Parse(lang)
		if err != nil {
			return nil, fmt.Errorf("i18n/%s: %q is not a language tag", name, lang)
		}
		messages := map[string]string{}
		for _, src := range layers(files) {
			raw, err := fs.ReadFile(src, path.Join("i18n", name))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read i18n/%s: %w", name, err)
			}
			var layer map[string]string
			if err := yaml.Unmarshal(raw, &layer); err != nil {
				return nil, fmt.Errorf("i18n/%s: %w", name, err)
			}
			for k, v := range layer {
				messages[k] = v
			}
		}
		c.byLang[tag.String()] = messages
	}
	if _, ok := c.byLang[fallbackLanguage]; !ok {
		return nil, errors.New("i18n: the English catalogue (en.yaml) is missing")
	}
	for _, lang := range c.languages() {
		c.tags = append(c.tags, language.MustParse(lang))
	}
	c.matcher = language.NewMatcher(c.tags)
	return c, nil
}

// layers are the sources of a file, lowest first: embedded, then override.
func layers(files fs.FS) []fs.FS {
	if o, ok := files.(overlay); ok {
		return append(layers(o.bottom), o.top)
	}
	return []fs.FS{files}
}

// languages lists the catalogue's languages, English first.
func (c *catalogue) languages() []string {
	langs := []string{fallbackLanguage}
	var others []string
	for lang := range c.byLang {
		if lang != fallbackLanguage {
			others = append(others, lang)
		}
	}
	sort.Strings(others)
	return append(langs, others...)
}

// resolve returns lang when the catalogue has it, else English.
func (c *catalogue) resolve(lang string) string {
	if _, ok := c.byLang[lang]; ok {
		return lang
	}
	return fallbackLanguage
}

func (c *catalogue) message(lang, key string) (string, bool) {
	if msg, ok := c.byLang[lang][key]; ok {
		return msg, true
	}
	msg, ok := c.byLang[fallbackLanguage][key]
	return msg, ok
}

// Languages lists the languages pages can be shown in, English first.
func (l *Library) Languages() []string { return l.messages.languages() }

// Negotiate picks the page language: the first of the authorization
// request's ui_locales the catalogue has, else the best match for the
// browser's Accept-Language, else English.
func (l *Library) Negotiate(uiLocales, acceptLanguage string) string {
	for _, loc := range strings.Fields(uiLocales) {
		if tag, err := language.Parse(loc); err == nil {
			if _, idx, conf := l.messages.matcher.Match(tag); conf >= language.High {
				return l.messages.tags[idx].String()
			}
		}
	}
	if acceptLanguage != "" {
		if prefs, _, err := language.ParseAcceptLanguage(acceptLanguage); err == nil && len(prefs) > 0 {
			if _, idx, conf := l.messages.matcher.Match(prefs...); conf > language.No {
				return l.messages.tags[idx].String()
			}
		}
	}
	return fallbackLanguage
}

// ScopeText is how a permission is shown to a person.
type ScopeText struct {
	Title       string
	Description string
}

// scopeCatalogue maps a scope to its title and description per language.
type scopeCatalogue map[string]struct {
	Title       map[string]string `yaml:"title"`
	Description map[string]string `yaml:"description"`
}

// loadScopes reads scopes.yaml: the embedded one, with each scope of the
// override directory's file added or replacing the default.
func loadScopes(files fs.FS) (scopeCatalogue, error) {
	all := scopeCatalogue{}
	for _, src := range layers(files) {
		raw, err := fs.ReadFile(src, "scopes.yaml")
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read scopes.yaml: %w", err)
		}
		var layer scopeCatalogue
		if err := yaml.Unmarshal(raw, &layer); err != nil {
			return nil, fmt.Errorf("scopes.yaml: %w", err)
		}
		for scope, text := range layer {
			if text.Title[fallbackLanguage] == "" {
				return nil, fmt.Errorf("scopes.yaml: scope %q has no English title", scope)
			}
			all[scope] = text
		}
	}
	return all, nil
}

// Scope returns the plain-words text of scope in lang, falling back to
// English; an unknown scope is shown by its raw name, never as an empty line.
func (l *Library) Scope(lang, scope string) ScopeText {
	text, ok := l.scopes[scope]
	if !ok {
		return ScopeText{Title: scope}
	}
	pick := func(m map[string]string) string {
		if v := m[lang]; v != "" {
			return v
		}
		return m[fallbackLanguage]
	}
	return ScopeText{Title: pick(text.Title), Description: pick(text.Description)}
}
