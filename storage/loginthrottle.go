package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// tableLoginThrottles holds the failed sign-in state of accounts and
// addresses (migration 7).
const tableLoginThrottles = "consentry_login_throttles"

// loginThrottleRow is one LoginThrottle. expires_at is indexed for
// CollectGarbage.
type loginThrottleRow struct {
	Key         string     `gorm:"column:key;primaryKey"`
	Failures    int        `gorm:"column:failures;not null"`
	WindowStart time.Time  `gorm:"column:window_start;not null"`
	Lockouts    int        `gorm:"column:lockouts;not null"`
	LockedUntil *time.Time `gorm:"column:locked_until"`
	ExpiresAt   time.Time  `gorm:"column:expires_at;not null;index"`
}

func (loginThrottleRow) TableName() string { return tableLoginThrottles }

func toLoginThrottleRow(l *LoginThrottle) loginThrottleRow {
	return loginThrottleRow{
		Key: l.Key, Failures: l.Failures, WindowStart: utc(l.WindowStart), Lockouts: l.Lockouts,
		LockedUntil: nullTime(l.LockedUntil), ExpiresAt: utc(l.ExpiresAt),
	}
}

func (r *loginThrottleRow) toLoginThrottle() LoginThrottle {
	return LoginThrottle{
		Key: r.Key, Failures: r.Failures, WindowStart: utc(r.WindowStart), Lockouts: r.Lockouts,
		LockedUntil: fromNullTime(r.LockedUntil), ExpiresAt: utc(r.ExpiresAt),
	}
}

// GetLoginThrottles returns the stored state of those of keys that have
// one, expired or not, ordered by key.
func (s *GormStore) GetLoginThrottles(ctx context.Context, keys ...string) ([]LoginThrottle, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	var rows []loginThrottleRow
	if err := s.read(ctx).Where(`"key" IN ?`, keys).Order(`"key"`).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("load login throttles: %w", dbErr(err))
	}
	out := make([]LoginThrottle, len(rows))
	for i := range rows {
		out[i] = rows[i].toLoginThrottle()
	}
	return out, nil
}

// UpdateLoginThrottles applies fn to the state of each key (a LoginThrottle
// with only Key set when none is stored) and stores what fn leaves, in one
// transaction (a savepoint of the caller's). Each row is locked from its
// read to the commit, and rows are locked in key order so that two callers
// never wait for each other's: failures counted at once, on any instance,
// are all counted. fn's error aborts every update and is returned; fn must
// not change Key. ExpiresAt is required.
func (s *GormStore) UpdateLoginThrottles(ctx context.Context, keys []string, fn func(*LoginThrottle) error) error {
	keys = slices.Sorted(slices.Values(keys))
	keys = slices.Compact(keys)
	if len(keys) == 0 || keys[0] == "" {
		return errors.New("update login throttles: keys are required")
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		for _, key := range keys {
			// A row to lock, also for a key seen the first time: concurrent
			// first failures then wait for each other too.
			placeholder := loginThrottleRow{Key: key}
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&placeholder).Error; err != nil {
				return dbErr(err)
			}
			var row loginThrottleRow
			if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where(`"key" = ?`, key).Take(&row).Error; err != nil {
				return dbErr(err)
			}
			l := row.toLoginThrottle()
			if err := fn(&l); err != nil {
				return err
			}
			if l.Key != key {
				return fmt.Errorf("the key %q cannot be changed", key)
			}
			if l.ExpiresAt.IsZero() {
				return errors.New("ExpiresAt is required")
			}
			next := toLoginThrottleRow(&l)
			if err := tx.Model(&loginThrottleRow{}).Where(`"key" = ?`, key).
				Select("failures", "window_start", "lockouts", "locked_until", "expires_at").
				Updates(&next).Error; err != nil {
				return dbErr(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update login throttles: %w", err)
	}
	return nil
}

// DeleteLoginThrottle deletes the state of key and reports whether there
// was one.
func (s *GormStore) DeleteLoginThrottle(ctx context.Context, key string) (bool, error) {
	var n int64
	err := s.write(ctx, func(tx *gorm.DB) error {
		res := tx.Where(`"key" = ?`, key).Delete(&loginThrottleRow{})
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return false, fmt.Errorf("delete login throttle: %w", dbErr(err))
	}
	return n > 0, nil
}
