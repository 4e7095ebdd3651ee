package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm"
)

// RetireRefreshToken marks the active refresh token under signature retired
// at at (now when zero), keeps successor (NULL when empty) until
// CollectGarbage clears it, and deletes the access tokens of the token's
// request id, in one transaction (a savepoint of the caller's). The update is
// conditional on the token being active, so of concurrent retirements of one
// token exactly one succeeds; the others get an error matching
// fosite.ErrInactiveToken and change nothing. ErrNotFound for an unknown
// token.
//
// Unlike RotateRefreshToken it leaves the other refresh tokens of the request
// id alone: in a rotation chain they are inactive already, and setting
// retired_at on them would make revoked tokens look rotated.
func (s *GormStore) RetireRefreshToken(ctx context.Context, signature string, at time.Time, successor []byte) error {
	if at.IsZero() {
		at = s.now()
	}
	// An empty []byte would be stored as an empty blob by the SQLite driver,
	// not NULL, and then count as a successor to clear.
	var succ any
	if len(successor) > 0 {
		succ = successor
	}
	retire := func(tx *gorm.DB) error {
		// The same race argument as deactivate: PostgreSQL re-checks the
		// condition once the winner commits, SQLite runs writers one at a time.
		n, ok, err := s.execPrepared(tx, retireRefreshTokenQuery, at.UTC(), succ, signature)
		if !ok {
			res := tx.Model(&refreshTokenRow{}).Where("signature = ? AND active = ?", signature, true).
				Updates(map[string]any{"active": false, "retired_at": at.UTC(), "successor": succ})
			n, err = res.RowsAffected, res.Error
		}
		if err != nil {
			return dbErr(err)
		}
		if n == 0 {
			if err := tx.Table(tableRefreshTokens).Where("signature = ?", signature).Count(&n).Error; err != nil {
				return dbErr(err)
			}
			if n > 0 {
				return fosite.ErrInactiveToken
			}
			return ErrNotFound
		}
		_, ok, err = s.execPrepared(tx, deleteAccessTokensOfRefreshQuery, signature)
		if !ok {
			requestID := tx.Session(&gorm.Session{NewDB: true}).Table(tableRefreshTokens).
				Select("request_id").Where("signature = ?", signature)
			err = tx.Table(tableAccessTokens).Where("request_id IN (?)", requestID).Delete(&tokenFields{}).Error
		}
		if err != nil {
			return fmt.Errorf("delete access tokens: %w", dbErr(err))
		}
		return nil
	}
	// Inside the caller's transaction no savepoint: losing the race changes
	// nothing, and after any other error the caller rolls back. (A savepoint
	// would cost a statement journal on every rotation.)
	var err error
	if txFrom(ctx, s) != nil {
		err = retire(s.db(ctx))
	} else {
		err = s.transaction(ctx, retire)
	}
	if err != nil {
		return fmt.Errorf("retire refresh token: %w", err)
	}
	return nil
}

// retirementRow is the part of a refresh token row GetRefreshTokenRetirement
// reads.
type retirementRow struct {
	RequestID string     `gorm:"column:request_id"`
	ClientID  string     `gorm:"column:client_id"`
	Active    bool       `gorm:"column:active"`
	RetiredAt *time.Time `gorm:"column:retired_at"`
	Successor []byte     `gorm:"column:successor"`
}

// GetRefreshTokenRetirement returns the state of the refresh token under
// signature, active or not; ErrNotFound when unknown. In the caller's
// transaction it reads what committed before the statement started
// (PostgreSQL, READ COMMITTED) or the latest state (SQLite, which runs write
// transactions one at a time): after losing a RetireRefreshToken race, the
// winner's successor.
func (s *GormStore) GetRefreshTokenRetirement(ctx context.Context, signature string) (*Retirement, error) {
	var row retirementRow
	err := s.read(ctx).Table(tableRefreshTokens).
		Select("request_id", "client_id", "active", "retired_at", "successor").
		Where("signature = ?", signature).Take(&row).Error
	if err != nil {
		return nil, fmt.Errorf("load refresh token retirement: %w", dbErr(err))
	}
	r := &Retirement{
		RequestID: row.RequestID,
		ClientID:  row.ClientID,
		Active:    row.Active,
		RetiredAt: optTime(row.RetiredAt),
	}
	if len(row.Successor) > 0 {
		r.Successor = row.Successor
	}
	return r, nil
}

// RefreshFamilyActive reports whether an active refresh token of requestID
// remains. A rotation keeps exactly one; a revocation leaves none.
func (s *GormStore) RefreshFamilyActive(ctx context.Context, requestID string) (bool, error) {
	var found []int
	err := s.read(ctx).Table(tableRefreshTokens).Select("1").
		Where("request_id = ? AND active = ?", requestID, true).Limit(1).Find(&found).Error
	if err != nil {
		return false, fmt.Errorf("look up the refresh token family: %w", dbErr(err))
	}
	return len(found) > 0, nil
}
