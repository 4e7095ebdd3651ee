package storage

import (
	"context"
	"strings"
	"testing"
	"time"
)

// insertExpiredRefreshToken stores a refresh token that expired an hour
// before now.
func insertExpiredRefreshToken(t *testing.T, s *GormStore, now time.Time) {
	t.Helper()
	_, err := s.sqlDB.ExecContext(t.Context(), "INSERT INTO "+tableRefreshTokens+" (signature, request_id, client_id, subject, "+
		"requested_at, expires_at, requested_scopes, granted_scopes, requested_audience, granted_audience, form, session, "+
		"active, access_token_signature) VALUES ('expired', 'req-expired', 'app', 'sub-1', ?, ?, '[]', '[]', '[]', '[]', '', 'null', true, '')",
		now.Add(-2*time.Hour), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
}

// The collector's statements wait for the writer in the write group's
// queue, first come first served, like the token endpoint's writes: a
// statement that took the writer connection outside the queue went ahead
// of every writer already queued for it.
func TestCollectorWaitsInTheWriteGroupQueue(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, nil)
	now := time.Now().UTC()
	insertExpiredRefreshToken(t, s, now)

	held := holdWriter(t, ctx, s, "held")
	type outcome struct {
		n   int
		err error
	}
	collected := make(chan outcome, 1)
	go func() {
		n, err := s.CollectGarbage(ctx, now, now.Add(-time.Minute), 100)
		collected <- outcome{n, err}
	}()
	queued(t, sqliteOf(t, s).group, 1)
	later := beginAndCreate(ctx, s, "later")
	queued(t, sqliteOf(t, s).group, 2)
	if err := s.Commit(held); err != nil {
		t.Fatalf("the writer holding the turn: %v", err)
	}
	got := <-collected
	if got.err != nil || got.n != 1 {
		t.Errorf("CollectGarbage = %d, %v; want the one expired refresh token", got.n, got.err)
	}
	if err := <-later; err != nil {
		t.Fatalf("the writer queued behind the collector: %v", err)
	}
	if !clientExists(t, s, "held") || !clientExists(t, s, "later") {
		t.Error("a writer's client is missing after the collector ran between them")
	}
	var left int
	if err := s.sqlDB.QueryRowContext(ctx, "SELECT count(*) FROM "+tableRefreshTokens).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d refresh tokens left, want the expired one deleted", left)
	}
}

// A collection that finds nothing expired does not wait for the writer:
// it looks on the reader pool first, so the empty tables of most batches
// cost the token endpoint's writes nothing.
func TestCollectorWithNothingExpiredLeavesTheWriterAlone(t *testing.T) {
	s := newTestStore(t, nil)
	held := holdWriter(t, t.Context(), s, "held")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	now := time.Now().UTC()
	if n, err := s.CollectGarbage(ctx, now, now.Add(-time.Minute), 100); err != nil || n != 0 {
		t.Errorf("CollectGarbage with nothing expired while a writer holds the turn = %d, %v; want 0 at once", n, err)
	}
	if err := s.Commit(held); err != nil {
		t.Fatalf("the writer holding the turn: %v", err)
	}
}

// A table the collector cannot read ends the collection with an error that
// names what it was collecting, and the rows already collected are counted.
func TestCollectorReportsADatabaseError(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, nil)
	now := time.Now().UTC()
	insertExpiredRefreshToken(t, s, now)
	// Rate-limit windows are collected last.
	if _, err := s.sqlDB.ExecContext(ctx, "ALTER TABLE "+tableRateLimits+" RENAME TO gone"); err != nil {
		t.Fatal(err)
	}
	n, err := s.CollectGarbage(ctx, now, now.Add(-time.Minute), 100)
	if err == nil || !strings.Contains(err.Error(), "rate-limit windows") {
		t.Errorf("CollectGarbage without its rate-limit table: %v; want an error naming the rate-limit windows", err)
	}
	if n != 1 {
		t.Errorf("CollectGarbage counted %d rows before the error, want the expired refresh token", n)
	}
}
