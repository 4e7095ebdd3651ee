package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// The repository root, seen from this package.
const repoRoot = "../.."

var (
	mdLink     = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)\)`)
	inlineCode = regexp.MustCompile("`[^`]*`")
)

// markdownPages are the pages whose links are checked: the README and docs/.
func markdownPages(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join(repoRoot, "README.md")}, pages...)
}

// proseLines returns the lines of a markdown page outside fenced code
// blocks, with inline code removed.
func proseLines(doc string) []string {
	var lines []string
	fenced := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			lines = append(lines, inlineCode.ReplaceAllString(line, ""))
		}
	}
	return lines
}

// headingAnchors returns the anchors GitHub gives the headings of a page:
// lower case, punctuation dropped, spaces as hyphens, "-1", "-2" for repeats.
func headingAnchors(doc string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		anchor := b.String()
		if n := seen[anchor]; n > 0 {
			anchors[anchor+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[anchor] = true
		}
		seen[anchor]++
	}
	return anchors
}

// TestDocLinksResolve fails on a relative link of the README or docs/ that
// names a missing file or a heading the target page does not have.
func TestDocLinksResolve(t *testing.T) {
	anchorsOf := map[string]map[string]bool{}
	anchors := func(path string) (map[string]bool, bool) {
		if a, ok := anchorsOf[path]; ok {
			return a, true
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, false
		}
		anchorsOf[path] = headingAnchors(string(raw))
		return anchorsOf[path], true
	}
	checked := 0
	for _, page := range markdownPages(t) {
		raw, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(repoRoot, page)
		for _, line := range proseLines(string(raw)) {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				checked++
				file, anchor, _ := strings.Cut(target, "#")
				path := page
				if file != "" {
					path = filepath.Join(filepath.Dir(page), file)
					if _, err := os.Stat(path); err != nil {
						t.Errorf("%s: link %q: no such file", name, target)
						continue
					}
				}
				if anchor == "" || !strings.HasSuffix(path, ".md") {
					continue
				}
				a, ok := anchors(path)
				if !ok || !a[anchor] {
					t.Errorf("%s: link %q: no heading with that anchor", name, target)
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d links checked: is the link pattern still right?", checked)
	}
}

// TestHeadingAnchors keeps the anchors as GitHub makes them.
func TestHeadingAnchors(t *testing.T) {
	doc := "# Without prompt=consent\n## Worked example: a company's own app\n## 1. The demo\n```sh\n# not a heading\n```\n## Keys\n### Keys\n"
	got := headingAnchors(doc)
	for _, want := range []string{"without-promptconsent", "worked-example-a-companys-own-app", "1-the-demo", "keys", "keys-1"} {
		if !got[want] {
			t.Errorf("anchor %q missing from %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Errorf("a comment in a code block became a heading: %v", got)
	}
}
