package storage_test

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/consentry/consentry/storage"
	"github.com/consentry/consentry/storage/storagetest"
)

// newSQLiteStore opens a migrated store on a new SQLite file.
func newSQLiteStore(t *testing.T) storage.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "consentry.db")
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := storage.Open(t.Context(), "sqlite://"+path, logger)
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

func TestSQLite(t *testing.T) {
	storagetest.RunTests(t, newSQLiteStore)
}
