package storage_test

import (
	"path/filepath"
	"testing"

	"github.com/consentry/consentry/storage"
	"github.com/consentry/consentry/storage/storagetest"
)

// newSQLiteStore opens a migrated store on a new SQLite file.
func newSQLiteStore(t *testing.T) storage.Store {
	t.Helper()
	return openMigrated(t, "sqlite://"+filepath.Join(t.TempDir(), "consentry.db"))
}

func TestSQLite(t *testing.T) {
	storagetest.RunTests(t, newSQLiteStore)
}
