package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"gorm.io/gorm"
)

// tokenKind is one of the fosite request tables.
type tokenKind int

const (
	kindAuthorizeCode tokenKind = iota
	kindAccessToken
	kindRefreshToken
	kindPKCE
	kindOIDC
)

func allTokenKinds() []tokenKind {
	return []tokenKind{kindAuthorizeCode, kindAccessToken, kindRefreshToken, kindPKCE, kindOIDC}
}

func (k tokenKind) table() string {
	switch k {
	case kindAuthorizeCode:
		return tableAuthorizeCodes
	case kindAccessToken:
		return tableAccessTokens
	case kindRefreshToken:
		return tableRefreshTokens
	case kindPKCE:
		return tablePKCERequests
	default:
		return tableOIDCSessions
	}
}

// String names the kind in error messages.
func (k tokenKind) String() string {
	switch k {
	case kindAuthorizeCode:
		return "authorize code"
	case kindAccessToken:
		return "access token"
	case kindRefreshToken:
		return "refresh token"
	case kindPKCE:
		return "PKCE request"
	default:
		return "OpenID Connect session"
	}
}

// expiry is the session expiry recorded with the row. PKCE and OpenID Connect
// sessions live as long as the authorization code they belong to.
func (k tokenKind) expiry() fosite.TokenType {
	switch k {
	case kindAccessToken:
		return fosite.AccessToken
	case kindRefreshToken:
		return fosite.RefreshToken
	default:
		return fosite.AuthorizeCode
	}
}

// newTokenFields flattens a fosite request into a row.
func newTokenFields(k tokenKind, signature string, r fosite.Requester) (tokenFields, error) {
	if r == nil {
		return tokenFields{}, errors.New("nil request")
	}
	if r.GetClient() == nil {
		return tokenFields{}, errors.New("request has no client")
	}
	f := tokenFields{
		Signature:         signature,
		RequestID:         r.GetID(),
		ClientID:          r.GetClient().GetID(),
		RequestedAt:       r.GetRequestedAt().UTC(),
		RequestedScopes:   encodeList(r.GetRequestedScopes()),
		GrantedScopes:     encodeList(r.GetGrantedScopes()),
		RequestedAudience: encodeList(r.GetRequestedAudience()),
		GrantedAudience:   encodeList(r.GetGrantedAudience()),
		Form:              r.GetRequestForm().Encode(),
		Session:           "null",
		Active:            true,
	}
	if sess := r.GetSession(); sess != nil {
		f.Subject = sess.GetSubject()
		f.ExpiresAt = nullTime(sess.GetExpiresAt(k.expiry()))
		b, err := json.Marshal(sess)
		if err != nil {
			return tokenFields{}, fmt.Errorf("encode session: %w", err)
		}
		f.Session = string(b)
	}
	return f, nil
}

// createToken stores r under signature in the table of kind k.
func (s *GormStore) createToken(ctx context.Context, k tokenKind, signature string, r fosite.Requester, accessSignature string) error {
	f, err := newTokenFields(k, signature, r)
	if err != nil {
		return fmt.Errorf("store %s: %w", k, err)
	}
	var row any
	switch k {
	case kindAuthorizeCode:
		row = &authorizeCodeRow{Token: f}
	case kindAccessToken:
		row = &accessTokenRow{Token: f}
	case kindRefreshToken:
		row = &refreshTokenRow{Token: f, AccessTokenSignature: accessSignature}
	case kindPKCE:
		row = &pkceRequestRow{Token: f}
	default:
		row = &oidcSessionRow{Token: f}
	}
	err = s.write(ctx, func(tx *gorm.DB) error {
		if _, ok, err := s.execPrepared(tx, insertTokenQuery(k), insertTokenArgs(k, &f, accessSignature)...); ok {
			return err
		}
		return tx.Create(row).Error
	})
	if err != nil {
		return fmt.Errorf("store %s: %w", k, dbErr(err))
	}
	return nil
}

