package storage

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// queued waits until n callers wait for the writer's turn.
func queued(t *testing.T, g *writeGroup, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		got := len(g.queue)
		g.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers queued for the writer, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// beginAndCreate starts a write transaction in the background (it queues
// while the writer is busy), creates a client in it, and commits; the
// result arrives on the returned channel.
func beginAndCreate(ctx context.Context, s *GormStore, id string) <-chan error {
	done := make(chan error, 1)
	go func() {
		txCtx, err := s.BeginTX(ctx)
		if err != nil {
			done <- err
			return
		}
		if err := s.CreateClient(txCtx, &Client{ID: id}); err != nil {
			_ = s.Rollback(txCtx)
			done <- err
			return
		}
		done <- s.Commit(txCtx)
	}()
	return done
}

// holdWriter begins a write transaction under ctx and creates a client in
// it: the caller then holds the writer's turn until it commits.
func holdWriter(t *testing.T, ctx context.Context, s *GormStore, id string) context.Context {
	t.Helper()
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(txCtx, &Client{ID: id}); err != nil {
		t.Fatal(err)
	}
	return txCtx
}

func clientExists(t *testing.T, s *GormStore, id string) bool {
	t.Helper()
	_, err := s.GetStoredClient(t.Context(), id)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrNotFound):
		return false
	default:
		t.Fatalf("load client %q: %v", id, err)
		return false
	}
}

func TestQueuedWritersShareOneCommit(t *testing.T) {
	s := newTestStore(t, nil)
	before := sqliteOf(t, s).group.commits.Load()
	first := holdWriter(t, t.Context(), s, "first")
	second := beginAndCreate(t.Context(), s, "second")
	third := beginAndCreate(t.Context(), s, "third")
	queued(t, sqliteOf(t, s).group, 2)

	firstDone := make(chan error, 1)
	go func() { firstDone <- s.Commit(first) }()
	// A Commit returns only after the commit its work shares: at that
	// moment the reader pool, which sees committed data only, has the row.
	for _, w := range []struct {
		id   string
		done <-chan error
	}{{"first", firstDone}, {"second", second}, {"third", third}} {
		if err := <-w.done; err != nil {
			t.Fatalf("%s: %v", w.id, err)
		}
		if !clientExists(t, s, w.id) {
			t.Errorf("client %q missing when its commit returned", w.id)
		}
	}
	if got := sqliteOf(t, s).group.commits.Load() - before; got != 1 {
		t.Errorf("three queued transactions took %d commits, want 1", got)
	}
}

func TestRolledBackMemberLeavesTheGroupsOtherWork(t *testing.T) {
	s := newTestStore(t, nil)
	first := holdWriter(t, t.Context(), s, "undone")
	second := beginAndCreate(t.Context(), s, "kept")
	queued(t, sqliteOf(t, s).group, 1)
	rolledBack := make(chan error, 1)
	go func() { rolledBack <- s.Rollback(first) }()
	if err := <-second; err != nil {
		t.Fatalf("second transaction: %v", err)
	}
	if err := <-rolledBack; err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if clientExists(t, s, "undone") {
		t.Error("the rolled-back client was committed with the group")
	}
	if !clientExists(t, s, "kept") {
		t.Error("the group lost the other transaction's client")
	}
	if err := s.Rollback(first); err != nil {
		t.Errorf("second rollback: %v, want nil", err)
	}
}

