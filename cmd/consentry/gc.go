package main

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/provider"
)

const gcHelp = `
Delete what has expired, once, and exit: authorization codes, access and
refresh tokens, PKCE and OpenID Connect sessions, pending authorization
requests, and the responses kept for the refresh retry window
(--refresh-retry-window) once it has passed. Nothing that is still valid is
touched, and the audit log is never touched.

'consentry serve' does this by itself every gc_interval (--gc-interval).
This command is for doing it at once, for example after lowering lifetimes.
It works in small batches with pauses between them, so it can run next to a
serving provider.`

func runGC(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	s, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	n, err := provider.CollectGarbage(ctx, st, time.Now(), s.cfg.OfflineAccess.RetryWindow.Std(), provider.GCBatchSize)
	if err != nil && n > 0 {
		return fmt.Errorf("after deleting %d expired rows: %w", n, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "deleted %d expired rows\n", n)
	return nil
}
