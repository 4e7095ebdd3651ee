package storage_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/consentry/consentry/storage"
	"github.com/consentry/consentry/storage/storagetest"
)

// outageTimeout is the query timeout of the outage tests: every call must
// fail within it (plus scheduling slack) while the database is unreachable.
const (
	outageTimeout = 500 * time.Millisecond
	outageSlack   = time.Second
)

// TestDatabaseOutage: with the network to PostgreSQL cut, Ping, reads,
// writes and transactions fail within the query timeout with an error that
// IsUnavailable recognises; once it is back, the same store works again
// without a restart.
func TestDatabaseOutage(t *testing.T) {
	admin := os.Getenv(postgresDSNEnv)
	if admin == "" {
		t.Skipf("set %s to a PostgreSQL URL to run the outage test (SQLite has no network to lose)", postgresDSNEnv)
	}
	ctx := t.Context()
	u, err := url.Parse(storagetest.NewPostgresDatabase(t, admin))
	if err != nil {
		t.Fatal(err)
	}
	proxy := storagetest.StartProxy(t, u.Host)
	u.Host = proxy.Addr()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	s, err := storage.Open(ctx, u.String(), logger)
	if err != nil {
		t.Fatalf("open through the proxy: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s.ConfigurePool(storage.PoolOptions{MaxOpenConns: 4, MaxIdleConns: 4})
	s.SetQueryTimeout(outageTimeout)
	user := &storage.User{Subject: "sub-alice", Username: "alice"}
	if err := s.CreateUser(ctx, user); err != nil {
		t.Fatal(err)
	}
	// Several pooled connections, so that the cut breaks idle ones too.
	for range 4 {
		if _, err := s.GetUser(ctx, user.Subject); err != nil {
			t.Fatal(err)
		}
	}

	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Ping", s.Ping},
		{"GetUser", func(ctx context.Context) error { _, err := s.GetUser(ctx, user.Subject); return err }},
		{"ListUsers", func(ctx context.Context) error { _, err := s.ListUsers(ctx); return err }},
		{"UpdateUser", func(ctx context.Context) error {
			return s.UpdateUser(ctx, user.Subject, func(u *storage.User) error { u.Name = "Alice"; return nil })
		}},
		{"BeginTX", func(ctx context.Context) error {
			txCtx, err := s.BeginTX(ctx)
			if err != nil {
				return err
			}
			_, err = s.GetUser(txCtx, user.Subject)
			return errors.Join(err, s.Rollback(txCtx))
		}},
		{"PendingMigrations", func(ctx context.Context) error {
			// Cached once up to date: it must not turn an outage into "pending".
			n, err := s.PendingMigrations(ctx)
			if err == nil && n != 0 {
				return errors.New("migrations pending during an outage")
			}
			return nil
		}},
	}

	proxy.Cut()
	for _, c := range calls {
		start := time.Now()
		err := c.call(ctx) // no deadline of its own: the store's timeout bounds it
		took := time.Since(start)
		if c.name == "PendingMigrations" {
			if err != nil {
				t.Errorf("%s during the outage: %v", c.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s succeeded with the database cut off", c.name)
			continue
		}
		if !storage.IsUnavailable(err) {
			t.Errorf("%s: IsUnavailable(%v) = false", c.name, err)
		}
		if took > outageTimeout+outageSlack {
			t.Errorf("%s took %v with the database cut off; want at most the query timeout %v", c.name, took, outageTimeout)
		}
	}

	proxy.Restore()
	for _, c := range calls {
		if err := c.call(ctx); err != nil {
			t.Errorf("%s after the database came back: %v", c.name, err)
		}
	}
	got, err := s.GetUser(ctx, user.Subject)
	if err != nil || got.Name != "Alice" {
		t.Fatalf("GetUser after recovery: %+v, %v", got, err)
	}
}

// TestIsUnavailable: answers of a working database are not outages.
func TestIsUnavailable(t *testing.T) {
	s := newSQLiteStore(t)
	_, err := s.GetUser(t.Context(), "nobody")
	if !errors.Is(err, storage.ErrNotFound) || storage.IsUnavailable(err) {
		t.Errorf("not found: %v, IsUnavailable %v", err, storage.IsUnavailable(err))
	}
	err = s.CreateUser(t.Context(), &storage.User{Subject: "a", Username: "a"})
	if err == nil {
		err = s.CreateUser(t.Context(), &storage.User{Subject: "a", Username: "a"})
	}
	if !errors.Is(err, storage.ErrAlreadyExists) || storage.IsUnavailable(err) {
		t.Errorf("conflict: %v, IsUnavailable %v", err, storage.IsUnavailable(err))
	}
	for _, err := range []error{nil, context.Canceled, errors.New("boom")} {
		if storage.IsUnavailable(err) {
			t.Errorf("IsUnavailable(%v) = true", err)
		}
	}
	if !storage.IsUnavailable(context.DeadlineExceeded) {
		t.Error("IsUnavailable(context.DeadlineExceeded) = false")
	}
}
