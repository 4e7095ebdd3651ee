package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/consentry/consentry/storage"
)

const migrateHelp = `
Apply the schema migrations the database lacks, then exit. On PostgreSQL this
is a deploy step: run it once per new version, before or while the new
instances start (they report not ready until it has run). Migrations only
add tables, columns and indexes, so instances of the previous version keep
serving meanwhile. Concurrent runs are safe, and a run on an up-to-date
database changes nothing. SQLite databases are also migrated automatically by
every command.`

func runMigrate(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	s, err := loadSettings(fs, g, e.getenv)
	if err != nil {
		return err
	}
	// Not openStore, which would migrate SQLite before the count.
	st, err := storage.Open(ctx, s.cfg.DSN, s.logger(e.stderr, slog.LevelInfo))
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	pending, err := st.PendingMigrations(ctx)
	if err != nil {
		return err
	}
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "migrations done: applied %d, the database schema is up to date\n", pending)
	return nil
}

func runVersion(_ context.Context, e *env, c *command, args []string) error {
	fs, _ := c.newFlagSet(e)
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "consentry %s\n", version)
	return nil
}
