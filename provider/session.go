package provider

import (
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/consentry/consentry/storage"
)

// NewSession returns the fosite session for a user who authenticated at
// authTime, for an authorization request first received at requestedAt.
// fosite checks prompt and max_age against these two times. sid, the public
// id of the browser session the user signed in with, goes into the ID token
// (and its refreshes, which keep the stored session); "" leaves it out.
func NewSession(user *storage.User, sid string, authTime, requestedAt time.Time, granted fosite.Arguments) *openid.DefaultSession {
	s := openid.NewDefaultSession()
	s.Subject = user.Subject
	s.Username = user.Username
	s.Claims.Subject = user.Subject
	s.Claims.AuthTime = authTime.UTC().Truncate(time.Second)
	s.Claims.RequestedAt = requestedAt.UTC().Truncate(time.Second)
	s.Claims.Extra = UserClaims(user, granted)
	delete(s.Claims.Extra, "sub")
	if sid != "" {
		// In the ID token only: userinfo claims come from UserClaims.
		s.Claims.Extra["sid"] = sid
	}
	return s
}

// EmptySession is the session fosite fills from storage at the token,
// introspection and userinfo endpoints.
func EmptySession() *openid.DefaultSession {
	return &openid.DefaultSession{Claims: &jwt.IDTokenClaims{}, Headers: &jwt.Headers{}}
}

// UserClaims returns the standard claims about user released by the granted
// scopes: profile releases name and preferred_username, email releases
// email and email_verified.
func UserClaims(user *storage.User, granted fosite.Arguments) map[string]any {
	claims := map[string]any{"sub": user.Subject}
	if granted.Has("profile") {
		claims["preferred_username"] = user.Username
		if user.Name != "" {
			claims["name"] = user.Name
		}
	}
	if granted.Has("email") && user.Email != "" {
		claims["email"] = user.Email
		claims["email_verified"] = user.EmailVerified
	}
	return claims
}
