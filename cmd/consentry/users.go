package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

const usersCreateHelp = `
Create a user who can sign in at the provider. The password is read from
standard input (one trailing newline is removed), so that it stays out of the
shell history and the process list:

  printf '%s' "$PASSWORD" | consentry users create --username alice \
      --email alice@example.com --name "Alice Liddell" --password-stdin

When standard input is a terminal, the password is asked for twice and not
shown as it is typed.`

// maxPasswordInput bounds what is read from stdin; real passwords are far
// shorter (bcrypt takes 72 bytes).
const maxPasswordInput = 4096

func runUsersCreate(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	username := fs.String("username", "", "login `NAME` (required; 1-64 characters, no spaces)")
	email := fs.String("email", "", "email `ADDRESS`")
	name := fs.String("name", "", "display `NAME`")
	passwordStdin := fs.Bool("password-stdin", false, "read the password from standard input (required)")
	verified := fs.Bool("email-verified", false, "mark the email address as verified")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	if *username == "" {
		return usagef("--username is required")
	}
	if !*passwordStdin {
		return usagef("--password-stdin is required: the password is read from standard input, never from a flag")
	}
	password, err := readPassword(e.stdin, e.stderr)
	if err != nil {
		return err
	}
	spec := provider.UserSpec{
		Username:      *username,
		Email:         *email,
		Name:          *name,
		Password:      password,
		EmailVerified: *verified,
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	u, err := provider.CreateUser(ctx, st, spec, e.passwordCost, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "created user %q (subject %s)\n", u.Username, u.Subject)
	return nil
}

// readPassword reads the password from in. At a terminal it prompts on
// prompt and reads twice with echo off, so that nobody looking at the
// screen (or its scrollback) sees it; from a pipe or file it reads the
// whole input and removes one trailing newline.
func readPassword(in io.Reader, prompt io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return promptPassword(int(f.Fd()), prompt)
	}
	raw, err := io.ReadAll(io.LimitReader(in, maxPasswordInput+1))
	if err != nil {
		return "", fmt.Errorf("read password from standard input: %w", err)
	}
	if len(raw) > maxPasswordInput {
		return "", usagef("password on standard input is longer than %d bytes", maxPasswordInput)
	}
	raw = bytes.TrimSuffix(raw, []byte("\n"))
	raw = bytes.TrimSuffix(raw, []byte("\r"))
	if len(raw) == 0 {
		return "", usagef("no password on standard input")
	}
	return string(raw), nil
}

// promptPassword asks for the password twice on the terminal fd, which
// does not echo it, and refuses an empty one or two that differ.
func promptPassword(fd int, prompt io.Writer) (string, error) {
	var typed [2][]byte
	for i, label := range []string{"Password: ", "Repeat password: "} {
		fmt.Fprint(prompt, label)
		pw, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt) // the Enter key was not echoed either
		if err != nil {
			return "", fmt.Errorf("read password from the terminal: %w", err)
		}
		if len(pw) == 0 {
			return "", usagef("no password entered")
		}
		if len(pw) > maxPasswordInput {
			return "", usagef("password is longer than %d bytes", maxPasswordInput)
		}
		typed[i] = pw
	}
	if subtle.ConstantTimeCompare(typed[0], typed[1]) != 1 {
		return "", usagef("the two passwords do not match")
	}
	return string(typed[0]), nil
}

