package provider

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/consentry/consentry/storage"
)

const (
	// GCBatchSize is how many rows of each kind one garbage-collection batch
	// deletes at most: small enough that a batch holds the database briefly.
	// Under load on SQLite a 500-row delete held the writer 16 ms (p99
	// 149 ms), a 100-row one 4.5 ms (p99 13 ms); every token request
	// queued behind it waits as long (docs/performance.md, step 21).
	GCBatchSize = 100
	// gcPause is the rest between batches, so that the token endpoint is
	// never starved of the database while a large backlog is collected. It
	// is short: with 10 ms between 100-row batches the collector fell behind
	// 5,000 client-credentials grants a second.
	gcPause = time.Millisecond
)

// CollectGarbage deletes what expired before now (codes, tokens, sessions,
// pending authorization requests) and clears the kept responses of refresh
// tokens retired longer ago than retryWindow, batch rows at a time, pausing
// briefly between batches, until a batch finds nothing more. It returns how
// many rows it deleted or cleared. When ctx ends first it stops between
// batches and returns the count so far with ctx's error; a store error
// likewise comes with the count so far.
func CollectGarbage(ctx context.Context, store storage.GarbageCollector, now time.Time, retryWindow time.Duration, batch int) (int, error) {
	if batch <= 0 {
		return 0, fmt.Errorf("collect garbage: batch size %d: must be positive", batch)
	}
	successorsBefore := now.Add(-retryWindow)
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("collect garbage: stopped after %d rows: %w", total, err)
		}
		n, err := store.CollectGarbage(ctx, now, successorsBefore, batch)
		total += n
		if err != nil {
			return total, fmt.Errorf("collect garbage: %w", err)
		}
		if n == 0 {
			return total, nil
		}
		pause := time.NewTimer(gcPause)
		select {
		case <-ctx.Done():
			pause.Stop()
		case <-pause.C:
		}
	}
}

// RunGarbageCollector runs CollectGarbage at once and then every interval,
// with batches of GCBatchSize and the clock now, until ctx ends. It logs what
// each run deleted at info level and failures at warn level; a failed run is
// retried at the next tick.
func RunGarbageCollector(ctx context.Context, store storage.GarbageCollector, interval, retryWindow time.Duration, now func() time.Time, logger *slog.Logger) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		logger.Warn("garbage collection disabled: the interval must be positive", "interval", interval)
		return
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		start := time.Now()
		n, err := CollectGarbage(ctx, store, now(), retryWindow, GCBatchSize)
		switch {
		case ctx.Err() != nil:
			return // shutting down: an interrupted run is not a failure
		case err != nil:
			logger.Warn("garbage collection failed", "deleted", n, "err", err)
		default:
			logger.Info("garbage collected", "deleted", n, "took", time.Since(start).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
