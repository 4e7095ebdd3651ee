package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mattn/go-sqlite3"
	"gorm.io/gorm"
)

// sqliteEngine is what SQLite adds to the store, all of it for one file
// serving a concurrent server (docs/performance.md):
//   - a reader/writer split: the store's writes and transactions go through
//     a pool of one connection (SQLite has one writer at a time, and writers
//     queuing in Go wait in order, where writers on several connections
//     would poll the file lock with sleeps that stretch the tail latency),
//     its reads outside a transaction through a pool of read-only
//     connections, which WAL lets read while the writer commits;
//   - the write group (sqlite_writegroup.go), which shares one commit among
//     concurrent write transactions;
//   - the hottest writes prepared on the writer (sqlite_preparedwrites.go);
//   - WAL checkpoints in the background (sqlite_checkpoint.go).
type sqliteEngine struct {
	// gdb and sqlDB are the writer, rdb the reader pool: the store's own
	// handles (GormStore.gdb, GormStore.rdb).
	gdb   *gorm.DB
	sqlDB *sql.DB
	rdb   *gorm.DB
	// group shares one commit among concurrent write transactions.
	group *writeGroup
	// writes holds the prepared statements of the hottest writes.
	writes preparedWrites
	// writesPrepared is set once schemaReady prepared them.
	writesPrepared atomic.Bool
	// checkpointer runs the WAL checkpoints off the commit path.
	checkpointer *walCheckpointer
	logger       *slog.Logger
}

var _ engine = (*sqliteEngine)(nil)

// sqliteMaxOpenConns caps the reader pool: every connection keeps a page
// cache of its own, and reads are short. The writer pool always has one
// connection.
const sqliteMaxOpenConns = 8

// openSQLiteStore opens the store on the sqlite DSN dsn.
func openSQLiteStore(ctx context.Context, dsn string, logger *slog.Logger) (*GormStore, error) {
	writer, err := dialectorFor(writerDSN(dsn))
	if err != nil {
		return nil, err
	}
	// The writer has no gorm statement cache: gorm's cache prepares a
	// statement on a connection while holding an entry other callers wait
	// on, so with a transaction holding the only connection they deadlock.
	// Inside transactions gorm could not reuse its statements anyway; the
	// hot writes have their own, prepared outside any transaction
	// (sqlite_preparedwrites.go). The readers cache theirs: SQLite compiles
	// every statement it runs, and a read never holds a connection while it
	// waits on the cache.
	gdb, sqlDB, err := openGorm(ctx, writer, logger, false)
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(1)
	reader, err := dialectorFor(readOnlyDSN(dsn))
	if err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	rdb, rsqlDB, err := openGorm(ctx, reader, logger, true)
	if err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	rsqlDB.SetMaxOpenConns(sqliteMaxOpenConns)
	checkpointDB, err := openSQLite(dsn)
	if err != nil {
		_ = errors.Join(sqlDB.Close(), rsqlDB.Close())
		return nil, err
	}
	e := &sqliteEngine{gdb: gdb, sqlDB: sqlDB, rdb: rdb, logger: logger}
	e.group = newWriteGroup(gdb, sqlDB, &e.writes)
	e.checkpointer = startCheckpointer(checkpointDB, e.group.whileIdle, logger)
	return newGormStore(gdb, sqlDB, rdb, rsqlDB, e, logger)
}

// begin joins the write group: the work runs in a savepoint of the group's
// transaction, and its commit is the group's.
func (e *sqliteEngine) begin(ctx context.Context, bound func(context.Context) (context.Context, context.CancelFunc)) (*txState, error) {
	sc, err := e.group.join(ctx, bound)
	if err != nil {
		return nil, err
	}
	return &txState{tx: sc.tx, seq: new(atomic.Int64), end: sc, scope: sc}, nil
}

// lock has nothing to do: every write transaction takes the database's
// write lock at BEGIN (txlock=immediate), which serialises them all.
func (e *sqliteEngine) lock(*gorm.DB, int64) error { return nil }

// groupsWrites is true: a write joins the write group, sharing a commit.
func (e *sqliteEngine) groupsWrites() bool { return true }

