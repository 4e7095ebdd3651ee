package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/user"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/consentry/consentry/provider"
)

// env is everything a command touches outside the process, so that tests can
// run commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// passwordCost is the bcrypt cost of new user passwords; 0 means
	// provider.DefaultPasswordCost. Tests lower it for speed.
	passwordCost int
	// currentUser names the operating-system user; nil means os/user.Current.
	currentUser func() (*user.User, error)
}

// command is one CLI command; name has one word ("serve") or two ("users list").
type command struct {
	name    string
	args    string // synopsis of the positional arguments
	summary string
	help    string // longer description shown by `consentry help NAME`
	run     func(ctx context.Context, e *env, c *command, args []string) error
	// ownFlags names global flags the command defines itself with another
	// meaning: after the command they are the command's, and before it they
	// are refused as ambiguous.
	ownFlags []string
}

func commands() []*command {
	return []*command{
		{name: "serve", summary: "run the provider", help: serveHelp, run: runServe},
		{name: "migrate", summary: "create or update the database schema", help: migrateHelp, run: runMigrate},
		{name: "version", summary: "print the version", run: runVersion},
		{name: "users create", summary: "create a user (password read from standard input)", help: usersCreateHelp, run: runUsersCreate},
		{name: "users list", summary: "list users", run: runUsersList},
		{name: "users disable", args: "USERNAME", summary: "stop a user from signing in and end their sessions and offline access", run: runUsersDisable},
		{name: "users enable", args: "USERNAME", summary: "let a disabled user sign in again", run: runUsersEnable},
		{name: "users unlock", args: "USERNAME", summary: "clear a user's failed sign-ins and lockout", help: usersUnlockHelp, run: runUsersUnlock},
		{name: "users delete", args: "USERNAME", summary: "delete a user and the tokens issued for them", run: runUsersDelete},
		{name: "clients create", summary: "register a client", help: clientsCreateHelp, run: runClientsCreate, ownFlags: clientLifetimeFlags},
		{name: "clients list", summary: "list clients", run: runClientsList},
		{name: "clients get", args: "ID", summary: "show a client (never its secret)", run: runClientsGet},
		{name: "clients update", args: "ID", summary: "change a client's name, theme or links", help: clientsUpdateHelp, run: runClientsUpdate},
		{name: "clients delete", args: "ID", summary: "delete a client and the tokens issued to it", run: runClientsDelete},
		{name: "clients rotate-secret", args: "ID", summary: "give a client a new secret; the old one works for an overlap", help: clientsRotateSecretHelp, run: runClientsRotateSecret},
		{name: "keys rotate", summary: "create new ID token signing keys", help: keysRotateHelp, run: runKeysRotate},
		{name: "keys list", summary: "list the signing keys and their states", help: keysListHelp, run: runKeysList},
		{name: "keys retire", args: "KID", summary: "take a signing key out of service at once", help: keysRetireHelp, run: runKeysRetire},
		{name: "agreements create", summary: "record a standing agreement (offline access without a consent screen)", help: agreementsCreateHelp, run: runAgreementsCreate},
		{name: "agreements list", summary: "list standing agreements", help: agreementsListHelp, run: runAgreementsList},
		{name: "agreements revoke", args: "ID", summary: "revoke a standing agreement", help: agreementsRevokeHelp, run: runAgreementsRevoke},
		{name: "consents list", summary: "list what a user allowed clients", help: consentsListHelp, run: runConsentsList},
		{name: "consents revoke", summary: "revoke a user's consents to a client and the tokens issued under them", help: consentsRevokeHelp, run: runConsentsRevoke},
		{name: "sessions list", summary: "list the browsers where a user is signed in", help: sessionsListHelp, run: runSessionsList},
		{name: "sessions revoke", summary: "sign a user out of one or every browser", help: sessionsRevokeHelp, run: runSessionsRevoke},
		{name: "audit list", summary: "list consent, agreement and token events", help: auditListHelp, run: runAuditList},
		{name: "gc", summary: "delete expired codes, tokens and requests now", help: gcHelp, run: runGC},
		{name: "templates check", args: "DIR", summary: "check a templates directory and its themes as serve does at start-up", help: templatesCheckHelp, run: runTemplatesCheck},
		{name: "templates export", args: "DIR", summary: "write the built-in templates into DIR as a starting point", help: templatesExportHelp, run: runTemplatesExport},
		{name: "login", summary: "sign in to a provider from the terminal as a public client and store the tokens", help: loginHelp, run: runLogin, ownFlags: signInOwnFlags},
		{name: "whoami", summary: "show whom the stored sign-in belongs to, refreshing it when expired", help: whoamiHelp, run: runWhoami, ownFlags: signInOwnFlags},
		{name: "logout", summary: "revoke the stored sign-in at the provider and forget it", help: logoutHelp, run: runLogout, ownFlags: signInOwnFlags},
	}
}

