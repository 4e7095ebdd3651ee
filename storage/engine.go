package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"gorm.io/gorm"
)

// engine is what one database adds to the store's common code: how a
// transaction of its own begins, how a write that needs none runs, and how
// the hottest statements run. postgresEngine is the plain one: PostgreSQL
// groups commits and caches statements by itself. sqliteEngine
// (sqlite.go) adds SQLite's write group, prepared writes, background
// checkpoints and reader pool.
//
// The store calls it only outside a caller's transaction.
type engine interface {
	// begin opens a transaction of its own for work under ctx, lasting at
	// most until bound(ctx) ends.
	begin(ctx context.Context, bound func(context.Context) (context.Context, context.CancelFunc)) (*txState, error)
	// groupsWrites reports whether a write that needs no transaction of
	// its own still runs as one, to share a commit with concurrent ones.
	// (A method of its own rather than one taking the write: a func
	// passed through an interface escapes, with what it captures.)
	groupsWrites() bool
	// readContext is the context of a prepared read under ctx.
	readContext(ctx context.Context, bound func(context.Context) (context.Context, context.CancelFunc)) (context.Context, context.CancelFunc)
	// collectBatch runs change, one batch of the collector over the rows
	// selected picks, and returns how many rows it changed.
	collectBatch(ctx context.Context, selected, change func(db *gorm.DB) *gorm.DB) (int64, error)
	// lock takes the lock named key for the rest of the transaction tx,
	// serialising it with other instances' transactions that take it.
	lock(tx *gorm.DB, key int64) error
	// maxReaders caps the reader pool's size; 0 or less asks for no cap.
	maxReaders(requested int) int
	// schemaReady is called once the schema is up to date.
	schemaReady(ctx context.Context)
	// close releases what the engine holds besides the store's pools.
	close() error
}

// txEnd ends the outermost scope of a transaction.
type txEnd interface {
	commit() error
	rollback() error
}

// postgresEngine runs every transaction on a connection of the pool.
type postgresEngine struct {
	gdb *gorm.DB
}

var _ engine = postgresEngine{}

func (e postgresEngine) begin(ctx context.Context, bound func(context.Context) (context.Context, context.CancelFunc)) (*txState, error) {
	// database/sql rolls the transaction back when txCtx ends: it lasts at
	// most the query timeout.
	txCtx, cancel := bound(ctx)
	tx := e.gdb.WithContext(txCtx).Begin()
	if tx.Error != nil {
		cancel()
		return nil, fmt.Errorf("begin transaction: %w", tx.Error)
	}
	return &txState{tx: tx, seq: new(atomic.Int64), end: ownTx{tx: tx, cancel: cancel}}, nil
}

// lock takes a transaction-level advisory lock.
func (postgresEngine) lock(tx *gorm.DB, key int64) error {
	return tx.Exec("SELECT pg_advisory_xact_lock(?)", key).Error
}

// groupsWrites is false: PostgreSQL groups concurrent commits by itself.
func (postgresEngine) groupsWrites() bool { return false }

func (postgresEngine) readContext(ctx context.Context, bound func(context.Context) (context.Context, context.CancelFunc)) (context.Context, context.CancelFunc) {
	return bound(ctx)
}

// collectBatch runs change at once: an empty batch blocks no one.
func (e postgresEngine) collectBatch(ctx context.Context, _, change func(db *gorm.DB) *gorm.DB) (int64, error) {
	res := change(e.gdb.WithContext(ctx))
	return res.RowsAffected, res.Error
}

func (postgresEngine) maxReaders(requested int) int { return requested }

func (postgresEngine) schemaReady(context.Context) {}

func (postgresEngine) close() error { return nil }

// ownTx is a transaction with a connection of its own. cancel ends the
// query timeout that bounds it.
type ownTx struct {
	tx     *gorm.DB
	cancel context.CancelFunc
}

// Commit and Rollback use the database transaction directly rather than
// through gorm, whose handle accumulates errors.
func (o ownTx) commit() error {
	c, err := txCommitter(o.tx)
	if err != nil {
		return err
	}
	defer o.cancel()
	if err := c.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", dbErr(err))
	}
	return nil
}

func (o ownTx) rollback() error {
	c, err := txCommitter(o.tx)
	if err != nil {
		return err
	}
	defer o.cancel()
	if err := c.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("rollback transaction: %w", err)
	}
	return nil
}
