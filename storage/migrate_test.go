package storage

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// The tables as the first release created them, before columns were added.

type v1ClientRow struct {
	ID                       string    `gorm:"column:id;primaryKey"`
	Name                     string    `gorm:"column:name;not null"`
	SecretHash               []byte    `gorm:"column:secret_hash"`
	Public                   bool      `gorm:"column:public;not null"`
	RedirectURIs             string    `gorm:"column:redirect_uris;not null"`
	GrantTypes               string    `gorm:"column:grant_types;not null"`
	ResponseTypes            string    `gorm:"column:response_types;not null"`
	Scopes                   string    `gorm:"column:scopes;not null"`
	Audience                 string    `gorm:"column:audience;not null"`
	TokenEndpointAuthMethod  string    `gorm:"column:token_endpoint_auth_method;not null"`
	IDTokenSignedResponseAlg string    `gorm:"column:id_token_signed_response_alg;not null"`
	LogoURI                  string    `gorm:"column:logo_uri;not null"`
	ClientURI                string    `gorm:"column:client_uri;not null"`
	PolicyURI                string    `gorm:"column:policy_uri;not null"`
	TosURI                   string    `gorm:"column:tos_uri;not null"`
	CreatedAt                time.Time `gorm:"column:created_at;not null"`
	UpdatedAt                time.Time `gorm:"column:updated_at;not null"`
}

func (v1ClientRow) TableName() string { return tableClients }

type v1RefreshTokenRow struct {
	Token                tokenFields `gorm:"embedded"`
	AccessTokenSignature string      `gorm:"column:access_token_signature;not null"`
}

func (v1RefreshTokenRow) TableName() string { return tableRefreshTokens }

type v1GrantRow struct {
	ID             string     `gorm:"column:id;primaryKey"`
	Subject        string     `gorm:"column:subject;not null;index:idx_consentry_grants_subject_client,priority:1"`
	ClientID       string     `gorm:"column:client_id;not null;index:idx_consentry_grants_subject_client,priority:2;index"`
	RequestID      string     `gorm:"column:request_id;not null;uniqueIndex"`
	Scopes         string     `gorm:"column:scopes;not null"`
	Basis          string     `gorm:"column:basis;not null"`
	AgreementID    string     `gorm:"column:agreement_id;not null"`
	RememberedFrom string     `gorm:"column:remembered_from;not null"`
	CreatedAt      time.Time  `gorm:"column:created_at;not null;index"`
	RememberUntil  *time.Time `gorm:"column:remember_until"`
	RevokedAt      *time.Time `gorm:"column:revoked_at"`
	IPAddress      string     `gorm:"column:ip_address;not null"`
	UserAgent      string     `gorm:"column:user_agent;not null"`
}

func (v1GrantRow) TableName() string { return tableGrants }

type v1AgreementRow struct {
	ID         string     `gorm:"column:id;primaryKey"`
	ClientID   string     `gorm:"column:client_id;not null;index"`
	Subject    string     `gorm:"column:subject;not null;index"`
	AllUsers   bool       `gorm:"column:all_users;not null"`
	Scopes     string     `gorm:"column:scopes;not null"`
	Reference  string     `gorm:"column:reference;not null"`
	StartsAt   time.Time  `gorm:"column:starts_at;not null"`
	ExpiresAt  *time.Time `gorm:"column:expires_at"`
	RecordedBy string     `gorm:"column:recorded_by;not null"`
	CreatedAt  time.Time  `gorm:"column:created_at;not null;index"`
	RevokedAt  *time.Time `gorm:"column:revoked_at"`
}

func (v1AgreementRow) TableName() string { return tableAgreements }

// TestMigrateExistingDatabase: Migrate adds the new columns and tables to a
// populated database of the first release, with values that keep the old
// rows' meaning, and is idempotent. On PostgreSQL too when
// CONSENTRY_TEST_POSTGRES_DSN is set.
func TestMigrateExistingDatabase(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		testMigrateExisting(t, "sqlite://"+filepath.Join(t.TempDir(), "old.db"))
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		dsn := os.Getenv("CONSENTRY_TEST_POSTGRES_DSN")
		if dsn == "" {
			t.Skip("set CONSENTRY_TEST_POSTGRES_DSN to a PostgreSQL URL to run this test on PostgreSQL")
		}
		testMigrateExisting(t, emptyPostgresDatabase(t, dsn))
	})
}

