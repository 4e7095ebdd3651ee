package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Commits leave their pages in the WAL (SQLite's own checkpoint waits for
// 64 MiB of it); the store's background checkpoints copy them into the
// database file.
func TestCheckpointsRunInTheBackground(t *testing.T) {
	path := filepath.Join(t.TempDir(), "consentry.db")
	s, err := Open(t.Context(), "sqlite://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.sqlDB.ExecContext(t.Context(), "CREATE TABLE scratch (body BLOB)"); err != nil {
		t.Fatal(err)
	}
	before := fileSize(t, path)
	const rows, rowBytes = 300, 4096
	body := []byte(strings.Repeat("x", rowBytes))
	for range rows {
		if _, err := s.sqlDB.ExecContext(t.Context(), "INSERT INTO scratch (body) VALUES (?)", body); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for fileSize(t, path) < before+rows*rowBytes {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes, WAL %d bytes after 10s: no checkpoint copied the commits", fileSize(t, path), fileSize(t, path+"-wal"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
