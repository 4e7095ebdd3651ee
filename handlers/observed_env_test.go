package handlers_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/consentry/consentry/handlers"
	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// newObservedEnv is newEnv with the logger and the metrics wired as serve
// wires them: the metrics count every request and are the provider's
// Observer. now is the provider's clock (nil: time.Now).
func newObservedEnv(t *testing.T, logger *slog.Logger, now func() time.Time) (*env, *handlers.Metrics, *storage.GormStore) {
	t.Helper()
	ctx := context.Background()
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "consentry.db")
	store, err := storage.Open(ctx, dsn, logger)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	srv := httptest.NewUnstartedServer(nil)
	cfg := provider.DefaultConfig()
	cfg.Issuer = "http://" + srv.Listener.Addr().String()
	cfg.DSN = dsn
	p, err := provider.New(ctx, cfg, store, logger, now)
	if err != nil {
		t.Fatalf("provider: %v", err)
	}
	metrics := handlers.NewMetrics(store.SQLDB())
	p.Observer = metrics
	h, err := handlers.New(p, handlers.WithMetrics(metrics))
	if err != nil {
		t.Fatalf("handlers: %v", err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	user, err := provider.CreateUser(ctx, store, provider.UserSpec{
		Username: "alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice Example", Password: testPassword,
	}, bcrypt.MinCost, time.Now())
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return &env{t: t, Issuer: cfg.Issuer, Provider: p, Server: srv, User: user}, metrics, store
}
