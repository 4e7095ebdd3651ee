package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// maxRefreshRevokePasses bounds RevokeGrants' repeats of the refresh token
// update (see revokeGrantTokens); more than a couple means something keeps
// issuing tokens under a revoked grant.
const maxRefreshRevokePasses = 5

// CreateGrant stores a grant; ErrAlreadyExists when the id or the request id
// is taken. A zero CreatedAt is set to now.
func (s *GormStore) CreateGrant(ctx context.Context, g *Grant) error {
	if g == nil || g.ID == "" || g.Subject == "" || g.ClientID == "" || g.RequestID == "" {
		return errors.New("create grant: id, subject, client id and request id are required")
	}
	switch g.Basis {
	case BasisConsent, BasisRemembered, BasisAgreement:
	default:
		return fmt.Errorf("create grant %q: unknown basis %q", g.ID, g.Basis)
	}
	row := toGrantRow(g)
	if row.CreatedAt.IsZero() {
		row.CreatedAt = s.now().UTC()
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error { return tx.Create(&row).Error })
	if err != nil {
		return fmt.Errorf("create grant %q: %w", g.ID, dbErr(err))
	}
	return nil
}

// grantByRequestIDQuery reads every column of grantRow, in its order.
const grantByRequestIDQuery = "SELECT id, subject, client_id, request_id, scopes, basis, agreement_id, remembered_from, " +
	"created_at, remember_until, revoked_at, last_used_at, ip_address, user_agent FROM " + tableGrants + " WHERE request_id = $1"

// GetGrantByRequestID returns the grant of the fosite request id;
// ErrNotFound when there is none.
func (s *GormStore) GetGrantByRequestID(ctx context.Context, requestID string) (*Grant, error) {
	var row grantRow
	var err error
	if txFrom(ctx, s) != nil {
		err = s.read(ctx).Where("request_id = ?", requestID).Take(&row).Error
	} else {
		// Every refresh checks its grant: a prepared read.
		err = s.preparedRow(ctx, grantByRequestIDQuery, []any{requestID}, &row.ID, &row.Subject, &row.ClientID, &row.RequestID, &row.Scopes, &row.Basis, &row.AgreementID,
			&row.RememberedFrom, &row.CreatedAt, &row.RememberUntil, &row.RevokedAt, &row.LastUsedAt, &row.IPAddress, &row.UserAgent)
	}
	if err != nil {
		return nil, fmt.Errorf("load grant by request id: %w", dbErr(err))
	}
	g, err := row.toGrant()
	if err != nil {
		return nil, fmt.Errorf("load grant by request id: %w", err)
	}
	return g, nil
}

// ListGrants returns the grants matching f, newest first (ties by id, so the
// order is stable).
func (s *GormStore) ListGrants(ctx context.Context, f GrantFilter) ([]Grant, error) {
	q := s.read(ctx).Model(&grantRow{})
	if f.Subject != "" {
		q = q.Where("subject = ?", f.Subject)
	}
	if f.ClientID != "" {
		q = q.Where("client_id = ?", f.ClientID)
	}
	if f.UnrevokedOnly {
		q = q.Where("revoked_at IS NULL")
	}
	if !f.RememberedAfter.IsZero() {
		q = q.Where("remember_until > ?", utc(f.RememberedAfter))
	}
	var rows []grantRow
	if err := q.Order("created_at DESC, id DESC").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list grants: %w", dbErr(err))
	}
	out := make([]Grant, 0, len(rows))
	for i := range rows {
		g, err := rows[i].toGrant()
		if err != nil {
			return nil, fmt.Errorf("list grants: %w", err)
		}
		out = append(out, *g)
	}
	return out, nil
}

// RevokeGrants marks the unrevoked grants of subject to clientID revoked at
// at (now when zero) and, in the same transaction, revokes the tokens issued
// under their request ids: authorize codes are invalidated, refresh tokens
// made inactive, access tokens, PKCE and OpenID Connect sessions deleted. It
// returns how many grants it revoked; 0 when there were none.
func (s *GormStore) RevokeGrants(ctx context.Context, subject, clientID string, at time.Time) (int, error) {
	if at.IsZero() {
		at = s.now()
	}
	at = at.UTC()
	var revoked int64
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		// Grants first: their rows stay locked until commit, so a concurrent
		// RevokeGrants waits and then finds nothing left to revoke.
		res := tx.Model(&grantRow{}).
			Where("subject = ? AND client_id = ? AND revoked_at IS NULL", subject, clientID).
			Update("revoked_at", at)
		if res.Error != nil {
			return dbErr(res.Error)
		}
		revoked = res.RowsAffected
		if revoked == 0 {
			return nil
		}
		// Exactly the grants just revoked: both sides of the comparison are
		// the same bound value, stored and compared alike by each database.
		requestIDs := func() *gorm.DB {
			return tx.Session(&gorm.Session{NewDB: true}).Model(&grantRow{}).Select("request_id").
				Where("subject = ? AND client_id = ? AND revoked_at = ?", subject, clientID, at)
		}
		return revokeGrantTokens(tx, requestIDs)
	})
	if err != nil {
		return 0, fmt.Errorf("revoke grants of %q to client %q: %w", subject, clientID, err)
	}
	return int(revoked), nil
}

