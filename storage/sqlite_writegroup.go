package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"gorm.io/gorm"
)

// maxWriteGroup bounds how many write transactions share one commit: the
// first of a group waits for the work of the others before its commit.
const maxWriteGroup = 16

// writeGroup runs the write transactions of concurrent callers on SQLite's
// one writer connection inside a single database transaction, each in a
// savepoint of its own, and commits once for the group (group commit).
//
// Why: a commit writes every page the transaction changed to the WAL, two
// system calls per page. A refresh changes about twenty pages in seven
// B-trees, and most of the tables' and time indexes' pages are the same for
// transactions that follow each other, so a shared commit writes them once.
//
// The writer's turn passes from one caller to the next queued caller without
// a commit in between; the caller that finds nobody queued (or the group
// full) commits. Every caller returns only once the commit of its group is
// done, so no response reports a write that could still be lost, and a
// caller that read what an earlier member wrote learns whether that became
// durable. Readers on other connections see a group's writes at its commit.
type writeGroup struct {
	db *gorm.DB // the writer handle; its pool has one connection
	// pool is db's connection pool. Writes outside a transaction wait on
	// it rather than in the queue; a group ends as soon as one does.
	pool     *sql.DB
	poolWait int64 // pool's wait count when the current group began

	mu   sync.Mutex
	busy bool // a caller holds the turn
	// queue holds the callers waiting for the turn, first come first
	// served. Closing a channel hands the turn to its owner.
	queue   []chan struct{}
	members []*groupMember // finished work waiting for the group's commit

	// Owned by the caller holding the turn.
	outer *gorm.DB // the group's open transaction; nil between groups
	// broken is set when a member's work could not be undone: the group
	// then rolls back instead of committing.
	broken error

	commits atomic.Int64 // group commits done; tests count them

	// writes holds the savepoint statements, prepared once the schema is
	// up to date (see preparedWrites).
	writes *preparedWrites
}

// groupMember is one caller's finished work in a group.
type groupMember struct {
	done chan struct{}
	err  error // the commit's outcome, set before done is closed
}

func newWriteGroup(db *gorm.DB, pool *sql.DB, writes *preparedWrites) *writeGroup {
	return &writeGroup{db: db, pool: pool, writes: writes}
}

// memberSavepoint names every member's savepoint. Members run one at a
// time, and each releases (or undoes and releases) its savepoint before it
// passes the turn on, so one name serves all, and its two statements can
// stay prepared.
const memberSavepoint = "consentry_w"

const (
	openMemberSavepoint    = "SAVEPOINT " + memberSavepoint
	releaseMemberSavepoint = "RELEASE SAVEPOINT " + memberSavepoint
)

// poolWaiting reports whether a write outside a transaction has started
// waiting for the connection since the group began.
func (g *writeGroup) poolWaiting() bool {
	return g.pool.Stats().WaitCount > g.poolWait
}

// groupScope is one caller's work in a write group: a savepoint in the
// group's transaction, shared by the nested scopes of that work.
//
// Like a transaction of its own, the work lasts at most until the caller's
// context ends or the query timeout passes: then it is rolled back and its
// turn passed on, so that a caller that never commits cannot stall
// every writer. The work's statements themselves run without cancellation
// (see txState.handle) and without the per-statement timeout; SQLite bounds
// their lock waits with busy_timeout.
type groupScope struct {
	group     *writeGroup
	tx        *gorm.DB
	savepoint string

	// mu is held by each statement of the work (see
	// registerTimeoutCallbacks) and by its end, so the work never ends
	// while one of its statements runs.
	mu          sync.Mutex
	ended       bool
	stopAbandon func() bool
	cancel      context.CancelFunc
}

// join waits for the writer's turn and opens a savepoint for the caller's
// work in the group's transaction, beginning one when the caller starts a
// group. bound returns the context that bounds the work (the caller's,
// with the query timeout); the wait for the turn counts towards it.
func (g *writeGroup) join(ctx context.Context, bound func(context.Context) (context.Context, context.CancelFunc)) (*groupScope, error) {
	workCtx, cancel := bound(ctx)
	if err := g.acquire(workCtx); err != nil {
		cancel()
		return nil, fmt.Errorf("begin transaction: wait for the writer: %w", err)
	}
	if g.outer == nil {
		tx := g.db.WithContext(context.Background()).Begin()
		if tx.Error != nil {
			cancel()
			_ = g.leave(nil)
			return nil, fmt.Errorf("begin transaction: %w", tx.Error)
		}
		g.outer = tx
		g.poolWait = g.pool.Stats().WaitCount
	}
	sc := &groupScope{group: g, tx: g.outer, savepoint: memberSavepoint, cancel: cancel}
	if err := sc.exec(openMemberSavepoint); err != nil {
		cancel()
		_ = g.leave(nil)
		return nil, fmt.Errorf("begin transaction: %w", err)
	}
	// Work whose context ends before it commits is rolled back; its later
	// statements and its commit then fail with sql.ErrTxDone. mu keeps
	// an immediate call from seeing stopAbandon unset.
	sc.mu.Lock()
	sc.stopAbandon = context.AfterFunc(workCtx, func() { _ = sc.rollback() })
	sc.mu.Unlock()
	return sc, nil
}

// exec runs one statement of the scope's own bookkeeping. Its context
// carries no transaction, so the statement does not take mu, which the
// caller holds (or needs not, before the work starts).
func (sc *groupScope) exec(statement string) error {
	ctx := context.Background()
	if parent := sc.group.writes.get(statement); parent != nil {
		if sqlTx, ok := sc.tx.Statement.ConnPool.(*sql.Tx); ok {
			stmt := sqlTx.StmtContext(ctx, parent)
			defer stmt.Close()
			_, err := stmt.ExecContext(ctx)
			return err
		}
	}
	return sc.tx.WithContext(ctx).Exec(statement).Error
}

