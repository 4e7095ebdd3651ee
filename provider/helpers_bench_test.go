package provider

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/consentry/consentry/storage"
)

// newBenchProvider returns a provider on a fresh, migrated SQLite database.
// It takes testing.TB so benchmarks can use it; the tests' openTestStore
// takes *testing.T.
func newBenchProvider(tb testing.TB) *Provider {
	tb.Helper()
	ctx := context.Background()
	store, err := storage.Open(ctx, "sqlite://"+filepath.Join(tb.TempDir(), "bench.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	if err := store.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	p, err := New(ctx, DefaultConfig(), store, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
