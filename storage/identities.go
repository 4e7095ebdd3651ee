package storage

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateIdentity links a connector's person to a user; ErrAlreadyExists
// when that person is linked already. Zero times are set to now.
func (s *GormStore) CreateIdentity(ctx context.Context, id *Identity) error {
	if id == nil || id.ConnectorID == "" || id.UpstreamID == "" || id.Subject == "" {
		return errors.New("create identity: connector, upstream id and subject are required")
	}
	row := toIdentityRow(id)
	now := s.now().UTC()
	if row.CreatedAt.IsZero() {
		row.CreatedAt = now
	}
	if row.LastLoginAt.IsZero() {
		row.LastLoginAt = row.CreatedAt
	}
	if err := s.transaction(ctx, func(tx *gorm.DB) error { return tx.Create(&row).Error }); err != nil {
		return fmt.Errorf("create identity at %q: %w", id.ConnectorID, dbErr(err))
	}
	return nil
}

// GetIdentity returns the link of the connector's person; ErrNotFound when
// there is none.
func (s *GormStore) GetIdentity(ctx context.Context, connectorID, upstreamID string) (*Identity, error) {
	var row identityRow
	if err := s.read(ctx).Where("connector_id = ? AND upstream_id = ?", connectorID, upstreamID).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("load identity at %q: %w", connectorID, dbErr(err))
	}
	return row.toIdentity(), nil
}

// GetIdentityBySubject returns the user's most recently used link;
// ErrNotFound when the user has none (a local user).
func (s *GormStore) GetIdentityBySubject(ctx context.Context, subject string) (*Identity, error) {
	var row identityRow
	if err := s.read(ctx).Where("subject = ?", subject).Order("last_login_at DESC").Take(&row).Error; err != nil {
		return nil, fmt.Errorf("load identity of %q: %w", subject, dbErr(err))
	}
	return row.toIdentity(), nil
}

// UpdateIdentity loads the identity, applies fn and stores the result in
// one transaction, the row locked meanwhile; the keys, the subject and
// CreatedAt cannot change. ErrNotFound when unknown.
func (s *GormStore) UpdateIdentity(ctx context.Context, connectorID, upstreamID string, fn func(*Identity) error) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var row identityRow
		where := "connector_id = ? AND upstream_id = ?"
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where(where, connectorID, upstreamID).Take(&row).Error; err != nil {
			return dbErr(err)
		}
		id := row.toIdentity()
		if err := fn(id); err != nil {
			return err
		}
		next := toIdentityRow(id)
		return tx.Model(&identityRow{}).Where(where, connectorID, upstreamID).
			Select("data", "gone", "last_login_at").Updates(&next).Error
	})
	if err != nil {
		return fmt.Errorf("update identity at %q: %w", connectorID, dbErr(err))
	}
	return nil
}

// GetUserByVerifiedEmail returns the one user whose verified email is
// email; ErrNotFound when none, or more than one, has it: a link by email
// must never pick one of several people.
func (s *GormStore) GetUserByVerifiedEmail(ctx context.Context, email string) (*User, error) {
	var rows []userRow
	if email == "" {
		return nil, fmt.Errorf("load user by email: %w", ErrNotFound)
	}
	if err := s.read(ctx).Where("email = ? AND email_verified = ?", email, true).Limit(2).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("load user by email: %w", dbErr(err))
	}
	if len(rows) != 1 {
		return nil, fmt.Errorf("load user by email: %w", ErrNotFound)
	}
	return rows[0].toUser(), nil
}

func toIdentityRow(id *Identity) identityRow {
	return identityRow{ConnectorID: id.ConnectorID, UpstreamID: id.UpstreamID, Subject: id.Subject, Data: id.Data,
		Gone: id.Gone, CreatedAt: utc(id.CreatedAt), LastLoginAt: utc(id.LastLoginAt)}
}

func (r *identityRow) toIdentity() *Identity {
	return &Identity{ConnectorID: r.ConnectorID, UpstreamID: r.UpstreamID, Subject: r.Subject, Data: r.Data,
		Gone: r.Gone, CreatedAt: utc(r.CreatedAt), LastLoginAt: utc(r.LastLoginAt)}
}
