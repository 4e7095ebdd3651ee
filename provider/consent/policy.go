package consent

import (
	"slices"
	"time"

	"github.com/ory/fosite"

	"github.com/consentry/consentry/storage"
)

// Scopes and grant types the rules speak of.
const (
	ScopeOpenID         = "openid"
	ScopeOfflineAccess  = "offline_access"
	GrantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
)

// Values of Policy.WithoutPromptConsent: what offline_access without
// prompt=consent and without an agreement gets (rule 4b).
const (
	OfflineIgnore = "ignore"
	OfflinePrompt = "prompt"
	OfflineReject = "reject"
)

// RefreshTokenScopes are the scopes that yield a refresh token (rule 9):
// offline_access alone; the legacy "offline" alias is not honoured.
func RefreshTokenScopes() []string { return []string{ScopeOfflineAccess} }

// Policy decides, after the user is known, whether an authorization
// request is granted without a page, needs the consent screen, or fails. It
// implements the offline-access rules of OpenID Connect Core §11: offline
// access needs the user's consent, asked for with prompt=consent, except
// under a standing agreement ("other conditions for processing").
type Policy struct {
	// WithoutPromptConsent is OfflineIgnore, OfflinePrompt or OfflineReject.
	WithoutPromptConsent string
	// RememberFor is how long a remembered consent covers later requests.
	RememberFor time.Duration
}

// Request is everything the decision depends on.
type Request struct {
	// Requested are the scopes of the request; ClientScopes those the client
	// is registered for.
	Requested     fosite.Arguments
	ClientScopes  fosite.Arguments
	ResponseTypes fosite.Arguments
	Prompt        fosite.Arguments
	SignedIn      bool
	// Agreements are the client's agreements with this user or all users,
	// active or not; Grants are the user's earlier grants to the client.
	Agreements []storage.Agreement
	Grants     []storage.Grant
	Now        time.Time
}

// Outcome is the kind of a Decision.
type Outcome int

// Outcomes of a decision.
const (
	// OutcomeLogin: the user must sign in first.
	OutcomeLogin Outcome = iota + 1
	// OutcomeGrant: grant Decision.Scopes without a page.
	OutcomeGrant
	// OutcomeScreen: show the consent screen offering Decision.Scopes.
	OutcomeScreen
	// OutcomeError: answer the client with Decision.Err.
	OutcomeError
)

// Decision is what the policy decided.
type Decision struct {
	Outcome Outcome
	// Scopes are granted (OutcomeGrant) or offered (OutcomeScreen).
	Scopes fosite.Arguments
	// Basis, AgreementID and RememberedFrom say why a grant needs no screen.
	Basis          string
	AgreementID    string
	RememberedFrom string
	Err            *fosite.RFC6749Error
}

// GrantBasis is what a grant made after this decision rests on (rule 8):
// the decision's own basis when it needed no consent (an agreement, a
// remembered consent), consent otherwise, when the user allowed on the
// consent screen. A screen shown only to confirm (the device flow) does not
// turn an agreement into consent: the agreement's revocation or end must
// still end the access.
func (d Decision) GrantBasis() (basis, agreementID, rememberedFrom string) {
	if d.Outcome == OutcomeGrant {
		return d.Basis, d.AgreementID, d.RememberedFrom
	}
	return storage.BasisConsent, "", ""
}

