package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the command line in-process with the given stdin and
// environment; the real environment is never read.
func runCLI(t *testing.T, stdin string, environ map[string]string, args ...string) cliResult {
	t.Helper()
	// Never fall back to ./consentry.db.
	if _, ok := environ["CONSENTRY_DSN"]; !ok {
		environ = maps.Clone(environ)
		if environ == nil {
			environ = map[string]string{}
		}
		environ["CONSENTRY_DSN"] = tempDSN(t)
	}
	var stdout, stderr bytes.Buffer
	e := &env{
		stdin:        strings.NewReader(stdin),
		stdout:       &stdout,
		stderr:       &stderr,
		getenv:       func(k string) string { return environ[k] },
		passwordCost: bcrypt.MinCost,
	}
	code := run(context.Background(), e, args)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func tempDSN(t *testing.T) string {
	t.Helper()
	return "sqlite://" + filepath.Join(t.TempDir(), "t.db")
}

// openTestStore opens the database a command used, to check what it stored.
func openTestStore(t *testing.T, dsn string) *storage.GormStore {
	t.Helper()
	st, err := storage.Open(context.Background(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestUsageAndExitStatus(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		wantStdout string
		wantStderr string
	}{
		{name: "no arguments", code: 2, wantStderr: "clients create"},
		{name: "help", args: []string{"help"}, code: 0, wantStdout: "users disable USERNAME"},
		{name: "--help", args: []string{"--help"}, code: 0, wantStdout: "Global flags"},
		{name: "help of a command", args: []string{"help", "clients", "create"}, code: 0, wantStdout: "--redirect-uri URI"},
		{name: "-h of a command", args: []string{"users", "create", "-h"}, code: 0, wantStdout: "--password-stdin"},
		{name: "help of a group", args: []string{"help", "users"}, code: 0, wantStdout: "users list"},
		{name: "version", args: []string{"version"}, code: 0, wantStdout: "consentry dev\n"},
		{name: "global flag before the command", args: []string{"--log-format", "json", "version"}, code: 0, wantStdout: "consentry dev"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, wantStderr: `unknown command "frobnicate"`},
		{name: "group without subcommand", args: []string{"clients"}, code: 2, wantStderr: "clients needs a subcommand"},
		{name: "unknown subcommand", args: []string{"clients", "frob"}, code: 2, wantStderr: `unknown command "clients frob"`},
		{name: "unknown flag", args: []string{"version", "--frob"}, code: 2, wantStderr: "flag provided but not defined: -frob"},
		{name: "missing argument", args: []string{"clients", "get"}, code: 2, wantStderr: "usage: consentry clients get ID"},
		{name: "extra argument", args: []string{"version", "now"}, code: 2, wantStderr: "takes no arguments"},
		{name: "invalid configuration", args: []string{"clients", "list", "--issuer", "ftp://x"}, code: 2, wantStderr: "invalid configuration"},
		{name: "short secrets key", args: []string{"clients", "list", "--secrets-key", strings.Repeat("k", 31)}, code: 2, wantStderr: "secrets_key: 31 bytes is too short to be a key; use at least 32 random bytes, such as the output of 'openssl rand -base64 32'"},
		{name: "secrets key of 32 bytes", args: []string{"clients", "list", "--secrets-key", strings.Repeat("k", 32)}, code: 0, wantStdout: "no clients"},
		{name: "secret and public", args: []string{"clients", "create", "--id", "a", "--public", "--secret", strings.Repeat("s", 32)}, code: 2, wantStderr: "exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, "", nil, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d; want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.wantStdout) {
				t.Errorf("stdout %q; want it to contain %q", r.stdout, tt.wantStdout)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q; want it to contain %q", r.stderr, tt.wantStderr)
			}
			if strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, "panic") {
				t.Errorf("stderr shows a panic: %q", r.stderr)
			}
		})
	}
}

func TestClientsCreateOfflineAccessWithoutRefreshToken(t *testing.T) {
	dsn := tempDSN(t)
	r := runCLI(t, "", nil, "clients", "create", "--dsn", dsn, "--id", "app",
		"--redirect-uri", "https://app.example.com/cb", "--scope", "openid offline_access",
		"--grant-type", "authorization_code")
	if r.code != 2 {
		t.Fatalf("exit %d; want 2 (stdout %q, stderr %q)", r.code, r.stdout, r.stderr)
	}
	const want = "scope offline_access requires grant type refresh_token"
	if !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr %q; want %q", r.stderr, want)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q; want nothing", r.stdout)
	}
	list := runCLI(t, "", nil, "clients", "list", "--json", "--dsn", dsn)
	if list.code != 0 || strings.TrimSpace(list.stdout) != "[]" {
		t.Fatalf("clients list: exit %d, %q; want no clients", list.code, list.stdout)
	}

	ok := runCLI(t, "", nil, "--dsn", dsn, "clients", "create", "--id", "app",
		"--redirect-uri", "https://app.example.com/cb", "--scope", "openid offline_access",
		"--grant-type", "authorization_code", "--grant-type", "refresh_token")
	if ok.code != 0 {
		t.Fatalf("with refresh_token: exit %d, stderr %q", ok.code, ok.stderr)
	}
}

