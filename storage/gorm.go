package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

// Compile-time check.
var _ Store = (*GormStore)(nil)

// GormStore is the Store on a SQL database (SQLite or PostgreSQL) through gorm.
// It is safe for concurrent use. Create it with Open, then call Migrate.
type GormStore struct {
	// gdb is the handle for writes and transactions (on SQLite a pool of
	// one connection, see sqliteEngine).
	gdb   *gorm.DB
	sqlDB *sql.DB
	// rdb is the handle for reads outside a transaction: on SQLite a pool
	// of read-only connections, on PostgreSQL gdb itself. See read.
	rdb    *gorm.DB
	rsqlDB *sql.DB
	// engine is what the database adds: on SQLite the write group, the
	// prepared writes and the background checkpoints.
	engine engine
	logger *slog.Logger
	// now is the clock for expiry checks and timestamps.
	now func() time.Time
	// queryTimeout bounds each statement and each transaction (a
	// time.Duration; 0: no bound). See SetQueryTimeout.
	queryTimeout atomic.Int64
	// bound is withTimeout, kept as one func value for the engine's calls.
	bound func(context.Context) (context.Context, context.CancelFunc)
	// migrated is set once the schema is known to be up to date.
	migrated atomic.Bool
	// clients keeps clients between requests; see clientCache.
	clients *clientCache
	// clientCacheBypassed is set while the client generation cannot be
	// read; see clientGeneration.
	clientCacheBypassed atomic.Bool
	// reads holds the prepared statements of the hottest reads.
	reads preparedReads
}

// sqliteDefaults are the connection parameters (mattn/go-sqlite3 names) that
// make one SQLite file serve a concurrent server:
//   - WAL lets readers proceed while one writer commits;
//   - busy_timeout makes a writer wait for the lock instead of failing;
//   - txlock=immediate takes the write lock at BEGIN, so two read-then-write
//     transactions queue up instead of both reading and then deadlocking
//     (SQLITE_BUSY) when upgrading to write;
//   - synchronous=NORMAL is durable enough under WAL and much faster.
func sqliteDefaults() url.Values {
	return url.Values{
		"_journal_mode": {"WAL"},
		"_busy_timeout": {"10000"},
		"_foreign_keys": {"on"},
		"_txlock":       {"immediate"},
		"_synchronous":  {"NORMAL"},
	}
}

// Open connects to the database named by dsn:
//
//	sqlite://consentry.db               (relative path)
//	sqlite:///var/lib/consentry/db.sqlite (absolute path)
//	postgres://user:pass@host:5432/db?sslmode=require (or postgresql://)
//
// For SQLite the file's directory must exist and be writable. Extra query
// parameters on a sqlite DSN are passed to the driver. Open does not create
// tables; call Migrate. A nil logger discards logs.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*GormStore, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dialector, err := dialectorFor(dsn)
	if err != nil {
		return nil, err
	}
	if dialector.Name() == "sqlite" {
		return openSQLiteStore(ctx, dsn, logger)
	}
	// No gorm statement cache: pgx caches statements per connection by
	// itself.
	gdb, sqlDB, err := openGorm(ctx, dialector, logger, false)
	if err != nil {
		return nil, err
	}
	return newGormStore(gdb, sqlDB, gdb, sqlDB, postgresEngine{gdb: gdb}, logger)
}

// newGormStore completes a store on its handles: gdb for writes and
// transactions, rdb for reads (gdb itself, or a pool of readers).
func newGormStore(gdb *gorm.DB, sqlDB *sql.DB, rdb *gorm.DB, rsqlDB *sql.DB, e engine, logger *slog.Logger) (*GormStore, error) {
	s := &GormStore{gdb: gdb, sqlDB: sqlDB, rdb: rdb, rsqlDB: rsqlDB, engine: e, logger: logger, now: time.Now, clients: newClientCache()}
	s.bound = s.withTimeout
	if err := s.registerTimeoutCallbacks(); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	return s, nil
}