// userView is what the CLI shows of a user: never the password hash.
type userView struct {
	Subject       string `json:"subject"`
	Username      string `json:"username"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name,omitempty"`
	Disabled      bool   `json:"disabled"`
	// Connector is where the user signs in ("local": this table).
	Connector string    `json:"connector"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func viewUser(u storage.User) userView {
	return userView{
		Subject: u.Subject, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		Name: u.Name, Disabled: u.Disabled, Connector: u.ConnectorID, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}

func runUsersList(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	users, err := st.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	views := make([]userView, 0, len(users))
	for _, u := range users {
		views = append(views, viewUser(u))
	}
	if *asJSON {
		return writeJSON(e.stdout, views)
	}
	return writeList(e.stdout, views, "no users", []string{"USERNAME", "SUBJECT", "CONNECTOR", "EMAIL", "VERIFIED", "STATUS", "CREATED"},
		func(u userView) []string {
			status := "active"
			if u.Disabled {
				status = "disabled"
			}
			return []string{u.Username, u.Subject, u.Connector, orDash(u.Email), fmt.Sprint(u.EmailVerified), status, u.CreatedAt.UTC().Format(time.DateOnly)}
		})
}

func runUsersDisable(ctx context.Context, e *env, c *command, args []string) error {
	return setUserDisabled(ctx, e, c, args, true)
}

func runUsersEnable(ctx context.Context, e *env, c *command, args []string) error {
	return setUserDisabled(ctx, e, c, args, false)
}

func setUserDisabled(ctx context.Context, e *env, c *command, args []string, disabled bool) (err error) {
	fs, g := c.newFlagSet(e)
	pos, err := c.parseN(e, fs, args)
	if err != nil {
		return err
	}
	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	u, err := findUser(ctx, st, pos[0])
	if err != nil {
		return err
	}
	now := time.Now()
	err = st.UpdateUser(ctx, u.Subject, func(u *storage.User) error {
		u.Disabled = disabled
		u.UpdatedAt = now
		return nil
	})
	if err != nil {
		return fmt.Errorf("update user %q: %w", u.Username, err)
	}
	if disabled {
		fmt.Fprintf(e.stdout, "disabled user %q: they are signed out everywhere and can no longer sign in, and their refresh tokens are refused\n", u.Username)
	} else {
		fmt.Fprintf(e.stdout, "enabled user %q\n", u.Username)
	}
	return nil
}

const usersUnlockHelp = `
Clear the failed sign-ins of a user's account and end its lockout, so that
they can sign in again at once. The per-address counts are left alone. The
audit log records who unlocked it:

  consentry users unlock alice --unlocked-by bob`

func runUsersUnlock(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	unlockedBy := fs.String("unlocked-by", "", "`NAME` of who unlocks the account, for the audit log (default: the operating-system user)")
	pos, err := c.parseN(e, fs, args)
	if err != nil {
		return err
	}
	admin, err := e.adminName(*unlockedBy, "unlocking the account", "--unlocked-by")
	if err != nil {
		return err
	}
	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	cleared, err := provider.UnlockLogin(ctx, st, pos[0], admin, time.Now())
	if err != nil {
		return err
	}
	if cleared {
		fmt.Fprintf(e.stdout, "unlocked user %q: their failed sign-ins and lockout are cleared\n", pos[0])
	} else {
		fmt.Fprintf(e.stdout, "user %q had no failed sign-ins to clear\n", pos[0])
	}
	return nil
}

func runUsersDelete(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	pos, err := c.parseN(e, fs, args)
	if err != nil {
		return err
	}
	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	u, err := findUser(ctx, st, pos[0])
	if err != nil {
		return err
	}
	if err := st.DeleteUser(ctx, u.Subject); err != nil {
		return fmt.Errorf("delete user %q: %w", u.Username, err)
	}
	fmt.Fprintf(e.stdout, "deleted user %q, their sessions and the tokens issued for them\n", u.Username)
	return nil
}

func findUser(ctx context.Context, users storage.Users, username string) (*storage.User, error) {
	u, err := users.GetUserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("user %q not found", username)
	}
	if err != nil {
		return nil, fmt.Errorf("load user %q: %w", username, err)
	}
	return u, nil
}

// writeList prints items as a table with one row each, or the empty message.
func writeList[T any](w io.Writer, items []T, empty string, header []string, row func(T) []string) error {
	if len(items) == 0 {
		_, err := fmt.Fprintln(w, empty)
		return err
	}
	rows := [][]string{header}
	for _, item := range items {
		rows = append(rows, row(item))
	}
	fitColumns(rows, listWidth, listGap)
	tw := tabwriter.NewWriter(w, 0, 0, listGap, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
