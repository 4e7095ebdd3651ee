package storage

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateAuthRequest stores a pending authorization request; ErrAlreadyExists
// when the id is taken. ExpiresAt is required; a zero CreatedAt is set to now.
func (s *GormStore) CreateAuthRequest(ctx context.Context, r *AuthRequest) error {
	if r == nil || r.ID == "" {
		return errors.New("create auth request: empty id")
	}
	if r.ExpiresAt.IsZero() {
		return errors.New("create auth request: ExpiresAt is required")
	}
	row := toAuthRequestRow(r)
	if row.CreatedAt.IsZero() {
		row.CreatedAt = s.now().UTC()
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error { return tx.Create(&row).Error })
	if err != nil {
		return fmt.Errorf("create auth request: %w", dbErr(err))
	}
	return nil
}

// GetAuthRequest returns the request; ErrNotFound when unknown or expired.
// (The id travels in the browser; it is kept out of error messages.)
func (s *GormStore) GetAuthRequest(ctx context.Context, id string) (*AuthRequest, error) {
	row, err := s.loadAuthRequest(s.read(ctx), id, false)
	if err != nil {
		return nil, fmt.Errorf("load auth request: %w", err)
	}
	r, err := row.toAuthRequest()
	if err != nil {
		return nil, fmt.Errorf("load auth request: %w", err)
	}
	return r, nil
}

// loadAuthRequest reads an unexpired request, locking the row when asked.
func (s *GormStore) loadAuthRequest(db *gorm.DB, id string, lock bool) (*authRequestRow, error) {
	if lock {
		db = db.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var row authRequestRow
	if err := db.Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, dbErr(err)
	}
	// Expiry is checked here rather than in SQL so that it does not depend on
	// how each database compares stored times.
	if row.ExpiresAt.Before(s.now()) {
		return nil, ErrNotFound
	}
	return &row, nil
}

// UpdateAuthRequest loads the request, applies fn and stores the result in
// one transaction, the row locked meanwhile. fn's error aborts the update and
// is returned. The id and CreatedAt cannot be changed. ErrNotFound when the
// request is unknown or expired.
func (s *GormStore) UpdateAuthRequest(ctx context.Context, id string, fn func(*AuthRequest) error) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		row, err := s.loadAuthRequest(tx, id, true)
		if err != nil {
			return err
		}
		r, err := row.toAuthRequest()
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
		if r.ExpiresAt.IsZero() {
			return errors.New("ExpiresAt is required")
		}
		next := toAuthRequestRow(r)
		return dbErr(tx.Model(&authRequestRow{}).Where("id = ?", id).
			Select("query", "offered_scopes", "subject", "auth_time", "expires_at").Updates(&next).Error)
	})
	if err != nil {
		return fmt.Errorf("update auth request: %w", err)
	}
	return nil
}

// DeleteAuthRequest deletes the request; ErrNotFound when unknown.
func (s *GormStore) DeleteAuthRequest(ctx context.Context, id string) error {
	res := s.db(ctx).Where("id = ?", id).Delete(&authRequestRow{})
	if res.Error != nil {
		return fmt.Errorf("delete auth request: %w", dbErr(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("delete auth request: %w", ErrNotFound)
	}
	return nil
}
