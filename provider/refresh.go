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
// honoured. Offline access ends, whatever the token's own expiry, as soon as
// the user behind it is disabled or deleted, the grant it came from is
// revoked, or the standing agreement that grant relied on is revoked or has
// ended (OIDC Core §11: the basis of offline access must still hold).
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

	grant, err := p.Store.GetGrantByRequestID(ctx, ar.GetID())
	if errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The refresh token has no recorded grant.")
	}
	if err != nil {
		return fosite.ErrServerError.WithWrap(fmt.Errorf("load grant for refresh: %w", err))
	}
	if grant.RevokedAt != nil {
		return fosite.ErrInvalidGrant.WithHint("The user's consent for this application was revoked.")
	}
	if grant.Basis == storage.BasisAgreement {
		agreement, err := p.Store.GetAgreement(ctx, grant.AgreementID)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && !AgreementActive(*agreement, p.Now())) {
			return fosite.ErrInvalidGrant.WithHint("The agreement this offline access relied on is no longer in force.")
		}
		if err != nil {
			return fosite.ErrServerError.WithWrap(fmt.Errorf("load agreement for refresh: %w", err))
		}
	}
	return nil
}