// revokeGrantTokens revokes every token whose request id requestIDs selects,
// one statement per table. The order matters on PostgreSQL, where each
// statement of a READ COMMITTED transaction sees what committed before it
// started: codes come first, so that a concurrent code exchange either fails
// (the code is already invalid) or has committed its tokens before the
// statements below look for them; refresh tokens before access tokens, for
// the same reason with refresh token rotation.
func revokeGrantTokens(tx *gorm.DB, requestIDs func() *gorm.DB) error {
	if err := tx.Table(tableAuthorizeCodes).Where("request_id IN (?) AND active = ?", requestIDs(), true).
		Update("active", false).Error; err != nil {
		return fmt.Errorf("invalidate authorize codes: %w", dbErr(err))
	}
	// An UPDATE that waits for a rotation holding a refresh token's row lock
	// cannot see the new refresh token that rotation commits: its snapshot
	// predates it. Repeat until a fresh count finds no active token left.
	for pass := 1; ; pass++ {
		if err := tx.Table(tableRefreshTokens).Where("request_id IN (?) AND active = ?", requestIDs(), true).
			Update("active", false).Error; err != nil {
			return fmt.Errorf("deactivate refresh tokens: %w", dbErr(err))
		}
		var left int64
		if err := tx.Table(tableRefreshTokens).Where("request_id IN (?) AND active = ?", requestIDs(), true).
			Count(&left).Error; err != nil {
			return fmt.Errorf("count active refresh tokens: %w", dbErr(err))
		}
		if left == 0 {
			break
		}
		if pass == maxRefreshRevokePasses {
			return fmt.Errorf("deactivate refresh tokens: %d still active after %d passes", left, pass)
		}
	}
	for _, k := range []tokenKind{kindAccessToken, kindPKCE, kindOIDC} {
		if err := tx.Table(k.table()).Where("request_id IN (?)", requestIDs()).Delete(&tokenFields{}).Error; err != nil {
			return fmt.Errorf("delete %ss: %w", k, dbErr(err))
		}
	}
	return nil
}

// RevokeGrantByRequestID marks the grant of the fosite request id revoked at
// at (now when zero; a revoked grant keeps its first time) and, in the same
// transaction, revokes every token of that request id as RevokeGrants does.
// The tokens are revoked even when the grant was revoked already, so a call
// also cleans up after anything issued since. ErrNotFound when no grant has
// this request id.
func (s *GormStore) RevokeGrantByRequestID(ctx context.Context, requestID string, at time.Time) error {
	if at.IsZero() {
		at = s.now()
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		// The grant first, for the lock (see RevokeGrants).
		res := tx.Model(&grantRow{}).Where("request_id = ? AND revoked_at IS NULL", requestID).Update("revoked_at", at.UTC())
		if res.Error != nil {
			return dbErr(res.Error)
		}
		if res.RowsAffected == 0 {
			var n int64
			if err := tx.Model(&grantRow{}).Where("request_id = ?", requestID).Count(&n).Error; err != nil {
				return dbErr(err)
			}
			if n == 0 {
				return ErrNotFound
			}
		}
		requestIDs := func() *gorm.DB {
			return tx.Session(&gorm.Session{NewDB: true}).Model(&grantRow{}).Select("request_id").
				Where("request_id = ?", requestID)
		}
		return revokeGrantTokens(tx, requestIDs)
	})
	if err != nil {
		return fmt.Errorf("revoke grant by request id: %w", err)
	}
	return nil
}

// TouchGrant sets LastUsedAt of the grant of the fosite request id to at (now
// when zero); ErrNotFound when no grant has this request id.
func (s *GormStore) TouchGrant(ctx context.Context, requestID string, at time.Time) error {
	if at.IsZero() {
		at = s.now()
	}
	db := s.db(ctx)
	n, ok, err := s.execPrepared(db, touchGrantQuery, at.UTC(), requestID)
	if !ok {
		res := db.Model(&grantRow{}).Where("request_id = ?", requestID).Update("last_used_at", at.UTC())
		n, err = res.RowsAffected, res.Error
	}
	if err != nil {
		return fmt.Errorf("touch grant by request id: %w", dbErr(err))
	}
	if n == 0 {
		return fmt.Errorf("touch grant by request id: %w", ErrNotFound)
	}
	return nil
}
