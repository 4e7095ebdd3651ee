package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// signingKeyLock is the PostgreSQL advisory lock that serialises
// CreateSigningKeyIfNoneSince across instances (an arbitrary constant,
// "consentry keys" in ASCII).
const signingKeyLock int64 = 0x636f6e736b657973

// CreateSigningKey stores a signing key; ErrAlreadyExists when the kid is
// taken. A zero CreatedAt is set to now, a zero ActivatesAt to CreatedAt.
func (s *GormStore) CreateSigningKey(ctx context.Context, k *SigningKey) error {
	row, err := s.toSigningKeyRow(k)
	if err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	err = s.transaction(ctx, func(tx *gorm.DB) error { return tx.Create(&row).Error })
	if err != nil {
		return fmt.Errorf("create signing key %q: %w", k.KID, dbErr(err))
	}
	return nil
}

// CreateSigningKeyIfNoneSince stores k unless an unretired key of alg was
// created at or after since. The check and the insert run in one
// transaction that holds a lock for their whole length: an advisory lock on
// PostgreSQL, the database write lock on SQLite (BEGIN IMMEDIATE).
func (s *GormStore) CreateSigningKeyIfNoneSince(ctx context.Context, k *SigningKey, alg string, since time.Time) (bool, error) {
	row, err := s.toSigningKeyRow(k)
	if err != nil {
		return false, fmt.Errorf("create signing key: %w", err)
	}
	if row.Algorithm != alg {
		return false, fmt.Errorf("create signing key %q: algorithm %q, want %q", k.KID, row.Algorithm, alg)
	}
	var created bool
	err = s.transaction(ctx, func(tx *gorm.DB) error {
		if err := s.engine.lock(tx, signingKeyLock); err != nil {
			return fmt.Errorf("lock signing keys: %w", err)
		}
		var n int64
		err := tx.Model(&signingKeyRow{}).
			Where("algorithm = ? AND created_at >= ? AND retired_at IS NULL", alg, utc(since)).
			Count(&n).Error
		if err != nil || n > 0 {
			return err
		}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("create signing key %q: %w", k.KID, dbErr(err))
	}
	return created, nil
}

func (s *GormStore) toSigningKeyRow(k *SigningKey) (signingKeyRow, error) {
	if k == nil || k.KID == "" {
		return signingKeyRow{}, errors.New("empty kid")
	}
	row := signingKeyRow{
		KID:        k.KID,
		Algorithm:  k.Algorithm,
		PrivateKey: k.PrivateKey,
		Encrypted:  k.Encrypted,
		CreatedAt:  utc(k.CreatedAt),
		RetiredAt:  optTime(k.RetiredAt),
	}
	if row.CreatedAt.IsZero() {
		row.CreatedAt = s.now().UTC()
	}
	activates := row.CreatedAt
	if !k.ActivatesAt.IsZero() {
		activates = utc(k.ActivatesAt)
	}
	row.ActivatesAt = &activates
	return row, nil
}

// ListSigningKeys returns every key, retired ones included, oldest first.
func (s *GormStore) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	var rows []signingKeyRow
	if err := s.read(ctx).Order("created_at, kid").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list signing keys: %w", dbErr(err))
	}
	out := make([]SigningKey, 0, len(rows))
	for _, r := range rows {
		k := SigningKey{
			KID:        r.KID,
			Algorithm:  r.Algorithm,
			PrivateKey: r.PrivateKey,
			Encrypted:  r.Encrypted,
			CreatedAt:  utc(r.CreatedAt),
			RetiredAt:  optTime(r.RetiredAt),
		}
		k.ActivatesAt = k.CreatedAt
		if r.ActivatesAt != nil {
			k.ActivatesAt = utc(*r.ActivatesAt)
		}
		out = append(out, k)
	}
	return out, nil
}

