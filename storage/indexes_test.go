package storage

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMigrateAddsIndexes: a database the previous release migrated gets
// each index a later step adds (it lacked them: they are dropped here, as
// step 1 now creates them with the tables).
func TestMigrateAddsIndexes(t *testing.T) {
	for _, c := range []struct {
		index   string
		model   any
		applied int // the steps the previous release had applied
	}{
		{rememberedGrantsIndex, &grantRow{}, 3},
		{successorIndex, &refreshTokenRow{}, 4},
	} {
		t.Run(c.index, func(t *testing.T) {
			migrationDSNs(t, func(t *testing.T, dsn string) {
				s := openForTest(t, dsn)
				migrateAsEarlierRelease(t, s, func(any) bool { return false }, c.applied)
				if err := s.gdb.Migrator().DropIndex(c.model, c.index); err != nil {
					t.Fatal(err)
				}
				if err := s.Migrate(t.Context()); err != nil {
					t.Fatal(err)
				}
				if !s.gdb.Migrator().HasIndex(c.model, c.index) {
					t.Errorf("no %s after the migration", c.index)
				}
				if rows := appliedMigrations(t, s); !slices.EqualFunc(rows, migrations, func(r schemaMigrationRow, m migration) bool {
					return r.Version == m.version
				}) {
					t.Errorf("applied migrations: %+v", rows)
				}
			})
		})
	}
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

	rec := recordStatements(t, s)
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

// TestSuccessorCleanupSkipsClearedTokens: garbage collection clears the
// successors of refresh tokens retired long enough ago. Retired tokens stay
// until they expire (30 days by default) with their successor cleared, and
// the search must not step over all of them on every run: it goes through
// the partial index of the tokens whose successor is still set.
func TestSuccessorCleanupSkipsClearedTokens(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, nil)
	now := time.Now().UTC()
	retiredAt := now.Add(-time.Hour)
	insert := func(signature string, successor any) {
		t.Helper()
		_, err := s.sqlDB.ExecContext(ctx, "INSERT INTO "+tableRefreshTokens+" (signature, request_id, client_id, subject, "+
			"requested_at, expires_at, requested_scopes, granted_scopes, requested_audience, granted_audience, form, session, "+
			"active, access_token_signature, retired_at, successor) VALUES (?, ?, 'app', 'sub-1', ?, ?, '[]', '[]', '[]', '[]', '', "+
			"'null', false, '', ?, ?)", signature, "req-"+signature, retiredAt, now.Add(24*time.Hour), retiredAt, successor)
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		insert(fmt.Sprintf("cleared-%d", i), nil)
	}
	insert("pending", []byte("sealed"))
	if _, err := s.sqlDB.ExecContext(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}

	rec := recordStatements(t, s)
	var n int
	var err error
	stmts := rec.during(func() { n, err = s.CollectGarbage(ctx, now, now.Add(-time.Minute), 500) })
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("collected %d rows, want the one successor", n)
	}
	var cleanup []capturedStmt
	for _, st := range stmts {
		// The recorder also sees the subquery, built on its own.
		if strings.HasPrefix(st.SQL, "UPDATE") && strings.Contains(st.SQL, "successor") {
			cleanup = append(cleanup, st)
		}
	}
	if len(cleanup) != 1 {
		t.Fatalf("successor statements: %+v, want one", cleanup)
	}
	plan, err := queryPlan(ctx, s.sqlDB, cleanup[0])
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN %s: %v", cleanup[0].SQL, err)
	}
	if joined := strings.Join(plan, " | "); !strings.Contains(joined, successorIndex) {
		t.Errorf("plan %q of %s does not use %s", joined, cleanup[0].SQL, successorIndex)
	}
}
