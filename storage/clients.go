package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateClient stores a new client; ErrAlreadyExists when the id is taken.
// Zero CreatedAt/UpdatedAt are set to now.
func (s *GormStore) CreateClient(ctx context.Context, c *Client) error {
	if c == nil || c.ID == "" {
		return errors.New("create client: empty client id")
	}
	row := toClientRow(c)
	now := s.now().UTC()
	if row.CreatedAt.IsZero() {
		row.CreatedAt = now
	}
	if row.UpdatedAt.IsZero() {
		row.UpdatedAt = row.CreatedAt
	}
	// In a savepoint: a unique violation must not abort a caller's transaction.
	err := s.transaction(ctx, func(tx *gorm.DB) error { return tx.Create(&row).Error })
	if err != nil {
		return fmt.Errorf("create client %q: %w", c.ID, dbErr(err))
	}
	return nil
}

// GetStoredClient returns the client; ErrNotFound for an unknown id.
func (s *GormStore) GetStoredClient(ctx context.Context, id string) (*Client, error) {
	c, err := s.cachedClient(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load client %q: %w", id, err)
	}
	return c, nil
}

// GetClient implements fosite.ClientManager: the *Client as a fosite.Client,
// ErrNotFound for an unknown id.
func (s *GormStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.GetStoredClient(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// cachedClient returns the client from the store's cache when no client
// changed since it was loaded, or from the database. A load in a
// transaction is neither taken from the cache nor remembered: it may see the
// transaction's own uncommitted change, and may roll back.
func (s *GormStore) cachedClient(ctx context.Context, id string) (*Client, error) {
	if txFrom(ctx, s) != nil {
		return s.loadClient(s.read(ctx), id)
	}
	// Read before the client: a change committed in between leaves the
	// entry with an older generation, which the next lookup refuses.
	generation, genErr := s.clientGeneration(ctx)
	c, ok := (*Client)(nil), false
	if genErr == nil {
		c, ok = s.clients.get(id, generation)
	}
	if !ok {
		var err error
		if c, err = s.loadClient(s.read(ctx), id); err != nil {
			return nil, err
		}
		if genErr == nil {
			s.clients.put(c, generation)
		}
	}
	return c, nil
}

// clientGeneration reads the client generation. On a failure the caller
// loads the client uncached: the load reports the database's state in its
// own error. The failure is logged once until a read succeeds again, not on
// every request while the database is down.
func (s *GormStore) clientGeneration(ctx context.Context) (int64, error) {
	ctx, cancel := s.readContext(ctx)
	defer cancel()
	var generation int64
	row, err := s.reads.queryRow(ctx, s.rsqlDB, clientGenerationQuery)
	if err == nil {
		err = row.Scan(&generation)
	}
	if err != nil {
		if !s.clientCacheBypassed.Swap(true) {
			s.logger.WarnContext(ctx, "client cache bypassed until the client generation can be read", "err", err)
		}
		return 0, fmt.Errorf("read client generation: %w", err)
	}
	if s.clientCacheBypassed.Load() && s.clientCacheBypassed.Swap(false) {
		s.logger.InfoContext(ctx, "client cache in use again")
	}
	return generation, nil
}

func (s *GormStore) loadClient(db *gorm.DB, id string) (*Client, error) {
	var row clientRow
	if err := db.Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, dbErr(err)
	}
	return row.toClient()
}

// ListClients returns every client, ordered by id.
func (s *GormStore) ListClients(ctx context.Context) ([]Client, error) {
	var rows []clientRow
	if err := s.read(ctx).Order("id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list clients: %w", dbErr(err))
	}
	out := make([]Client, 0, len(rows))
	for i := range rows {
		c, err := rows[i].toClient()
		if err != nil {
			return nil, fmt.Errorf("list clients: client %q: %w", rows[i].ID, err)
		}
		out = append(out, *c)
	}
	return out, nil
}

// DeleteClient deletes the client with every token issued to it, its grants,
// its agreements (with their opt-outs) and its device authorizations;
// ErrNotFound for an unknown id.
// The audit log keeps its events.
func (s *GormStore) DeleteClient(ctx context.Context, id string) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Where("id = ?", id).Delete(&clientRow{})
		if res.Error != nil {
			return dbErr(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		// Deleted rather than kept: a client registered again under the id
		// must not inherit them.
		if err := tx.Where("client_id = ?", id).Delete(&grantRow{}).Error; err != nil {
			return fmt.Errorf("delete grants: %w", err)
		}
		if err := deleteAgreementsWhere(tx, "client_id = ?", id); err != nil {
			return err
		}
		if err := tx.Where("client_id = ?", id).Delete(&deviceAuthorizationRow{}).Error; err != nil {
			return fmt.Errorf("delete device authorizations: %w", err)
		}
		return deleteTokensWhere(tx, "client_id = ?", id)
	})
	if err != nil {
		return fmt.Errorf("delete client %q: %w", id, err)
	}
	return nil
}

// ClientAssertionJWTValid returns fosite.ErrJTIKnown when the jti of a client
// assertion was seen and has not expired yet, else nil.
func (s *GormStore) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	var row assertionJTIRow
	err := s.read(ctx).Where("jti = ?", jti).Take(&row).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("check client assertion jti: %w", err)
	case row.ExpiresAt.After(s.now()):
		return fosite.ErrJTIKnown
	default:
		return nil
	}
}

// SetClientAssertionJWT remembers jti until exp. It also forgets expired jtis,
// and returns fosite.ErrJTIKnown when jti is remembered already.
func (s *GormStore) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("expires_at <= ?", s.now().UTC()).Delete(&assertionJTIRow{}).Error; err != nil {
			return err
		}
		return tx.Create(&assertionJTIRow{JTI: jti, ExpiresAt: exp.UTC()}).Error
	})
	switch {
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fosite.ErrJTIKnown
	case err != nil:
		return fmt.Errorf("store client assertion jti: %w", err)
	default:
		return nil
	}
}

// clientColumns are the columns UpdateClient writes: all but the key and
// the creation time.
func clientColumns() []string {
	return []string{"name", "secret_hash", "public", "redirect_uris", "grant_types", "response_types", "scopes", "audience",
		"token_endpoint_auth_method", "id_token_signed_response_alg", "logo_uri", "client_uri", "policy_uri", "tos_uri", "theme",
		"offline_idle_lifetime_ns", "offline_absolute_lifetime_ns", "introspect", "rotated_secrets", "updated_at"}
}

// UpdateClient applies fn to the stored client inside a transaction, with
// the row locked, so concurrent updates do not lose each other's changes.
func (s *GormStore) UpdateClient(ctx context.Context, id string, fn func(*Client) error) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var row clientRow
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&row).Error; err != nil {
			return dbErr(err)
		}
		c, err := row.toClient()
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
		next := toClientRow(c)
		next.ID, next.CreatedAt, next.UpdatedAt = row.ID, row.CreatedAt, s.now().UTC()
		return dbErr(tx.Model(&clientRow{}).Where("id = ?", id).Select(clientColumns()).Updates(&next).Error)
	})
	if err != nil {
		return fmt.Errorf("update client %q: %w", id, err)
	}
	return nil
}
