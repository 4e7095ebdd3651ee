package storage_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/storage"
	"github.com/consentry/consentry/storage/storagetest"
)

// postgresDSNEnv names a PostgreSQL server for the tests, as a URL whose user
// may create databases, e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
const postgresDSNEnv = "CONSENTRY_TEST_POSTGRES_DSN"

func TestPostgres(t *testing.T) {
	dsn := os.Getenv(postgresDSNEnv)
	if dsn == "" {
		t.Skipf("set %s to a PostgreSQL URL to run the PostgreSQL storage tests", postgresDSNEnv)
	}
	storagetest.RunTests(t, func(t *testing.T) storage.Store { return newPostgresStore(t, dsn) })
}

// newPostgresStore creates a database of its own on the server named by
// adminDSN, opens a migrated store on it and drops it afterwards.
func newPostgresStore(t *testing.T, adminDSN string) storage.Store {
	t.Helper()
	u, err := url.Parse(adminDSN)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL", postgresDSNEnv)
	}
	name := "consentry_test_" + strings.ToLower(rand.Text())
	admin(t, adminDSN, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		admin(t, adminDSN, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})

	u.Path = "/" + name
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := storage.Open(t.Context(), u.String(), logger)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// admin runs one statement on the server's administrative connection. It
// runs in cleanups too, after the test's context is cancelled.
func admin(t *testing.T, dsn, stmt string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}
