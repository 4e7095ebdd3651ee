package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/consentry/consentry/handlers"
	"github.com/consentry/consentry/templates"
)

const templatesCheckHelp = `
Check a templates directory the way 'consentry serve' does at start-up:
parse every page of the directory and of each theme in it (each
subdirectory other than static and i18n), then render every page of every
theme in every language with sample data. A syntax error, a missing block,
a failing template or a message key found in no catalogue is reported with
the file, theme, page and language, and the exit status is 1.

Run it before pointing --templates-dir at a changed directory; see
docs/customising-pages.md.

Example:
  consentry templates check ./templates`

const templatesExportHelp = `
Write the built-in pages, layout, stylesheet (static/), message catalogues
(i18n/*.yaml) and scope catalogue (scopes.yaml) into DIR, creating it, as a
starting point for --templates-dir. An existing file is never overwritten:
export into a new directory, or delete the file first.

Example:
  consentry templates export ./templates
  consentry templates check ./templates
  consentry serve --templates-dir ./templates`

func runTemplatesCheck(_ context.Context, e *env, c *command, args []string) error {
	fs, _ := c.newFlagSet(e)
	pos, err := c.parseN(e, fs, args)
	if err != nil {
		return err
	}
	dir := pos[0]
	if dir == "" {
		return usagef("DIR must not be empty")
	}
	lib, err := loadTemplates(dir)
	if err != nil {
		return err
	}
	themes := "no themes"
	if names := lib.Themes(); len(names) > 0 {
		themes = "themes: " + strings.Join(names, ", ")
	}
	fmt.Fprintf(e.stdout, "templates in %s are valid (%s)\n", dir, themes)
	return nil
}

// loadTemplates loads the templates of dir ("" for the built-in ones only)
// and renders every page of every theme in every language with sample data,
// as the server does at start-up. The error names the directory, and the
// file and line, or the theme, page and language, at fault.
func loadTemplates(dir string) (*templates.Library, error) {
	where := "templates in " + dir
	if dir == "" {
		where = "built-in templates"
	}
	lib, err := templates.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", where, err)
	}
	if err := lib.Check(handlers.SampleViews()); err != nil {
		return nil, fmt.Errorf("check %s: %w", where, err)
	}
	return lib, nil
}

func runTemplatesExport(_ context.Context, e *env, c *command, args []string) error {
	fs, _ := c.newFlagSet(e)
	pos, err := c.parseN(e, fs, args)
	if err != nil {
		return err
	}
	dir := pos[0]
	if dir == "" {
		return usagef("DIR must not be empty")
	}
	before, err := listFiles(dir)
	if err != nil {
		return err
	}
	exportErr := templates.Export(dir)
	after, err := listFiles(dir)
	if err != nil {
		return errors.Join(exportErr, err)
	}
	existed := map[string]bool{}
	for _, f := range before {
		existed[f] = true
	}
	var written []string
	for _, f := range after {
		if !existed[f] {
			written = append(written, f)
		}
	}
	if exportErr != nil {
		if len(written) > 0 {
			return fmt.Errorf("export templates to %s: %w (written before the error: %s; nothing was overwritten)",
				dir, exportErr, strings.Join(written, ", "))
		}
		return fmt.Errorf("export templates to %s: %w (nothing was written)", dir, exportErr)
	}
	fmt.Fprintf(e.stdout, "exported the built-in templates to %s (%d files):\n", dir, len(written))
	for _, f := range written {
		fmt.Fprintf(e.stdout, "  %s\n", f)
	}
	fmt.Fprintf(e.stdout, "Change what you need, check with 'consentry templates check %s',\nthen serve them with --templates-dir %s.\n", dir, dir)
	return nil
}

// listFiles returns the slash-separated paths of the regular files under
// dir, in lexical order; none when dir does not exist or is not a directory
// (Export then fails with its own error).
func listFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir && !d.IsDir() {
			return nil
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	return files, nil
}
