package provider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/consentry/consentry/storage"
)

const (
	// AgreementIDPrefix starts every agreement id, so that an id seen in a
	// log or a grant tells what it names.
	AgreementIDPrefix = "agr_"
	// agreementIDBytes of randomness: 128 bits, 22 base64url characters.
	agreementIDBytes = 16

	maxReferenceLength  = 256
	maxRecordedByLength = 256
)

// AgreementSpec describes a standing agreement to record: the "other
// conditions for processing" of OpenID Connect Core §11, under which a client
// may get the listed scopes, offline_access among them, without a consent
// screen.
type AgreementSpec struct {
	// ClientID is the client the agreement is with.
	ClientID string
	// Username names the one user the agreement is with; AllUsers makes it
	// an agreement with every user (a first-party client). Exactly one of
	// the two is set.
	Username string
	AllUsers bool
	// Scopes are space-separated scope tokens; one element may hold several.
	Scopes []string
	// Reference names the contract or policy, e.g. "MSA-2026-114".
	Reference string
	// StartsAt is when the agreement takes effect; zero means now.
	StartsAt time.Time
	// ExpiresAt is the optional end of the agreement.
	ExpiresAt *time.Time
	// RecordedBy is who records the agreement.
	RecordedBy string
	// UserMayRemove lets the user remove the access the agreement gives from
	// their connected-apps page; nil means true.
	UserMayRemove *bool
}

// Validate reports the first rule spec breaks that can be checked without
// storage: everything RecordAgreement checks except that the client and
// user exist and that the client is registered for the scopes.
func (spec AgreementSpec) Validate(now time.Time) error {
	_, _, err := spec.check(now)
	return err
}

// check applies the storage-independent rules and returns the parsed
// scopes and the start time.
func (spec AgreementSpec) check(now time.Time) (scopes []string, startsAt time.Time, err error) {
	if spec.ClientID == "" {
		return nil, time.Time{}, invalidf("client id is required")
	}
	switch {
	case spec.Username != "" && spec.AllUsers:
		return nil, time.Time{}, invalidf("an agreement is with one user or with all users, not both: give a username or all users")
	case spec.Username == "" && !spec.AllUsers:
		return nil, time.Time{}, invalidf("an agreement needs a user: give a username, or all users for a first-party client")
	}
	scopes, err = parseScopes(spec.Scopes)
	if err != nil {
		return nil, time.Time{}, err
	}
	if len(scopes) == 0 {
		return nil, time.Time{}, invalidf("scopes are required: an agreement covers a stated set of scopes")
	}
	if strings.TrimSpace(spec.Reference) == "" {
		return nil, time.Time{}, invalidf("a reference is required: name the contract or policy the agreement rests on")
	}
	if err := checkAgreementText("reference", spec.Reference, maxReferenceLength); err != nil {
		return nil, time.Time{}, err
	}
	if strings.TrimSpace(spec.RecordedBy) == "" {
		return nil, time.Time{}, invalidf("the name of who records the agreement is required")
	}
	if err := checkAgreementText("recorder name", spec.RecordedBy, maxRecordedByLength); err != nil {
		return nil, time.Time{}, err
	}
	startsAt = spec.StartsAt
	if startsAt.IsZero() {
		startsAt = now
	}
	if spec.ExpiresAt != nil {
		if !spec.ExpiresAt.After(now) {
			return nil, time.Time{}, invalidf("the end of the agreement (%s) is not in the future", agreementTime(*spec.ExpiresAt))
		}
		if !spec.ExpiresAt.After(startsAt) {
			return nil, time.Time{}, invalidf("the end of the agreement (%s) must be after its start (%s)", agreementTime(*spec.ExpiresAt), agreementTime(startsAt))
		}
	}
	return scopes, startsAt, nil
}