func TestClientsSecretShownOnceOnly(t *testing.T) {
	dsn := tempDSN(t)
	created := runCLI(t, "", nil, "clients", "create", "--dsn", dsn, "--id", "app", "--name", "Example App",
		"--redirect-uri", "https://app.example.com/cb", "--json")
	if created.code != 0 {
		t.Fatalf("create: exit %d, stderr %q", created.code, created.stderr)
	}
	var out struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(created.stdout), &out); err != nil {
		t.Fatalf("create --json output %q: %v", created.stdout, err)
	}
	if out.ID != "app" || len(out.Secret) != 43 {
		t.Fatalf("created %+v; want client app with a 43-character secret", out)
	}
	if !strings.Contains(created.stderr, "cannot be shown again") {
		t.Errorf("stderr %q; want the one-time warning", created.stderr)
	}

	text := runCLI(t, "", nil, "clients", "create", "--dsn", dsn, "--id", "app2", "--redirect-uri", "https://app.example.com/cb")
	if text.code != 0 || !strings.Contains(text.stdout, "client_secret: ") || !strings.Contains(text.stdout, "cannot be shown again") {
		t.Fatalf("create (text): exit %d, stdout %q", text.code, text.stdout)
	}

	st := openTestStore(t, dsn)
	stored, err := st.GetStoredClient(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.SecretHash) == 0 {
		t.Fatal("no secret hash stored")
	}
	leaks := []string{
		out.Secret,
		hex.EncodeToString(stored.SecretHash),
		base64.StdEncoding.EncodeToString(stored.SecretHash),
		base64.RawStdEncoding.EncodeToString(stored.SecretHash),
		base64.RawURLEncoding.EncodeToString(stored.SecretHash),
	}
	for _, args := range [][]string{
		{"clients", "get", "app"},
		{"clients", "get", "app", "--json"},
		{"clients", "list"},
		{"clients", "list", "--json"},
	} {
		r := runCLI(t, "", nil, append(args, "--dsn", dsn)...)
		if r.code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", args, r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, "app") {
			t.Errorf("%q: output %q does not show the client", args, r.stdout)
		}
		for _, leak := range leaks {
			if strings.Contains(r.stdout+r.stderr, leak) {
				t.Errorf("%q prints the secret or its hash: %q", args, r.stdout)
			}
		}
		if out := strings.ToLower(r.stdout); strings.Contains(out, `"client_secret"`) || strings.Contains(out, "client_secret:") || strings.Contains(out, "hash") {
			t.Errorf("%q has a secret field: %q", args, r.stdout)
		}
	}

	missing := runCLI(t, "", nil, "clients", "get", "nope", "--dsn", dsn)
	if missing.code != 1 || !strings.Contains(missing.stderr, `client "nope" not found`) {
		t.Errorf("get unknown: exit %d, stderr %q", missing.code, missing.stderr)
	}
	dup := runCLI(t, "", nil, "clients", "create", "--dsn", dsn, "--id", "app", "--redirect-uri", "https://app.example.com/cb")
	if dup.code != 1 || !strings.Contains(dup.stderr, `client "app" already exists`) {
		t.Errorf("duplicate: exit %d, stderr %q", dup.code, dup.stderr)
	}
	del := runCLI(t, "", nil, "clients", "delete", "app", "--dsn", dsn)
	if del.code != 0 {
		t.Fatalf("delete: exit %d, stderr %q", del.code, del.stderr)
	}
	if _, err := st.GetStoredClient(context.Background(), "app"); err == nil {
		t.Error("client still stored after delete")
	}
}

func TestClientsCreatePublic(t *testing.T) {
	dsn := tempDSN(t)
	r := runCLI(t, "", nil, "clients", "create", "--dsn", dsn, "--id", "native", "--public",
		"--redirect-uri", "com.example.app:/cb", "--redirect-uri", "http://127.0.0.1/cb",
		"--scope", "openid", "--scope", "profile offline_access",
		"--grant-type", "authorization_code", "--grant-type", "refresh_token", "--id-token-alg", "ES256")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "client_secret:") {
		t.Errorf("public client output mentions a secret: %q", r.stdout)
	}
	c, err := openTestStore(t, dsn).GetStoredClient(context.Background(), "native")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Public || c.IDTokenSignedResponseAlg != "ES256" || strings.Join(c.Scopes, " ") != "openid profile offline_access" ||
		strings.Join(c.RedirectURIs, " ") != "com.example.app:/cb http://127.0.0.1/cb" {
		t.Errorf("stored %+v", c)
	}
}

