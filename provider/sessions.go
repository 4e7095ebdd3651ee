package provider

import (
	"context"
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
