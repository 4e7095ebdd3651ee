package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentry/consentry/provider/connector"
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
	if err := p.checkUpstream(ctx, s.User); err != nil {
		return consent.Standing{}, err
	}
	return s, nil
}

// checkUpstream asks the connector of a user from a directory whether the
// person is still there (a refresh connector, its answer cached for
// connector_refresh_cache), or checks the age of their last sign-in
// (max_login_age), and applies consent.CheckUpstream.
func (p *Provider) checkUpstream(ctx context.Context, user *storage.User) error {
	if user.ConnectorID == "" || user.ConnectorID == storage.LocalConnectorID {
		return nil
	}
	now := p.Now()
	u := consent.Upstream{Now: now}
	c := p.Connector(user.ConnectorID)
	u.Configured = c != nil
	if c == nil {
		return consent.CheckUpstream(u)
	}
	ident, err := found(p.Store.GetIdentityBySubject(ctx, user.Subject))
	if err != nil {
		return fosite.ErrServerError.WithWrap(fmt.Errorf("load identity for refresh: %w", err))
	}
	if ident != nil && ident.ConnectorID == c.ID {
		u.Linked, u.Gone, u.LastLoginAt, u.MaxLoginAge = true, ident.Gone, ident.LastLoginAt, c.MaxLoginAge
	}
	if c.Refresh != nil && u.Linked && !u.Gone {
		u.Asked = true
		if !p.upstreamSeen.fresh(user.Subject, now, p.Config.ConnectorRefreshCache.Std()) {
			u.Err = p.refreshIdentity(ctx, c, user, ident)
		}
	}
	return consent.CheckUpstream(u)
}

// refreshIdentity asks c for the person of ident, keeping its answer: new
// data, or the person marked gone.
func (p *Provider) refreshIdentity(ctx context.Context, c *Connector, user *storage.User, ident *storage.Identity) error {
	got, err := c.Refresh.Refresh(ctx, connector.Identity{UserID: ident.UpstreamID, Username: user.Username, Email: user.Email,
		EmailVerified: user.EmailVerified, Name: user.Name, Data: ident.Data})
	switch {
	case errors.Is(err, connector.ErrGone):
		p.upstreamSeen.forget(user.Subject)
		p.Logger.InfoContext(ctx, "refresh refused: the person is no longer in the directory", "connector", c.ID, "sub", user.Subject)
		if uerr := p.Store.UpdateIdentity(ctx, c.ID, ident.UpstreamID, func(i *storage.Identity) error {
			i.Gone = true
			return nil
		}); uerr != nil {
			p.Logger.WarnContext(ctx, "mark identity gone", "connector", c.ID, "sub", user.Subject, "err", uerr)
		}
		return err
	case err != nil:
		p.Logger.WarnContext(ctx, "connector unavailable at refresh", "connector", c.ID, "sub", user.Subject, "err", err)
		return err
	}
	if got.Data != nil {
		if err := p.Store.UpdateIdentity(ctx, c.ID, ident.UpstreamID, func(i *storage.Identity) error {
			i.Data = got.Data
			return nil
		}); err != nil {
			return fmt.Errorf("keep identity data: %w", err)
		}
	}
	p.upstreamSeen.put(user.Subject, p.Now())
	return nil
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
