package storage

import (
	"fmt"
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

// walFrames is how many frames the WAL holds, as a PASSIVE checkpoint
// reports it.
func walFrames(t *testing.T, s *GormStore) int {
	t.Helper()
	var busy, frames, copied int
	if err := s.sqlDB.QueryRowContext(t.Context(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		t.Fatal(err)
	}
	return frames
}

// A RESTART checkpoint gives up while a reader still reads the WAL, instead
// of keeping the writer waiting, and starts the WAL over once it is gone.
func TestRestartCheckpointWaitsForNoReader(t *testing.T) {
	s := newTestStore(t, nil)
	write := func(id string) {
		t.Helper()
		if err := s.CreateClient(t.Context(), &Client{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	write("before-reader")
	// A read transaction that keeps its snapshot, as a slow reader would.
	reader, err := s.rsqlDB.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	var n int
	if _, err := reader.ExecContext(t.Context(), "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if err := reader.QueryRowContext(t.Context(), "SELECT count(*) FROM "+tableClients).Scan(&n); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		write(fmt.Sprintf("after-reader-%d", i))
	}
	restarted, err := sqliteOf(t, s).checkpointer.restart(t.Context())
	if err != nil || restarted {
		t.Fatalf("restart with a reader in the WAL = %v, %v; want false, nil", restarted, err)
	}
	if _, err := reader.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	restarted, err = sqliteOf(t, s).checkpointer.restart(t.Context())
	if err != nil || !restarted {
		t.Fatalf("restart without readers = %v, %v; want true, nil", restarted, err)
	}
	frames := walFrames(t, s)
	write("first-after-restart")
	if got := walFrames(t, s); got >= frames {
		t.Errorf("the WAL held %d frames before the next commit and %d after: it was not started over", frames, got)
	}
}

// A RESTART that cannot reach the database reports the error instead of
// claiming the WAL was started over.
func TestRestartCheckpointReportsADatabaseError(t *testing.T) {
	s := newTestStore(t, nil)
	if err := sqliteOf(t, s).checkpointer.stop(); err != nil {
		t.Fatal(err)
	}
	restarted, err := sqliteOf(t, s).checkpointer.restart(t.Context())
	if err == nil || restarted {
		t.Fatalf("restart on a closed connection = %v, %v; want false and an error", restarted, err)
	}
}
