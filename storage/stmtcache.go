package storage

import (
	"context"
	"database/sql"
	"errors"

	"gorm.io/gorm"
)

// promoteTxStatements makes the SQLite writer's transactions reuse their
// compiled statements.
//
// gorm caches a statement first met inside a transaction as prepared on
// that transaction; database/sql cannot reuse such a statement in a later
// transaction and compiles it again every time (a tenth of a refresh
// rotation's CPU went to sqlite3_prepare). A statement prepared on the
// database handle is kept per connection and reused by every transaction on
// that connection. So, in the background, each statement gorm cached for a
// transaction is prepared again on the database handle and replaces the
// cached one.
func (s *GormStore) promoteTxStatements(ctx context.Context) {
	cache, ok := s.gdb.ConnPool.(*gorm.PreparedStmtDB)
	if !ok {
		return
	}
	for _, query := range cache.Stmts.Keys() {
		if stmt, ok := cache.Stmts.Get(query); !ok || !stmt.Transaction {
			continue
		}
		// Prepared before touching gorm's cache: it waits for the writer
		// connection, which a transaction may hold while it waits on the
		// cache for a statement being prepared.
		prepared, err := s.sqlDB.PrepareContext(ctx, query)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// A statement that cannot be prepared again (the migrations'
			// CREATE TABLE, once the table exists) is dropped: the entry
			// was of no use to a later transaction anyway.
			cache.Stmts.Delete(query)
			continue
		}
		cache.Mux.Lock() // New unlocks it once the entry is in the cache
		if _, err := cache.Stmts.New(ctx, query, false, preparedStmt{prepared}, cache.Mux); err != nil {
			_ = prepared.Close()
		}
	}
}

// preparedStmt is a gorm.ConnPool whose PrepareContext hands over a
// statement prepared already; it serves nothing else.
type preparedStmt struct{ stmt *sql.Stmt }

var errPreparedOnly = errors.New("prepared statement holder: not a connection")

func (p preparedStmt) PrepareContext(context.Context, string) (*sql.Stmt, error) { return p.stmt, nil }

func (preparedStmt) ExecContext(context.Context, string, ...any) (sql.Result, error) {
	return nil, errPreparedOnly
}

func (preparedStmt) QueryContext(context.Context, string, ...any) (*sql.Rows, error) {
	return nil, errPreparedOnly
}

func (preparedStmt) QueryRowContext(context.Context, string, ...any) *sql.Row { return nil }
