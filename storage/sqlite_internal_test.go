package storage

import "testing"

// sqliteOf is the SQLite part of s.
func sqliteOf(t testing.TB, s *GormStore) *sqliteEngine {
	t.Helper()
	e, ok := s.engine.(*sqliteEngine)
	if !ok {
		t.Fatalf("store on %s, want SQLite", s.gdb.Dialector.Name())
	}
	return e
}
