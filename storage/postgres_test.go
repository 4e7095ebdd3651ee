package storage_test

import (
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
	return openMigrated(t, storagetest.NewPostgresDatabase(t, adminDSN))
}
