package storage

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

func TestDialectorFor(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		dsn     string
		driver  string // "" when an error is expected
		errPart string
	}{
		{dsn: "sqlite://" + filepath.Join(dir, "a.db"), driver: "sqlite"},
		{dsn: "sqlite://" + filepath.Join(dir, "a.db") + "?_busy_timeout=50", driver: "sqlite"},
		{dsn: "postgres://u:p@localhost:5432/db?sslmode=disable", driver: "postgres"},
		{dsn: "postgresql://u:p@localhost/db", driver: "postgres"},
		{dsn: "mysql://root:hunter2@localhost/db", errPart: `"mysql"`},
		{dsn: "consentry.db", errPart: "sqlite://"},
		{dsn: "sqlite://", errPart: "no file path"},
		{dsn: "sqlite://:memory:", errPart: "in-memory"},
	}
	for _, tc := range tests {
		t.Run(tc.dsn, func(t *testing.T) {
			d, err := dialectorFor(tc.dsn)
			if tc.driver == "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("got %v, want an error containing %s", err, tc.errPart)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error reveals the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Name() != tc.driver {
				t.Errorf("driver %q, want %q", d.Name(), tc.driver)
			}
		})
	}
}

func TestSQLiteConnString(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "consentry")
	path := filepath.Join(dir, "db.sqlite")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	conn, err := sqliteConnString(path + "?_busy_timeout=50&cache=shared")
	if err != nil {
		t.Fatal(err)
	}
	file, query, _ := strings.Cut(conn, "?")
	if file != path {
		t.Errorf("file %q, want %q", file, path)
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"_journal_mode": "WAL", "_txlock": "immediate", "_foreign_keys": "on",
		"_busy_timeout": "50", // the DSN's own value wins
		"cache":         "shared",
	}
	for k, v := range want {
		if got := params.Get(k); got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
}

// A database whose directory is missing or not writable is refused with
// the file and the reason named, and no directory is created.
func TestOpenSQLiteWhereItCannotBe(t *testing.T) {
	tmp := t.TempDir()
	missing := filepath.Join(tmp, "nonexistent", "dir")
	_, err := Open(t.Context(), "sqlite://"+filepath.Join(missing, "x.db"), nil)
	want := "cannot create the database " + filepath.Join(missing, "x.db") + ": directory " + missing + " does not exist"
	if err == nil || err.Error() != want {
		t.Errorf("missing directory: %v; want %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(tmp, "nonexistent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing directory was created: %v", err)
	}

	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), "sqlite://"+filepath.Join(file, "x.db"), nil); err == nil || !strings.Contains(err.Error(), file+" is not a directory") {
		t.Errorf("directory that is a file: %v", err)
	}

	// The default, consentry.db in the working directory, is named by its
	// absolute path.
	t.Chdir(tmp)
	if _, err := Open(t.Context(), "sqlite://nonexistent/x.db", nil); err == nil || !strings.Contains(err.Error(), filepath.Join(tmp, "nonexistent", "x.db")) {
		t.Errorf("relative path: %v; want the absolute path named", err)
	}

	if os.Geteuid() == 0 {
		t.Log("running as root, which may write anywhere: the read-only directory case is skipped")
		return
	}
	readOnly := filepath.Join(tmp, "ro")
	if err := os.Mkdir(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), "sqlite://"+filepath.Join(readOnly, "x.db"), nil); err == nil || !strings.Contains(err.Error(), "directory "+readOnly+" is not writable") {
		t.Errorf("read-only directory: %v", err)
	}
}

func TestDescribeDSN(t *testing.T) {
	t.Chdir(t.TempDir())
	wd, _ := os.Getwd()
	for dsn, want := range map[string]string{
		"sqlite://consentry.db":                                   "sqlite://" + filepath.Join(wd, "consentry.db"),
		"sqlite:///var/db/x.db?_a=1":                              "sqlite:///var/db/x.db",
		"postgres://u:secret@db:5432/consentry?sslmode=require":   "postgres://u@db:5432/consentry?sslmode=require",
		"postgres://db/consentry?password=secret&sslmode=disable": "postgres://db/consentry?sslmode=disable",
	} {
		if got := DescribeDSN(dsn); got != want {
			t.Errorf("DescribeDSN(%q) = %q; want %q", dsn, got, want)
		}
	}
}