// openGorm opens one gorm handle and checks that the database answers.
// cacheStatements turns on gorm's prepared-statement cache; see Open for
// where it is safe.
func openGorm(ctx context.Context, dialector gorm.Dialector, logger *slog.Logger, cacheStatements bool) (*gorm.DB, *sql.DB, error) {
	gdb, err := gorm.Open(dialector, &gorm.Config{
		Logger: newGormLogger(logger),
		// Every statement we issue alone is atomic already; multi-statement
		// work uses explicit transactions.
		SkipDefaultTransaction: true,
		// Map unique violations to gorm.ErrDuplicatedKey on both databases.
		TranslateError: true,
		NowFunc:        func() time.Time { return time.Now().UTC() },
		// Ping below, with the caller's context.
		DisableAutomaticPing: true,
		// The bound keeps statements with variable IN lists from piling up.
		PrepareStmt:        cacheStatements,
		PrepareStmtMaxSize: 256,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, nil, fmt.Errorf("connect to database: %w", err)
	}
	return gdb, sqlDB, nil
}

// dialectorFor picks the gorm driver for dsn. Error messages name the scheme
// only: a DSN may carry a password.
func dialectorFor(dsn string) (gorm.Dialector, error) {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return nil, errors.New("database DSN must start with sqlite:// or postgres://")
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		conn, err := sqliteConnString(rest)
		if err != nil {
			return nil, err
		}
		return sqlite.New(sqlite.Config{DriverName: sqliteDriverName(), DSN: conn}), nil
	case "postgres", "postgresql":
		return postgres.Open(dsn), nil
	default:
		return nil, fmt.Errorf("unsupported database DSN scheme %q: use sqlite://PATH or postgres://...", scheme)
	}
}

// sqliteConnString turns the part after sqlite:// into a mattn/go-sqlite3
// connection string, after checking that the file can be opened.
func sqliteConnString(rest string) (string, error) {
	path, query, _ := strings.Cut(rest, "?")
	switch path {
	case "":
		return "", errors.New("sqlite DSN has no file path: use sqlite://PATH")
	case ":memory:":
		// Every pooled connection would get its own empty database.
		return "", errors.New("sqlite in-memory databases are not supported: use a file path")
	}
	params, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("sqlite DSN parameters: %w", err)
	}
	for k, v := range sqliteDefaults() {
		if !params.Has(k) {
			params[k] = v
		}
	}
	if err := checkSQLitePath(path); err != nil {
		return "", err
	}
	return path + "?" + params.Encode(), nil
}

// Ping checks that the database answers.
func (s *GormStore) Ping(ctx context.Context) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	if s.rsqlDB != s.sqlDB {
		if err := s.rsqlDB.PingContext(ctx); err != nil {
			return fmt.Errorf("ping database: %w", err)
		}
	}
	return nil
}

// Close releases the database connections.
func (s *GormStore) Close() error {
	err := errors.Join(s.reads.close(), s.engine.close(), s.sqlDB.Close())
	if s.rsqlDB != nil && s.rsqlDB != s.sqlDB {
		err = errors.Join(err, s.rsqlDB.Close())
	}
	if err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// txKey is the context key under which BeginTX stores the transaction.
type txKey struct{}

// txState is one BeginTX scope. The outermost scope owns a database
// transaction, or a caller's work in SQLite's write group; nested scopes
// are savepoints inside it.
type txState struct {
	store     *GormStore
	tx        *gorm.DB
	savepoint string        // a nested scope's savepoint; "" for the outermost scope
	seq       *atomic.Int64 // savepoint name counter, shared by all scopes of one transaction
	// end commits or rolls back the outermost scope; nil for nested ones.
	end txEnd
	// scope is set on every scope of a caller's work in the write group.
	scope *groupScope
}

func txFrom(ctx context.Context, s *GormStore) *txState {
	st, _ := ctx.Value(txKey{}).(*txState)
	if st == nil || st.store != s {
		return nil
	}
	return st
}

// db returns the handle every query must use: the transaction carried by ctx
// when there is one (otherwise SQLite would wait on its own write lock), else
// the pool.
func (s *GormStore) db(ctx context.Context) *gorm.DB {
	if st := txFrom(ctx, s); st != nil {
		return st.handle(ctx)
	}
	return s.gdb.WithContext(ctx)
}

// handle is the transaction handle for a statement under ctx.
func (st *txState) handle(ctx context.Context) *gorm.DB {
	if st.scope != nil {
		// SQLite rolls back the whole transaction when a write is
		// interrupted, and in a group that is other callers' work too.
		// The scope ends when ctx does (see groupScope).
		ctx = context.WithoutCancel(ctx)
	}
	return st.tx.WithContext(ctx)
}

// read returns the handle a plain read uses: the transaction carried by ctx
// when there is one (it must see its own writes), else the reader pool. A
// read that decides a write (read-modify-write) belongs in a transaction.
func (s *GormStore) read(ctx context.Context) *gorm.DB {
	if st := txFrom(ctx, s); st != nil {
		return st.handle(ctx)
	}
	return s.rdb.WithContext(ctx)
}

// transaction runs fn atomically: in a new transaction, or in a savepoint of
// the transaction carried by ctx, so that a failure inside fn (for example a
// unique violation, which aborts a PostgreSQL transaction) leaves the
// caller's transaction usable.
func (s *GormStore) transaction(ctx context.Context, fn func(tx *gorm.DB) error) (err error) {
	if txFrom(ctx, s) != nil {
		return s.db(ctx).Transaction(fn)
	}
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		// Also on a panic in fn: on SQLite the writer's turn must be
		// passed on.
		if !done {
			if rbErr := s.Rollback(txCtx); rbErr != nil && err != nil {
				err = errors.Join(err, rbErr)
			}
		}
	}()
	if err := fn(s.db(txCtx)); err != nil {
		return err
	}
	done = true
	return s.Commit(txCtx)
}

