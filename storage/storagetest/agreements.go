package storagetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/consentry/consentry/storage"
)

// newAgreement is an agreement of clientID with subject, or with all users
// when subject is empty.
func newAgreement(clientID, subject string, created time.Time) *storage.Agreement {
	return &storage.Agreement{
		ID:         "agreement-" + randomID(),
		ClientID:   clientID,
		Subject:    subject,
		AllUsers:   subject == "",
		Scopes:     []string{"openid", "profile", "email"},
		Reference:  "MSA-2026-114",
		StartsAt:   created.Add(-24 * time.Hour),
		RecordedBy: "admin@example.org",
		// As RecordAgreement sets it unless told otherwise.
		UserMayRemove: true,
		CreatedAt:     created,
	}
}

func createAgreement(t *testing.T, s storage.Store, a *storage.Agreement) *storage.Agreement {
	t.Helper()
	mustOK(t, s.CreateAgreement(t.Context(), a), "CreateAgreement")
	return a
}

func checkAgreement(t *testing.T, got, want *storage.Agreement) {
	t.Helper()
	sameTime(t, got.StartsAt, want.StartsAt, "agreement StartsAt")
	sameTime(t, got.CreatedAt, want.CreatedAt, "agreement CreatedAt")
	sameOptTime(t, got.ExpiresAt, want.ExpiresAt, "agreement ExpiresAt")
	sameOptTime(t, got.RevokedAt, want.RevokedAt, "agreement RevokedAt")
	g, w := *got, *want
	g.StartsAt, g.CreatedAt, g.ExpiresAt, g.RevokedAt = time.Time{}, time.Time{}, nil, nil
	w.StartsAt, w.CreatedAt, w.ExpiresAt, w.RevokedAt = time.Time{}, time.Time{}, nil, nil
	if len(g.Scopes) == 0 && len(w.Scopes) == 0 {
		g.Scopes, w.Scopes = nil, nil
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("agreement:\n got %+v\nwant %+v", g, w)
	}
}

func checkAgreementIDs(t *testing.T, got []storage.Agreement, want []*storage.Agreement, what string) {
	t.Helper()
	ids := make([]string, len(got))
	for i, a := range got {
		ids[i] = a.ID
	}
	wantIDs := make([]string, len(want))
	for i, a := range want {
		wantIDs[i] = a.ID
	}
	sameStrings(t, ids, wantIDs, what)
}

