// Package connector defines how Consentry learns who a person is from
// somewhere else: the company directory (LDAP, Active Directory) or an
// upstream OpenID provider. A connector implements the interfaces it can;
// the provider keys each person by connector id and the connector's user id,
// so their subject stays the same for as long as the upstream id does.
package connector

import (
	"context"
	"errors"
	"net/http"
)

// Identity is a person as a connector knows them.
type Identity struct {
	// UserID is the connector's stable id of the person (an LDAP entry's
	// entryUUID or objectGUID, or its DN; an upstream provider's sub). It
	// must not change when the person is renamed.
	UserID        string
	Username      string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	// Data is opaque to Consentry: kept with the identity and handed back
	// at refresh (for example an upstream refresh token).
	Data []byte
}

var (
	// ErrUnavailable marks an upstream that did not answer in time: a sign-in
	// or refresh that cannot be decided now, never a wrong password.
	ErrUnavailable = errors.New("the company directory is unavailable")
	// ErrGone marks a person the upstream no longer has, or has disabled:
	// their sign-ins and offline access end.
	ErrGone = errors.New("the person is no longer in the directory")
)

// PasswordConnector checks a username and password (the local users, LDAP).
type PasswordConnector interface {
	// Login returns the person and true for a right password; false with no
	// error for a wrong password or an unknown username; an error matching
	// ErrUnavailable when the upstream cannot be reached.
	Login(ctx context.Context, username, password string) (Identity, bool, error)
}

// CallbackConnector signs the person in at an upstream provider by
// redirecting the browser there and back (OpenID Connect).
type CallbackConnector interface {
	// LoginURL is where to send the browser, with state; data is what the
	// callback needs again (the PKCE verifier, the nonce), kept by the
	// caller with the state.
	LoginURL(ctx context.Context, callbackURL, state string) (loginURL string, data []byte, err error)
	// HandleCallback completes the sign-in from the callback request.
	HandleCallback(ctx context.Context, callbackURL string, data []byte, r *http.Request) (Identity, error)
}

// RefreshConnector is asked at every refresh of offline access whether the
// person is still there, and for their current groups.
type RefreshConnector interface {
	// Refresh returns the person's current identity; an error matching
	// ErrGone when the upstream no longer has them (or has disabled them),
	// ErrUnavailable when it cannot be reached.
	Refresh(ctx context.Context, id Identity) (Identity, error)
}