func testMigrateExisting(t *testing.T, dsn string) {
	ctx := t.Context()
	s, err := Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	must := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must(s.gdb.AutoMigrate(&v1ClientRow{}, &v1RefreshTokenRow{}, &v1GrantRow{}, &v1AgreementRow{}), "create first-release tables")
	created := time.Now().UTC().Truncate(time.Second)
	must(s.gdb.Create(&v1ClientRow{ID: "app", RedirectURIs: "[]", GrantTypes: "[]", ResponseTypes: "[]", Scopes: "[]",
		Audience: "[]", CreatedAt: created, UpdatedAt: created}).Error, "insert client")
	must(s.gdb.Create(&v1AgreementRow{ID: "agreement-1", ClientID: "app", AllUsers: true, Scopes: `["openid"]`,
		StartsAt: created, CreatedAt: created}).Error, "insert agreement")
	must(s.gdb.Create(&v1GrantRow{ID: "grant-1", Subject: "sub-alice", ClientID: "app", RequestID: "req-1", Scopes: "[]",
		Basis: BasisConsent, CreatedAt: created}).Error, "insert grant")
	must(s.gdb.Create(&v1RefreshTokenRow{Token: tokenFields{Signature: "sig-1", RequestID: "req-1", ClientID: "app",
		Subject: "sub-alice", RequestedAt: created, RequestedScopes: "[]", GrantedScopes: "[]", RequestedAudience: "[]",
		GrantedAudience: "[]", Session: "null", Active: true}}).Error, "insert refresh token")

	// A database of a release before versioned migrations: every step is
	// pending, the baseline adds what is missing.
	if n, err := s.PendingMigrations(ctx); err != nil || n != len(migrations) {
		t.Fatalf("PendingMigrations on a first-release database: %d, %v; want %d", n, err, len(migrations))
	}
	must(s.Migrate(ctx), "Migrate")
	must(s.Migrate(ctx), "Migrate again")
	if n, err := s.PendingMigrations(ctx); err != nil || n != 0 {
		t.Fatalf("PendingMigrations after Migrate: %d, %v; want 0", n, err)
	}

	c, err := s.GetStoredClient(ctx, "app")
	must(err, "GetStoredClient")
	if c.OfflineIdleLifetime != 0 || c.OfflineAbsoluteLifetime != 0 {
		t.Errorf("old client's offline lifetimes: %v, %v; want 0", c.OfflineIdleLifetime, c.OfflineAbsoluteLifetime)
	}
	a, err := s.GetAgreement(ctx, "agreement-1")
	must(err, "GetAgreement")
	if !a.UserMayRemove {
		t.Error("old agreement: UserMayRemove false, want the default true")
	}
	g, err := s.GetGrantByRequestID(ctx, "req-1")
	must(err, "GetGrantByRequestID")
	if g.LastUsedAt != nil {
		t.Errorf("old grant: LastUsedAt %v, want nil", g.LastUsedAt)
	}
	r, err := s.GetRefreshTokenRetirement(ctx, "sig-1")
	must(err, "GetRefreshTokenRetirement")
	if !r.Active || r.RetiredAt != nil || r.Successor != nil {
		t.Errorf("old refresh token: %+v, want active and not retired", r)
	}

	// The new columns and tables work on the migrated database.
	must(s.CreateAgreement(ctx, &Agreement{ID: "agreement-2", ClientID: "app", AllUsers: true}), "CreateAgreement")
	a, err = s.GetAgreement(ctx, "agreement-2")
	must(err, "GetAgreement")
	if a.UserMayRemove {
		t.Error("new agreement created with UserMayRemove false reads back true")
	}
	must(s.OptOutOfAgreement(ctx, "agreement-1", "sub-alice", time.Time{}), "OptOutOfAgreement")
	must(s.TouchGrant(ctx, "req-1", time.Time{}), "TouchGrant")
	must(s.RetireRefreshToken(ctx, "sig-1", time.Time{}, []byte("sealed")), "RetireRefreshToken")
	must(s.AppendAuditEvent(ctx, &AuditEvent{Type: EventConsentGiven}), "AppendAuditEvent")
	if _, err := s.CollectGarbage(ctx, time.Now(), time.Now(), 100); err != nil {
		t.Fatalf("CollectGarbage: %v", err)
	}
}