// newTestStore opens a migrated SQLite store logging into buf (which may be nil).
func newTestStore(t *testing.T, logs *syncBuffer) *GormStore {
	t.Helper()
	var logger *slog.Logger
	if logs != nil {
		logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	// A relative path below a directory.
	t.Chdir(t.TempDir())
	if err := os.Mkdir("data", 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), "sqlite://data/consentry.db", logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("data", "consentry.db")); err != nil {
		t.Fatalf("database file: %v", err)
	}
	return s
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testRequest(t *testing.T, s *GormStore) *fosite.Request {
	t.Helper()
	c := &Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}
	if err := s.CreateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	sess := openid.NewDefaultSession()
	sess.Subject = "sub-alice"
	sess.Claims.Subject = "sub-alice"
	req := fosite.NewRequest()
	req.ID = "req-1"
	req.Client = c
	req.Session = sess
	req.GrantScope("openid")
	return req
}

// The OpenID Connect session is keyed by the raw code in fosite's interface;
// only its hash may reach the database.
func TestOpenIDConnectSessionStoresCodeHash(t *testing.T) {
	s := newTestStore(t, nil)
	req := testRequest(t, s)
	const code = "ory_ac_RAWCODE.signature"
	if err := s.CreateOpenIDConnectSession(t.Context(), code, req); err != nil {
		t.Fatal(err)
	}
	var rows []tokenFields
	if err := s.gdb.Table(tableOIDCSessions).Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Signature != oidcKey(code) {
		t.Fatalf("rows %+v, want one keyed by the code's hash", rows)
	}
	for _, r := range rows {
		if strings.Contains(r.Signature+r.Form+r.Session, "RAWCODE") {
			t.Errorf("raw code stored: %+v", r)
		}
	}
}

// Statements logged by gorm (here: every statement, as if all were slow)
// carry placeholders, never values.
func TestLogsCarryNoValues(t *testing.T) {
	logs := &syncBuffer{}
	s := newTestStore(t, logs)
	s.gdb.Logger = gormLogger{log: slog.New(slog.NewTextHandler(logs, nil)), slow: 0}
	req := testRequest(t, s)
	const sig = "SECRETSIGNATURE"
	if err := s.CreateAccessTokenSession(t.Context(), sig, req); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccessTokenSession(t.Context(), sig, nil); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "INSERT INTO") {
		t.Fatalf("statements were not logged: %s", out)
	}
	if strings.Contains(out, sig) || strings.Contains(out, "sub-alice") {
		t.Errorf("log contains statement values: %s", out)
	}
}

// A BeginTX inside a transaction is a savepoint: its rollback undoes only its
// own work.
func TestNestedTransaction(t *testing.T) {
	s := newTestStore(t, nil)
	ctx := t.Context()
	outer, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateClient(outer, &Client{ID: "kept"}))
	inner, err := s.BeginTX(outer)
	must(err)
	must(s.CreateClient(inner, &Client{ID: "undone"}))
	must(s.Rollback(inner))
	inner2, err := s.BeginTX(outer)
	must(err)
	must(s.CreateClient(inner2, &Client{ID: "committed-inner"}))
	must(s.Commit(inner2))
	must(s.Commit(outer))

	for id, want := range map[string]error{"kept": nil, "undone": ErrNotFound, "committed-inner": nil} {
		if _, err := s.GetStoredClient(ctx, id); !errors.Is(err, want) {
			t.Errorf("client %q: got %v, want %v", id, err, want)
		}
	}
}

func TestCommitWithoutTransaction(t *testing.T) {
	s := newTestStore(t, nil)
	if err := s.Commit(t.Context()); err == nil {
		t.Error("Commit without BeginTX succeeded")
	}
	if err := s.Rollback(t.Context()); err == nil {
		t.Error("Rollback without BeginTX succeeded")
	}
	// fosite rolls back after a failed commit; rolling back a finished
	// transaction is harmless.
	ctx, err := s.BeginTX(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Rollback(ctx); err != nil {
		t.Errorf("Rollback after Commit: %v", err)
	}
}

// A context cancelled mid-transaction must not leave the SQLite write lock
// held: the next writer gets through.
func TestCancelledTransactionReleasesLock(t *testing.T) {
	s := newTestStore(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(txCtx, &Client{ID: "abandoned"}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := s.CreateClient(t.Context(), &Client{ID: "next"}); err != nil {
		t.Fatalf("write after an abandoned transaction: %v", err)
	}
	if _, err := s.GetStoredClient(t.Context(), "abandoned"); !errors.Is(err, ErrNotFound) {
		t.Errorf("abandoned transaction's write: got %v, want not found", err)
	}
}
