package storagetest

import (
	"context"
	"crypto/rand"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PostgresDSNEnv names the environment variable holding a PostgreSQL URL
// whose user may create databases, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable. Tests that need
// PostgreSQL use it; make test sets it.
const PostgresDSNEnv = "CONSENTRY_TEST_POSTGRES_DSN"

// NewPostgresDatabase creates an empty database of its own on the server
// named by adminDSN, drops it when the test ends, and returns its URL, so
// that test runs never see each other's rows.
func NewPostgresDatabase(t testing.TB, adminDSN string) string {
	t.Helper()
	u, err := url.Parse(adminDSN)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL", PostgresDSNEnv)
	}
	name := "consentry_test_" + strings.ToLower(rand.Text())
	postgresAdmin(t, adminDSN, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		postgresAdmin(t, adminDSN, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	u.Path = "/" + name
	return u.String()
}

// postgresAdmin runs one statement on the server's administrative
// connection. It runs in cleanups too, after the test's context is cancelled.
func postgresAdmin(t testing.TB, dsn, stmt string) {
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
