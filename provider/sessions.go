package provider

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/consentry/consentry/storage"
)

// RevokeSessions ends browser sessions of the user: the one with the public
// id, or every one when id is "". It returns how many it ended. An unknown
// user yields `user "X" not found` and an unknown id (or another user's)
// `session "ID" not found`, both matching storage.ErrNotFound.
//
// When it ends any, it records one storage.EventSessionRevoked by the
// administrator revokedBy, in the same transaction. A missing or
// unprintable revokedBy is refused with an error matching ErrInvalidSpec.
func RevokeSessions(ctx context.Context, store storage.Store, username, id, revokedBy string, now time.Time) (int, error) {
	revokedBy, err := checkAdminName(revokedBy)
	if err != nil {
		return 0, err
	}
	u, err := store.GetUserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, notFound("user", username)
	}
	if err != nil {
		return 0, fmt.Errorf("load user %q: %w", username, err)
	}
	var n int
	err = inTx(ctx, store, func(ctx context.Context) error {
		if n, err = endSessions(ctx, store, u.Subject, id, ""); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		return store.AppendAuditEvent(ctx, &storage.AuditEvent{
			Time: now, Type: storage.EventSessionRevoked, Actor: storage.ActorAdmin, ActorName: revokedBy,
			Subject: u.Subject, Detail: sessionsDetail(n, id),
		})
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// SignOutSession is the user's "Sign out" of one of their other browsers:
// the user's session with the public id ends. storage.ErrNotFound when the
// user has no such session.
func (p *Provider) SignOutSession(ctx context.Context, subject, id, ip, userAgent string) error {
	_, err := p.signOutSessions(ctx, subject, id, "", ip, userAgent)
	return err
}

// SignOutOtherSessions is the user's "Sign out everywhere else": every
// session of the user but the one whose id hash is currentIDHash ends. It
// returns how many ended.
func (p *Provider) SignOutOtherSessions(ctx context.Context, subject, currentIDHash, ip, userAgent string) (int, error) {
	if currentIDHash == "" {
		return 0, errors.New("sign out other sessions: no current session")
	}
	return p.signOutSessions(ctx, subject, "", currentIDHash, ip, userAgent)
}

func (p *Provider) signOutSessions(ctx context.Context, subject, id, exceptIDHash, ip, userAgent string) (int, error) {
	now := p.Now()
	var n int
	err := inTx(ctx, p.Store, func(ctx context.Context) error {
		var err error
		if n, err = endSessions(ctx, p.Store, subject, id, exceptIDHash); err != nil || n == 0 {
			return err
		}
		detail := sessionsDetail(n, id)
		if id == "" {
			detail += " (everywhere else)"
		}
		return p.Store.AppendAuditEvent(ctx, &storage.AuditEvent{
			Time: now, Type: storage.EventSessionRevoked, Actor: storage.ActorUser, Subject: subject,
			IPAddress: ip, UserAgent: userAgent, Detail: detail,
		})
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// endSessions deletes subject's session id, or with id "" all of subject's
// sessions but exceptIDHash's.
func endSessions(ctx context.Context, store storage.BrowserSessions, subject, id, exceptIDHash string) (int, error) {
	if id == "" {
		return store.DeleteSubjectSessions(ctx, subject, exceptIDHash)
	}
	err := store.DeleteSubjectSession(ctx, subject, id)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, notFound("session", id)
	}
	if err != nil {
		return 0, err
	}
	return 1, nil
}

func sessionsDetail(n int, id string) string {
	if id != "" {
		return "session " + id
	}
	if n == 1 {
		return "1 session"
	}
	return fmt.Sprintf("%d sessions", n)
}

// sessionSecretBytes is the length of a session's secret, the one value its
// cookie carries: 256 bits.
const sessionSecretBytes = 32

// sessionTouchInterval is how often a session's last use is written at
// most: its idle expiry is exact to this, and a busy browser costs one write
// a minute instead of one per request.
const sessionTouchInterval = time.Minute

// SessionStart describes a sign-in that starts a browser session.
type SessionStart struct {
	Subject  string
	AuthTime time.Time
	// AMR lists the authentication methods (RFC 8176), e.g. ["pwd"].
	AMR           []string
	IP, UserAgent string
	// Replaces is the secret of the session the browser had, ended by this
	// sign-in; nil when it had none.
	Replaces []byte
}

// sessionIDHash is what the store keeps of a session's secret.
func sessionIDHash(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:])
}

// StartSession stores a new browser session, ending the one it replaces,
// and returns the secret for the cookie (never stored) and the session.
func (p *Provider) StartSession(ctx context.Context, s SessionStart) ([]byte, *storage.BrowserSession, error) {
	if len(s.Replaces) > 0 {
		if err := p.Store.DeleteSession(ctx, sessionIDHash(s.Replaces)); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, nil, fmt.Errorf("end previous session: %w", err)
		}
	}
	secret := make([]byte, sessionSecretBytes)
	publicID := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, nil, fmt.Errorf("generate session secret: %w", err)
	}
	if _, err := rand.Read(publicID); err != nil {
		return nil, nil, fmt.Errorf("generate session id: %w", err)
	}
	now := p.Now()
	lifespan, idle := p.Config.SessionLifespan.Std(), p.Config.SessionIdleLifetime.Std()
	sess := &storage.BrowserSession{
		IDHash:        sessionIDHash(secret),
		ID:            base64.RawURLEncoding.EncodeToString(publicID),
		Subject:       s.Subject,
		AuthTime:      s.AuthTime,
		AMR:           s.AMR,
		CreatedAt:     now,
		LastSeenAt:    now,
		ExpiresAt:     now.Add(lifespan),
		IdleExpiresAt: now.Add(min(idle, lifespan)),
		IPAddress:     s.IP,
		UserAgent:     s.UserAgent,
	}
	if err := p.Store.CreateSession(ctx, sess); err != nil {
		return nil, nil, fmt.Errorf("start session: %w", err)
	}
	return secret, sess, nil
}

// Session returns the live browser session whose secret a cookie carried:
// nil without error when there is none, it ended or it expired (absolutely,
// or idle); an error when the database fails. Every call reads the session,
// so that a session ended on any instance ends everywhere at once. Its last
// use is written at most once a minute.
func (p *Provider) Session(ctx context.Context, secret []byte) (*storage.BrowserSession, error) {
	if len(secret) != sessionSecretBytes {
		return nil, nil
	}
	hash := sessionIDHash(secret)
	sess, err := p.Store.GetSession(ctx, hash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	now, idle := p.Now(), p.Config.SessionIdleLifetime.Std()
	if !now.Before(sess.ExpiresAt) || !now.Before(sess.LastSeenAt.Add(idle)) {
		return nil, nil
	}
	if now.Sub(sess.LastSeenAt) >= sessionTouchInterval {
		idleUntil := now.Add(idle)
		if idleUntil.After(sess.ExpiresAt) {
			idleUntil = sess.ExpiresAt
		}
		if err := p.Store.TouchSession(ctx, hash, now, idleUntil); err != nil {
			return nil, fmt.Errorf("touch session: %w", err)
		}
		sess.LastSeenAt, sess.IdleExpiresAt = now, idleUntil
	}
	return sess, nil
}

// EndSession ends the browser session whose secret a cookie carried, so
// that no copy of the cookie works any more. Ending an unknown session is
// not an error.
func (p *Provider) EndSession(ctx context.Context, secret []byte) error {
	if len(secret) == 0 {
		return nil
	}
	if err := p.Store.DeleteSession(ctx, sessionIDHash(secret)); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}
