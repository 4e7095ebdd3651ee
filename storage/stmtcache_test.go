package storage

import (
	"path/filepath"
	"sync"
	"testing"

	"gorm.io/gorm"
)

// A statement first run inside a transaction ends up prepared on the
// database handle, where later transactions reuse it; promoting while
// transactions run must not deadlock on the one writer connection.
func TestTransactionStatementsArePromoted(t *testing.T) {
	s, err := Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "consentry.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	const query = "UPDATE consentry_refresh_tokens SET retired_at = NULL WHERE signature = ?"
	inTx := func() error {
		return s.transaction(t.Context(), func(tx *gorm.DB) error { return tx.Exec(query, "no such token").Error })
	}
	if err := inTx(); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 4*50)
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if err := inTx(); err != nil {
					errs <- err
				}
			}
		})
	}
	for range 20 {
		s.promoteTxStatements(t.Context())
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	s.promoteTxStatements(t.Context())
	cache := s.gdb.ConnPool.(*gorm.PreparedStmtDB)
	stmt, ok := cache.Stmts.Get(query)
	if !ok {
		t.Fatalf("%q is not in the statement cache", query)
	}
	if stmt.Transaction {
		t.Fatalf("%q is still cached as prepared on a finished transaction", query)
	}
	if err := inTx(); err != nil {
		t.Fatalf("a transaction with the promoted statement: %v", err)
	}
}