// RetireSigningKey sets the key's RetiredAt unless already set; ErrNotFound
// for an unknown kid. A zero at means now.
func (s *GormStore) RetireSigningKey(ctx context.Context, kid string, at time.Time) error {
	if at.IsZero() {
		at = s.now()
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var row signingKeyRow
		if err := tx.Where("kid = ?", kid).Take(&row).Error; err != nil {
			return dbErr(err)
		}
		if row.RetiredAt != nil {
			return nil
		}
		return tx.Model(&signingKeyRow{}).Where("kid = ? AND retired_at IS NULL", kid).Update("retired_at", utc(at)).Error
	})
	if err != nil {
		return fmt.Errorf("retire signing key %q: %w", kid, err)
	}
	return nil
}

// GetSecret returns the named secret; ErrNotFound when unknown.
func (s *GormStore) GetSecret(ctx context.Context, name string) (*Secret, error) {
	var row secretRow
	if err := s.read(ctx).Where("name = ?", name).Take(&row).Error; err != nil {
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

// EncryptAtRest encrypts the secrets and signing keys stored unencrypted.
// The rows are updated in name and kid order, so that two instances doing
// this at once on PostgreSQL wait for each other instead of deadlocking,
// and only while still unencrypted, so that the later one finds nothing
// left to do. SQLite takes its write lock at BEGIN (txlock=immediate).
func (s *GormStore) EncryptAtRest(ctx context.Context, sealer AtRestSealer) (secrets, keys int, err error) {
	// Nearly every start finds nothing to encrypt: look before writing.
	var plain, plainKeys int64
	if err := s.read(ctx).Model(&secretRow{}).Where("encrypted = ?", false).Count(&plain).Error; err != nil {
		return 0, 0, fmt.Errorf("encrypt at rest: count secrets: %w", dbErr(err))
	}
	if err := s.read(ctx).Model(&signingKeyRow{}).Where("encrypted = ?", false).Count(&plainKeys).Error; err != nil {
		return 0, 0, fmt.Errorf("encrypt at rest: count signing keys: %w", dbErr(err))
	}
	if plain+plainKeys == 0 {
		return 0, 0, nil
	}
	err = s.transaction(ctx, func(tx *gorm.DB) error {
		secrets, keys = 0, 0
		var secretRows []secretRow
		if err := tx.Order("name").Find(&secretRows).Error; err != nil {
			return fmt.Errorf("list secrets: %w", err)
		}
		var keyRows []signingKeyRow
		if err := tx.Order("kid").Find(&keyRows).Error; err != nil {
			return fmt.Errorf("list signing keys: %w", err)
		}
		for _, r := range secretRows {
			if r.Encrypted {
				if _, err := sealer.Open(r.Value); err != nil {
					return fmt.Errorf("secret %q: %w", r.Name, err)
				}
			}
		}
		for _, r := range keyRows {
			// A retired key is never read again: it need not open.
			if r.Encrypted && r.RetiredAt == nil {
				if _, err := sealer.Open(r.PrivateKey); err != nil {
					return fmt.Errorf("signing key %q: %w", r.KID, err)
				}
			}
		}
		for _, r := range secretRows {
			if r.Encrypted {
				continue
			}
			sealed, err := sealer.Seal(r.Value)
			if err != nil {
				return fmt.Errorf("secret %q: %w", r.Name, err)
			}
			res := tx.Model(&secretRow{}).Where("name = ? AND encrypted = ?", r.Name, false).
				Updates(map[string]any{"value": sealed, "encrypted": true})
			if res.Error != nil {
				return fmt.Errorf("secret %q: %w", r.Name, res.Error)
			}
			secrets += int(res.RowsAffected)
		}
		for _, r := range keyRows {
			if r.Encrypted {
				continue
			}
			sealed, err := sealer.Seal(r.PrivateKey)
			if err != nil {
				return fmt.Errorf("signing key %q: %w", r.KID, err)
			}
			res := tx.Model(&signingKeyRow{}).Where("kid = ? AND encrypted = ?", r.KID, false).
				Updates(map[string]any{"private_key": sealed, "encrypted": true})
			if res.Error != nil {
				return fmt.Errorf("signing key %q: %w", r.KID, res.Error)
			}
			keys += int(res.RowsAffected)
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("encrypt at rest: %w", dbErr(err))
	}
	return secrets, keys, nil
}