// write runs one write that needs no transaction of its own: in the
// caller's transaction when ctx carries one, else in a transaction of its
// own when the engine groups writes (SQLite's write group, sharing a
// commit), else alone.
func (s *GormStore) write(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if txFrom(ctx, s) == nil && s.engine.groupsWrites() {
		return s.transaction(ctx, fn)
	}
	return fn(s.db(ctx))
}

// execPrepared runs query with args in tx with a statement prepared ahead;
// rows is the number of rows changed. ok is false when there is none, and
// the caller writes through gorm: only work in SQLite's write group has
// them (sqlite_preparedwrites.go); pgx caches statements per connection by
// itself.
func (s *GormStore) execPrepared(tx *gorm.DB, query string, args ...any) (rows int64, ok bool, err error) {
	st := txFrom(tx.Statement.Context, s)
	if st == nil || st.scope == nil {
		return 0, false, nil
	}
	return st.scope.execPrepared(tx, query, args...)
}

// BeginTX starts a transaction and returns a context carrying it; every store
// method called with that context runs inside it. Finish it with Commit or
// Rollback. On a context that already carries a transaction, BeginTX opens a
// savepoint: its Rollback undoes only the work since BeginTX, its Commit
// leaves the outer transaction to decide. The transaction lasts at most the
// query timeout; the returned context stays usable after Commit.
func (s *GormStore) BeginTX(ctx context.Context) (context.Context, error) {
	if parent := txFrom(ctx, s); parent != nil {
		name := fmt.Sprintf("consentry_sp%d", parent.seq.Add(1))
		if err := parent.handle(ctx).SavePoint(name).Error; err != nil {
			return ctx, fmt.Errorf("begin nested transaction: %w", err)
		}
		return context.WithValue(ctx, txKey{}, &txState{store: s, tx: parent.tx, savepoint: name, seq: parent.seq, scope: parent.scope}), nil
	}
	st, err := s.engine.begin(ctx, s.bound)
	if err != nil {
		return ctx, err
	}
	st.store = s
	return context.WithValue(ctx, txKey{}, st), nil
}

// Commit commits the transaction started by BeginTX.
func (s *GormStore) Commit(ctx context.Context) error {
	st := txFrom(ctx, s)
	if st == nil {
		return errors.New("commit: no transaction in context")
	}
	if st.end == nil {
		return nil
	}
	return st.end.commit()
}

// Rollback rolls back the transaction started by BeginTX. Rolling back a
// transaction that already ended (fosite rolls back after a failed commit)
// is not an error.
func (s *GormStore) Rollback(ctx context.Context) error {
	st := txFrom(ctx, s)
	if st == nil {
		return errors.New("rollback: no transaction in context")
	}
	if st.end == nil {
		if err := st.handle(ctx).RollbackTo(st.savepoint).Error; err != nil {
			return fmt.Errorf("rollback nested transaction: %w", err)
		}
		return nil
	}
	return st.end.rollback()
}

// txCommitter returns the database transaction behind a gorm handle.
func txCommitter(tx *gorm.DB) (gorm.TxCommitter, error) {
	c, ok := tx.Statement.ConnPool.(gorm.TxCommitter)
	if !ok || c == nil {
		return nil, errors.New("transaction handle is not a transaction")
	}
	return c, nil
}

// dbErr maps driver errors to the package's sentinels.
func dbErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ErrNotFound
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return ErrAlreadyExists
	default:
		return err
	}
}