// getToken loads the row of kind k under signature and rebuilds the request,
// decoding the session into session (see toRequest). It returns the row's
// active flag; callers decide what an inactive row means.
func (s *GormStore) getToken(ctx context.Context, k tokenKind, signature string, session fosite.Session) (*fosite.Request, bool, error) {
	if signature == "" {
		// What the token strategy returns for a malformed or forged token:
		// no row has it, so it costs no query.
		return nil, false, fmt.Errorf("load %s: %w", k, ErrNotFound)
	}
	var f tokenFields
	var err error
	if txFrom(ctx, s) != nil {
		err = s.read(ctx).Table(k.table()).Where("signature = ?", signature).Take(&f).Error
	} else {
		err = s.readTokenFields(ctx, k, signature, &f)
	}
	if err != nil {
		return nil, false, fmt.Errorf("load %s: %w", k, dbErr(err))
	}
	req, err := s.toRequest(ctx, &f, session)
	if err != nil {
		return nil, false, fmt.Errorf("load %s: %w", k, err)
	}
	return req, f.Active, nil
}

// tokenBySignatureQuery reads every column of tokenFields, in its order.
func tokenBySignatureQuery(k tokenKind) string {
	return "SELECT signature, request_id, client_id, subject, requested_at, expires_at, " +
		"requested_scopes, granted_scopes, requested_audience, granted_audience, form, session, active FROM " +
		k.table() + " WHERE signature = $1"
}

// readTokenFields reads the row of kind k under signature outside a
// transaction; gorm.ErrRecordNotFound when there is none.
func (s *GormStore) readTokenFields(ctx context.Context, k tokenKind, signature string, f *tokenFields) error {
	return s.preparedRow(ctx, tokenBySignatureQuery(k), []any{signature},
		&f.Signature, &f.RequestID, &f.ClientID, &f.Subject, &f.RequestedAt, &f.ExpiresAt,
		&f.RequestedScopes, &f.GrantedScopes, &f.RequestedAudience, &f.GrantedAudience, &f.Form, &f.Session, &f.Active)
}

// toRequest rebuilds the fosite request from a row. The session is decoded
// into session, the value fosite passed in (fosite relies on that value being
// hydrated), or into a new openid.DefaultSession when it passed nil.
func (s *GormStore) toRequest(ctx context.Context, f *tokenFields, session fosite.Session) (*fosite.Request, error) {
	client, err := s.cachedClient(ctx, f.ClientID)
	if err != nil {
		// A request of a deleted client is as good as gone.
		return nil, fmt.Errorf("client %q: %w", f.ClientID, err)
	}
	form, err := url.ParseQuery(f.Form)
	if err != nil {
		return nil, fmt.Errorf("decode form: %w", err)
	}
	if session == nil {
		session = openid.NewDefaultSession()
	}
	if err := json.Unmarshal([]byte(f.Session), session); err != nil {
		return nil, fmt.Errorf("decode session: %w", err)
	}
	req := &fosite.Request{
		ID:          f.RequestID,
		RequestedAt: f.RequestedAt.UTC(),
		Client:      client,
		Form:        form,
		Session:     session,
	}
	lists := []struct {
		dst *fosite.Arguments
		src string
	}{
		{&req.RequestedScope, f.RequestedScopes},
		{&req.GrantedScope, f.GrantedScopes},
		{&req.RequestedAudience, f.RequestedAudience},
		{&req.GrantedAudience, f.GrantedAudience},
	}
	for _, l := range lists {
		v, err := decodeList(l.src)
		if err != nil {
			return nil, err
		}
		// Non-nil, like fosite.NewRequest, since callers append to them.
		*l.dst = append(fosite.Arguments{}, v...)
	}
	return req, nil
}

