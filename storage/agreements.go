package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// CreateAgreement stores an agreement; ErrAlreadyExists when the id is taken.
// It must name either one user (Subject) or all users (AllUsers), not both:
// the ForSubject filter relies on it. A zero CreatedAt is set to now, a zero
// StartsAt to CreatedAt.
func (s *GormStore) CreateAgreement(ctx context.Context, a *Agreement) error {
	if a == nil || a.ID == "" || a.ClientID == "" {
		return errors.New("create agreement: id and client id are required")
	}
	if a.AllUsers == (a.Subject != "") {
		return fmt.Errorf("create agreement %q: set either Subject or AllUsers", a.ID)
	}
	row := toAgreementRow(a)
	if row.CreatedAt.IsZero() {
		row.CreatedAt = s.now().UTC()
	}
	if row.StartsAt.IsZero() {
		row.StartsAt = row.CreatedAt
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error { return tx.Create(&row).Error })
	if err != nil {
		return fmt.Errorf("create agreement %q: %w", a.ID, dbErr(err))
	}
	return nil
}

// GetAgreement returns the agreement; ErrNotFound for an unknown id.
func (s *GormStore) GetAgreement(ctx context.Context, id string) (*Agreement, error) {
	var row agreementRow
	if err := s.read(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("load agreement %q: %w", id, dbErr(err))
	}
	a, err := row.toAgreement()
	if err != nil {
		return nil, fmt.Errorf("load agreement %q: %w", id, err)
	}
	return a, nil
}

// ListAgreements returns the agreements matching f, revoked and expired ones
// included, oldest first (ties by id, so the order is stable). ForSubject
// leaves out the all-users agreements the subject opted out of; the other
// filters do not look at opt-outs.
func (s *GormStore) ListAgreements(ctx context.Context, f AgreementFilter) ([]Agreement, error) {
	q := s.read(ctx).Model(&agreementRow{})
	if f.ClientID != "" {
		q = q.Where("client_id = ?", f.ClientID)
	}
	if f.Subject != "" {
		q = q.Where("subject = ?", f.Subject)
	}
	if f.ForSubject != "" {
		// Opt-outs exist for all-users agreements only (OptOutOfAgreement).
		q = q.Where("(all_users = ? OR subject = ?)", true, f.ForSubject).
			Where("NOT EXISTS (SELECT 1 FROM "+tableOptOuts+" o WHERE o.agreement_id = "+tableAgreements+".id AND o.subject = ?)", f.ForSubject)
	}
	var rows []agreementRow
	if err := q.Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list agreements: %w", dbErr(err))
	}
	out := make([]Agreement, 0, len(rows))
	for i := range rows {
		a, err := rows[i].toAgreement()
		if err != nil {
			return nil, fmt.Errorf("list agreements: %w", err)
		}
		out = append(out, *a)
	}
	return out, nil
}

// RevokeAgreement sets RevokedAt to at (now when zero). Revoking a revoked
// agreement succeeds and keeps the first time: the record shows when it
// ended. ErrNotFound for an unknown id.
func (s *GormStore) RevokeAgreement(ctx context.Context, id string, at time.Time) error {
	if at.IsZero() {
		at = s.now()
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&agreementRow{}).Where("id = ? AND revoked_at IS NULL", id).Update("revoked_at", at.UTC())
		if res.Error != nil {
			return dbErr(res.Error)
		}
		if res.RowsAffected > 0 {
			return nil
		}
		var n int64
		if err := tx.Model(&agreementRow{}).Where("id = ?", id).Count(&n).Error; err != nil {
			return dbErr(err)
		}
		if n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoke agreement %q: %w", id, err)
	}
	return nil
}

// OptOutOfAgreement records that subject removed the access the all-users
// agreement gives them, at at (now when zero). Opting out again succeeds and
// keeps the first time. ErrNotFound for an unknown agreement; an agreement
// with one user is not opted out of but revoked (RevokeAgreement), and is an
// error here.
func (s *GormStore) OptOutOfAgreement(ctx context.Context, agreementID, subject string, at time.Time) error {
	if subject == "" {
		return fmt.Errorf("opt out of agreement %q: empty subject", agreementID)
	}
	if at.IsZero() {
		at = s.now()
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		// FOR SHARE (PostgreSQL; SQLite runs writers one at a time) holds off
		// a concurrent DeleteClient until the opt-out is committed, so that it
		// finds and deletes it instead of leaving it behind.
		var a agreementRow
		if err := tx.Clauses(clause.Locking{Strength: "SHARE"}).Select("id", "all_users").
			Where("id = ?", agreementID).Take(&a).Error; err != nil {
			return dbErr(err)
		}
		if !a.AllUsers {
			return errors.New("not an all-users agreement")
		}
		row := agreementOptOutRow{AgreementID: agreementID, Subject: subject, CreatedAt: at.UTC()}
		return dbErr(tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error)
	})
	if err != nil {
		return fmt.Errorf("opt out of agreement %q: %w", agreementID, err)
	}
	return nil
}

// deleteAgreementsWhere deletes the agreements matching cond and their
// opt-outs. The agreements are locked first, so that an OptOutOfAgreement
// racing with the deletion either commits before the opt-outs are deleted or
// finds the agreement gone.
func deleteAgreementsWhere(tx *gorm.DB, cond string, args ...any) error {
	var ids []string
	if err := tx.Model(&agreementRow{}).Clauses(clause.Locking{Strength: "UPDATE"}).
		Where(cond, args...).Pluck("id", &ids).Error; err != nil {
		return fmt.Errorf("lock agreements: %w", dbErr(err))
	}
	if len(ids) == 0 {
		return nil
	}
	if err := tx.Where("agreement_id IN ?", ids).Delete(&agreementOptOutRow{}).Error; err != nil {
		return fmt.Errorf("delete agreement opt-outs: %w", dbErr(err))
	}
	if err := tx.Where("id IN ?", ids).Delete(&agreementRow{}).Error; err != nil {
		return fmt.Errorf("delete agreements: %w", dbErr(err))
	}
	return nil
}
