package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"gorm.io/gorm"
)

// preparedReads keeps the statements of the hottest reads prepared on the
// reader pool. Through gorm each call would build its SQL and reflect over
// the row's struct again and, on SQLite, compile the statement again: for
// a token lookup that was over half of the read's cost. The set of queries
// is fixed (a token by signature per token table, the client generation,
// a user by subject, a grant by request id), so it stays small.
type preparedReads struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	// observe, when set (by tests, before use), sees every read.
	observe func(query string, args []any)
}

// queryRow runs query, prepared on db, with args.
func (p *preparedReads) queryRow(ctx context.Context, db *sql.DB, query string, args ...any) (*sql.Row, error) {
	st, err := p.stmt(ctx, db, query)
	if err != nil {
		return nil, err
	}
	if p.observe != nil {
		p.observe(query, args)
	}
	return st.QueryRowContext(ctx, args...), nil
}

// stmt returns query prepared on db. Statements are prepared on first use:
// the tables exist only after Migrate.
func (p *preparedReads) stmt(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.stmts[query]; ok {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	if p.stmts == nil {
		p.stmts = map[string]*sql.Stmt{}
	}
	p.stmts[query] = st
	return st, nil
}

func (p *preparedReads) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := closeStatements(p.stmts)
	p.stmts = nil
	return err
}

func closeStatements(stmts map[string]*sql.Stmt) error {
	var err error
	for _, st := range stmts {
		err = errors.Join(err, st.Close())
	}
	return err
}

// preparedRow reads one row outside a transaction with a prepared
// statement (see preparedReads) and scans it into dest;
// gorm.ErrRecordNotFound when there is none.
func (s *GormStore) preparedRow(ctx context.Context, query string, args []any, dest ...any) error {
	ctx, cancel := s.readContext(ctx)
	defer cancel()
	row, err := s.reads.queryRow(ctx, s.rsqlDB, query, args...)
	if err != nil {
		return err
	}
	if err := row.Scan(dest...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return gorm.ErrRecordNotFound
		}
		return err
	}
	return nil
}

// readContext is the context of a prepared read outside a transaction: on
// PostgreSQL it carries the query timeout; on SQLite see
// sqliteEngine.readContext.
func (s *GormStore) readContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return s.engine.readContext(ctx, s.bound)
}
