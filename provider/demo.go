package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

// The demo user, clients and agreement seeded by `serve --demo`.
const (
	DemoUsername   = "demo"
	DemoClientID   = "demo"
	DemoClientName = "Consentry Demo"
	// DemoFirstPartyClientID is a second demo client that plays a company's
	// own mobile app, covered by a standing agreement with all users.
	DemoFirstPartyClientID   = "demo-first-party"
	DemoFirstPartyClientName = "Consentry Demo Mobile (first-party app)"
	// DemoAgreementReference names the demo's standing agreement.
	DemoAgreementReference = "DEMO-FIRST-PARTY-TERMS"
	// DemoCallbackPath is where the /demo page receives the authorization response.
	DemoCallbackPath = "/demo/callback"

	demoScopes         = "openid profile email offline_access"
	demoPasswordLength = 16
	// No 0/O, 1/l/I: the password is read off a terminal and typed in.
	demoPasswordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
)

// DemoCredentials tell the person starting the demo how to sign in. Password
// is empty when the demo user already existed.
type DemoCredentials struct {
	ClientID, Username, Password string
}

// SeedDemo creates what the demo needs if it is missing: a public client
// "demo" with redirect URI <issuer>/demo/callback and offline access; a
// second public client "demo-first-party" with an explicitly recorded
// all-users agreement covering offline access, so the demo can show the
// "other conditions for processing" path of OIDC Core §11; and a user "demo"
// with a random password. created reports whether the user was created now;
// only then is Password set, as it is never stored in plain.
//
// A demo client whose redirect URI no longer matches the issuer (the listen
// address changed) is registered again.
func SeedDemo(ctx context.Context, store storage.Store, hasher ClientSecretHasher, issuer string, now time.Time) (creds DemoCredentials, created bool, err error) {
	creds = DemoCredentials{ClientID: DemoClientID, Username: DemoUsername}
	// The clients first: if the user then fails, the next start still shows a password.
	if err := seedDemoClient(ctx, store, hasher, DemoClientID, DemoClientName, issuer, now); err != nil {
		return creds, false, err
	}
	if err := seedDemoClient(ctx, store, hasher, DemoFirstPartyClientID, DemoFirstPartyClientName, issuer, now); err != nil {
		return creds, false, err
	}
	if err := seedDemoAgreement(ctx, store, now); err != nil {
		return creds, false, err
	}

	_, err = store.GetUserByUsername(ctx, DemoUsername)
	if err == nil {
		return creds, false, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return creds, false, fmt.Errorf("load demo user: %w", err)
	}
	password, err := randomPassword(demoPasswordLength)
	if err != nil {
		return creds, false, err
	}
	_, err = CreateUser(ctx, store, UserSpec{
		Username:      DemoUsername,
		Email:         "demo@example.com",
		EmailVerified: true,
		Name:          "Demo User",
		Password:      password,
	}, DefaultPasswordCost, now)
	if errors.Is(err, storage.ErrAlreadyExists) {
		return creds, false, nil // another instance seeded it first
	}
	if err != nil {
		return creds, false, fmt.Errorf("create demo user: %w", err)
	}
	creds.Password = password
	return creds, true, nil
}

func seedDemoClient(ctx context.Context, store storage.Store, hasher ClientSecretHasher, id, name, issuer string, now time.Time) error {
	redirect := strings.TrimSuffix(issuer, "/") + DemoCallbackPath
	existing, err := store.GetStoredClient(ctx, id)
	switch {
	case err == nil && slices.Equal(existing.RedirectURIs, []string{redirect}):
		return nil
	case err == nil:
		if err := store.DeleteClient(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("replace demo client %q: %w", id, err)
		}
	case !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("load demo client %q: %w", id, err)
	}
	_, _, err = RegisterClient(ctx, store, hasher, ClientSpec{
		ID:                       id,
		Name:                     name,
		Public:                   true,
		RedirectURIs:             []string{redirect},
		Scopes:                   []string{demoScopes},
		GrantTypes:               []string{"authorization_code", "refresh_token"},
		IDTokenSignedResponseAlg: AlgRS256,
	}, now)
	if err != nil && !errors.Is(err, storage.ErrAlreadyExists) { // exists: another instance seeded it first
		return fmt.Errorf("register demo client %q: %w", id, err)
	}
	return nil
}

// seedDemoAgreement records the first-party demo client's agreement unless
// one is active already. It is recorded like any other agreement, so it is
// listed, audited and revocable: the demo shows the real path.
func seedDemoAgreement(ctx context.Context, store storage.Store, now time.Time) error {
	existing, err := store.ListAgreements(ctx, storage.AgreementFilter{ClientID: DemoFirstPartyClientID})
	if err != nil {
		return fmt.Errorf("load demo agreements: %w", err)
	}
	for _, a := range existing {
		if consent.AgreementActive(a, now) {
			return nil
		}
	}
	_, err = RecordAgreement(ctx, store, AgreementSpec{
		ClientID:   DemoFirstPartyClientID,
		AllUsers:   true,
		Scopes:     strings.Fields(demoScopes),
		Reference:  DemoAgreementReference,
		RecordedBy: "consentry serve --demo",
	}, now)
	if err != nil {
		return fmt.Errorf("record demo agreement: %w", err)
	}
	return nil
}
