// Package storagetest is the conformance suite every storage.Store
// implementation must pass. It uses a store only through its interfaces,
// including through fosite's own handlers, whose expectations of storage go
// beyond the interface signatures.
//
// A backend's test calls RunTests with a constructor that returns a fresh,
// empty, migrated store for each subtest and closes it in t.Cleanup:
//
//	func TestSQLite(t *testing.T) {
//		storagetest.RunTests(t, newSQLiteStore)
//	}
//
// RunTests includes the concurrency tests; RunConcurrencyTests runs only
// those, for repeated runs. StartProxy puts a TCP proxy between a store and
// its database server, for tests of a database outage.
package storagetest