func TestAbandonedMemberPassesTheTurnOn(t *testing.T) {
	s := newTestStore(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	first := holdWriter(t, ctx, s, "abandoned")
	second := beginAndCreate(t.Context(), s, "next")
	queued(t, sqliteOf(t, s).group, 1)
	cancel()
	if err := <-second; err != nil {
		t.Fatalf("writer queued behind an abandoned transaction: %v", err)
	}
	if clientExists(t, s, "abandoned") {
		t.Error("the abandoned transaction's client was committed")
	}
	if err := s.CreateClient(first, &Client{ID: "late"}); !errors.Is(err, sql.ErrTxDone) {
		t.Errorf("write after abandonment: %v, want sql.ErrTxDone", err)
	}
	if sqliteOf(t, s).writes.get(deleteTokenQuery(kindAccessToken)) == nil {
		t.Fatal("the token delete is not prepared")
	}
	if err := s.DeleteAccessTokenSession(first, "any"); !errors.Is(err, sql.ErrTxDone) {
		t.Errorf("prepared write after abandonment: %v, want sql.ErrTxDone", err)
	}
	if err := s.Commit(first); !errors.Is(err, sql.ErrTxDone) {
		t.Errorf("commit after abandonment: %v, want sql.ErrTxDone", err)
	}
	if clientExists(t, s, "late") {
		t.Error("a write after abandonment was committed")
	}
}

func TestWaitForTheWriterEndsWithTheContext(t *testing.T) {
	s := newTestStore(t, nil)
	first, err := s.BeginTX(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	waiting := beginAndCreate(ctx, s, "gave-up")
	queued(t, sqliteOf(t, s).group, 1)
	cancel()
	if err := <-waiting; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued writer whose context ended: %v, want context.Canceled", err)
	}
	if err := s.CreateClient(first, &Client{ID: "holder"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(first); err != nil {
		t.Fatal(err)
	}
	if !clientExists(t, s, "holder") || clientExists(t, s, "gave-up") {
		t.Error("want only the turn holder's client")
	}
}

func TestWriteOutsideATransactionIsNotStarvedByAGroup(t *testing.T) {
	s := newTestStore(t, nil)
	first := holdWriter(t, t.Context(), s, "first")
	// The second transaction takes the turn after the first and then holds
	// it until told to commit.
	secondBegun, secondCommit := make(chan error, 1), make(chan struct{})
	secondDone := make(chan error, 1)
	go func() {
		txCtx, err := s.BeginTX(t.Context())
		secondBegun <- err
		if err != nil {
			return
		}
		<-secondCommit
		secondDone <- s.Commit(txCtx)
	}()
	queued(t, sqliteOf(t, s).group, 1)
	// An audit event is one insert outside a transaction: it waits for the
	// writer's connection, not in the group's queue.
	waitsBefore := s.sqlDB.Stats().WaitCount
	audited := make(chan error, 1)
	go func() { audited <- s.AppendAuditEvent(t.Context(), &AuditEvent{Type: "test"}) }()
	for s.sqlDB.Stats().WaitCount == waitsBefore {
		time.Sleep(time.Millisecond)
	}
	firstDone := make(chan error, 1)
	go func() { firstDone <- s.Commit(first) }()
	// The first transaction's group ended with it, so the insert gets the
	// connection while the second transaction still holds the turn.
	select {
	case err := <-audited:
		if err != nil {
			t.Fatalf("audit event: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write outside a transaction waited behind the group's next member")
	}
	close(secondCommit)
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	if err := <-secondBegun; err != nil {
		t.Fatal(err)
	}
	if err := <-secondDone; err != nil {
		t.Fatal(err)
	}
}

// whileIdle commits the group it finds open before its function runs, and
// the writers queued behind it wait until the function returns.
func TestWhileIdleRunsBetweenGroups(t *testing.T) {
	s := newTestStore(t, nil)
	first := holdWriter(t, t.Context(), s, "first")
	type seen struct {
		firstErr, secondErr error // of looking each client up
		groupOpen           bool
	}
	ran := make(chan seen, 1)
	idle := make(chan error, 1)
	go func() {
		idle <- sqliteOf(t, s).group.whileIdle(t.Context(), func() {
			_, firstErr := s.GetStoredClient(t.Context(), "first")
			_, secondErr := s.GetStoredClient(t.Context(), "second")
			ran <- seen{firstErr, secondErr, sqliteOf(t, s).group.outer != nil}
		})
	}()
	queued(t, sqliteOf(t, s).group, 1)
	second := beginAndCreate(t.Context(), s, "second")
	queued(t, sqliteOf(t, s).group, 2)
	if err := s.Commit(first); err != nil {
		t.Fatalf("first: %v", err)
	}
	if err := <-idle; err != nil {
		t.Fatalf("whileIdle: %v", err)
	}
	got := <-ran
	if got.firstErr != nil || !errors.Is(got.secondErr, ErrNotFound) || got.groupOpen {
		t.Errorf("while idle: first looked up with %v, second with %v, a group open %v; want the first committed, the second not found, no group",
			got.firstErr, got.secondErr, got.groupOpen)
	}
	if err := <-second; err != nil {
		t.Fatalf("second: %v", err)
	}
}

// whileIdle gives up when its context ends while it waits for the turn:
// its function does not run, and the writer holding the turn is unaffected.
func TestWhileIdleEndsWithItsContext(t *testing.T) {
	s := newTestStore(t, nil)
	held := holdWriter(t, t.Context(), s, "held")
	ctx, cancel := context.WithCancel(t.Context())
	idle := make(chan error, 1)
	ran := false
	go func() { idle <- sqliteOf(t, s).group.whileIdle(ctx, func() { ran = true }) }()
	queued(t, sqliteOf(t, s).group, 1)
	cancel()
	if err := <-idle; !errors.Is(err, context.Canceled) {
		t.Fatalf("whileIdle after its context ended: %v, want context.Canceled", err)
	}
	if ran {
		t.Error("the function ran although the wait was given up")
	}
	if err := s.Commit(held); err != nil {
		t.Fatalf("the writer holding the turn: %v", err)
	}
	if !clientExists(t, s, "held") {
		t.Error("the held writer's client is missing")
	}
}