// undo rolls the work back and removes its savepoint. Called with mu held.
func (sc *groupScope) undo() error {
	if err := sc.exec("ROLLBACK TO SAVEPOINT " + sc.savepoint); err != nil {
		return err
	}
	return sc.exec("RELEASE SAVEPOINT " + sc.savepoint)
}

// finish marks the work ended; false when it had ended already. Called
// with mu held.
func (sc *groupScope) finish() bool {
	if sc.ended {
		return false
	}
	sc.ended = true
	sc.stopAbandon()
	sc.cancel()
	return true
}

// commit keeps the work in the group and waits for the group's commit.
func (sc *groupScope) commit() error {
	sc.mu.Lock()
	if !sc.finish() {
		sc.mu.Unlock()
		return fmt.Errorf("commit transaction: %w", sql.ErrTxDone)
	}
	err := sc.exec(releaseMemberSavepoint)
	if err != nil {
		// Keep half-done work out of the group's commit.
		err = errors.Join(err, sc.undo())
	}
	if err != nil {
		sc.group.broken = err
	}
	sc.mu.Unlock()
	if gerr := sc.group.leave(&groupMember{done: make(chan struct{})}); gerr != nil {
		err = errors.Join(err, gerr)
	}
	if err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// rollback undoes the work, then waits for the group's commit: the caller
// may have read what earlier members wrote and must not act on it before it
// is durable. Rolling back after the end is not an error.
func (sc *groupScope) rollback() error {
	sc.mu.Lock()
	if !sc.finish() {
		sc.mu.Unlock()
		return nil
	}
	err := sc.undo()
	if err != nil {
		sc.group.broken = err
	}
	sc.mu.Unlock()
	_ = sc.group.leave(&groupMember{done: make(chan struct{})}) // the commit's error is for its members
	if err != nil {
		return fmt.Errorf("rollback transaction: %w", err)
	}
	return nil
}

// acquire waits for the turn, or for ctx to end.
func (g *writeGroup) acquire(ctx context.Context) error {
	g.mu.Lock()
	if !g.busy {
		g.busy = true
		g.mu.Unlock()
		return nil
	}
	ready := make(chan struct{})
	g.queue = append(g.queue, ready)
	g.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		if i := slices.Index(g.queue, ready); i >= 0 {
			g.queue = slices.Delete(g.queue, i, i+1)
			g.mu.Unlock()
			return ctx.Err()
		}
		g.mu.Unlock()
		// The turn was handed over meanwhile: pass it on.
		<-ready
		_ = g.leave(nil)
		return ctx.Err()
	}
}

// leave ends the turn of a caller whose work is done (its savepoint released
// or rolled back; m is nil when it did no work). It hands the turn to the
// next queued caller, or commits the group when nobody is queued or the
// group is full, and returns once the caller's group has committed: nil, or
// the commit's error.
func (g *writeGroup) leave(m *groupMember) error {
	g.mu.Lock()
	if m != nil {
		g.members = append(g.members, m)
	}
	if len(g.queue) > 0 && g.outer != nil && len(g.members) < maxWriteGroup && !g.poolWaiting() {
		next := g.queue[0]
		g.queue = g.queue[1:]
		g.mu.Unlock()
		close(next)
		if m == nil {
			return nil
		}
		<-m.done
		return m.err
	}
	g.mu.Unlock()
	err := g.commitMembers()

	g.mu.Lock()
	if len(g.queue) > 0 {
		next := g.queue[0]
		g.queue = g.queue[1:]
		g.mu.Unlock()
		close(next)
	} else {
		g.busy = false
		g.mu.Unlock()
	}
	if m == nil {
		return nil
	}
	return err
}

// commitMembers ends the open group, if any, and tells its members the
// outcome. Called with the turn held.
func (g *writeGroup) commitMembers() error {
	g.mu.Lock()
	members := g.members
	g.members = nil
	g.mu.Unlock()
	err := g.end(len(members) > 0)
	for _, x := range members {
		x.err = err
		close(x.done)
	}
	return err
}

// whileIdle runs fn with the writer's turn held and no group transaction
// open: the group's members wait in the queue meanwhile, and are handed
// the turn the moment fn returns, instead of finding SQLite's write lock
// taken and sleeping in its busy handler (1, 2, 5, 10 ms...).
func (g *writeGroup) whileIdle(ctx context.Context, fn func()) error {
	if err := g.acquire(ctx); err != nil {
		return err
	}
	// The turn may come with a group still open: its last member handed
	// the turn on instead of committing.
	_ = g.commitMembers() // the outcome is for those members
	fn()
	return g.leave(nil)
}

// end commits the group's transaction (or rolls it back when it holds no
// finished work). Called with the turn held.
func (g *writeGroup) end(commit bool) error {
	outer, broken := g.outer, g.broken
	g.outer, g.broken = nil, nil
	if outer == nil {
		// The turn holder could not begin one; no member joined.
		return nil
	}
	c, err := txCommitter(outer)
	if err != nil {
		return fmt.Errorf("end the group: %w", err)
	}
	if broken != nil {
		return errors.Join(fmt.Errorf("a member's work could not be undone: %w", broken), c.Rollback())
	}
	if !commit {
		return c.Rollback()
	}
	if err := c.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", dbErr(err))
	}
	g.commits.Add(1)
	return nil
}