// PoolOptions tunes the connection pool; a zero field keeps database/sql's
// default.
type PoolOptions struct {
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	ConnMaxIdleTime time.Duration
}

// ConfigurePool applies o to the connection pool. On SQLite it applies to
// the reader pool, capped at sqliteMaxOpenConns; the writer keeps its one
// connection.
func (s *GormStore) ConfigurePool(o PoolOptions) {
	maxOpen := s.engine.maxReaders(o.MaxOpenConns)
	pool := s.rsqlDB
	if maxOpen > 0 {
		pool.SetMaxOpenConns(maxOpen) // also lowers the idle limit to it
	}
	if o.MaxIdleConns > 0 {
		pool.SetMaxIdleConns(o.MaxIdleConns)
	}
	for _, db := range []*sql.DB{s.sqlDB, s.rsqlDB} {
		if o.ConnMaxLifetime > 0 {
			db.SetConnMaxLifetime(o.ConnMaxLifetime)
		}
		if o.ConnMaxIdleTime > 0 {
			db.SetConnMaxIdleTime(o.ConnMaxIdleTime)
		}
	}
}

// SetQueryTimeout bounds every statement, and every transaction from its
// start, to d, unless the caller's context ends sooner; 0 removes the
// bound. With the database unreachable, calls then fail after d instead of
// waiting for the operating system to give up on the connection. Migrate
// is not bounded: a migration may take long on a large table.
func (s *GormStore) SetQueryTimeout(d time.Duration) {
	s.queryTimeout.Store(int64(max(d, 0)))
}

// SQLDB returns the connection pool, for its statistics.
func (s *GormStore) SQLDB() *sql.DB { return s.sqlDB }

// withTimeout returns ctx bounded by the query timeout, or ctx itself when
// there is none or ctx ends sooner.
func (s *GormStore) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	d := time.Duration(s.queryTimeout.Load())
	if d <= 0 {
		return ctx, func() {}
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= d {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

const (
	timeoutStart     = "consentry:query_timeout_start"
	timeoutEnd       = "consentry:query_timeout_end"
	timeoutCancelKey = "consentry:query_timeout_cancel"
	groupScopeKey    = "consentry:group_scope"
)

// registerTimeoutCallbacks bounds each statement gorm runs by the query
// timeout: every store method goes through gorm, so no call can slip by.
// Row and Rows are left alone (their rows are read after the callbacks
// return); the store does not use them.
func (s *GormStore) registerTimeoutCallbacks() error {
	start := func(db *gorm.DB) {
		if db.DryRun {
			// gorm builds subqueries by running their callbacks dry,
			// inside the statement that uses them.
			return
		}
		if st := txFrom(db.Statement.Context, s); st != nil && st.scope != nil {
			// A statement of work in the write group: see groupScope.
			st.scope.mu.Lock()
			db.InstanceSet(groupScopeKey, st.scope)
			if st.scope.ended {
				_ = db.AddError(sql.ErrTxDone)
			}
			return
		}
		ctx, cancel := s.withTimeout(db.Statement.Context)
		db.Statement.Context = ctx
		db.InstanceSet(timeoutCancelKey, cancel)
	}
	end := func(db *gorm.DB) {
		if sc, ok := db.InstanceGet(groupScopeKey); ok {
			sc.(*groupScope).mu.Unlock()
			return
		}
		if cancel, ok := db.InstanceGet(timeoutCancelKey); ok {
			cancel.(context.CancelFunc)()
		}
	}
	dbs := []*gorm.DB{s.gdb}
	if s.rdb != s.gdb {
		dbs = append(dbs, s.rdb)
	}
	var errs []error
	for _, db := range dbs {
		cb := db.Callback()
		errs = append(errs,
			cb.Create().Before("*").Register(timeoutStart, start),
			cb.Create().After("*").Register(timeoutEnd, end),
			cb.Query().Before("*").Register(timeoutStart, start),
			cb.Query().After("*").Register(timeoutEnd, end),
			cb.Update().Before("*").Register(timeoutStart, start),
			cb.Update().After("*").Register(timeoutEnd, end),
			cb.Delete().Before("*").Register(timeoutStart, start),
			cb.Delete().After("*").Register(timeoutEnd, end),
			cb.Raw().Before("*").Register(timeoutStart, start),
			cb.Raw().After("*").Register(timeoutEnd, end),
		)
	}
	return errors.Join(errs...)
}
