package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/storage"
)

// Pending authorization requests wait, stored, for the user to sign in or
// decide on the consent screen. The handlers keep them through these
// methods; each unknown or expired id is storage.ErrNotFound.

// NewPendingRequest stores the authorization request whose parameters are
// query for the round trip through the login or consent page, and returns
// its id. With a subject (who is signed in, since authTime) it is bound to
// that user and offers the scopes offered on the consent screen.
func (p *Provider) NewPendingRequest(ctx context.Context, query, subject string, authTime time.Time, offered []string) (string, error) {
	id, err := randomToken(32)
	if err != nil {
		return "", err
	}
	now := p.Now()
	r := &storage.AuthRequest{
		ID:        id,
		Query:     query,
		CreatedAt: now,
		ExpiresAt: now.Add(p.Config.LoginRequestLifespan.Std()),
	}
	if subject != "" {
		r.Subject, r.AuthTime, r.OfferedScopes = subject, authTime, offered
	}
	if err := p.Store.CreateAuthRequest(ctx, r); err != nil {
		return "", fmt.Errorf("create auth request: %w", err)
	}
	return id, nil
}

// PendingRequest returns the pending request id.
func (p *Provider) PendingRequest(ctx context.Context, id string) (*storage.AuthRequest, error) {
	return p.Store.GetAuthRequest(ctx, id)
}

// OfferPendingRequest binds the pending request id to subject, signed in
// since authTime (keeping the sign-in time it has when already bound to
// them), and records the scopes the consent screen offers.
func (p *Provider) OfferPendingRequest(ctx context.Context, id, subject string, authTime time.Time, offered []string) error {
	return p.Store.UpdateAuthRequest(ctx, id, func(r *storage.AuthRequest) error {
		if r.Subject != subject {
			r.Subject, r.AuthTime = subject, authTime
		}
		r.OfferedScopes = offered
		return nil
	})
}

// SignInPendingRequest binds the pending request id to subject, who has
// just signed in at authTime; subject "" unbinds it (the user signed out).
func (p *Provider) SignInPendingRequest(ctx context.Context, id, subject string, authTime time.Time) error {
	return p.Store.UpdateAuthRequest(ctx, id, func(r *storage.AuthRequest) error {
		r.Subject, r.AuthTime = subject, authTime
		return nil
	})
}

// ConsumePendingRequest deletes the pending request id before anything is
// issued for it, so that a replayed form finds nothing.
func (p *Provider) ConsumePendingRequest(ctx context.Context, id string) error {
	return p.Store.DeleteAuthRequest(ctx, id)
}

// User returns the user with this subject.
func (p *Provider) User(ctx context.Context, subject string) (*storage.User, error) {
	return p.Store.GetUser(ctx, subject)
}

// UserByUsername returns the user with this username.
func (p *Provider) UserByUsername(ctx context.Context, username string) (*storage.User, error) {
	return p.Store.GetUserByUsername(ctx, username)
}

// Client returns the registered client with this id.
func (p *Provider) Client(ctx context.Context, id string) (*storage.Client, error) {
	return p.Store.GetStoredClient(ctx, id)
}

// Clients lists the registered clients.
func (p *Provider) Clients(ctx context.Context) ([]storage.Client, error) {
	return p.Store.ListClients(ctx)
}

// Sessions lists the user's browser sessions that have not ended.
func (p *Provider) Sessions(ctx context.Context, subject string) ([]storage.BrowserSession, error) {
	return p.Store.ListSessions(ctx, subject, p.Now())
}
