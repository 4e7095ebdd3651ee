package storage

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMigrateAddsRememberedGrantsIndex: a database the previous release
// migrated (steps 1 to 3) gets the index of the consent check.
func TestMigrateAddsRememberedGrantsIndex(t *testing.T) {
	migrationDSNs(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openForTest(t, dsn)
		migrateAsEarlierRelease(t, s, func(any) bool { return false }, 3)
		// The earlier release's grants table, which had no such index.
		if err := s.gdb.Migrator().DropIndex(&grantRow{}, rememberedGrantsIndex); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if !s.gdb.Migrator().HasIndex(&grantRow{}, rememberedGrantsIndex) {
			t.Errorf("no %s after the migration", rememberedGrantsIndex)
		}
		if rows := appliedMigrations(t, s); !slices.EqualFunc(rows, migrations, func(r schemaMigrationRow, m migration) bool {
			return r.Version == m.version
		}) {
			t.Errorf("applied migrations: %+v", rows)
		}
	})
}

// TestConsentCheckReadsOnlyRememberedGrants: the consent policy's lookup
// (a user's unrevoked grants to a client, remembered until after now)
// searches the remembered-grants index by remember_until, so that its cost
// does not grow with every authorization the user ever made.
func TestConsentCheckReadsOnlyRememberedGrants(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, nil)
	now := time.Now().UTC()
	// Many grants not remembered, as a user who consents on every sign-in
	// leaves behind, and one that is; ANALYZE so that the planner knows.
	for i := range 300 {
		g := &Grant{ID: fmt.Sprintf("grt-%d", i), Subject: "sub-1", ClientID: "app", RequestID: fmt.Sprintf("req-%d", i),
			Scopes: []string{"openid", "offline_access"}, Basis: BasisConsent, CreatedAt: now}
		if i == 0 {
			until := now.Add(time.Hour)
			g.RememberUntil = &until
		}
		if err := s.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.sqlDB.ExecContext(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}

	rec := &stmtRecorder{}
	rec.install(t, s.gdb)
	if s.rdb != s.gdb {
		rec.install(t, s.rdb)
	}
	var grants []Grant
	var err error
	stmts := rec.during(func() {
		grants, err = s.ListGrants(ctx, GrantFilter{Subject: "sub-1", ClientID: "app", UnrevokedOnly: true, RememberedAfter: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(grants) != 1 || grants[0].ID != "grt-0" {
		t.Fatalf("remembered grants: %+v, want only grt-0", grants)
	}
	if len(stmts) != 1 {
		t.Fatalf("statements: %+v, want one", stmts)
	}
	plan, err := queryPlan(ctx, s.sqlDB, stmts[0])
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN %s: %v", stmts[0].SQL, err)
	}
	joined := strings.Join(plan, " | ")
	if !strings.Contains(joined, rememberedGrantsIndex) || !strings.Contains(joined, "remember_until>?") {
		t.Errorf("plan %q of %s does not search %s by remember_until", joined, stmts[0].SQL, rememberedGrantsIndex)
	}
}
