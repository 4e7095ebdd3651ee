package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

// checkGrant loads what offline access behind a token rests on (its user,
// its grant, the grant's agreement) and applies consent.CheckStanding.
func (p *Provider) checkGrant(ctx context.Context, original fosite.Requester) (consent.Standing, error) {
	session, ok := original.GetSession().(*openid.DefaultSession)
	if !ok || session.Subject == "" {
		return consent.Standing{}, fosite.ErrInvalidGrant.WithHint("The refresh token has no user.")
	}
	s := consent.Standing{Now: p.Now()}
	var err error
	if s.User, err = found(p.Store.GetUser(ctx, session.Subject)); err != nil {
		return consent.Standing{}, fosite.ErrServerError.WithWrap(fmt.Errorf("load user for refresh: %w", err))
	}
	if s.Grant, err = found(p.Store.GetGrantByRequestID(ctx, original.GetID())); err != nil {
		return consent.Standing{}, fosite.ErrServerError.WithWrap(fmt.Errorf("load grant for refresh: %w", err))
	}
	if s.Grant != nil && s.Grant.Basis == storage.BasisAgreement {
		if s.Agreement, err = found(p.Store.GetAgreement(ctx, s.Grant.AgreementID)); err != nil {
			return consent.Standing{}, fosite.ErrServerError.WithWrap(fmt.Errorf("load agreement for refresh: %w", err))
		}
	}
	if err := consent.CheckStanding(s); err != nil {
		return consent.Standing{}, err
	}
	return s, nil
}

// found turns storage.ErrNotFound into a nil value without error.
func found[T any](v *T, err error) (*T, error) {
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// refreshExpiry is when a refresh token of client issued now dies
// (consent.RefreshExpiry with the deployment's and the client's lifetimes).
func (p *Provider) refreshExpiry(client fosite.Client, basis consent.Standing, now time.Time) time.Time {
	l := consent.Lifetimes{Idle: p.Config.OfflineAccess.IdleLifetime.Std(), Absolute: p.Config.OfflineAccess.AbsoluteLifetime.Std()}
	if c, ok := client.(*storage.Client); ok {
		l.ClientIdle, l.ClientAbsolute = c.OfflineIdleLifetime, c.OfflineAbsoluteLifetime
	}
	return consent.RefreshExpiry(l, basis.Grant, basis.Agreement, now)
}