// deleteToken deletes the row of kind k under signature; a missing row is not
// an error, as in fosite's memory store.
func (s *GormStore) deleteToken(ctx context.Context, k tokenKind, signature string) error {
	err := s.write(ctx, func(tx *gorm.DB) error {
		if _, ok, err := s.execPrepared(tx, deleteTokenQuery(k), signature); ok {
			return err
		}
		return tx.Table(k.table()).Where("signature = ?", signature).Delete(&tokenFields{}).Error
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", k, dbErr(err))
	}
	return nil
}

// deleteTokensWhere deletes the rows matching cond from every token table.
func deleteTokensWhere(tx *gorm.DB, cond string, args ...any) error {
	for _, k := range allTokenKinds() {
		if err := tx.Table(k.table()).Where(cond, args...).Delete(&tokenFields{}).Error; err != nil {
			return fmt.Errorf("delete %ss: %w", k, err)
		}
	}
	return nil
}

// deactivate clears the active flag of the row under signature only if it is
// set. Of two concurrent callers exactly one sees changed=true: PostgreSQL
// re-checks the condition after the first commits, SQLite runs writers one at
// a time. exists tells a used row from a missing one when nothing changed.
func (s *GormStore) deactivate(tx *gorm.DB, k tokenKind, signature string) (changed, exists bool, err error) {
	n, ok, err := s.execPrepared(tx, deactivateTokenQuery(k), signature)
	if !ok {
		res := tx.Table(k.table()).Where("signature = ? AND active = ?", signature, true).Update("active", false)
		n, err = res.RowsAffected, res.Error
	}
	if err != nil {
		return false, false, dbErr(err)
	}
	if n > 0 {
		return true, true, nil
	}
	if err := tx.Table(k.table()).Where("signature = ?", signature).Count(&n).Error; err != nil {
		return false, false, dbErr(err)
	}
	return false, n > 0, nil
}

// CreateAuthorizeCodeSession stores the authorization request under the code
// signature.
func (s *GormStore) CreateAuthorizeCodeSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createToken(ctx, kindAuthorizeCode, signature, r, "")
}

// GetAuthorizeCodeSession returns the authorization request of the code. For
// an invalidated code it returns the request together with
// fosite.ErrInvalidatedAuthorizeCode, as fosite requires (it revokes the
// tokens of that request). ErrNotFound for an unknown code.
func (s *GormStore) GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, active, err := s.getToken(ctx, kindAuthorizeCode, signature, session)
	if err != nil {
		return nil, err
	}
	if !active {
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	return req, nil
}

// InvalidateAuthorizeCodeSession marks the code used. It is a conditional
// update, so of two concurrent redemptions of one code only one succeeds; the
// other gets an error matching fosite.ErrInvalidatedAuthorizeCode.
// ErrNotFound for an unknown code.
func (s *GormStore) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	changed, exists, err := s.deactivate(s.db(ctx), kindAuthorizeCode, signature)
	switch {
	case err != nil:
		return fmt.Errorf("invalidate authorize code: %w", err)
	case changed:
		return nil
	case exists:
		return fmt.Errorf("invalidate authorize code: %w", fosite.ErrInvalidatedAuthorizeCode)
	default:
		return fmt.Errorf("invalidate authorize code: %w", ErrNotFound)
	}
}

// CreateAccessTokenSession stores the request under the access token signature.
func (s *GormStore) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createToken(ctx, kindAccessToken, signature, r, "")
}

// GetAccessTokenSession returns the request of the access token; ErrNotFound
// for an unknown, deleted or revoked token.
func (s *GormStore) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, active, err := s.getToken(ctx, kindAccessToken, signature, session)
	if err != nil {
		return nil, err
	}
	if !active {
		// Revocation deletes access tokens; an inactive row is treated alike.
		return nil, fmt.Errorf("load access token: %w", ErrNotFound)
	}
	return req, nil
}

// DeleteAccessTokenSession deletes the access token; no error when it is gone.
func (s *GormStore) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.deleteToken(ctx, kindAccessToken, signature)
}

// RevokeAccessToken deletes every access token of the request id.
func (s *GormStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	if err := revokeAccessTokens(s.db(ctx), requestID); err != nil {
		return fmt.Errorf("revoke access tokens: %w", err)
	}
	return nil
}

func revokeAccessTokens(tx *gorm.DB, requestID string) error {
	return dbErr(tx.Table(tableAccessTokens).Where("request_id = ?", requestID).Delete(&tokenFields{}).Error)
}

// CreateRefreshTokenSession stores the request under the refresh token
// signature, with the signature of the access token issued alongside.
func (s *GormStore) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, r fosite.Requester) error {
	return s.createToken(ctx, kindRefreshToken, signature, r, accessSignature)
}

// GetRefreshTokenSession returns the request of the refresh token. For an
// inactive (rotated or revoked) token it returns the request together with
// fosite.ErrInactiveToken, which fosite treats as token reuse. ErrNotFound for
// an unknown token.
func (s *GormStore) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, active, err := s.getToken(ctx, kindRefreshToken, signature, session)
	if err != nil {
		return nil, err
	}
	if !active {
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

// DeleteRefreshTokenSession deletes the refresh token; no error when it is gone.
func (s *GormStore) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.deleteToken(ctx, kindRefreshToken, signature)
}

