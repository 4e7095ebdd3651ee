package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Tables of the device authorization grant (migration 2).
const (
	tableDeviceAuthorizations = "consentry_device_authorizations"
	tableRateLimits           = "consentry_rate_limits"
)

// deviceAuthorizationRow is one DeviceAuthorization. client_id and subject
// are indexed for DeleteClient and DeleteUser, expires_at for
// CollectGarbage. Interval is a time.Duration in nanoseconds.
type deviceAuthorizationRow struct {
	ID              string     `gorm:"column:id;primaryKey"`
	UserCode        string     `gorm:"column:user_code;not null;uniqueIndex"`
	ClientID        string     `gorm:"column:client_id;not null;index"`
	RequestedScopes string     `gorm:"column:requested_scopes;not null"`
	RequestID       string     `gorm:"column:request_id;not null"`
	Status          string     `gorm:"column:status;not null"`
	Subject         string     `gorm:"column:subject;not null;index"`
	GrantedScopes   string     `gorm:"column:granted_scopes;not null"`
	AuthTime        *time.Time `gorm:"column:auth_time"`
	Interval        int64      `gorm:"column:interval_ns;not null"`
	LastPolledAt    *time.Time `gorm:"column:last_polled_at"`
	CreatedAt       time.Time  `gorm:"column:created_at;not null"`
	ExpiresAt       time.Time  `gorm:"column:expires_at;not null;index"`
}

func (deviceAuthorizationRow) TableName() string { return tableDeviceAuthorizations }

// rateLimitRow counts the attempts under one key in one fixed window.
// ExpiresAt (the window's end) lets CollectGarbage delete windows of any
// length without knowing it.
type rateLimitRow struct {
	Key         string    `gorm:"column:key;primaryKey"`
	WindowStart time.Time `gorm:"column:window_start;primaryKey"`
	Count       int       `gorm:"column:count;not null"`
	ExpiresAt   time.Time `gorm:"column:expires_at;not null;index"`
}

func (rateLimitRow) TableName() string { return tableRateLimits }

var deviceStatuses = []string{DevicePending, DeviceApproved, DeviceDenied, DeviceRedeemed}

func toDeviceAuthorizationRow(d *DeviceAuthorization) deviceAuthorizationRow {
	return deviceAuthorizationRow{
		ID:              d.ID,
		UserCode:        d.UserCode,
		ClientID:        d.ClientID,
		RequestedScopes: encodeList(d.RequestedScopes),
		RequestID:       d.RequestID,
		Status:          d.Status,
		Subject:         d.Subject,
		GrantedScopes:   encodeList(d.GrantedScopes),
		AuthTime:        nullTime(d.AuthTime),
		Interval:        int64(d.Interval),
		LastPolledAt:    optTime(d.LastPolledAt),
		CreatedAt:       utc(d.CreatedAt),
		ExpiresAt:       utc(d.ExpiresAt),
	}
}

func (r *deviceAuthorizationRow) toDeviceAuthorization() (*DeviceAuthorization, error) {
	requested, err := decodeList(r.RequestedScopes)
	if err != nil {
		return nil, fmt.Errorf("requested scopes: %w", err)
	}
	granted, err := decodeList(r.GrantedScopes)
	if err != nil {
		return nil, fmt.Errorf("granted scopes: %w", err)
	}
	return &DeviceAuthorization{
		ID:              r.ID,
		UserCode:        r.UserCode,
		ClientID:        r.ClientID,
		RequestedScopes: requested,
		RequestID:       r.RequestID,
		Status:          r.Status,
		Subject:         r.Subject,
		GrantedScopes:   granted,
		AuthTime:        fromNullTime(r.AuthTime),
		Interval:        time.Duration(r.Interval),
		LastPolledAt:    optTime(r.LastPolledAt),
		CreatedAt:       utc(r.CreatedAt),
		ExpiresAt:       utc(r.ExpiresAt),
	}, nil
}