func testAgreements(t *testing.T, s storage.Store) {
	ctx := t.Context()
	allApp := newAgreement("app", "", now().Add(-5*time.Hour))
	allApp.ExpiresAt = ptr(now().Add(365 * 24 * time.Hour))
	// A zone far from UTC, as in testGrants: ordering must go by instant.
	aliceApp := newAgreement("app", "sub-alice", now().Add(-4*time.Hour).In(time.FixedZone("LINT", 14*3600)))
	bobApp := newAgreement("app", "sub-bob", now().Add(-3*time.Hour))
	bobApp.RevokedAt = ptr(now().Add(-time.Hour))
	bobApp.Scopes = []string{"openid"}
	bobApp.UserMayRemove = false
	aliceOther := newAgreement("other", "sub-alice", now().Add(-2*time.Hour))
	aliceOther.ExpiresAt = ptr(now().Add(-time.Minute))
	aliceOther.Reference, aliceOther.RecordedBy = "", ""
	allOther := newAgreement("other", "", now().Add(-time.Hour))
	for _, a := range []*storage.Agreement{allOther, bobApp, allApp, aliceOther, aliceApp} {
		mustOK(t, s.CreateAgreement(ctx, a), "CreateAgreement")
	}
	dup := newAgreement("other", "sub-mallory", now())
	dup.ID = allApp.ID
	mustErr(t, s.CreateAgreement(ctx, dup), storage.ErrAlreadyExists, "CreateAgreement duplicate id")

	for _, want := range []*storage.Agreement{allApp, aliceApp, bobApp, aliceOther, allOther} {
		got, err := s.GetAgreement(ctx, want.ID)
		mustOK(t, err, "GetAgreement")
		checkAgreement(t, got, want)
	}
	_, err := s.GetAgreement(ctx, "unknown")
	mustErr(t, err, storage.ErrNotFound, "GetAgreement unknown")

	for _, tc := range []struct {
		name   string
		filter storage.AgreementFilter
		want   []*storage.Agreement
	}{
		{"all", storage.AgreementFilter{}, []*storage.Agreement{allApp, aliceApp, bobApp, aliceOther, allOther}},
		{"client", storage.AgreementFilter{ClientID: "app"}, []*storage.Agreement{allApp, aliceApp, bobApp}},
		{"subject", storage.AgreementFilter{Subject: "sub-alice"}, []*storage.Agreement{aliceApp, aliceOther}},
		{"client and subject", storage.AgreementFilter{ClientID: "app", Subject: "sub-alice"}, []*storage.Agreement{aliceApp}},
		{"for subject", storage.AgreementFilter{ForSubject: "sub-alice"}, []*storage.Agreement{allApp, aliceApp, aliceOther, allOther}},
		{"client for subject", storage.AgreementFilter{ClientID: "app", ForSubject: "sub-alice"}, []*storage.Agreement{allApp, aliceApp}},
		{"client for bob", storage.AgreementFilter{ClientID: "app", ForSubject: "sub-bob"}, []*storage.Agreement{allApp, bobApp}},
		{"for a user without own agreements", storage.AgreementFilter{ForSubject: "sub-carol"}, []*storage.Agreement{allApp, allOther}},
		{"unknown client", storage.AgreementFilter{ClientID: "unknown", ForSubject: "sub-alice"}, nil},
	} {
		list, err := s.ListAgreements(ctx, tc.filter)
		mustOK(t, err, "ListAgreements "+tc.name)
		checkAgreementIDs(t, list, tc.want, "ListAgreements "+tc.name)
		if len(list) == len(tc.want) {
			for i := range list {
				checkAgreement(t, &list[i], tc.want[i])
			}
		}
	}

	// A zero CreatedAt is set on create.
	before := time.Now().Add(-time.Second)
	fresh := newAgreement("app", "sub-carol", time.Time{})
	fresh.StartsAt = now()
	mustOK(t, s.CreateAgreement(ctx, fresh), "CreateAgreement without CreatedAt")
	got, err := s.GetAgreement(ctx, fresh.ID)
	mustOK(t, err, "GetAgreement")
	if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("CreatedAt not set to now: %v", got.CreatedAt)
	}
}

func testRevokeAgreement(t *testing.T, s storage.Store) {
	ctx := t.Context()
	a := createAgreement(t, s, newAgreement("app", "sub-alice", now().Add(-time.Hour)))
	kept := createAgreement(t, s, newAgreement("app", "", now().Add(-time.Hour)))

	first := now().Add(-time.Minute)
	mustOK(t, s.RevokeAgreement(ctx, a.ID, first), "RevokeAgreement")
	got, err := s.GetAgreement(ctx, a.ID)
	mustOK(t, err, "GetAgreement")
	sameOptTime(t, got.RevokedAt, &first, "RevokedAt")

	mustOK(t, s.RevokeAgreement(ctx, a.ID, now()), "RevokeAgreement again")
	got, err = s.GetAgreement(ctx, a.ID)
	mustOK(t, err, "GetAgreement")
	sameOptTime(t, got.RevokedAt, &first, "RevokedAt after a second revocation")
	a.RevokedAt = &first
	checkAgreement(t, got, a)

	got, err = s.GetAgreement(ctx, kept.ID)
	mustOK(t, err, "GetAgreement")
	checkAgreement(t, got, kept)

	mustErr(t, s.RevokeAgreement(ctx, "unknown", now()), storage.ErrNotFound, "RevokeAgreement unknown")
}
