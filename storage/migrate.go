package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// tableSchemaMigrations records which numbered migrations were applied.
const tableSchemaMigrations = "consentry_schema_migrations"

// migrationLock is the PostgreSQL advisory lock that serialises migrations
// between instances and `consentry migrate` runs ("cons-mig").
const migrationLock int64 = 0x636f6e732d6d6967

type schemaMigrationRow struct {
	Version   int       `gorm:"column:version;primaryKey;autoIncrement:false"`
	Name      string    `gorm:"column:name;not null"`
	AppliedAt time.Time `gorm:"column:applied_at;not null"`
}

func (schemaMigrationRow) TableName() string { return tableSchemaMigrations }

// migration is one forward-only schema step. up runs in a transaction,
// together with the row that records it.
type migration struct {
	version int
	name    string
	up      func(tx *gorm.DB) error
}

// migrations is the schema's history, in order. Rules for a new step:
//   - append it with the next version; never change or remove a released one;
//   - only add: tables, nullable columns or NOT NULL columns with a default,
//     indexes. Never drop, rename or retype a column: instances of the
//     previous version keep serving against the migrated schema during a
//     rolling deploy;
//   - migration 1 creates the tables as the current models define them, so a
//     later step runs both on a database that step 1 created long ago and on
//     one it created a moment before: write it to be a no-op on the latter
//     (AutoMigrate of the changed model, or HasColumn/HasIndex first).
var migrations = []migration{
	{version: 1, name: "baseline", up: func(tx *gorm.DB) error {
		// On a database created before versioned migrations this adds what is
		// missing and leaves the rest alone.
		return tx.AutoMigrate(allModels()...)
	}},
	{version: 2, name: "device_authorizations", up: func(tx *gorm.DB) error {
		// The device authorization grant (RFC 8628) and the rate limits of
		// its verification page. New tables only; a no-op where step 1 just
		// created them.
		return tx.AutoMigrate(&deviceAuthorizationRow{}, &rateLimitRow{})
	}},
	{version: 3, name: "client_generation", up: func(tx *gorm.DB) error {
		// The counter that tells the client cache a client changed.
		return clientGenerationTriggers(tx)
	}},
	// The consent check reads only the grants still remembered.
	{version: 4, name: "grants_remembered_index", up: addIndex(&grantRow{}, rememberedGrantsIndex)},
	// Garbage collection finds the successors left to clear.
	{version: 5, name: "refresh_successor_index", up: addIndex(&refreshTokenRow{}, successorIndex)},
	// Resource servers allowed to introspect other clients' tokens.
	{version: 6, name: "client_introspect", up: addColumn(&clientRow{}, "Introspect")},
	{version: 7, name: "browser_sessions", up: func(tx *gorm.DB) error {
		// Browser sessions live on the server. A new table only; a no-op
		// where step 1 just created it.
		return tx.AutoMigrate(&sessionRow{})
	}},
	// Failed sign-ins per account and per address (login throttling). A
	// new table; a no-op where step 1 just created it.
	{version: 8, name: "login_throttles", up: func(tx *gorm.DB) error { return tx.AutoMigrate(&loginThrottleRow{}) }},
	// Company sign-in: each user's connector, and the upstream people
	// linked to users.
	{version: 9, name: "connectors", up: func(tx *gorm.DB) error {
		if err := addColumn(&userRow{}, "ConnectorID")(tx); err != nil {
			return err
		}
		return tx.AutoMigrate(&identityRow{})
	}},
}

// addIndex is a step that creates the index name of model as the model
// defines it; a no-op where step 1 created it with the table.
func addIndex(model any, name string) func(tx *gorm.DB) error {
	return func(tx *gorm.DB) error {
		if tx.Migrator().HasIndex(model, name) {
			return nil
		}
		return tx.Migrator().CreateIndex(model, name)
	}
}

// addColumn is a step that adds the column of model's field as the model
// defines it; a no-op where step 1 created it with the table.
func addColumn(model any, field string) func(tx *gorm.DB) error {
	return func(tx *gorm.DB) error {
		if tx.Migrator().HasColumn(model, field) {
			return nil
		}
		return tx.Migrator().AddColumn(model, field)
	}
}

