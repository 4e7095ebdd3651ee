package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/consentry/consentry/storage"
)

// testUserMayRemove: the flag is stored as given, false included (a default
// of true in the schema must not turn it into true).
func testUserMayRemove(t *testing.T, s storage.Store) {
	ctx := t.Context()
	fixed := newAgreement("app", "", now().Add(-2*time.Hour))
	fixed.UserMayRemove = false
	removable := newAgreement("app", "sub-alice", now().Add(-time.Hour))
	removable.UserMayRemove = true
	for _, a := range []*storage.Agreement{fixed, removable} {
		mustOK(t, s.CreateAgreement(ctx, a), "CreateAgreement")
		got, err := s.GetAgreement(ctx, a.ID)
		mustOK(t, err, "GetAgreement")
		if got.UserMayRemove != a.UserMayRemove {
			t.Errorf("agreement UserMayRemove: got %t, want %t", got.UserMayRemove, a.UserMayRemove)
		}
		checkAgreement(t, got, a)
	}
	list, err := s.ListAgreements(ctx, storage.AgreementFilter{ForSubject: "sub-alice"})
	mustOK(t, err, "ListAgreements")
	checkAgreementIDs(t, list, []*storage.Agreement{fixed, removable}, "ListAgreements")
	if len(list) == 2 {
		checkAgreement(t, &list[0], fixed)
		checkAgreement(t, &list[1], removable)
	}
}

func listAgreementIDs(t *testing.T, s storage.Store, f storage.AgreementFilter, want []*storage.Agreement, what string) {
	t.Helper()
	list, err := s.ListAgreements(t.Context(), f)
	mustOK(t, err, "ListAgreements "+what)
	checkAgreementIDs(t, list, want, "ListAgreements "+what)
}

func testOptOutOfAgreement(t *testing.T, s storage.Store) {
	ctx := t.Context()
	createClient(t, s, "app")
	createClient(t, s, "other")
	mustOK(t, s.CreateUser(ctx, newUser("sub-alice", "alice")), "CreateUser")
	allApp := createAgreement(t, s, newAgreement("app", "", now().Add(-3*time.Hour)))
	aliceApp := createAgreement(t, s, newAgreement("app", "sub-alice", now().Add(-2*time.Hour)))
	allOther := createAgreement(t, s, newAgreement("other", "", now().Add(-time.Hour)))

	mustOK(t, s.OptOutOfAgreement(ctx, allApp.ID, "sub-alice", now()), "OptOutOfAgreement")
	// Only alice's ForSubject view changes.
	listAgreementIDs(t, s, storage.AgreementFilter{ForSubject: "sub-alice"}, []*storage.Agreement{aliceApp, allOther}, "for alice")
	listAgreementIDs(t, s, storage.AgreementFilter{ClientID: "app", ForSubject: "sub-alice"}, []*storage.Agreement{aliceApp}, "app for alice")
	listAgreementIDs(t, s, storage.AgreementFilter{ForSubject: "sub-bob"}, []*storage.Agreement{allApp, allOther}, "for bob")
	listAgreementIDs(t, s, storage.AgreementFilter{}, []*storage.Agreement{allApp, aliceApp, allOther}, "all")
	listAgreementIDs(t, s, storage.AgreementFilter{ClientID: "app"}, []*storage.Agreement{allApp, aliceApp}, "app")
	listAgreementIDs(t, s, storage.AgreementFilter{Subject: "sub-alice"}, []*storage.Agreement{aliceApp}, "alice's own")
	// The agreement itself is unchanged.
	got, err := s.GetAgreement(ctx, allApp.ID)
	mustOK(t, err, "GetAgreement")
	checkAgreement(t, got, allApp)

	// Idempotent.
	mustOK(t, s.OptOutOfAgreement(ctx, allApp.ID, "sub-alice", now()), "OptOutOfAgreement again")
	listAgreementIDs(t, s, storage.AgreementFilter{ForSubject: "sub-alice"}, []*storage.Agreement{aliceApp, allOther}, "for alice after a second opt-out")

	mustErr(t, s.OptOutOfAgreement(ctx, "unknown", "sub-alice", now()), storage.ErrNotFound, "OptOutOfAgreement unknown")
	// A one-user agreement is revoked, not opted out of.
	err = s.OptOutOfAgreement(ctx, aliceApp.ID, "sub-alice", now())
	if err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("OptOutOfAgreement of a one-user agreement: got %v, want an error", err)
	}

	// In a transaction that rolls back, nothing is recorded.
	txCtx, err := s.BeginTX(ctx)
	mustOK(t, err, "BeginTX")
	mustOK(t, s.OptOutOfAgreement(txCtx, allOther.ID, "sub-bob", now()), "OptOutOfAgreement in tx")
	list, err := s.ListAgreements(txCtx, storage.AgreementFilter{ForSubject: "sub-bob"})
	mustOK(t, err, "ListAgreements in tx")
	checkAgreementIDs(t, list, []*storage.Agreement{allApp}, "ListAgreements for bob in tx")
	mustOK(t, s.Rollback(txCtx), "Rollback")
	listAgreementIDs(t, s, storage.AgreementFilter{ForSubject: "sub-bob"}, []*storage.Agreement{allApp, allOther}, "for bob after rollback")
}

// testOptOutsDeleted: opt-outs go with the user and with the agreement, so
// that neither a subject nor an agreement id registered again inherits them.
func testOptOutsDeleted(t *testing.T, s storage.Store) {
	ctx := t.Context()
	createClient(t, s, "app")
	mustOK(t, s.CreateUser(ctx, newUser("sub-alice", "alice")), "CreateUser")
	allApp := createAgreement(t, s, newAgreement("app", "", now().Add(-time.Hour)))
	mustOK(t, s.OptOutOfAgreement(ctx, allApp.ID, "sub-alice", now()), "OptOutOfAgreement alice")
	mustOK(t, s.OptOutOfAgreement(ctx, allApp.ID, "sub-bob", now()), "OptOutOfAgreement bob")

	mustOK(t, s.DeleteUser(ctx, "sub-alice"), "DeleteUser")
	listAgreementIDs(t, s, storage.AgreementFilter{ForSubject: "sub-alice"}, []*storage.Agreement{allApp}, "for a deleted user's subject")
	listAgreementIDs(t, s, storage.AgreementFilter{ForSubject: "sub-bob"}, nil, "for bob")

	mustOK(t, s.DeleteClient(ctx, "app"), "DeleteClient")
	createClient(t, s, "app")
	again := newAgreement("app", "", now())
	again.ID = allApp.ID
	createAgreement(t, s, again)
	listAgreementIDs(t, s, storage.AgreementFilter{ForSubject: "sub-bob"}, []*storage.Agreement{again}, "for bob after the agreement was recorded again")
}

// testOptOutOnce: a user clicking "remove" in several tabs at once.
func testOptOutOnce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	all := createAgreement(t, s, newAgreement("app", "", now()))
	errs := race(retirers, func(int) error {
		return s.OptOutOfAgreement(ctx, all.ID, "sub-alice", time.Now())
	})
	for i, err := range errs {
		mustOK(t, err, fmt.Sprintf("OptOutOfAgreement %d", i))
	}
	listAgreementIDs(t, s, storage.AgreementFilter{ForSubject: "sub-alice"}, nil, "for alice")
}