// usageError is a mistake in the command line or the configuration; it exits
// with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errUsageShown is a usage error whose message has already been printed.
var errUsageShown = errors.New("usage error")

// run executes the command line args and returns the exit status: 0 ok,
// 1 runtime error, 2 usage error.
func run(ctx context.Context, e *env, args []string) int {
	err := dispatch(ctx, e, args)
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsageShown):
		return 2
	case errors.As(err, &ue), errors.Is(err, provider.ErrInvalidSpec):
		fmt.Fprintf(e.stderr, "consentry: %v\n", err)
		return 2
	default:
		fmt.Fprintf(e.stderr, "consentry: %v\n", err)
		return 1
	}
}

func dispatch(ctx context.Context, e *env, args []string) error {
	// Global flags may come before the command; they are handed on to the
	// command's own flag set, which registers them too.
	top := flag.NewFlagSet("consentry", flag.ContinueOnError)
	top.SetOutput(e.stderr)
	top.Usage = func() {}
	addGlobalFlags(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(e.stdout)
			return flag.ErrHelp
		}
		fmt.Fprintln(e.stderr, "Run 'consentry help' for usage.")
		return errUsageShown
	}
	rest := top.Args()
	globalArgs := slices.Clone(args[:len(args)-len(rest)])
	if n := len(globalArgs); n > 0 && globalArgs[n-1] == "--" {
		globalArgs = globalArgs[:n-1]
	}
	if len(rest) == 0 {
		printUsage(e.stderr)
		return errUsageShown
	}
	if rest[0] == "help" {
		return runHelp(ctx, e, rest[1:])
	}
	c, n, err := lookup(rest)
	if err != nil {
		return err
	}
	var ambiguous []string
	top.Visit(func(f *flag.Flag) {
		if slices.Contains(c.ownFlags, f.Name) {
			ambiguous = append(ambiguous, "--"+f.Name)
		}
	})
	if len(ambiguous) > 0 {
		return usagef("%s before '%s' is ambiguous: the command has its own flag of that name, which goes after it (see 'consentry help %s')",
			strings.Join(ambiguous, " and "), c.name, c.name)
	}
	return c.run(ctx, e, c, append(globalArgs, rest[n:]...))
}

// lookup finds the command named by the first one or two words of args and
// returns how many words it used.
func lookup(args []string) (*command, int, error) {
	all := commands()
	for _, c := range all {
		if c.name == args[0] {
			return c, 1, nil
		}
	}
	var subs []string
	for _, c := range all {
		if group, sub, ok := strings.Cut(c.name, " "); ok && group == args[0] {
			if len(args) > 1 && sub == args[1] {
				return c, 2, nil
			}
			subs = append(subs, sub)
		}
	}
	if len(subs) == 0 {
		return nil, 0, usagef("unknown command %q; run 'consentry help' for the list of commands", args[0])
	}
	if len(args) == 1 {
		return nil, 0, usagef("%s needs a subcommand: %s", args[0], strings.Join(subs, ", "))
	}
	return nil, 0, usagef("unknown command %q; %s has: %s", args[0]+" "+args[1], args[0], strings.Join(subs, ", "))
}

func runHelp(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		printUsage(e.stdout)
		return nil
	}
	c, n, err := lookup(args)
	if err != nil {
		if len(args) == 1 && isGroup(args[0]) {
			fmt.Fprintf(e.stdout, "Commands of %s:\n", args[0])
			printCommandTable(e.stdout, args[0]+" ")
			return nil
		}
		return err
	}
	if n != len(args) {
		return usagef("help takes a command name, e.g. 'consentry help clients create'")
	}
	// Every command prints its usage on -h.
	return c.run(ctx, e, c, []string{"-h"})
}

