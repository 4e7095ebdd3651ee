package consent

import (
	"errors"
	"time"

	"github.com/ory/fosite"

	"github.com/consentry/consentry/provider/connector"
)

// Upstream is what offline access of a user from a connector rests on
// besides the grant: what the connector said of the person. It only ever
// takes offline access away: a connector never stands in for consent.
type Upstream struct {
	// Configured is false when the user's connector is no longer in the
	// configuration; Linked is false when the user has no identity there.
	Configured, Linked bool
	// Gone is set when the connector said so before.
	Gone bool
	// Asked is set when the connector was asked now; Err is its answer.
	Asked bool
	Err   error
	// LastLoginAt is the person's last sign-in through the connector;
	// MaxLoginAge, when positive, bounds its age for a connector that
	// cannot be asked.
	LastLoginAt time.Time
	MaxLoginAge time.Duration
	Now         time.Time
}

// CheckUpstream decides whether a connector's person still stands behind
// offline access: a person the directory no longer has ends it
// (invalid_grant), as does a last sign-in older than the connector's
// max_login_age; an upstream that cannot be asked yields
// temporarily_unavailable, never a token.
func CheckUpstream(u Upstream) error {
	switch {
	case !u.Configured:
		return fosite.ErrInvalidGrant.WithHint("The user's sign-in connector is no longer configured.")
	case !u.Linked || u.Gone:
		return fosite.ErrInvalidGrant.WithHint("The user is no longer in the company directory.")
	case u.Asked && errors.Is(u.Err, connector.ErrGone):
		return fosite.ErrInvalidGrant.WithHint("The user is no longer in the company directory.")
	case u.Asked && u.Err != nil:
		// Any other failure is an outage too: the person may be there.
		return fosite.ErrTemporarilyUnavailable.WithHint("The company directory is unavailable. Try again later.")
	case !u.Asked && u.MaxLoginAge > 0 && u.Now.Sub(u.LastLoginAt) > u.MaxLoginAge:
		return fosite.ErrInvalidGrant.WithHint("The user has not signed in for too long; they must sign in again.")
	}
	return nil
}
