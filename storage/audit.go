package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// AppendAuditEvent stores e, in the caller's transaction when ctx carries one
// (so the event commits or rolls back with what it records). It sets e.ID and,
// when zero, e.Time to now (UTC, at microsecond precision, which every
// database keeps exactly). Events are never updated or deleted: not by this
// package's Delete methods, not by CollectGarbage.
func (s *GormStore) AppendAuditEvent(ctx context.Context, e *AuditEvent) error {
	if e == nil || e.Type == "" {
		return errors.New("append audit event: type is required")
	}
	row := toAuditEventRow(e)
	if row.Time.IsZero() {
		row.Time = s.now().UTC().Truncate(time.Microsecond)
	}
	// One insert of a database-assigned key: nothing to isolate in a savepoint.
	if err := s.db(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("append audit event %q: %w", e.Type, dbErr(err))
	}
	e.ID = row.ID
	if e.Time.IsZero() {
		e.Time = row.Time
	}
	return nil
}

// ListAuditEvents returns the events matching f, oldest first (by time, then
// by id, i.e. in order of appending among events of the same time). Since is
// inclusive; a Limit of 0 or less means no limit.
func (s *GormStore) ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	q := s.read(ctx).Model(&auditEventRow{})
	if f.Subject != "" {
		q = q.Where("subject = ?", f.Subject)
	}
	if f.ClientID != "" {
		q = q.Where("client_id = ?", f.ClientID)
	}
	if !f.Since.IsZero() {
		q = q.Where("time >= ?", f.Since.UTC())
	}
	if f.Limit > 0 {
		q = q.Limit(f.Limit)
	}
	var rows []auditEventRow
	if err := q.Order("time, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list audit events: %w", dbErr(err))
	}
	out := make([]AuditEvent, 0, len(rows))
	for i := range rows {
		e, err := rows[i].toAuditEvent()
		if err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		out = append(out, *e)
	}
	return out, nil
}