// RecordAgreement checks spec and stores a new standing agreement. Nothing
// else in Consentry creates agreements: they exist only when an
// administrator records one.
//
// Rules, each refused with a plain message matching ErrInvalidSpec: the
// client must exist; exactly one of Username and AllUsers; the user must
// exist; scopes are required, not repeated, and each must be registered for
// the client (an agreement never gives more than the client may ask for);
// a reference of at most 256 printable characters and RecordedBy are
// required; StartsAt defaults to now; ExpiresAt, when set, must be after
// StartsAt and in the future. An unknown client or user also matches
// storage.ErrNotFound.
//
// The agreement and its audit event (storage.EventAgreementCreated, by the
// administrator RecordedBy) are stored in one transaction: both or neither.
func RecordAgreement(ctx context.Context, store storage.Store, spec AgreementSpec, now time.Time) (*storage.Agreement, error) {
	scopes, startsAt, err := spec.check(now)
	if err != nil {
		return nil, err
	}
	client, err := store.GetStoredClient(ctx, spec.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, specNotFound("client", spec.ClientID)
	}
	if err != nil {
		return nil, fmt.Errorf("load client %q: %w", spec.ClientID, err)
	}
	for _, s := range scopes {
		if !slices.Contains(client.Scopes, s) {
			return nil, invalidf("scope %q is not registered for client %q (it may ask for %s): an agreement cannot cover more than the client may ask for",
				s, client.ID, strings.Join(client.Scopes, " "))
		}
	}

	a := &storage.Agreement{
		ClientID:      client.ID,
		AllUsers:      spec.AllUsers,
		Scopes:        scopes,
		Reference:     strings.TrimSpace(spec.Reference),
		StartsAt:      startsAt,
		ExpiresAt:     spec.ExpiresAt,
		RecordedBy:    strings.TrimSpace(spec.RecordedBy),
		UserMayRemove: spec.UserMayRemove == nil || *spec.UserMayRemove,
		CreatedAt:     now,
	}
	if !spec.AllUsers {
		u, err := store.GetUserByUsername(ctx, spec.Username)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, specNotFound("user", spec.Username)
		}
		if err != nil {
			return nil, fmt.Errorf("load user %q: %w", spec.Username, err)
		}
		a.Subject = u.Subject
	}
	if a.ID, err = newAgreementID(); err != nil {
		return nil, err
	}
	err = inTx(ctx, store, func(ctx context.Context) error {
		if err := store.CreateAgreement(ctx, a); err != nil {
			return fmt.Errorf("store agreement with client %q: %w", a.ClientID, err)
		}
		return appendAgreementEvent(ctx, store, storage.EventAgreementCreated, a, a.RecordedBy, now)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// RevokeAgreement ends the agreement id at now, on behalf of the
// administrator revokedBy, and records storage.EventAgreementRevoked in the
// same transaction. Revoking it again keeps the first revocation time and
// records nothing. An unknown id yields `agreement "X" not found`, matching
// storage.ErrNotFound; a missing or unprintable revokedBy is refused with an
// error matching ErrInvalidSpec.
func RevokeAgreement(ctx context.Context, store storage.Store, id, revokedBy string, now time.Time) error {
	revokedBy, err := checkAdminName(revokedBy)
	if err != nil {
		return err
	}
	return inTx(ctx, store, func(ctx context.Context) error {
		a, err := store.GetAgreement(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return notFound("agreement", id)
		}
		if err != nil {
			return fmt.Errorf("load agreement %q: %w", id, err)
		}
		if a.RevokedAt != nil {
			return nil // already ended: nothing changes, nothing to record
		}
		err = store.RevokeAgreement(ctx, id, now)
		if errors.Is(err, storage.ErrNotFound) {
			return notFound("agreement", id)
		}
		if err != nil {
			return fmt.Errorf("revoke agreement %q: %w", id, err)
		}
		return appendAgreementEvent(ctx, store, storage.EventAgreementRevoked, a, revokedBy, now)
	})
}

// appendAgreementEvent records what an administrator did to agreement a.
func appendAgreementEvent(ctx context.Context, log storage.AuditLog, typ string, a *storage.Agreement, admin string, now time.Time) error {
	err := log.AppendAuditEvent(ctx, &storage.AuditEvent{
		Time:        now,
		Type:        typ,
		Actor:       storage.ActorAdmin,
		ActorName:   admin,
		Subject:     a.Subject,
		ClientID:    a.ClientID,
		Scopes:      a.Scopes,
		AgreementID: a.ID,
		Detail:      a.Reference,
	})
	if err != nil {
		return fmt.Errorf("record %s of agreement %q in the audit log: %w", typ, a.ID, err)
	}
	return nil
}

// checkAdminName trims the name of the administrator acting and refuses an
// empty or unprintable one: the audit log must say who did it.
func checkAdminName(name string) (string, error) {
	if strings.TrimSpace(name) == "" {
		return "", invalidf("the name of who makes the change is required")
	}
	if err := checkAgreementText("administrator name", name, maxRecordedByLength); err != nil {
		return "", err
	}
	return strings.TrimSpace(name), nil
}

// RevokeConsents revokes every unrevoked grant the user gave the client,
// and every token issued under them, and returns how many grants it
// revoked. An unknown user or client yields `user "X" not found` or
// `client "X" not found`, matching storage.ErrNotFound.
//
// Standing agreements are not touched: an active agreement still lets the
// client obtain a new grant without a consent screen until it is revoked.
//
// When it revokes any, it records one storage.EventGrantRevoked by the
// administrator revokedBy, in the same transaction. A missing or
// unprintable revokedBy is refused with an error matching ErrInvalidSpec.
func RevokeConsents(ctx context.Context, store storage.Store, username, clientID, revokedBy string, now time.Time) (int, error) {
	revokedBy, err := checkAdminName(revokedBy)
	if err != nil {
		return 0, err
	}
	u, err := store.GetUserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, notFound("user", username)
	}
	if err != nil {
		return 0, fmt.Errorf("load user %q: %w", username, err)
	}
	if _, err := store.GetStoredClient(ctx, clientID); errors.Is(err, storage.ErrNotFound) {
		return 0, notFound("client", clientID)
	} else if err != nil {
		return 0, fmt.Errorf("load client %q: %w", clientID, err)
	}
	var n int
	err = inTx(ctx, store, func(ctx context.Context) error {
		var err error
		if n, err = store.RevokeGrants(ctx, u.Subject, clientID, now); err != nil {
			return fmt.Errorf("revoke grants of user %q to client %q: %w", username, clientID, err)
		}
		if n == 0 {
			return nil
		}
		detail := fmt.Sprintf("%d grants", n)
		if n == 1 {
			detail = "1 grant"
		}
		err = store.AppendAuditEvent(ctx, &storage.AuditEvent{
			Time:      now,
			Type:      storage.EventGrantRevoked,
			Actor:     storage.ActorAdmin,
			ActorName: revokedBy,
			Subject:   u.Subject,
			ClientID:  clientID,
			Detail:    detail,
		})
		if err != nil {
			return fmt.Errorf("record the revocation of grants of user %q to client %q in the audit log: %w", username, clientID, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// checkAgreementText refuses control characters and overly long text in a
// value that is shown in listings; surrounding spaces do not count.
func checkAgreementText(what, value string, limit int) error {
	v := strings.TrimSpace(value)
	switch {
	case !utf8.ValidString(v):
		return invalidf("%s must be valid UTF-8", what)
	case utf8.RuneCountInString(v) > limit:
		return invalidf("%s must have at most %d characters", what, limit)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return invalidf("%s %q contains a control character", what, v)
		}
	}
	return nil
}

func newAgreementID() (string, error) {
	b := make([]byte, agreementIDBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate agreement id: %w", err)
	}
	return AgreementIDPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

func agreementTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
