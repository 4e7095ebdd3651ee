package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/consentry/consentry/storage"
)

// revocationHandler is RFC 7009 token revocation. Revoking a refresh token
// revokes its family: every refresh and access token issued under the same
// authorization. Revoking an access token revokes that token only; fosite's
// handler would take the refresh token with it, ending offline access when an
// app merely discards a short-lived access token.
type revocationHandler struct {
	store    storage.Store
	strategy oauth2.CoreStrategy
}

var _ fosite.RevocationHandler = (*revocationHandler)(nil)

func (h *revocationHandler) RevokeToken(ctx context.Context, token string, hint fosite.TokenType, client fosite.Client) error {
	// The signatures are "" unless the token's HMAC verifies, so a forged
	// string revokes nothing.
	revokeRefresh := func() (bool, error) {
		signature := h.strategy.RefreshTokenSignature(ctx, token)
		if signature == "" {
			return false, nil
		}
		ar, err := h.store.GetRefreshTokenSession(ctx, signature, nil)
		if ar == nil || (err != nil && !errors.Is(err, fosite.ErrInactiveToken)) {
			return false, ignoreNotFound(err)
		}
		if ar.GetClient().GetID() != client.GetID() {
			return true, fosite.ErrUnauthorizedClient
		}
		if err := h.store.RevokeRefreshToken(ctx, ar.GetID()); err != nil {
			return true, fmt.Errorf("revoke refresh tokens: %w", err)
		}
		if err := h.store.RevokeAccessToken(ctx, ar.GetID()); err != nil {
			return true, fmt.Errorf("revoke access tokens: %w", err)
		}
		return true, nil
	}
	revokeAccess := func() (bool, error) {
		signature := h.strategy.AccessTokenSignature(ctx, token)
		if signature == "" {
			return false, nil
		}
		ar, err := h.store.GetAccessTokenSession(ctx, signature, nil)
		if err != nil {
			return false, ignoreNotFound(err)
		}
		if ar.GetClient().GetID() != client.GetID() {
			return true, fosite.ErrUnauthorizedClient
		}
		if err := h.store.DeleteAccessTokenSession(ctx, signature); err != nil {
			return true, fmt.Errorf("revoke access token: %w", err)
		}
		return true, nil
	}
	order := []func() (bool, error){revokeRefresh, revokeAccess}
	if hint == fosite.AccessToken {
		order[0], order[1] = order[1], order[0]
	}
	for _, revoke := range order {
		found, err := revoke()
		if err != nil {
			if errors.Is(err, fosite.ErrUnauthorizedClient) {
				return fosite.ErrUnauthorizedClient
			}
			return fosite.ErrServerError.WithWrap(err)
		}
		if found {
			return nil
		}
	}
	// RFC 7009 §2.2: an unknown or already invalid token is not an error.
	return nil
}

func ignoreNotFound(err error) error {
	if errors.Is(err, fosite.ErrNotFound) {
		return nil
	}
	return err
}
