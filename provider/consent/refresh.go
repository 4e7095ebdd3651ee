package consent

import (
	"time"

	"github.com/ory/fosite"

	"github.com/consentry/consentry/storage"
)

// Standing is what offline access behind a token rests on, as loaded for a
// code redemption, a device poll or a refresh. A nil field was not found.
type Standing struct {
	// User is the user the token was issued to.
	User *storage.User
	// Grant is the grant recorded for the token's request.
	Grant *storage.Grant
	// Agreement is the agreement the grant relied on, when its basis is
	// storage.BasisAgreement.
	Agreement *storage.Agreement
	Now       time.Time
}

// CheckStanding decides whether the grant behind a token still holds
// (rule 11): the user can sign in, the grant is not revoked, and an
// agreement it relied on is still in force (OIDC Core §11: the basis of
// offline access must still hold, whatever the token's own expiry). The
// error is invalid_grant, with a hint saying which failed.
func CheckStanding(s Standing) error {
	if s.User == nil || s.User.Disabled {
		return fosite.ErrInvalidGrant.WithHint("The user of this refresh token can no longer sign in.")
	}
	if s.Grant == nil {
		return fosite.ErrInvalidGrant.WithHint("The refresh token has no recorded grant.")
	}
	if s.Grant.RevokedAt != nil {
		return fosite.ErrInvalidGrant.WithHint("The user's consent for this application was revoked.")
	}
	if s.Grant.Basis == storage.BasisAgreement && (s.Agreement == nil || !AgreementActive(*s.Agreement, s.Now)) {
		return fosite.ErrInvalidGrant.WithHint("The agreement this offline access relied on is no longer in force.")
	}
	return nil
}

// CheckOfflineAccess is the refresh-time check of the client (rules 1 and
// 11): the token was granted offline_access, and the client is still
// registered for it; the registration may have lost it since.
func CheckOfflineAccess(granted, clientScopes fosite.Arguments) error {
	if !granted.Has(ScopeOfflineAccess) || !clientScopes.Has(ScopeOfflineAccess) {
		return fosite.ErrInvalidGrant.WithHint("The client does not have offline access.")
	}
	return nil
}

// IssuesRefreshToken reports whether a flow that returned a code (an
// authorization code or a device code) issues a refresh token (rule 9):
// offline access was granted and the client is still registered for it and
// for the refresh_token grant.
func IssuesRefreshToken(granted, clientScopes, clientGrantTypes fosite.Arguments) bool {
	return granted.Has(ScopeOfflineAccess) && clientGrantTypes.Has("refresh_token") && clientScopes.Has(ScopeOfflineAccess)
}

// NarrowScopes is the scope of a refreshed access token (rule 12, RFC 6749
// §6): the requested scopes, which may narrow what was granted but never
// exceed it (invalid_scope); all of it when none are requested.
func NarrowScopes(granted, requested fosite.Arguments) (fosite.Arguments, error) {
	if len(requested) == 0 {
		return granted, nil
	}
	for _, scope := range requested {
		if !granted.Has(scope) {
			return nil, fosite.ErrInvalidScope.WithHintf("The scope %q was not granted to this refresh token.", scope)
		}
	}
	return requested, nil
}

// Lifetimes are the offline-token lifetimes of rule 12: the deployment's,
// overridden by the client's when it registered its own (non-zero).
type Lifetimes struct {
	Idle, Absolute             time.Duration
	ClientIdle, ClientAbsolute time.Duration
}

// RefreshExpiry is when a refresh token issued at now dies (rule 12):
// unused for the idle lifetime, or the absolute lifetime after the grant,
// or the agreement's end, whichever comes first. A nil grant or agreement
// caps nothing.
func RefreshExpiry(l Lifetimes, grant *storage.Grant, agreement *storage.Agreement, now time.Time) time.Time {
	idle, absolute := l.Idle, l.Absolute
	if l.ClientIdle > 0 {
		idle = l.ClientIdle
	}
	if l.ClientAbsolute > 0 {
		absolute = l.ClientAbsolute
	}
	expiry := now.Add(idle)
	if grant != nil {
		if end := grant.CreatedAt.Add(absolute); end.Before(expiry) {
			expiry = end
		}
	}
	if agreement != nil && agreement.ExpiresAt != nil && agreement.ExpiresAt.Before(expiry) {
		expiry = *agreement.ExpiresAt
	}
	return expiry.UTC().Round(time.Second)
}
