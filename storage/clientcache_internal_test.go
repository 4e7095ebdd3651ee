package storage

import (
	"path/filepath"
	"testing"
)

// TestMigrateAddsClientGeneration: a database the previous release migrated
// (steps 1 and 2, no generation table) gets the counter and its triggers,
// and every kind of change to the clients table moves it on.
func TestMigrateAddsClientGeneration(t *testing.T) {
	migrationDSNs(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openForTest(t, dsn)
		migrateAsEarlierRelease(t, s, func(m any) bool {
			_, ok := m.(*clientGenerationRow)
			return ok
		}, 2)
		if err := s.CreateClient(ctx, &Client{ID: "app", Name: "App"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		last := int64(-1)
		moved := func(what string) {
			t.Helper()
			g, err := s.clientGeneration(ctx)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if g <= last {
				t.Errorf("%s: client generation %d, want more than %d", what, g, last)
			}
			last = g
		}
		moved("after the migration")
		if err := s.CreateClient(ctx, &Client{ID: "other", Name: "Other"}); err != nil {
			t.Fatal(err)
		}
		moved("after an insert")
		if err := s.gdb.Exec("UPDATE consentry_clients SET name = 'Renamed' WHERE id = 'app'").Error; err != nil {
			t.Fatal(err)
		}
		moved("after an update")
		if err := s.gdb.Exec("DELETE FROM consentry_clients WHERE id = 'other'").Error; err != nil {
			t.Fatal(err)
		}
		moved("after a delete")
	})
}

// When the generation cannot be read, a lookup still answers, from the
// database, and nothing is cached that a later change could leave stale.
func TestClientLookupWithoutGeneration(t *testing.T) {
	ctx := t.Context()
	s := openForTest(t, "sqlite://"+filepath.Join(t.TempDir(), "consentry.db"))
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, &Client{ID: "app", Name: "App"}); err != nil {
		t.Fatal(err)
	}
	if err := s.gdb.Exec("DROP TABLE " + tableClientGeneration).Error; err != nil {
		t.Fatal(err)
	}
	c, err := s.GetStoredClient(ctx, "app")
	if err != nil {
		t.Fatalf("lookup without a generation: %v", err)
	}
	if c.Name != "App" {
		t.Fatalf("got client %q", c.Name)
	}
	if n := len(s.clients.clients); n != 0 {
		t.Fatalf("%d clients cached without a generation", n)
	}
}
