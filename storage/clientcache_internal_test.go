package storage

import (
	"strings"
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
// database, and nothing is cached that a later change could leave stale. The
// failure is logged once, not on every lookup, and its end once.
func TestClientLookupWithoutGeneration(t *testing.T) {
	ctx := t.Context()
	var logs syncBuffer
	s := newTestStore(t, &logs)
	if err := s.CreateClient(ctx, &Client{ID: "app", Name: "App"}); err != nil {
		t.Fatal(err)
	}
	hide := func(from, to string) {
		t.Helper()
		if err := s.gdb.Exec("ALTER TABLE " + from + " RENAME TO " + to).Error; err != nil {
			t.Fatal(err)
		}
	}
	const hidden = "hidden_generation"
	lookUp := func() {
		t.Helper()
		c, err := s.GetStoredClient(ctx, "app")
		if err != nil {
			t.Fatalf("lookup: %v", err)
		}
		if c.Name != "App" {
			t.Fatalf("got client %q", c.Name)
		}
	}
	count := func(msg string) int { return strings.Count(logs.String(), `msg="`+msg) }

	hide(tableClientGeneration, hidden)
	for range 3 {
		lookUp()
	}
	if n := len(s.clients.clients); n != 0 {
		t.Fatalf("%d clients cached without a generation", n)
	}
	if n := count("client cache bypassed"); n != 1 {
		t.Errorf("three lookups without a generation logged %d warnings, want 1:\n%s", n, logs.String())
	}
	hide(hidden, tableClientGeneration)
	lookUp()
	lookUp()
	if n := count("client cache in use again"); n != 1 {
		t.Errorf("recovery logged %d times, want 1:\n%s", n, logs.String())
	}
	if n := len(s.clients.clients); n != 1 {
		t.Errorf("%d clients cached once the generation is back, want 1", n)
	}
	hide(tableClientGeneration, hidden)
	lookUp()
	if n := count("client cache bypassed"); n != 2 {
		t.Errorf("a second outage logged %d warnings in all, want 2", n)
	}
}