// TestIndexes: the lookup columns of the new code paths are indexed, so that
// CollectGarbage and the audit log do not scan their tables.
func TestIndexes(t *testing.T) {
	s := newTestStore(t, nil)
	want := map[any][]string{
		&authorizeCodeRow{}:   {"expires_at"},
		&accessTokenRow{}:     {"expires_at"},
		&refreshTokenRow{}:    {"expires_at", "retired_at"},
		&pkceRequestRow{}:     {"expires_at"},
		&oidcSessionRow{}:     {"expires_at"},
		&authRequestRow{}:     {"expires_at"},
		&assertionJTIRow{}:    {"expires_at"},
		&auditEventRow{}:      {"time", "subject", "client_id"},
		&agreementOptOutRow{}: {"subject"},
	}
	for model, columns := range want {
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
}

// emptyPostgresDatabase creates a database of its own on the server named by
// adminDSN, drops it after the test and returns its URL.
func emptyPostgresDatabase(t *testing.T, adminDSN string) string {
	t.Helper()
	u, err := url.Parse(adminDSN)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatal("CONSENTRY_TEST_POSTGRES_DSN must be a postgres:// URL")
	}
	name := "consentry_test_" + strings.ToLower(rand.Text())
	exec := func(stmt string) {
		ctx := context.WithoutCancel(t.Context())
		conn, err := pgx.Connect(ctx, adminDSN)
		if err != nil {
			t.Fatalf("connect to PostgreSQL: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	exec("CREATE DATABASE " + pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() { exec("DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)") })
	u.Path = "/" + name
	return u.String()
}

// migrationDSNs runs fn on a new SQLite file and, when
// CONSENTRY_TEST_POSTGRES_DSN is set, on a new PostgreSQL database.
func migrationDSNs(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("SQLite", func(t *testing.T) {
		fn(t, "sqlite://"+filepath.Join(t.TempDir(), "consentry.db"))
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		dsn := os.Getenv("CONSENTRY_TEST_POSTGRES_DSN")
		if dsn == "" {
			t.Skip("set CONSENTRY_TEST_POSTGRES_DSN to a PostgreSQL URL to run this test on PostgreSQL")
		}
		fn(t, emptyPostgresDatabase(t, dsn))
	})
}

func openForTest(t *testing.T, dsn string) *GormStore {
	t.Helper()
	s, err := Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// migrateAsEarlierRelease gives s the schema an earlier release left: the
// tables of every model but those newer() names, and the records of the
// first `applied` migrations.
func migrateAsEarlierRelease(t *testing.T, s *GormStore, newer func(model any) bool, applied int) {
	t.Helper()
	var earlier []any
	for _, m := range allModels() {
		if !newer(m) {
			earlier = append(earlier, m)
		}
	}
	if err := s.gdb.AutoMigrate(earlier...); err != nil {
		t.Fatal(err)
	}
	if err := s.gdb.Migrator().CreateTable(&schemaMigrationRow{}); err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:applied] {
		if err := s.gdb.Create(&schemaMigrationRow{Version: m.version, Name: m.name, AppliedAt: time.Now()}).Error; err != nil {
			t.Fatal(err)
		}
	}
}

func appliedMigrations(t *testing.T, s *GormStore) []schemaMigrationRow {
	t.Helper()
	var rows []schemaMigrationRow
	if err := s.gdb.Order("version").Find(&rows).Error; err != nil {
		t.Fatalf("read %s: %v", tableSchemaMigrations, err)
	}
	return rows
}

// TestMigrateFreshDatabase: every migration is applied and recorded once;
// a second Migrate changes nothing.
func TestMigrateFreshDatabase(t *testing.T) {
	migrationDSNs(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openForTest(t, dsn)
		if n, err := s.PendingMigrations(ctx); err != nil || n != len(migrations) {
			t.Fatalf("PendingMigrations on an empty database: %d, %v; want %d", n, err, len(migrations))
		}
		before := time.Now().UTC().Add(-time.Second)
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		rows := appliedMigrations(t, s)
		if len(rows) != len(migrations) {
			t.Fatalf("recorded %d migrations, want %d: %+v", len(rows), len(migrations), rows)
		}
		for i, m := range migrations {
			r := rows[i]
			if r.Version != m.version || r.Name != m.name || r.AppliedAt.Before(before) || r.AppliedAt.After(time.Now().Add(time.Second)) {
				t.Errorf("record %d: %+v, want version %d %q applied now", i, r, m.version, m.name)
			}
		}
		for _, model := range allModels() {
			if !s.gdb.Migrator().HasTable(model) {
				t.Errorf("no table for %T", model)
			}
		}
		if n, err := s.PendingMigrations(ctx); err != nil || n != 0 {
			t.Fatalf("PendingMigrations after Migrate: %d, %v; want 0", n, err)
		}

		// A second run, from another store as another instance would: nothing
		// pending, nothing recorded again.
		other := openForTest(t, dsn)
		if n, err := other.PendingMigrations(ctx); err != nil || n != 0 {
			t.Fatalf("PendingMigrations from a second store: %d, %v; want 0", n, err)
		}
		if err := other.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if again := appliedMigrations(t, s); !slices.EqualFunc(again, rows, func(a, b schemaMigrationRow) bool {
			return a.Version == b.Version && a.AppliedAt.Equal(b.AppliedAt)
		}) {
			t.Errorf("second Migrate changed the records: %+v, was %+v", again, rows)
		}
	})
}

// TestMigrateConcurrently: instances starting together (or two `consentry
// migrate` runs) all succeed, and each step is applied once.
func TestMigrateConcurrently(t *testing.T) {
	migrationDSNs(t, func(t *testing.T, dsn string) {
		const runs = 4
		stores := make([]*GormStore, runs)
		for i := range stores {
			stores[i] = openForTest(t, dsn)
		}
		var wg sync.WaitGroup
		errs := make([]error, runs)
		start := make(chan struct{})
		for i, s := range stores {
			wg.Go(func() {
				<-start
				errs[i] = s.Migrate(t.Context())
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Migrate %d: %v", i, err)
			}
		}
		if rows := appliedMigrations(t, stores[0]); len(rows) != len(migrations) {
			t.Errorf("recorded %+v, want each of %d migrations once", rows, len(migrations))
		}
		for i, s := range stores {
			if n, err := s.PendingMigrations(t.Context()); err != nil || n != 0 {
				t.Errorf("store %d: PendingMigrations %d, %v; want 0", i, n, err)
			}
		}
	})
}

// TestMigrationsAreOrdered guards the list itself: versions start at 1,
// increase by one and have names.
func TestMigrationsAreOrdered(t *testing.T) {
	for i, m := range migrations {
		if m.version != i+1 || m.name == "" || m.up == nil {
			t.Errorf("migration %d: version %d, name %q; want version %d with a name and a step", i, m.version, m.name, i+1)
		}
	}
}

// TestPendingMigrationsCountsMissingSteps: a database that a newer build
// migrated further is up to date for this one; one missing a step is not,
// until Migrate applies it.
func TestPendingMigrationsCountsMissingSteps(t *testing.T) {
	ctx := t.Context()
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "consentry.db")
	s := openForTest(t, dsn)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.gdb.Create(&schemaMigrationRow{Version: migrations[len(migrations)-1].version + 1, Name: "from a newer build", AppliedAt: time.Now()}).Error; err != nil {
		t.Fatal(err)
	}
	if n, err := openForTest(t, dsn).PendingMigrations(ctx); err != nil || n != 0 {
		t.Fatalf("PendingMigrations with a newer step recorded: %d, %v; want 0", n, err)
	}
	if err := s.gdb.Where("version = ?", 1).Delete(&schemaMigrationRow{}).Error; err != nil {
		t.Fatal(err)
	}
	other := openForTest(t, dsn)
	if n, err := other.PendingMigrations(ctx); err != nil || n != 1 {
		t.Fatalf("PendingMigrations without step 1: %d, %v; want 1", n, err)
	}
	if err := other.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := other.PendingMigrations(ctx); err != nil || n != 0 {
		t.Fatalf("PendingMigrations after Migrate: %d, %v; want 0", n, err)
	}
}
