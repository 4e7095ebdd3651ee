package storage

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// userColumns are the columns UpdateUser writes: everything but the key and
// the creation time.
func userColumns() []string {
	return []string{"username", "email", "email_verified", "name", "password_hash", "disabled", "connector_id", "updated_at"}
}

// CreateUser stores a new user; ErrAlreadyExists when the subject or the
// username is taken. Zero CreatedAt/UpdatedAt are set to now.
func (s *GormStore) CreateUser(ctx context.Context, u *User) error {
	if u == nil || u.Subject == "" || u.Username == "" {
		return errors.New("create user: subject and username are required")
	}
	row := toUserRow(u)
	if row.ConnectorID == "" {
		row.ConnectorID = LocalConnectorID
	}
	now := s.now().UTC()
	if row.CreatedAt.IsZero() {
		row.CreatedAt = now
	}
	if row.UpdatedAt.IsZero() {
		row.UpdatedAt = row.CreatedAt
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error { return tx.Create(&row).Error })
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Subject, dbErr(err))
	}
	return nil
}

// userBySubjectQuery reads every column of userRow, in its order.
const userBySubjectQuery = "SELECT subject, username, email, email_verified, name, password_hash, disabled, connector_id, created_at, updated_at FROM " +
	tableUsers + " WHERE subject = $1"

// GetUser returns the user with the subject; ErrNotFound when unknown.
func (s *GormStore) GetUser(ctx context.Context, subject string) (*User, error) {
	var row userRow
	var err error
	if txFrom(ctx, s) != nil {
		err = s.read(ctx).Where("subject = ?", subject).Take(&row).Error
	} else {
		// Every refresh checks its user: a prepared read.
		err = s.preparedRow(ctx, userBySubjectQuery, []any{subject},
			&row.Subject, &row.Username, &row.Email, &row.EmailVerified, &row.Name, &row.PasswordHash, &row.Disabled, &row.ConnectorID, &row.CreatedAt, &row.UpdatedAt)
	}
	if err != nil {
		return nil, fmt.Errorf("load user %q: %w", subject, dbErr(err))
	}
	return row.toUser(), nil
}

// GetUserByUsername returns the user with the username (matched exactly);
// ErrNotFound when unknown.
func (s *GormStore) GetUserByUsername(ctx context.Context, username string) (*User, error) {
	var row userRow
	if err := s.read(ctx).Where("username = ?", username).Take(&row).Error; err != nil {
		// The username is typed by whoever signs in: keep it out of errors.
		return nil, fmt.Errorf("load user by username: %w", dbErr(err))
	}
	return row.toUser(), nil
}

// ListUsers returns every user, ordered by username.
func (s *GormStore) ListUsers(ctx context.Context) ([]User, error) {
	var rows []userRow
	if err := s.read(ctx).Order("username").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list users: %w", dbErr(err))
	}
	out := make([]User, 0, len(rows))
	for i := range rows {
		out = append(out, *rows[i].toUser())
	}
	return out, nil
}

// UpdateUser loads the user, applies fn and stores the result in one
// transaction, the row locked meanwhile. fn's error aborts the update and is
// returned. The subject and CreatedAt cannot be changed; UpdatedAt is set to
// now. A user left disabled loses every browser session in the same
// transaction. ErrNotFound when the user is unknown; ErrAlreadyExists when fn
// picks a taken username.
func (s *GormStore) UpdateUser(ctx context.Context, subject string, fn func(*User) error) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var row userRow
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("subject = ?", subject).Take(&row).Error; err != nil {
			return dbErr(err)
		}
		u := row.toUser()
		if err := fn(u); err != nil {
			return err
		}
		if u.Username == "" {
			return errors.New("username is required")
		}
		next := toUserRow(u)
		next.Subject = row.Subject
		next.CreatedAt = row.CreatedAt
		if next.ConnectorID == "" {
			next.ConnectorID = row.ConnectorID
		}
		next.UpdatedAt = s.now().UTC()
		if err := tx.Model(&userRow{}).Where("subject = ?", subject).Select(userColumns()).Updates(&next).Error; err != nil {
			return dbErr(err)
		}
		if next.Disabled {
			// Here, so that every way of disabling a user signs them out.
			if _, err := deleteSessionsOf(tx, subject, ""); err != nil {
				return fmt.Errorf("delete sessions: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update user %q: %w", subject, err)
	}
	return nil
}

// DeleteUser deletes the user, the tokens issued for them, their pending
// authorization requests, grants, per-user agreements, opt-outs of
// all-users agreements, the device authorizations they approved or
// denied, their browser sessions and their connector identities; ErrNotFound for an unknown subject. The audit log
// keeps its events.
func (s *GormStore) DeleteUser(ctx context.Context, subject string) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Where("subject = ?", subject).Delete(&userRow{})
		if res.Error != nil {
			return dbErr(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		if err := tx.Where("subject = ?", subject).Delete(&authRequestRow{}).Error; err != nil {
			return err
		}
		if err := tx.Where("subject = ?", subject).Delete(&grantRow{}).Error; err != nil {
			return fmt.Errorf("delete grants: %w", err)
		}
		// All-users agreements have no subject and stay; the user's opt-outs
		// of them go, so that the subject, were it ever registered again,
		// would not inherit them.
		if err := tx.Where("subject = ? AND all_users = ?", subject, false).Delete(&agreementRow{}).Error; err != nil {
			return fmt.Errorf("delete agreements: %w", err)
		}
		if err := tx.Where("subject = ?", subject).Delete(&agreementOptOutRow{}).Error; err != nil {
			return fmt.Errorf("delete agreement opt-outs: %w", err)
		}
		// They name the user; an approved one must not outlive them.
		if err := tx.Where("subject = ?", subject).Delete(&deviceAuthorizationRow{}).Error; err != nil {
			return fmt.Errorf("delete device authorizations: %w", err)
		}
		if _, err := deleteSessionsOf(tx, subject, ""); err != nil {
			return fmt.Errorf("delete sessions: %w", err)
		}
		if err := tx.Where("subject = ?", subject).Delete(&identityRow{}).Error; err != nil {
			return fmt.Errorf("delete identities: %w", err)
		}
		return deleteTokensWhere(tx, "subject = ?", subject)
	})
	if err != nil {
		return fmt.Errorf("delete user %q: %w", subject, err)
	}
	return nil
}