// Decide applies the rules, in this order:
//  1. scopes the client is not registered for: invalid_scope;
//  2. offline_access with a response type that returns no code is dropped;
//  3. offline_access with prompt=consent always shows the screen;
//  4. offline_access without prompt=consent is granted without a screen
//     under an active agreement covering every requested scope, and is
//     otherwise ignored (dropped), shown on the screen or rejected
//     (consent_required) as the policy says;
//  5. other scopes are granted without a screen when one active agreement,
//     or the user's remembered consents, cover them all, unless
//     prompt=consent;
//  6. prompt=none never shows a page: login_required or consent_required.
func (p Policy) Decide(req Request) Decision {
	if missing := difference(req.Requested, req.ClientScopes); len(missing) > 0 {
		return errorDecision(fosite.ErrInvalidScope.WithHintf("The client is not registered for scope %q.", missing[0]))
	}
	promptNone := req.Prompt.Has("none")
	if promptNone && len(req.Prompt) > 1 {
		return errorDecision(fosite.ErrInvalidRequest.WithHint("prompt=none cannot be combined with other prompt values."))
	}
	if !req.SignedIn {
		if promptNone {
			return errorDecision(fosite.ErrLoginRequired.WithHint("The user is not signed in and prompt=none forbids a login page."))
		}
		return Decision{Outcome: OutcomeLogin}
	}
	scopes := slices.Clone(req.Requested)
	if !req.ResponseTypes.Has("code") {
		scopes = without(scopes, ScopeOfflineAccess)
	}
	promptConsent := req.Prompt.Has("consent")
	agreement := coveringAgreement(req.Agreements, scopes, req.Now)

	if scopes.Has(ScopeOfflineAccess) {
		switch {
		case promptConsent:
			return screen(scopes, promptNone)
		case agreement != nil:
			return Decision{Outcome: OutcomeGrant, Scopes: scopes, Basis: storage.BasisAgreement, AgreementID: agreement.ID}
		case p.WithoutPromptConsent == OfflinePrompt:
			return screen(scopes, promptNone)
		case p.WithoutPromptConsent == OfflineReject:
			return errorDecision(fosite.ErrConsentRequired.WithHint("offline_access requires prompt=consent or a standing agreement."))
		default: // OfflineIgnore: go on without offline access.
			scopes = without(scopes, ScopeOfflineAccess)
			agreement = coveringAgreement(req.Agreements, scopes, req.Now)
		}
	}

	if promptConsent {
		return screen(scopes, promptNone)
	}
	if agreement != nil {
		return Decision{Outcome: OutcomeGrant, Scopes: scopes, Basis: storage.BasisAgreement, AgreementID: agreement.ID}
	}
	if remembered := coveringGrant(req.Grants, scopes, req.Now); remembered != nil {
		return Decision{Outcome: OutcomeGrant, Scopes: scopes, Basis: storage.BasisRemembered, RememberedFrom: remembered.ID}
	}
	return screen(scopes, promptNone)
}

// Choose turns the user's answer on the consent screen into the scopes to
// grant (rule 7): Deny is access_denied; Allow grants the ticked scopes
// among those offered, and openid whenever it was offered, since it cannot
// be unticked.
func (p Policy) Choose(offered fosite.Arguments, ticked []string, allow bool) (fosite.Arguments, error) {
	if !allow {
		return nil, fosite.ErrAccessDenied.WithHint("The user denied the request.")
	}
	var granted fosite.Arguments
	for _, scope := range offered {
		if scope == ScopeOpenID || slices.Contains(ticked, scope) {
			granted = append(granted, scope)
		}
	}
	return granted, nil
}

// RememberUntil is until when a consent given at now covers later requests
// when the user asked to remember it, or nil when there is nothing to
// remember (offline access alone is never remembered, rule 3).
func (p Policy) RememberUntil(granted fosite.Arguments, remember bool, now time.Time) *time.Time {
	if !remember || len(Remembered(granted)) == 0 {
		return nil
	}
	until := now.Add(p.RememberFor)
	return &until
}

// Remembered returns the scopes a remembered consent covers: never
// offline_access, whose consent is asked again whenever prompt=consent is
// sent.
func Remembered(granted fosite.Arguments) fosite.Arguments {
	return without(granted, ScopeOfflineAccess)
}

// AgreementActive reports whether a is in force at now: not revoked,
// started, and not ended.
func AgreementActive(a storage.Agreement, now time.Time) bool {
	return a.RevokedAt == nil && !a.StartsAt.After(now) && (a.ExpiresAt == nil || a.ExpiresAt.After(now))
}

func screen(scopes fosite.Arguments, promptNone bool) Decision {
	if promptNone {
		return errorDecision(fosite.ErrConsentRequired.WithHint("The request needs the user's consent and prompt=none forbids the consent screen."))
	}
	return Decision{Outcome: OutcomeScreen, Scopes: scopes}
}

func errorDecision(err *fosite.RFC6749Error) Decision {
	return Decision{Outcome: OutcomeError, Err: err}
}

// coveringAgreement returns an active agreement covering every scope.
func coveringAgreement(agreements []storage.Agreement, scopes fosite.Arguments, now time.Time) *storage.Agreement {
	for i := range agreements {
		a := &agreements[i]
		if AgreementActive(*a, now) && len(difference(scopes, a.Scopes)) == 0 {
			return a
		}
	}
	return nil
}

// coveringGrant returns an unexpired remembered consent covering every scope.
func coveringGrant(grants []storage.Grant, scopes fosite.Arguments, now time.Time) *storage.Grant {
	if scopes.Has(ScopeOfflineAccess) {
		return nil
	}
	for i := range grants {
		g := &grants[i]
		if g.RevokedAt != nil || g.RememberUntil == nil || !now.Before(*g.RememberUntil) {
			continue
		}
		if len(difference(scopes, Remembered(g.Scopes))) == 0 {
			return g
		}
	}
	return nil
}

// difference returns the scopes of a that are not in b.
func difference(a fosite.Arguments, b []string) fosite.Arguments {
	var out fosite.Arguments
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func without(scopes fosite.Arguments, drop string) fosite.Arguments {
	return slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == drop })
}