// readContext cannot be cancelled: a WAL reader never waits for the writer,
// and the driver starts a goroutine to watch every statement whose context
// can end, which costs more than a one-row read.
func (e *sqliteEngine) readContext(ctx context.Context, _ func(context.Context) (context.Context, context.CancelFunc)) (context.Context, context.CancelFunc) {
	return context.WithoutCancel(ctx), func() {}
}

// collectBatch first looks on the reader pool whether selected picks any
// row: most tables have nothing to collect in most batches, and looking
// costs the writer nothing. Only then does change run, with the write group
// idle (writeGroup.whileIdle): the token endpoint's writes wait for it in
// the group's queue, first come first served, and get the writer back the
// moment it ends. Outside the queue, a statement took the writer connection
// ahead of every writer queued for it, and cut the open group short.
func (e *sqliteEngine) collectBatch(ctx context.Context, selected, change func(db *gorm.DB) *gorm.DB) (int64, error) {
	var found []int
	if err := selected(e.rdb.WithContext(ctx)).Select("1").Limit(1).Scan(&found).Error; err != nil {
		return 0, err
	}
	if len(found) == 0 {
		return 0, nil
	}
	var res *gorm.DB
	if err := e.group.whileIdle(ctx, func() { res = change(e.gdb.WithContext(ctx)) }); err != nil {
		return 0, err
	}
	return res.RowsAffected, res.Error
}

func (e *sqliteEngine) maxReaders(requested int) int {
	if requested <= 0 || requested > sqliteMaxOpenConns {
		return sqliteMaxOpenConns
	}
	return requested
}

// schemaReady prepares the hot writes, which need the schema's tables, the
// first time. A failure leaves the writes on gorm.
func (e *sqliteEngine) schemaReady(ctx context.Context) {
	if !e.writesPrepared.CompareAndSwap(false, true) {
		return
	}
	if err := e.writes.prepare(ctx, e.sqlDB, preparedWriteQueries()); err != nil {
		e.logger.WarnContext(ctx, "hot writes stay unprepared", "err", err)
	}
}

func (e *sqliteEngine) close() error {
	return errors.Join(e.writes.close(), e.checkpointer.stop())
}

// sqliteDriverName is mattn/go-sqlite3 with the settings its DSN cannot
// carry. temp_store=MEMORY keeps statement journals and the temporary
// indexes of IN (subquery) off disk: a refresh rotation's transaction costs
// about a fifth less with it.
var sqliteDriverName = sync.OnceValue(func() string {
	const name = "sqlite3_consentry"
	sql.Register(name, &sqlite3.SQLiteDriver{ConnectHook: func(conn *sqlite3.SQLiteConn) error {
		for _, pragma := range []string{
			"PRAGMA temp_store = MEMORY",
			// See sqlite_checkpoint.go: checkpoints run in the background.
			fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walAutocheckpointPages),
			fmt.Sprintf("PRAGMA journal_size_limit = %d", walSizeLimitBytes),
		} {
			if _, err := conn.Exec(pragma, nil); err != nil {
				return fmt.Errorf("%s: %w", pragma, err)
			}
		}
		return nil
	}})
	return name
})

// openSQLite opens a plain database/sql handle on a sqlite DSN, with the
// same connection settings as the store's own.
func openSQLite(dsn string) (*sql.DB, error) {
	_, rest, _ := strings.Cut(dsn, "://")
	conn, err := sqliteConnString(rest)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(sqliteDriverName(), conn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return db, nil
}

// writerDSN is the sqlite DSN of the single writer connection: a larger
// page cache than the readers' 2 MB default, since every write goes through
// it and index pages of the token tables are touched at random.
func writerDSN(dsn string) string {
	if strings.Contains(dsn, "_cache_size=") {
		return dsn
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "_cache_size=-16384"
}

// readOnlyDSN is the sqlite DSN of the reader pool: a write sent to a
// reader by mistake fails instead of competing with the writer for the lock.
func readOnlyDSN(dsn string) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "_query_only=on"
}
