package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var updateCLIDoc = flag.Bool("update", false, "rewrite docs/cli.md from the commands' help texts")

const cliDocPath = "../../docs/cli.md"

// cliDocRegenerate is the command that rewrites docs/cli.md; the file names it.
const cliDocRegenerate = "go test ./cmd/consentry -run TestCLIDoc -update"

// cliDoc renders docs/cli.md: the output of 'consentry help' and of
// 'consentry help COMMAND' for every command, as a user sees them.
func cliDoc(t *testing.T) []byte {
	t.Helper()
	help := func(args ...string) string {
		var stdout, stderr bytes.Buffer
		e := &env{
			stdin:  strings.NewReader(""),
			stdout: &stdout,
			stderr: &stderr,
			// No environment: the help texts show the built-in defaults.
			getenv: func(string) string { return "" },
		}
		if code := run(context.Background(), e, append([]string{"help"}, args...)); code != 0 {
			t.Fatalf("consentry help %s: exit status %d\n%s", strings.Join(args, " "), code, stderr.String())
		}
		return strings.TrimRight(stdout.String(), "\n")
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, `# Command-line reference

<!-- Generated from the commands' help texts; do not edit by hand. After
changing a help text, regenerate it with:

    %s

TestCLIDoc fails while this file differs from what the help prints. -->

Every command below is what %s prints. Run them as
%s after %s (which builds it), or install the command with
%s and run %s. What the commands do to users, clients, keys and
agreements is explained in [administration.md](administration.md); the
settings the global flags set are in [configuration.md](configuration.md).

`, cliDocRegenerate, "`consentry help COMMAND`", "`./bin/consentry ...`", "`make build` or `make run`",
		"`go install ./cmd/consentry`", "`consentry ...`")
	fmt.Fprintf(&b, "- [consentry](#consentry): usage, commands and global flags\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "- [%s](#%s): %s\n", c.name, cliDocAnchor(c.name), c.summary)
	}
	fmt.Fprintf(&b, "\n## consentry\n\n```text\n%s\n```\n", help())
	for _, c := range commands() {
		fmt.Fprintf(&b, "\n## consentry %s\n\n```text\n%s\n```\n", c.name, help(strings.Fields(c.name)...))
	}
	return b.Bytes()
}

// cliDocAnchor is the anchor of the heading "consentry NAME".
func cliDocAnchor(name string) string {
	return "consentry-" + strings.ReplaceAll(name, " ", "-")
}

// TestCLIDoc keeps docs/cli.md equal to what the help texts print; with
// -update it rewrites the file.
func TestCLIDoc(t *testing.T) {
	want := cliDoc(t)
	if *updateCLIDoc {
		if err := os.WriteFile(cliDocPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(cliDocPath)
	if err != nil {
		t.Fatalf("%v; create it with: %s", err, cliDocRegenerate)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(gl), len(wl)) {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("docs/cli.md is not what the help texts print; regenerate it with: %s\nfirst difference, line %d:\n  file: %q\n  help: %q", cliDocRegenerate, i+1, g, w)
			}
		}
	}
}