const (
	rememberedGrantsIndex = "idx_consentry_grants_remembered"
	successorIndex        = "idx_consentry_refresh_tokens_successor"
)

// Migrate applies the migrations the database lacks, in order, each in its
// own transaction with its record. Concurrent runs are safe: each step
// takes a lock (a PostgreSQL advisory lock; on SQLite the write lock that
// BEGIN IMMEDIATE takes) and checks its record again under it. A database
// that is up to date is only read.
func (s *GormStore) Migrate(ctx context.Context) error {
	pending, err := s.pendingMigrations(ctx)
	if err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	for _, m := range pending {
		applied, err := s.applyMigration(ctx, m)
		if err != nil {
			return fmt.Errorf("migrate database: step %d (%s): %w", m.version, m.name, err)
		}
		if applied {
			s.logger.InfoContext(ctx, "applied schema migration", "version", m.version, "name", m.name)
		}
	}
	s.schemaUpToDate(ctx)
	return nil
}

// schemaUpToDate records that the schema is up to date and tells the
// engine, which may prepare statements on its tables.
func (s *GormStore) schemaUpToDate(ctx context.Context) {
	s.migrated.Store(true)
	s.engine.schemaReady(ctx)
}

// PendingMigrations returns how many migrations this build knows that the
// database lacks; 0 when it is up to date (also when a newer build has
// migrated it further).
func (s *GormStore) PendingMigrations(ctx context.Context) (int, error) {
	if s.migrated.Load() {
		// Migrations are never undone: once up to date, always up to date.
		return 0, nil
	}
	pending, err := s.pendingMigrations(ctx)
	if err != nil {
		return 0, fmt.Errorf("check schema migrations: %w", err)
	}
	if len(pending) == 0 {
		s.schemaUpToDate(ctx)
	}
	return len(pending), nil
}

func (s *GormStore) pendingMigrations(ctx context.Context) ([]migration, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	db := s.gdb.WithContext(ctx)
	exists, err := hasMigrationsTable(db)
	if err != nil {
		return nil, err
	}
	if !exists {
		return migrations, nil
	}
	var versions []int
	if err := db.Model(&schemaMigrationRow{}).Pluck("version", &versions).Error; err != nil {
		return nil, fmt.Errorf("list applied migrations: %w", err)
	}
	applied := make(map[int]bool, len(versions))
	for _, v := range versions {
		applied[v] = true
	}
	var pending []migration
	for _, m := range migrations {
		if !applied[m.version] {
			pending = append(pending, m)
		}
	}
	return pending, nil
}

// applyMigration runs m unless another run applied it first, and reports
// whether it ran.
func (s *GormStore) applyMigration(ctx context.Context, m migration) (bool, error) {
	var applied bool
	// The pool, not s.db: a migration is never part of a caller's
	// transaction, and has no query timeout.
	err := s.gdb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.engine.lock(tx, migrationLock); err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
		// Under the lock: the table is created once, and a step applied by a
		// concurrent run is seen.
		exists, err := hasMigrationsTable(tx)
		if err != nil {
			return err
		}
		if !exists {
			if err := tx.Migrator().CreateTable(&schemaMigrationRow{}); err != nil {
				return fmt.Errorf("create %s: %w", tableSchemaMigrations, err)
			}
		}
		var n int64
		if err := tx.Model(&schemaMigrationRow{}).Where("version = ?", m.version).Count(&n).Error; err != nil {
			return fmt.Errorf("read migration record: %w", err)
		}
		if n > 0 {
			return nil
		}
		if err := m.up(tx); err != nil {
			return err
		}
		if err := tx.Create(&schemaMigrationRow{Version: m.version, Name: m.name, AppliedAt: s.now().UTC()}).Error; err != nil {
			return fmt.Errorf("record migration: %w", err)
		}
		applied = true
		return nil
	})
	return applied, err
}

func hasMigrationsTable(db *gorm.DB) (bool, error) {
	// HasTable reports failures only as false; ask a cheap question first
	// so that an unreachable database is an error, not "no migrations".
	if err := db.Exec("SELECT 1").Error; err != nil {
		return false, fmt.Errorf("check schema migrations table: %w", err)
	}
	return db.Migrator().HasTable(tableSchemaMigrations), nil
}
