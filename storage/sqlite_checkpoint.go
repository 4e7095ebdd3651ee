package storage

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// SQLite copies committed pages from the WAL back into the database file in
// checkpoints. By default the connection whose commit pushes the WAL past
// 1000 pages runs the checkpoint, fsync included, before its commit returns:
// with one writer connection every request queued behind it waits too. The
// store runs them instead on a connection of its own, every
// checkpointInterval, in PASSIVE mode (never blocking readers or the
// writer).
const (
	checkpointInterval = 200 * time.Millisecond
	// walAutocheckpointPages keeps SQLite's own checkpoint on commit as a
	// safety net, at 64 MiB of WAL: reached only when the background
	// checkpoints fall behind.
	walAutocheckpointPages = 16384
	// restartAfterPages: under steady load some reader always holds a
	// snapshot in the WAL, so the writer never gets to start it over and
	// the file grows without end. Past this many pages a RESTART
	// checkpoint waits for those readers (milliseconds; new readers read
	// the database file) and lets the next commit start the WAL over.
	restartAfterPages = 8192
	// restartAttempts and restartRetryDelay bound the RESTART's wait for
	// readers that still read the WAL (see restart).
	restartAttempts   = 50
	restartRetryDelay = 100 * time.Microsecond
	// walSizeLimitBytes truncates the WAL file back to this size after a
	// checkpoint has emptied it, so that a burst does not leave a large
	// file behind.
	walSizeLimitBytes = 64 << 20
)

// walCheckpointer runs PASSIVE checkpoints in the background until stopped.
type walCheckpointer struct {
	db *sql.DB
	// whileWritesWait runs a function while the store's writes wait for
	// it in the write group's queue (writeGroup.whileIdle).
	whileWritesWait func(context.Context, func()) error
	cancel          context.CancelFunc
	done            chan struct{}
}

func startCheckpointer(db *sql.DB, whileWritesWait func(context.Context, func()) error, logger *slog.Logger) *walCheckpointer {
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	c := &walCheckpointer{db: db, whileWritesWait: whileWritesWait, cancel: cancel, done: make(chan struct{})}
	go c.run(ctx, logger)
	return c
}

func (c *walCheckpointer) run(ctx context.Context, logger *slog.Logger) {
	defer close(c.done)
	ticker := time.NewTicker(checkpointInterval)
	defer ticker.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		err := c.checkpoint(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			// Logged once per failure streak: commits fall back to
			// SQLite's own checkpoints meanwhile.
			logger.WarnContext(ctx, "background WAL checkpoint failed", "err", err)
			failing = true
		case err == nil && failing:
			logger.InfoContext(ctx, "background WAL checkpoints resumed")
			failing = false
		}
	}
}

func (c *walCheckpointer) checkpoint(ctx context.Context) error {
	var busy, walPages, copiedPages int
	if err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &walPages, &copiedPages); err != nil {
		return fmt.Errorf("wal_checkpoint(PASSIVE): %w", err)
	}
	if walPages < restartAfterPages {
		return nil
	}
	var restartErr error
	if err := c.whileWritesWait(ctx, func() { _, restartErr = c.restart(ctx) }); err != nil {
		return fmt.Errorf("wal_checkpoint(RESTART): wait for the writer: %w", err)
	}
	return restartErr
}

// restart runs a RESTART checkpoint while no write is under way. It blocks
// the writer while it copies the last frames and syncs, then waits until no
// reader still reads the WAL. Readers finish in microseconds, but SQLite's
// busy handler would sleep 1, 2, 5, 10 ms... between tries, every writer
// waiting meanwhile; so the connection gets no busy timeout and the tries
// are spaced here, restartRetryDelay apart. If readers keep it busy for
// all restartAttempts, it reports false and the next tick tries again.
func (c *walCheckpointer) restart(ctx context.Context) (restarted bool, err error) {
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("wal_checkpoint(RESTART): %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
		return false, fmt.Errorf("wal_checkpoint(RESTART): %w", err)
	}
	for range restartAttempts {
		var busy, walPages, copiedPages int
		if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &walPages, &copiedPages); err != nil {
			return false, fmt.Errorf("wal_checkpoint(RESTART): %w", err)
		}
		if busy == 0 {
			return true, nil
		}
		time.Sleep(restartRetryDelay)
	}
	return false, nil
}

// stop ends the loop and closes its connection.
func (c *walCheckpointer) stop() error {
	c.cancel()
	<-c.done
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("close checkpoint connection: %w", err)
	}
	return nil
}