func TestUsersCreateReadsPasswordFromStdin(t *testing.T) {
	dsn := tempDSN(t)
	r := runCLI(t, "correct horse battery\n", nil, "users", "create", "--dsn", dsn,
		"--username", "alice", "--email", "alice@example.com", "--name", "Alice Liddell", "--password-stdin", "--email-verified")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "correct horse") {
		t.Error("the password is printed")
	}
	st := openTestStore(t, dsn)
	u, err := st.GetUserByUsername(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !provider.CheckPassword(u.PasswordHash, "correct horse battery") {
		t.Error("password with its trailing newline removed does not match")
	}
	if u.Email != "alice@example.com" || !u.EmailVerified || u.Name != "Alice Liddell" {
		t.Errorf("stored %+v", u)
	}

	// Only one newline is removed, and a CRLF counts as one.
	r = runCLI(t, "windows pass\r\n", nil, "users", "create", "--dsn", dsn, "--username", "bob", "--password-stdin")
	if r.code != 0 {
		t.Fatalf("bob: exit %d, stderr %q", r.code, r.stderr)
	}
	bob, err := st.GetUserByUsername(context.Background(), "bob")
	if err != nil || !provider.CheckPassword(bob.PasswordHash, "windows pass") {
		t.Errorf("CRLF not trimmed (err %v)", err)
	}
}

func TestUsersCreateRefusals(t *testing.T) {
	dsn := tempDSN(t)
	tests := []struct {
		name, stdin string
		args        []string
		code        int
		wantErr     string
	}{
		{name: "empty stdin", stdin: "", args: []string{"--username", "a", "--password-stdin"}, code: 2, wantErr: "no password on standard input"},
		{name: "only a newline", stdin: "\n", args: []string{"--username", "a", "--password-stdin"}, code: 2, wantErr: "no password on standard input"},
		{name: "no --password-stdin", stdin: "secret123\n", args: []string{"--username", "a"}, code: 2, wantErr: "--password-stdin is required"},
		{name: "no username", stdin: "secret123\n", args: []string{"--password-stdin"}, code: 2, wantErr: "--username is required"},
		{name: "short password", stdin: "short\n", args: []string{"--username", "a", "--password-stdin"}, code: 2, wantErr: "at least 8 characters"},
		{name: "bad email", stdin: "secret123\n", args: []string{"--username", "a", "--email", "nope", "--password-stdin"}, code: 2, wantErr: "not a valid address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.stdin, nil, append([]string{"users", "create", "--dsn", dsn}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tt.code, tt.wantErr)
			}
		})
	}
}

func TestUsersLifecycle(t *testing.T) {
	dsn := tempDSN(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	if r := runCLI(t, "secret123", environ, "users", "create", "--username", "carol", "--password-stdin"); r.code != 0 {
		t.Fatalf("create: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, "secret123", environ, "users", "create", "--username", "carol", "--password-stdin"); r.code != 1 || !strings.Contains(r.stderr, `user "carol" already exists`) {
		t.Errorf("duplicate: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", environ, "users", "disable", "carol"); r.code != 0 {
		t.Fatalf("disable: exit %d, stderr %q", r.code, r.stderr)
	}
	r := runCLI(t, "", environ, "users", "list", "--json")
	var users []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &users); err != nil || len(users) != 1 {
		t.Fatalf("list --json %q: %v", r.stdout, err)
	}
	if users[0]["username"] != "carol" || users[0]["disabled"] != true || users[0]["connector"] != "local" {
		t.Errorf("listed %v; want carol, disabled, connector local", users[0])
	}
	if strings.Contains(strings.ToLower(r.stdout), "password") || strings.Contains(r.stdout, "$2a$") {
		t.Errorf("list shows password material: %q", r.stdout)
	}
	if r := runCLI(t, "", environ, "users", "list"); r.code != 0 || !strings.Contains(r.stdout, "disabled") ||
		!strings.Contains(r.stdout, "CONNECTOR") || !strings.Contains(r.stdout, " local ") {
		t.Errorf("list: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := runCLI(t, "", environ, "users", "enable", "carol"); r.code != 0 {
		t.Fatalf("enable: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", environ, "users", "delete", "carol"); r.code != 0 {
		t.Fatalf("delete: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", environ, "users", "delete", "carol"); r.code != 1 || !strings.Contains(r.stderr, `user "carol" not found`) {
		t.Errorf("delete again: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", environ, "users", "list"); r.code != 0 || !strings.Contains(r.stdout, "no users") {
		t.Errorf("list after delete: %q", r.stdout)
	}
}

func TestMigrate(t *testing.T) {
	r := runCLI(t, "", nil, "migrate", "--dsn", tempDSN(t))
	if r.code != 0 || !strings.Contains(r.stdout, "migrations done") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