// RevokeRefreshToken marks every refresh token of the request id inactive.
func (s *GormStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	if err := revokeRefreshTokens(s.db(ctx), requestID); err != nil {
		return fmt.Errorf("revoke refresh tokens: %w", err)
	}
	return nil
}

func revokeRefreshTokens(tx *gorm.DB, requestID string) error {
	return dbErr(tx.Table(tableRefreshTokens).Where("request_id = ? AND active = ?", requestID, true).Update("active", false).Error)
}

// RotateRefreshToken retires the refresh token being exchanged: it marks it
// inactive (and any other refresh token of the request id, as fosite's memory
// store does) and revokes the request's access tokens. The token must still be
// active: of two concurrent refreshes with one token only one succeeds, the
// other gets an error matching fosite.ErrInactiveToken, which fosite reports
// as invalid_request. ErrNotFound for an unknown token.
func (s *GormStore) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		changed, exists, err := s.deactivate(tx, kindRefreshToken, signature)
		switch {
		case err != nil:
			return err
		case !changed && exists:
			return fosite.ErrInactiveToken
		case !changed:
			return ErrNotFound
		}
		if err := revokeRefreshTokens(tx, requestID); err != nil {
			return err
		}
		return revokeAccessTokens(tx, requestID)
	})
	if err != nil {
		return fmt.Errorf("rotate refresh token: %w", err)
	}
	return nil
}

// CreatePKCERequestSession stores the PKCE parameters of an authorization
// request under the code signature.
func (s *GormStore) CreatePKCERequestSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.createToken(ctx, kindPKCE, signature, r, "")
}

// GetPKCERequestSession returns the PKCE request; ErrNotFound when unknown.
func (s *GormStore) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, _, err := s.getToken(ctx, kindPKCE, signature, session)
	if err != nil {
		return nil, err
	}
	return req, nil
}

// DeletePKCERequestSession deletes the PKCE request; no error when it is gone.
func (s *GormStore) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return s.deleteToken(ctx, kindPKCE, signature)
}

// oidcKey is the key of an OpenID Connect session. fosite passes the raw
// authorization code, which must not be stored; its SHA-256 is as unique.
func oidcKey(authorizeCode string) string {
	sum := sha256.Sum256([]byte(authorizeCode))
	return hex.EncodeToString(sum[:])
}

// CreateOpenIDConnectSession stores the OpenID Connect request of an
// authorization code, keyed by the code's SHA-256.
func (s *GormStore) CreateOpenIDConnectSession(ctx context.Context, authorizeCode string, r fosite.Requester) error {
	return s.createToken(ctx, kindOIDC, oidcKey(authorizeCode), r, "")
}

// GetOpenIDConnectSession returns the OpenID Connect request of the code;
// ErrNotFound (openid.ErrNoSessionFound) when unknown. The session is decoded
// into a new value of the type of requester's session, leaving requester,
// whose session fosite is still using, untouched.
func (s *GormStore) GetOpenIDConnectSession(ctx context.Context, authorizeCode string, requester fosite.Requester) (fosite.Requester, error) {
	var session fosite.Session
	if requester != nil {
		session = newSessionLike(requester.GetSession())
	}
	req, _, err := s.getToken(ctx, kindOIDC, oidcKey(authorizeCode), session)
	if err != nil {
		return nil, err
	}
	return req, nil
}

// DeleteOpenIDConnectSession deletes the OpenID Connect request of the code;
// no error when it is gone.
func (s *GormStore) DeleteOpenIDConnectSession(ctx context.Context, authorizeCode string) error {
	return s.deleteToken(ctx, kindOIDC, oidcKey(authorizeCode))
}

// newSessionLike returns a new, empty session of the same concrete type as
// like, or nil (meaning the default) when like is nil or not a pointer to a
// struct.
func newSessionLike(like fosite.Session) fosite.Session {
	if like == nil {
		return nil
	}
	t := reflect.TypeOf(like)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	sess, ok := reflect.New(t.Elem()).Interface().(fosite.Session)
	if !ok {
		return nil
	}
	return sess
}
