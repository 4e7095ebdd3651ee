package storage_test

import (
	"log/slog"
	"os"
	"testing"

	"github.com/consentry/consentry/storage"
	"github.com/consentry/consentry/storage/storagetest"
)

// postgresDSNEnv names a PostgreSQL server for the tests, as a URL whose user
// may create databases, e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
const postgresDSNEnv = storagetest.PostgresDSNEnv

func TestPostgres(t *testing.T) {
	dsn := os.Getenv(postgresDSNEnv)
	if dsn == "" {
		t.Skipf("set %s to a PostgreSQL URL to run the PostgreSQL storage tests", postgresDSNEnv)
	}
	storagetest.RunTests(t, func(t *testing.T) storage.Store { return newPostgresStore(t, dsn) })
}

// newPostgresStore opens a migrated store on a database of its own on the
// server named by adminDSN; the database is dropped afterwards.
func newPostgresStore(t *testing.T, adminDSN string) storage.Store {
	t.Helper()
	dsn := storagetest.NewPostgresDatabase(t, adminDSN)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := storage.Open(t.Context(), dsn, logger)
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
