package main

import (
	"context"
	"fmt"
	"log/slog"
)

const migrateHelp = `
Create or update the database schema, then exit. Run it before starting a new
version of Consentry against PostgreSQL; SQLite databases are also migrated
automatically by every command.`

func runMigrate(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	s, err := loadSettings(fs, g, e.getenv)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, s.cfg, s.logger(e.stderr, slog.LevelInfo), true)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)
	fmt.Fprintln(e.stdout, "migrations done: the database schema is up to date")
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
