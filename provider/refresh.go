package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentry/consentry/storage"
)

// CheckRefresh decides whether a validated refresh request may still be
// honoured: offline access ends as soon as the user behind it is disabled or
// deleted, whatever the token's own expiry.
func (p *Provider) CheckRefresh(ctx context.Context, ar fosite.AccessRequester) error {
	session, ok := ar.GetSession().(*openid.DefaultSession)
	if !ok || session.Subject == "" {
		return fosite.ErrInvalidGrant.WithHint("The refresh token has no user.")
	}
	user, err := p.Store.GetUser(ctx, session.Subject)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && user.Disabled) {
		return fosite.ErrInvalidGrant.WithHint("The user of this refresh token can no longer sign in.")
	}
	if err != nil {
		return fosite.ErrServerError.WithWrap(fmt.Errorf("load user for refresh: %w", err))
	}
	return nil
}
