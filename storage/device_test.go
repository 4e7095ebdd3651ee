package storage

import (
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"
)

// TestMigrateAddsDeviceTables: a database that the previous release
// migrated (step 1 recorded, before the device tables existed) gets them
// from step 2, which is a no-op on a database that step 1 created now.
func TestMigrateAddsDeviceTables(t *testing.T) {
	migrationDSNs(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openForTest(t, dsn)
		migrateAsEarlierRelease(t, s, func(m any) bool {
			switch m.(type) {
			case *deviceAuthorizationRow, *rateLimitRow, *clientGenerationRow:
				return true
			}
			return false
		}, 1)
		if n, err := s.PendingMigrations(ctx); err != nil || n != len(migrations)-1 {
			t.Fatalf("PendingMigrations: %d, %v; want %d", n, err, len(migrations)-1)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		for _, m := range []any{&deviceAuthorizationRow{}, &rateLimitRow{}} {
			if !s.gdb.Migrator().HasTable(m) {
				t.Errorf("no table for %T", m)
			}
		}
		if rows := appliedMigrations(t, s); !slices.EqualFunc(rows, migrations, func(r schemaMigrationRow, m migration) bool {
			return r.Version == m.version
		}) {
			t.Errorf("applied migrations: %+v", rows)
		}
		if _, err := s.CountAttempt(ctx, "k", time.Minute, time.Now()); err != nil {
			t.Errorf("CountAttempt on the migrated database: %v", err)
		}
		if err := s.CreateDeviceAuthorization(ctx, &DeviceAuthorization{ID: "h", UserCode: "BCDFGHJK", ClientID: "tv",
			RequestID: "r", ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
			t.Errorf("CreateDeviceAuthorization on the migrated database: %v", err)
		}
		// The lookup columns are indexed.
		for model, columns := range map[any][]string{
			&deviceAuthorizationRow{}: {"user_code", "client_id", "subject", "expires_at"},
			&rateLimitRow{}:           {"expires_at"},
		} {
			indexes, err := s.gdb.Migrator().GetIndexes(model)
			if err != nil {
				t.Fatal(err)
			}
			for _, col := range columns {
				if !slices.ContainsFunc(indexes, func(ix gorm.Index) bool {
					return len(ix.Columns()) > 0 && ix.Columns()[0] == col
				}) {
					t.Errorf("%T: no index on %s", model, col)
				}
			}
		}
	})
}
