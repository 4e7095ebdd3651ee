package storage

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// CreateSigningKey stores a signing key; ErrAlreadyExists when the kid is
// taken. A zero CreatedAt is set to now.
func (s *GormStore) CreateSigningKey(ctx context.Context, k *SigningKey) error {
	if k == nil || k.KID == "" {
		return errors.New("create signing key: empty kid")
	}
	row := signingKeyRow{
		KID:        k.KID,
		Algorithm:  k.Algorithm,
		PrivateKey: k.PrivateKey,
		Encrypted:  k.Encrypted,
		CreatedAt:  utc(k.CreatedAt),
	}
	if row.CreatedAt.IsZero() {
		row.CreatedAt = s.now().UTC()
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error { return tx.Create(&row).Error })
	if err != nil {
		return fmt.Errorf("create signing key %q: %w", k.KID, dbErr(err))
	}
	return nil
}

// ListSigningKeys returns the keys not retired, oldest first.
func (s *GormStore) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	var rows []signingKeyRow
	if err := s.db(ctx).Where("retired_at IS NULL").Order("created_at, kid").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list signing keys: %w", dbErr(err))
	}
	out := make([]SigningKey, 0, len(rows))
	for _, r := range rows {
		out = append(out, SigningKey{
			KID:        r.KID,
			Algorithm:  r.Algorithm,
			PrivateKey: r.PrivateKey,
			Encrypted:  r.Encrypted,
			CreatedAt:  utc(r.CreatedAt),
		})
	}
	return out, nil
}

// GetSecret returns the named secret; ErrNotFound when unknown.
func (s *GormStore) GetSecret(ctx context.Context, name string) (*Secret, error) {
	var row secretRow
	if err := s.db(ctx).Where("name = ?", name).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("load secret %q: %w", name, dbErr(err))
	}
	return &Secret{Name: row.Name, Value: row.Value, Encrypted: row.Encrypted, CreatedAt: utc(row.CreatedAt)}, nil
}

// CreateSecret stores a named secret; ErrAlreadyExists when the name is taken
// (the primary key decides, so of two instances starting at once exactly one
// wins and the other reads the winner's value). A zero CreatedAt is set to now.
func (s *GormStore) CreateSecret(ctx context.Context, sec *Secret) error {
	if sec == nil || sec.Name == "" {
		return errors.New("create secret: empty name")
	}
	row := secretRow{Name: sec.Name, Value: sec.Value, Encrypted: sec.Encrypted, CreatedAt: utc(sec.CreatedAt)}
	if row.CreatedAt.IsZero() {
		row.CreatedAt = s.now().UTC()
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error { return tx.Create(&row).Error })
	if err != nil {
		return fmt.Errorf("create secret %q: %w", sec.Name, dbErr(err))
	}
	return nil
}
