package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// expiringTable is a table CollectGarbage deletes expired rows from.
type expiringTable struct {
	name string
	// key is the primary key column, by which a batch is selected.
	key string
	// what names the rows in error messages.
	what string
	// model is the row type gorm deletes by.
	model any
	// column holds the expiry; "" is expires_at.
	column string
}

func expiringTables() []expiringTable {
	tables := make([]expiringTable, 0, len(allTokenKinds())+6)
	for _, k := range allTokenKinds() {
		tables = append(tables, expiringTable{name: k.table(), key: "signature", what: k.String() + "s", model: &tokenFields{}})
	}
	return append(tables,
		expiringTable{name: tableAuthRequests, key: "id", what: "auth requests", model: &authRequestRow{}},
		expiringTable{name: tableAssertionJTIs, key: "jti", what: "client assertion jtis", model: &assertionJTIRow{}},
		expiringTable{name: tableDeviceAuthorizations, key: "id", what: "device authorizations", model: &deviceAuthorizationRow{}},
		// A session ends at its absolute or at its idle expiry: one pass for
		// each, so that each follows its own index.
		expiringTable{name: tableSessions, key: "id_hash", what: "sessions", model: &sessionRow{}},
		expiringTable{name: tableSessions, key: "id_hash", what: "idle sessions", model: &sessionRow{}, column: "idle_expires_at"},
		expiringTable{name: tableLoginThrottles, key: `"key"`, what: "login throttles", model: &loginThrottleRow{}},
	)
}

// CollectGarbage deletes, from each table of fosite requests (authorization
// codes, access and refresh tokens, PKCE and OpenID Connect sessions), of
// pending authorization requests, of client assertion jtis, of device
// authorizations, of browser sessions (by their absolute and by their idle
// expiry), of login throttles and of rate-limit windows, at most batch rows
// whose expiry is before now, and clears the successor of at most
// batch refresh tokens retired before successorsBefore. Rows without an
// expiry (NULL, or the zero time) are never deleted; the audit log is never
// touched. It returns the number of rows deleted or cleared; the caller
// repeats until that is 0.
//
// Each batch is one statement of its own (in the caller's transaction when
// ctx carries one, which then holds what it deleted until it commits), so
// that no table is locked for long: on SQLite a batch holds the database's
// write lock only while it runs (see collectBatch).
func (s *GormStore) CollectGarbage(ctx context.Context, now, successorsBefore time.Time, batch int) (int, error) {
	if batch < 1 {
		return 0, errors.New("collect garbage: batch must be at least 1")
	}
	now, successorsBefore = now.UTC(), successorsBefore.UTC()
	// The zero time bounds the range from below: an unset expiry stored as
	// the zero time rather than NULL is not an expiry either. All times are
	// stored in UTC, so they compare alike on both databases.
	var zero time.Time
	type collection struct {
		what string // the action, for errors
		// selected picks the batch's rows; change acts on them.
		selected, change func(db *gorm.DB) *gorm.DB
	}
	var collections []collection
	for _, t := range expiringTables() {
		column := t.column
		if column == "" {
			column = "expires_at"
		}
		expired := func(db *gorm.DB) *gorm.DB {
			return db.Session(&gorm.Session{NewDB: true}).Table(t.name).Select(t.key).
				Where(column+" > ? AND "+column+" < ?", zero, now).Order(column).Limit(batch)
		}
		collections = append(collections, collection{"delete expired " + t.what, expired, func(db *gorm.DB) *gorm.DB {
			return db.Table(t.name).Where(t.key+" IN (?)", expired(db)).Delete(t.model)
		}})
	}
	retired := func(db *gorm.DB) *gorm.DB {
		return db.Session(&gorm.Session{NewDB: true}).Table(tableRefreshTokens).Select("signature").
			Where("retired_at < ? AND successor IS NOT NULL", successorsBefore).Order("retired_at").Limit(batch)
	}
	// Rate-limit windows have a composite key: a batch is selected by both
	// columns (row values work on SQLite >= 3.15 and PostgreSQL).
	ended := func(db *gorm.DB) *gorm.DB {
		return db.Session(&gorm.Session{NewDB: true}).Table(tableRateLimits).Select("key", "window_start").
			Where("expires_at < ?", now).Order("expires_at").Limit(batch)
	}
	collections = append(collections,
		collection{"clear refresh token successors", retired, func(db *gorm.DB) *gorm.DB {
			return db.Table(tableRefreshTokens).Where("signature IN (?)", retired(db)).Update("successor", nil)
		}},
		collection{"delete ended rate-limit windows", ended, func(db *gorm.DB) *gorm.DB {
			return db.Table(tableRateLimits).Where(`("key", "window_start") IN (?)`, ended(db)).Delete(&rateLimitRow{})
		}},
	)

	total := 0
	for _, c := range collections {
		n, err := s.collectBatch(ctx, c.selected, c.change)
		total += int(n)
		if err != nil {
			return total, fmt.Errorf("collect garbage: %s: %w", c.what, dbErr(err))
		}
	}
	return total, nil
}

// collectBatch runs change, one batch statement of the collector over the
// rows selected picks, and returns how many rows it changed: in the
// caller's transaction at once, else as the database's engine runs it (on
// SQLite only when selected picks a row, with the write group idle; see
// sqliteEngine.collectBatch).
func (s *GormStore) collectBatch(ctx context.Context, selected, change func(db *gorm.DB) *gorm.DB) (int64, error) {
	if txFrom(ctx, s) != nil {
		res := change(s.db(ctx))
		return res.RowsAffected, res.Error
	}
	return s.engine.collectBatch(ctx, selected, change)
}
