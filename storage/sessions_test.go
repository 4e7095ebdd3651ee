package storage

import (
	"slices"
	"testing"
	"time"

	"gorm.io/gorm"
)

// TestMigrateAddsSessionsTable: a database of the release before browser
// sessions (steps 1 to 5 applied) gets their table, with its indexes, from
// step 6.
func TestMigrateAddsSessionsTable(t *testing.T) {
	migrationDSNs(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openForTest(t, dsn)
		migrateAsEarlierRelease(t, s, func(m any) bool { _, ok := m.(*sessionRow); return ok }, 5)
		if n, err := s.PendingMigrations(ctx); err != nil || n != len(migrations)-5 {
			t.Fatalf("PendingMigrations: %d, %v; want %d", n, err, len(migrations)-5)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if err := s.CreateSession(ctx, &BrowserSession{IDHash: "h", ID: "id", Subject: "sub", AuthTime: now,
			ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatalf("CreateSession on the migrated database: %v", err)
		}
		indexes, err := s.gdb.Migrator().GetIndexes(&sessionRow{})
		if err != nil {
			t.Fatal(err)
		}
		for _, col := range []string{"id", "subject", "expires_at", "idle_expires_at"} {
			if !slices.ContainsFunc(indexes, func(ix gorm.Index) bool {
				return len(ix.Columns()) > 0 && ix.Columns()[0] == col
			}) {
				t.Errorf("%s.%s is not indexed", tableSessions, col)
			}
		}
	})
}
