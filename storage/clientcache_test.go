package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/consentry/consentry/storage"
	"github.com/consentry/consentry/storage/storagetest"
)

// A client changed by another process (a second instance, the consentry
// clients command, SQL typed by hand) must be seen by the next lookup, cache
// or not: a rotated-out secret or a deleted client stops at once.
func TestClientChangeIsSeenAcrossProcesses(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "consentry.db")
		testClientChangeSeen(t, func() *storage.GormStore { return openMigrated(t, "sqlite://"+path) }, func() *sql.DB {
			db, err := sql.Open("sqlite3", path)
			if err != nil {
				t.Fatal(err)
			}
			return db
		})
	})
	t.Run("postgres", func(t *testing.T) {
		adminDSN := os.Getenv(postgresDSNEnv)
		if adminDSN == "" {
			t.Skipf("set %s to a PostgreSQL URL to run the PostgreSQL storage tests", postgresDSNEnv)
		}
		dsn := storagetest.NewPostgresDatabase(t, adminDSN)
		testClientChangeSeen(t, func() *storage.GormStore { return openMigrated(t, dsn) }, func() *sql.DB {
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			return db
		})
	})
}

// openMigrated opens a store on dsn and migrates it.
func openMigrated(t *testing.T, dsn string) *storage.GormStore {
	t.Helper()
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

func testClientChangeSeen(t *testing.T, open func() *storage.GormStore, rawDB func() *sql.DB) {
	ctx := context.Background()
	server, admin := open(), open()
	if err := admin.CreateClient(ctx, &storage.Client{ID: "app", Name: "App", SecretHash: []byte("old-hash")}); err != nil {
		t.Fatal(err)
	}
	wantClient := func(what, name, hash string) {
		t.Helper()
		// Twice: the second lookup is the one a cache would answer.
		for range 2 {
			c, err := server.GetStoredClient(ctx, "app")
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if c.Name != name || string(c.SecretHash) != hash {
				t.Fatalf("%s: got name %q, secret hash %q; want %q, %q", what, c.Name, c.SecretHash, name, hash)
			}
		}
	}
	wantClient("before any change", "App", "old-hash")

	// A caller changing what it got does not change what the next one gets.
	c, err := server.GetStoredClient(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	c.Name, c.SecretHash[0] = "Changed in memory", 'X'
	wantClient("after a caller changed its copy", "App", "old-hash")

	if err := admin.UpdateClient(ctx, "app", func(c *storage.Client) error {
		c.SecretHash = []byte("new-hash")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantClient("after the secret was rotated by another store", "App", "new-hash")

	db := rawDB()
	defer db.Close()
	if _, err := db.ExecContext(ctx, "UPDATE consentry_clients SET name = 'Renamed' WHERE id = 'app'"); err != nil {
		t.Fatal(err)
	}
	wantClient("after an UPDATE in SQL", "Renamed", "new-hash")

	if err := admin.DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := server.GetStoredClient(ctx, "app"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after the client was deleted by another store: got %v, want ErrNotFound", err)
	}
}