func isGroup(name string) bool {
	for _, c := range commands() {
		if strings.HasPrefix(c.name, name+" ") {
			return true
		}
	}
	return false
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Consentry is an OpenID Connect provider centred on offline access with
explicit consent (OpenID Connect Core 1.0, section 11).

Usage:
  consentry COMMAND [ARGS] [FLAGS]

Commands:
`)
	printCommandTable(w, "")
	fmt.Fprint(w, `
Global flags (accepted before or after any command):
`)
	fs := flag.NewFlagSet("consentry", flag.ContinueOnError)
	addGlobalFlags(fs)
	printFlags(w, fs, func(name string) bool { return true })
	fmt.Fprint(w, globalHelp)
}

func printCommandTable(w io.Writer, prefix string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands() {
		if !strings.HasPrefix(c.name, prefix) {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	if prefix == "" {
		fmt.Fprintf(tw, "  help [COMMAND]\tshow help for a command\n")
	}
	_ = tw.Flush()
}

const globalHelp = `
Settings are layered: defaults < YAML file (--config) < CONSENTRY_* environment
variables < flags. When the issuer is set nowhere but the listen address is,
the issuer becomes http://LISTEN.

Exit status: 0 success, 1 runtime error, 2 usage or configuration error.
`

// newFlagSet returns the flag set of command c with the global flags registered.
func (c *command) newFlagSet(e *env) (*flag.FlagSet, *globalFlags) {
	fs := flag.NewFlagSet("consentry "+c.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {} // parse prints usage itself, on stdout for -h
	if len(c.ownFlags) > 0 {
		return fs, addGlobalFlagsExcept(fs, c.ownFlags)
	}
	return fs, addGlobalFlags(fs)
}

// isOwnFlag reports whether the flag name is the command's own rather than
// a global one.
func (c *command) isOwnFlag(name string) bool {
	return !isGlobalFlag(name) || slices.Contains(c.ownFlags, name)
}

// parse parses args and returns the positional arguments. Flags may follow
// positional arguments ("clients get ID --json"); after "--" everything is
// positional.
func (c *command) parse(e *env, fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.printUsage(e.stdout, fs)
				return nil, flag.ErrHelp
			}
			fmt.Fprintf(e.stderr, "Run 'consentry help %s' for usage.\n", c.name)
			return nil, errUsageShown
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseN is parse for a command that takes exactly len(names) arguments.
func (c *command) parseN(e *env, fs *flag.FlagSet, args []string) ([]string, error) {
	pos, err := c.parse(e, fs, args)
	if err != nil {
		return nil, err
	}
	want := strings.Fields(c.args)
	if len(pos) != len(want) {
		if len(want) == 0 {
			return nil, usagef("%s takes no arguments, got %q", c.name, strings.Join(pos, " "))
		}
		return nil, usagef("usage: consentry %s %s [flags]", c.name, c.args)
	}
	return pos, nil
}

func (c *command) printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: consentry %s [flags]\n\n", strings.TrimSpace(c.name+" "+c.args))
	if c.help != "" {
		fmt.Fprintln(w, strings.TrimSpace(c.help))
	} else {
		fmt.Fprintf(w, "%s%s.\n", strings.ToUpper(c.summary[:1]), c.summary[1:])
	}
	var own bool
	fs.VisitAll(func(f *flag.Flag) { own = own || c.isOwnFlag(f.Name) })
	if own {
		fmt.Fprintln(w, "\nFlags:")
		printFlags(w, fs, c.isOwnFlag)
	}
	fmt.Fprintln(w, "\nGlobal flags: see 'consentry help'.")
}

// printFlags prints the flags of fs selected by keep, in the style of
// flag.PrintDefaults but with the double dash used throughout the docs.
func printFlags(w io.Writer, fs *flag.FlagSet, keep func(name string) bool) {
	fs.VisitAll(func(f *flag.Flag) {
		if !keep(f.Name) {
			return
		}
		typ, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
			usage += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
	})
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
