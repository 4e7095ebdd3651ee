package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"gorm.io/gorm"
)

// preparedWrites keeps the hottest writes prepared on SQLite's writer
// connection: the token inserts and deletes, the code's invalidation, the
// refresh token's retirement, the grant's touch, and the savepoint that
// every write-group member opens and releases. Through gorm each would
// build its SQL, reflect over the row and have SQLite compile the statement
// again, about a fifth of a client-credentials request's CPU.
//
// The statements are prepared once the schema is known to be up to date
// (see sqliteEngine.schemaReady), while the store holds no transaction: the writer has
// a single connection, and a statement prepared on the pool from inside a
// transaction would wait for the connection the transaction holds. Inside
// the transaction, database/sql reuses the statement already prepared on
// the transaction's connection (or prepares it there, on a new connection).
type preparedWrites struct {
	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
	// observe, when set (by tests, before use), sees every write.
	observe func(query string, args []any)
}

// prepare prepares queries on db. Called without a transaction held.
func (p *preparedWrites) prepare(ctx context.Context, db *sql.DB, queries []string) error {
	stmts := make(map[string]*sql.Stmt, len(queries))
	for _, q := range queries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			return errors.Join(fmt.Errorf("prepare %q: %w", q, err), closeStatements(stmts))
		}
		stmts[q] = st
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.stmts
	p.stmts = stmts
	return closeStatements(old)
}

// get returns query's statement; nil when it is not prepared.
func (p *preparedWrites) get(query string) *sql.Stmt {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.stmts[query]
}

func (p *preparedWrites) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := closeStatements(p.stmts)
	p.stmts = nil
	return err
}

// preparedWriteQueries is every statement preparedWrites holds.
func preparedWriteQueries() []string {
	var qs []string
	for _, k := range allTokenKinds() {
		qs = append(qs, insertTokenQuery(k), deleteTokenQuery(k), deactivateTokenQuery(k))
	}
	return append(qs, retireRefreshTokenQuery, deleteAccessTokensOfRefreshQuery, touchGrantQuery,
		openMemberSavepoint, releaseMemberSavepoint)
}

// tokenInsertColumns are the columns of tokenFields, in its order.
var tokenInsertColumns = []string{"signature", "request_id", "client_id", "subject", "requested_at", "expires_at",
	"requested_scopes", "granted_scopes", "requested_audience", "granted_audience", "form", "session", "active"}

// insertTokenQuery inserts a row of kind k: tokenFields' columns and, for
// refresh tokens, the access token's signature (the retirement columns
// start NULL).
func insertTokenQuery(k tokenKind) string {
	cols := tokenInsertColumns
	if k == kindRefreshToken {
		cols = append(cols[:len(cols):len(cols)], "access_token_signature")
	}
	return "INSERT INTO " + k.table() + " (" + strings.Join(cols, ", ") + ") VALUES (?" +
		strings.Repeat(", ?", len(cols)-1) + ")"
}

// insertTokenArgs are insertTokenQuery's arguments.
func insertTokenArgs(k tokenKind, f *tokenFields, accessSignature string) []any {
	args := []any{f.Signature, f.RequestID, f.ClientID, f.Subject, f.RequestedAt, f.ExpiresAt,
		f.RequestedScopes, f.GrantedScopes, f.RequestedAudience, f.GrantedAudience, f.Form, f.Session, f.Active}
	if k == kindRefreshToken {
		args = append(args, accessSignature)
	}
	return args
}

func deleteTokenQuery(k tokenKind) string {
	return "DELETE FROM " + k.table() + " WHERE signature = ?"
}

// deactivateTokenQuery clears the active flag if set; arguments: signature.
func deactivateTokenQuery(k tokenKind) string {
	return "UPDATE " + k.table() + " SET active = false WHERE signature = ? AND active = true"
}

// retireRefreshTokenQuery's arguments: retired_at, successor, signature.
const retireRefreshTokenQuery = "UPDATE " + tableRefreshTokens +
	" SET active = false, retired_at = ?, successor = ? WHERE signature = ? AND active = true"

// deleteAccessTokensOfRefreshQuery's argument: the refresh token's signature.
const deleteAccessTokensOfRefreshQuery = "DELETE FROM " + tableAccessTokens +
	" WHERE request_id IN (SELECT request_id FROM " + tableRefreshTokens + " WHERE signature = ?)"

// touchGrantQuery's arguments: last_used_at, request_id.
const touchGrantQuery = "UPDATE " + tableGrants + " SET last_used_at = ? WHERE request_id = ?"

// execPrepared runs query with args as a statement of the work sc, whose
// handle tx is, with the statement prepared on the writer. ok is false when
// the statement is not prepared: the caller then writes through gorm, as it
// would otherwise.
func (sc *groupScope) execPrepared(tx *gorm.DB, query string, args ...any) (rows int64, ok bool, err error) {
	writes := sc.group.writes
	parent := writes.get(query)
	sqlTx, isTx := tx.Statement.ConnPool.(*sql.Tx)
	if parent == nil || !isTx {
		return 0, false, nil
	}
	// As for gorm's statements (registerTimeoutCallbacks): the work must
	// not be abandoned while its statement runs, and the statement ignores
	// the caller's cancellation.
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.ended {
		return 0, true, sql.ErrTxDone
	}
	if writes.observe != nil {
		writes.observe(query, args)
	}
	ctx := context.WithoutCancel(tx.Statement.Context)
	stmt := sqlTx.StmtContext(ctx, parent)
	defer stmt.Close()
	res, err := stmt.ExecContext(ctx, args...)
	if err != nil {
		if t, ok := sc.group.db.Dialector.(gorm.ErrorTranslator); ok {
			err = t.Translate(err)
		}
		return 0, true, err
	}
	rows, err = res.RowsAffected()
	return rows, true, err
}
