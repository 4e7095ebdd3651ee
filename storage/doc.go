// Package storage defines what Consentry persists and how.
//
// The Store interface combines fosite's storage interfaces (clients, authorize
// codes, access and refresh tokens, PKCE and OpenID Connect sessions,
// transactions) with Consentry's own records: clients, users, pending
// authorization requests, grants (consent decisions), standing agreements and
// users' opt-outs of them, an append-only audit log, signing keys and server
// secrets. Refresh tokens rotated with RetireRefreshToken keep the sealed
// response that replaced them until CollectGarbage, which also deletes
// expired rows in bounded batches, clears it. Errors are reported
// through the sentinels ErrNotFound (which is fosite.ErrNotFound) and
// ErrAlreadyExists, tested with errors.Is.
//
// GormStore is the implementation, on SQLite (for single-instance deployments
// and tests) or PostgreSQL. Its schema is versioned: Migrate applies the
// numbered, forward-only migrations of migrate.go under a lock, and
// PendingMigrations tells a server whether it may serve. SetQueryTimeout
// bounds every statement and transaction (on SQLite, a write transaction
// as a whole: its statements wait on the file lock for at most
// busy_timeout), and IsUnavailable tells a failure to reach the database
// from an answer. What one database adds sits behind a small engine
// interface (engine.go): on SQLite (sqlite*.go), writes go through one
// connection and reads through a pool of readers, concurrent write
// transactions share one commit (sqlite_writegroup.go; each caller's Commit
// returns once that commit is done), the hottest writes run with prepared
// statements, and WAL checkpoints run in the background. Clients are cached
// across requests while a counter that a trigger bumps on every change to
// the clients table stays the same (clientcache.go), and the hottest reads
// run with prepared statements (prepared.go). Tokens are stored under the signature fosite
// derives from them, never the raw token, and the OpenID Connect session,
// which fosite keys by the raw authorization code, is stored under a SHA-256
// hash of that code.
//
// Every implementation must pass the conformance suite in package
// storage/storagetest.
package storage