// CreateDeviceAuthorization stores d; ErrAlreadyExists when the id or the
// user code is taken. ID, UserCode, ClientID, RequestID and ExpiresAt are
// required; an empty Status is DevicePending, a zero CreatedAt now.
func (s *GormStore) CreateDeviceAuthorization(ctx context.Context, d *DeviceAuthorization) error {
	if d == nil || d.ID == "" || d.UserCode == "" || d.ClientID == "" || d.RequestID == "" {
		return errors.New("create device authorization: id, user code, client id and request id are required")
	}
	if d.ExpiresAt.IsZero() {
		return errors.New("create device authorization: ExpiresAt is required")
	}
	row := toDeviceAuthorizationRow(d)
	if row.Status == "" {
		row.Status = DevicePending
	}
	if !slices.Contains(deviceStatuses, row.Status) {
		return fmt.Errorf("create device authorization: unknown status %q", row.Status)
	}
	if row.CreatedAt.IsZero() {
		row.CreatedAt = s.now().UTC()
	}
	// In a savepoint: a taken user code must leave a caller's transaction
	// usable for the retry with another one.
	err := s.transaction(ctx, func(tx *gorm.DB) error { return tx.Create(&row).Error })
	if err != nil {
		// Neither code goes into the message: the id is a hash of a
		// credential, the user code one itself.
		return fmt.Errorf("create device authorization for client %q: %w", d.ClientID, dbErr(err))
	}
	return nil
}

// GetDeviceAuthorization returns the authorization with this id, expired or
// not; ErrNotFound when unknown.
func (s *GormStore) GetDeviceAuthorization(ctx context.Context, id string) (*DeviceAuthorization, error) {
	return s.loadDeviceAuthorization(s.read(ctx), "id = ?", id)
}

// GetDeviceAuthorizationByUserCode returns the authorization with this
// (normalised) user code, expired or not; ErrNotFound when unknown.
func (s *GormStore) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (*DeviceAuthorization, error) {
	return s.loadDeviceAuthorization(s.read(ctx), "user_code = ?", userCode)
}

func (s *GormStore) loadDeviceAuthorization(db *gorm.DB, where string, value string) (*DeviceAuthorization, error) {
	var row deviceAuthorizationRow
	if err := db.Where(where, value).Take(&row).Error; err != nil {
		return nil, fmt.Errorf("load device authorization: %w", dbErr(err))
	}
	d, err := row.toDeviceAuthorization()
	if err != nil {
		return nil, fmt.Errorf("load device authorization: %w", err)
	}
	return d, nil
}

// UpdateDeviceAuthorization loads the authorization, applies fn and stores
// the result in one transaction (a savepoint of the caller's), the row
// locked meanwhile, so concurrent updates run one after the other and each
// sees the previous one's result. fn's error aborts the update and is
// returned. The id, user code, client, request id and CreatedAt cannot be
// changed. ErrNotFound when unknown.
func (s *GormStore) UpdateDeviceAuthorization(ctx context.Context, id string, fn func(*DeviceAuthorization) error) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var row deviceAuthorizationRow
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&row).Error; err != nil {
			return dbErr(err)
		}
		d, err := row.toDeviceAuthorization()
		if err != nil {
			return err
		}
		if err := fn(d); err != nil {
			return err
		}
		if !slices.Contains(deviceStatuses, d.Status) {
			return fmt.Errorf("unknown status %q", d.Status)
		}
		if d.ExpiresAt.IsZero() {
			return errors.New("ExpiresAt is required")
		}
		next := toDeviceAuthorizationRow(d)
		return dbErr(tx.Model(&deviceAuthorizationRow{}).Where("id = ?", id).
			Select("requested_scopes", "status", "subject", "granted_scopes", "auth_time", "interval_ns",
				"last_polled_at", "expires_at").
			Updates(&next).Error)
	})
	if err != nil {
		return fmt.Errorf("update device authorization: %w", err)
	}
	return nil
}

// CountAttempt adds one attempt under key to the fixed window of length
// window that contains now (windows start at multiples of window since the
// zero time) and returns the window's count, this attempt included. One
// statement, an upsert, so concurrent attempts on any instance are all
// counted.
func (s *GormStore) CountAttempt(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	if key == "" || window <= 0 {
		return 0, errors.New("count attempt: a key and a positive window are required")
	}
	start := now.UTC().Truncate(window)
	// Raw SQL: gorm cannot express RETURNING of an upsert portably. Quoted
	// identifiers, as "key" and "count" are keywords. SQLite >= 3.35 and
	// PostgreSQL >= 9.5 both run it; Find (not Scan) keeps the query timeout.
	var count int
	err := s.db(ctx).Raw(`INSERT INTO `+tableRateLimits+` ("key", "window_start", "count", "expires_at") VALUES (?, ?, 1, ?)
ON CONFLICT ("key", "window_start") DO UPDATE SET "count" = `+tableRateLimits+`."count" + 1
RETURNING "count"`, key, start, start.Add(window)).Find(&count).Error
	if err != nil {
		return 0, fmt.Errorf("count attempt: %w", dbErr(err))
	}
	if count < 1 {
		return 0, errors.New("count attempt: the database returned no count")
	}
	return count, nil
}
