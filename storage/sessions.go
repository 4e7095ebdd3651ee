package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// tableSessions holds the browser sessions (migration 6).
const tableSessions = "consentry_sessions"

// sessionRow is one BrowserSession. The key is the hash of the cookie's
// secret; id is the public name shown to the user and put in ID tokens.
// subject is indexed for the per-user listing and deletions, expires_at and
// idle_expires_at for CollectGarbage.
type sessionRow struct {
	IDHash        string    `gorm:"column:id_hash;primaryKey"`
	ID            string    `gorm:"column:id;not null;uniqueIndex"`
	Subject       string    `gorm:"column:subject;not null;index"`
	AuthTime      time.Time `gorm:"column:auth_time;not null"`
	AMR           string    `gorm:"column:amr;not null"`
	CreatedAt     time.Time `gorm:"column:created_at;not null"`
	LastSeenAt    time.Time `gorm:"column:last_seen_at;not null"`
	ExpiresAt     time.Time `gorm:"column:expires_at;not null;index"`
	IdleExpiresAt time.Time `gorm:"column:idle_expires_at;not null;index"`
	IPAddress     string    `gorm:"column:ip_address;not null"`
	UserAgent     string    `gorm:"column:user_agent;not null"`
}

func (sessionRow) TableName() string { return tableSessions }

func toSessionRow(s *BrowserSession) sessionRow {
	return sessionRow{
		IDHash:        s.IDHash,
		ID:            s.ID,
		Subject:       s.Subject,
		AuthTime:      utc(s.AuthTime),
		AMR:           encodeList(s.AMR),
		CreatedAt:     utc(s.CreatedAt),
		LastSeenAt:    utc(s.LastSeenAt),
		ExpiresAt:     utc(s.ExpiresAt),
		IdleExpiresAt: utc(s.IdleExpiresAt),
		IPAddress:     s.IPAddress,
		UserAgent:     s.UserAgent,
	}
}

func (r *sessionRow) toSession() (*BrowserSession, error) {
	amr, err := decodeList(r.AMR)
	if err != nil {
		return nil, fmt.Errorf("session %q amr: %w", r.ID, err)
	}
	return &BrowserSession{
		IDHash:        r.IDHash,
		ID:            r.ID,
		Subject:       r.Subject,
		AuthTime:      utc(r.AuthTime),
		AMR:           amr,
		CreatedAt:     utc(r.CreatedAt),
		LastSeenAt:    utc(r.LastSeenAt),
		ExpiresAt:     utc(r.ExpiresAt),
		IdleExpiresAt: utc(r.IdleExpiresAt),
		IPAddress:     r.IPAddress,
		UserAgent:     r.UserAgent,
	}, nil
}

// CreateSession stores sess; ErrAlreadyExists when the id hash or the id is
// taken. IDHash, ID, Subject, ExpiresAt and IdleExpiresAt are required; a
// zero CreatedAt is now, a zero LastSeenAt CreatedAt.
func (s *GormStore) CreateSession(ctx context.Context, sess *BrowserSession) error {
	if sess == nil || sess.IDHash == "" || sess.ID == "" || sess.Subject == "" {
		return errors.New("create session: id hash, id and subject are required")
	}
	if sess.ExpiresAt.IsZero() || sess.IdleExpiresAt.IsZero() {
		return errors.New("create session: ExpiresAt and IdleExpiresAt are required")
	}
	row := toSessionRow(sess)
	if row.CreatedAt.IsZero() {
		row.CreatedAt = s.now().UTC()
	}
	if row.LastSeenAt.IsZero() {
		row.LastSeenAt = row.CreatedAt
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error { return tx.Create(&row).Error })
	if err != nil {
		// The hash stays out of the message: it names a credential.
		return fmt.Errorf("create session %q of %q: %w", sess.ID, sess.Subject, dbErr(err))
	}
	return nil
}

// GetSession returns the session whose cookie secret hashes to idHash,
// expired or not; ErrNotFound when there is none. One read by primary key.
func (s *GormStore) GetSession(ctx context.Context, idHash string) (*BrowserSession, error) {
	var row sessionRow
	if err := s.read(ctx).Where("id_hash = ?", idHash).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("load session: %w", dbErr(err))
	}
	sess, err := row.toSession()
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	return sess, nil
}

// TouchSession records that the session was seen at `at` and lives, idle,
// until idleExpiresAt. A touch no later than the last one, or of a session
// that is gone, changes nothing: it is not an error.
func (s *GormStore) TouchSession(ctx context.Context, idHash string, at, idleExpiresAt time.Time) error {
	err := s.db(ctx).Model(&sessionRow{}).Where("id_hash = ? AND last_seen_at < ?", idHash, at.UTC()).
		Updates(map[string]any{"last_seen_at": at.UTC(), "idle_expires_at": idleExpiresAt.UTC()}).Error
	if err != nil {
		return fmt.Errorf("touch session: %w", dbErr(err))
	}
	return nil
}

// DeleteSession deletes the session whose cookie secret hashes to idHash;
// ErrNotFound when there is none.
func (s *GormStore) DeleteSession(ctx context.Context, idHash string) error {
	res := s.db(ctx).Where("id_hash = ?", idHash).Delete(&sessionRow{})
	if res.Error != nil {
		return fmt.Errorf("delete session: %w", dbErr(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("delete session: %w", ErrNotFound)
	}
	return nil
}

// DeleteSubjectSession deletes the session with the public id if it is
// subject's; ErrNotFound when subject has no such session, so that no one
// ends another user's session by naming it.
func (s *GormStore) DeleteSubjectSession(ctx context.Context, subject, id string) error {
	res := s.db(ctx).Where("subject = ? AND id = ?", subject, id).Delete(&sessionRow{})
	if res.Error != nil {
		return fmt.Errorf("delete session %q of %q: %w", id, subject, dbErr(res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("delete session %q of %q: %w", id, subject, ErrNotFound)
	}
	return nil
}

// DeleteSubjectSessions deletes every session of subject except the one
// whose id hash is exceptIDHash ("" keeps none) and returns how many it
// deleted.
func (s *GormStore) DeleteSubjectSessions(ctx context.Context, subject, exceptIDHash string) (int, error) {
	n, err := deleteSessionsOf(s.db(ctx), subject, exceptIDHash)
	if err != nil {
		return 0, fmt.Errorf("delete sessions of %q: %w", subject, dbErr(err))
	}
	return n, nil
}

func deleteSessionsOf(db *gorm.DB, subject, exceptIDHash string) (int, error) {
	q := db.Where("subject = ?", subject)
	if exceptIDHash != "" {
		q = q.Where("id_hash <> ?", exceptIDHash)
	}
	res := q.Delete(&sessionRow{})
	return int(res.RowsAffected), res.Error
}

// ListSessions returns subject's sessions alive at now (neither past
// ExpiresAt nor past IdleExpiresAt), most recently seen first.
func (s *GormStore) ListSessions(ctx context.Context, subject string, now time.Time) ([]BrowserSession, error) {
	var rows []sessionRow
	err := s.read(ctx).Where("subject = ? AND expires_at > ? AND idle_expires_at > ?", subject, now.UTC(), now.UTC()).
		Order("last_seen_at DESC").Order("id").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", subject, dbErr(err))
	}
	out := make([]BrowserSession, 0, len(rows))
	for i := range rows {
		sess, err := rows[i].toSession()
		if err != nil {
			return nil, fmt.Errorf("list sessions of %q: %w", subject, err)
		}
		out = append(out, *sess)
	}
	return out, nil
}
