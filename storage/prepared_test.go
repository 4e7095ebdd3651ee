package storage

import (
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"gorm.io/gorm/schema"
)

// The prepared reads scan columns by position into a model's fields: each
// must name every column of its model, in the model's order, or a column
// added to the model later would silently read as its zero value.
func TestPreparedReadsNameEveryColumn(t *testing.T) {
	for _, c := range []struct {
		query string
		model any
	}{
		{tokenBySignatureQuery(kindAccessToken), &accessTokenRow{}},
		{userBySubjectQuery, &userRow{}},
		{grantByRequestIDQuery, &grantRow{}},
	} {
		s, err := schema.Parse(c.model, &sync.Map{}, schema.NamingStrategy{})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, f := range s.Fields {
			if f.DBName != "" {
				want = append(want, f.DBName)
			}
		}
		list, _, _ := strings.Cut(strings.TrimPrefix(c.query, "SELECT "), " FROM ")
		got := strings.Split(list, ", ")
		if !slices.Equal(got, want) {
			t.Errorf("%T: the prepared read names %v, the model has %v", c.model, got, want)
		}
	}
}

// The prepared token inserts bind values by position: each must name every
// column of its model, in the model's order, or a column added to the model
// later would be left to its default on SQLite alone. The refresh token's
// retirement columns are the exception: a new token starts without them.
func TestPreparedInsertsNameEveryColumn(t *testing.T) {
	setLater := []string{"retired_at", "successor"}
	for _, c := range []struct {
		kind  tokenKind
		model any
	}{
		{kindAuthorizeCode, &authorizeCodeRow{}},
		{kindAccessToken, &accessTokenRow{}},
		{kindRefreshToken, &refreshTokenRow{}},
		{kindPKCE, &pkceRequestRow{}},
		{kindOIDC, &oidcSessionRow{}},
	} {
		s, err := schema.Parse(c.model, &sync.Map{}, schema.NamingStrategy{})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, f := range s.Fields {
			if f.DBName != "" && !slices.Contains(setLater, f.DBName) {
				want = append(want, f.DBName)
			}
		}
		query := insertTokenQuery(c.kind)
		_, list, _ := strings.Cut(query, " (")
		list, values, _ := strings.Cut(list, ") VALUES (")
		got := strings.Split(list, ", ")
		if !slices.Equal(got, want) {
			t.Errorf("%T: the prepared insert names %v, the model has %v", c.model, got, want)
		}
		if n := strings.Count(values, "?"); n != len(got) || n != len(insertTokenArgs(c.kind, &tokenFields{}, "")) {
			t.Errorf("%s: %d placeholders and %d arguments for %d columns", query, n, len(insertTokenArgs(c.kind, &tokenFields{}, "")), len(got))
		}
	}
}

// The hot writes are prepared once the schema is up to date: by Migrate,
// or by the first PendingMigrations that finds nothing to do, as serve
// calls it on a database another process migrated.
func TestHotWritesPreparedOnceTheSchemaIsUpToDate(t *testing.T) {
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "consentry.db")
	prepared := func(s *GormStore) int {
		n := 0
		for _, q := range preparedWriteQueries() {
			if sqliteOf(t, s).writes.get(q) != nil {
				n++
			}
		}
		return n
	}
	migrated := openForTest(t, dsn)
	if n := prepared(migrated); n != 0 {
		t.Fatalf("%d writes prepared before the schema exists", n)
	}
	if err := migrated.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, want := prepared(migrated), len(preparedWriteQueries()); n != want {
		t.Errorf("after Migrate: %d of %d writes prepared", n, want)
	}
	other := openForTest(t, dsn)
	if n, err := other.PendingMigrations(t.Context()); err != nil || n != 0 {
		t.Fatalf("PendingMigrations: %d, %v", n, err)
	}
	if n, want := prepared(other), len(preparedWriteQueries()); n != want {
		t.Errorf("after PendingMigrations: %d of %d writes prepared", n, want)
	}
}

// When the writes cannot be prepared, the store says so and writes through
// gorm: here they are prepared before the tables exist.
func TestUnpreparedWritesGoThroughGorm(t *testing.T) {
	logs := &syncBuffer{}
	s, err := Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "consentry.db"),
		slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	sqliteOf(t, s).schemaReady(t.Context()) // Migrate's call then prepares nothing
	if !strings.Contains(logs.String(), "hot writes stay unprepared") {
		t.Errorf("no warning of the failed prepare; logs: %s", logs)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, q := range preparedWriteQueries() {
		if sqliteOf(t, s).writes.get(q) != nil {
			t.Fatalf("%q is prepared", q)
		}
	}
	// A write that takes the fallback: the code's invalidation, in the
	// group, through gorm.
	if err := s.InvalidateAuthorizeCodeSession(t.Context(), "unknown"); !errors.Is(err, ErrNotFound) {
		t.Errorf("invalidate an unknown code: %v, want ErrNotFound", err)
	}
	if err := s.DeleteAccessTokenSession(t.Context(), "unknown"); err != nil {
		t.Errorf("delete an unknown access token: %v", err)
	}
}

// A prepared insert reports a taken signature as ErrAlreadyExists, as the
// insert through gorm does.
func TestPreparedInsertOfATakenSignature(t *testing.T) {
	s := newTestStore(t, nil)
	if sqliteOf(t, s).writes.get(insertTokenQuery(kindAccessToken)) == nil {
		t.Fatal("the access token insert is not prepared")
	}
	r := &fosite.Request{ID: "req-1", RequestedAt: time.Now(), Client: &Client{ID: "app"}, Session: openid.NewDefaultSession()}
	if err := s.CreateAccessTokenSession(t.Context(), "sig", r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessTokenSession(t.Context(), "sig", r); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("second insert under one signature: %v, want ErrAlreadyExists", err)
	}
}
