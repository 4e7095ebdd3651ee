package storagetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentry/consentry/storage"
)

// ptr returns a pointer to a copy of t.
func ptr(t time.Time) *time.Time { return &t }

// sameOptTime compares optional times: both nil, or both set and equal.
func sameOptTime(t *testing.T, got, want *time.Time, what string) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Errorf("%s: got %v, want %v", what, got, want)
	default:
		sameTime(t, *got, *want, what)
	}
}

func newGrant(subject, clientID, requestID string, created time.Time) *storage.Grant {
	return &storage.Grant{
		ID:        "grant-" + randomID(),
		Subject:   subject,
		ClientID:  clientID,
		RequestID: requestID,
		Scopes:    []string{"openid", "profile"},
		Basis:     storage.BasisConsent,
		CreatedAt: created,
		IPAddress: "192.0.2.10",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64)",
	}
}

func createGrant(t *testing.T, s storage.Store, subject, clientID, requestID string, created time.Time) *storage.Grant {
	t.Helper()
	g := newGrant(subject, clientID, requestID, created)
	mustOK(t, s.CreateGrant(t.Context(), g), "CreateGrant")
	return g
}

func checkGrant(t *testing.T, got, want *storage.Grant) {
	t.Helper()
	sameTime(t, got.CreatedAt, want.CreatedAt, "grant CreatedAt")
	sameOptTime(t, got.RememberUntil, want.RememberUntil, "grant RememberUntil")
	sameOptTime(t, got.RevokedAt, want.RevokedAt, "grant RevokedAt")
	sameOptTime(t, got.LastUsedAt, want.LastUsedAt, "grant LastUsedAt")
	g, w := *got, *want
	g.CreatedAt, g.RememberUntil, g.RevokedAt, g.LastUsedAt = time.Time{}, nil, nil, nil
	w.CreatedAt, w.RememberUntil, w.RevokedAt, w.LastUsedAt = time.Time{}, nil, nil, nil
	if len(g.Scopes) == 0 && len(w.Scopes) == 0 {
		g.Scopes, w.Scopes = nil, nil
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("grant:\n got %+v\nwant %+v", g, w)
	}
}

// checkGrantIDs compares the ids of a listing, in order.
func checkGrantIDs(t *testing.T, got []storage.Grant, want []*storage.Grant, what string) {
	t.Helper()
	ids := make([]string, len(got))
	for i, g := range got {
		ids[i] = g.ID
	}
	wantIDs := make([]string, len(want))
	for i, g := range want {
		wantIDs[i] = g.ID
	}
	sameStrings(t, ids, wantIDs, what)
}

func testGrants(t *testing.T, s storage.Store) {
	ctx := t.Context()
	// Created in a zone far from UTC: its local clock reads later than the
	// others', so only times compared as instants keep the order right.
	g1 := newGrant("sub-alice", "app", randomID(), now().Add(-3*time.Hour).In(time.FixedZone("LINT", 14*3600)))
	g1.RememberUntil = ptr(now().Add(30 * 24 * time.Hour))
	g2 := newGrant("sub-alice", "app", randomID(), now().Add(-2*time.Hour))
	g2.Basis = storage.BasisRemembered
	g2.RememberedFrom = g1.ID
	g2.Scopes = []string{"openid"}
	g3 := newGrant("sub-alice", "other", randomID(), now().Add(-time.Hour))
	g3.Basis = storage.BasisAgreement
	g3.AgreementID = "agreement-1"
	g3.IPAddress, g3.UserAgent = "", ""
	g3.LastUsedAt = ptr(now().Add(-5 * time.Minute))
	g4 := newGrant("sub-bob", "app", randomID(), now().Add(-30*time.Minute))
	g4.RevokedAt = ptr(now().Add(-10 * time.Minute))
	for _, g := range []*storage.Grant{g3, g1, g4, g2} {
		mustOK(t, s.CreateGrant(ctx, g), "CreateGrant")
	}

	dup := newGrant("sub-mallory", "app", randomID(), now())
	dup.ID = g1.ID
	mustErr(t, s.CreateGrant(ctx, dup), storage.ErrAlreadyExists, "CreateGrant duplicate id")
	dup = newGrant("sub-mallory", "app", g2.RequestID, now())
	mustErr(t, s.CreateGrant(ctx, dup), storage.ErrAlreadyExists, "CreateGrant duplicate request id")

	for _, want := range []*storage.Grant{g1, g2, g3, g4} {
		got, err := s.GetGrantByRequestID(ctx, want.RequestID)
		mustOK(t, err, "GetGrantByRequestID")
		checkGrant(t, got, want)
	}
	_, err := s.GetGrantByRequestID(ctx, "unknown")
	mustErr(t, err, storage.ErrNotFound, "GetGrantByRequestID unknown")

	for _, tc := range []struct {
		name   string
		filter storage.GrantFilter
		want   []*storage.Grant
	}{
		{"all", storage.GrantFilter{}, []*storage.Grant{g4, g3, g2, g1}},
		{"subject", storage.GrantFilter{Subject: "sub-alice"}, []*storage.Grant{g3, g2, g1}},
		{"client", storage.GrantFilter{ClientID: "app"}, []*storage.Grant{g4, g2, g1}},
		{"subject and client", storage.GrantFilter{Subject: "sub-alice", ClientID: "app"}, []*storage.Grant{g2, g1}},
		{"unrevoked", storage.GrantFilter{UnrevokedOnly: true}, []*storage.Grant{g3, g2, g1}},
		{"unrevoked of bob", storage.GrantFilter{Subject: "sub-bob", UnrevokedOnly: true}, nil},
		{"remembered now", storage.GrantFilter{Subject: "sub-alice", ClientID: "app", RememberedAfter: now()}, []*storage.Grant{g1}},
		{"remembered beyond its end", storage.GrantFilter{RememberedAfter: now().Add(31 * 24 * time.Hour)}, nil},
		{"unknown subject", storage.GrantFilter{Subject: "sub-nobody"}, nil},
	} {
		list, err := s.ListGrants(ctx, tc.filter)
		mustOK(t, err, "ListGrants "+tc.name)
		checkGrantIDs(t, list, tc.want, "ListGrants "+tc.name)
		if len(list) == len(tc.want) {
			for i := range list {
				checkGrant(t, &list[i], tc.want[i])
			}
		}
	}
}

// testGrantDefaults: a zero CreatedAt is set on create.
func testGrantDefaults(t *testing.T, s storage.Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Second)
	g := newGrant("sub-alice", "app", randomID(), time.Time{})
	mustOK(t, s.CreateGrant(ctx, g), "CreateGrant")
	got, err := s.GetGrantByRequestID(ctx, g.RequestID)
	mustOK(t, err, "GetGrantByRequestID")
	if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("CreatedAt not set to now: %v", got.CreatedAt)
	}
	if got.RememberUntil != nil || got.RevokedAt != nil || got.LastUsedAt != nil {
		t.Errorf("unset optional times came back set: %v, %v, %v", got.RememberUntil, got.RevokedAt, got.LastUsedAt)
	}
}

// checkRevokedTokens asserts that the tokens of ts are revoked the way
// fosite expects: the code invalidated (request still readable), the access
// token gone, the refresh token inactive (request still readable, so that
// fosite can detect reuse).
func checkRevokedTokens(t *testing.T, s storage.Store, ts tokenSet) {
	t.Helper()
	ctx := t.Context()
	got, err := s.GetAuthorizeCodeSession(ctx, ts.code, openid.NewDefaultSession())
	mustErr(t, err, fosite.ErrInvalidatedAuthorizeCode, "authorize code of a revoked grant")
	checkRequest(t, got, ts.req)
	_, err = s.GetAccessTokenSession(ctx, ts.access, openid.NewDefaultSession())
	mustErr(t, err, fosite.ErrNotFound, "access token of a revoked grant")
	got, err = s.GetRefreshTokenSession(ctx, ts.refresh, openid.NewDefaultSession())
	mustErr(t, err, fosite.ErrInactiveToken, "refresh token of a revoked grant")
	checkRequest(t, got, ts.req)
}

func testRevokeGrants(t *testing.T, s storage.Store) {
	ctx := t.Context()
	app := createClient(t, s, "app")
	other := createClient(t, s, "other")

	// Two grants of alice to app (say, two devices), each with its tokens.
	ts1 := createTokens(t, s, app, "sub-alice")
	ts2 := createTokens(t, s, app, "sub-alice")
	g1 := createGrant(t, s, "sub-alice", "app", ts1.req.ID, now().Add(-2*time.Hour))
	g2 := createGrant(t, s, "sub-alice", "app", ts2.req.ID, now().Add(-time.Hour))
	// What must survive: alice's grant to another client, bob's to app.
	tsOther := createTokens(t, s, other, "sub-alice")
	gOther := createGrant(t, s, "sub-alice", "other", tsOther.req.ID, now())
	tsBob := createTokens(t, s, app, "sub-bob")
	gBob := createGrant(t, s, "sub-bob", "app", tsBob.req.ID, now())
	// Only the grants being revoked count, not those revoked before (here
	// created revoked, its tokens left active).
	tsBobOld := createTokens(t, s, app, "sub-bob")
	gBobOld := newGrant("sub-bob", "app", tsBobOld.req.ID, now().Add(-time.Hour))
	gBobOld.RevokedAt = ptr(now().Add(-time.Minute))
	mustOK(t, s.CreateGrant(ctx, gBobOld), "CreateGrant revoked")

	at := now().Add(-time.Minute)
	n, err := s.RevokeGrants(ctx, "sub-alice", "app", at)
	mustOK(t, err, "RevokeGrants")
	if n != 2 {
		t.Errorf("RevokeGrants: revoked %d grants, want 2", n)
	}
	checkRevokedTokens(t, s, ts1)
	checkRevokedTokens(t, s, ts2)
	checkTokens(t, s, tsOther, nil)
	checkTokens(t, s, tsBob, nil)
	checkTokens(t, s, tsBobOld, nil)

	for _, g := range []*storage.Grant{g1, g2} {
		got, err := s.GetGrantByRequestID(ctx, g.RequestID)
		mustOK(t, err, "GetGrantByRequestID revoked")
		sameOptTime(t, got.RevokedAt, &at, "RevokedAt of a revoked grant")
	}
	for _, g := range []*storage.Grant{gOther, gBob, gBobOld} {
		got, err := s.GetGrantByRequestID(ctx, g.RequestID)
		mustOK(t, err, "GetGrantByRequestID kept")
		checkGrant(t, got, g)
	}
	list, err := s.ListGrants(ctx, storage.GrantFilter{Subject: "sub-alice", UnrevokedOnly: true})
	mustOK(t, err, "ListGrants unrevoked")
	checkGrantIDs(t, list, []*storage.Grant{gOther}, "ListGrants unrevoked after RevokeGrants")

	// Nothing left to revoke; the first revocation time stays.
	n, err = s.RevokeGrants(ctx, "sub-alice", "app", now())
	mustOK(t, err, "RevokeGrants again")
	if n != 0 {
		t.Errorf("RevokeGrants again: revoked %d grants, want 0", n)
	}
	got, err := s.GetGrantByRequestID(ctx, g1.RequestID)
	mustOK(t, err, "GetGrantByRequestID")
	sameOptTime(t, got.RevokedAt, &at, "RevokedAt after a second RevokeGrants")
	n, err = s.RevokeGrants(ctx, "sub-nobody", "app", now())
	mustOK(t, err, "RevokeGrants without grants")
	if n != 0 {
		t.Errorf("RevokeGrants without grants: revoked %d, want 0", n)
	}

	// A later grant is revoked on its own; earlier ones keep their time.
	ts3 := createTokens(t, s, app, "sub-alice")
	createGrant(t, s, "sub-alice", "app", ts3.req.ID, now())
	later := now()
	n, err = s.RevokeGrants(ctx, "sub-alice", "app", later)
	mustOK(t, err, "RevokeGrants of a new grant")
	if n != 1 {
		t.Errorf("RevokeGrants of a new grant: revoked %d, want 1", n)
	}
	checkRevokedTokens(t, s, ts3)
	got, err = s.GetGrantByRequestID(ctx, ts3.req.ID)
	mustOK(t, err, "GetGrantByRequestID")
	sameOptTime(t, got.RevokedAt, &later, "RevokedAt of the new grant")
	got, err = s.GetGrantByRequestID(ctx, g2.RequestID)
	mustOK(t, err, "GetGrantByRequestID")
	sameOptTime(t, got.RevokedAt, &at, "RevokedAt of an earlier grant")
	checkTokens(t, s, tsOther, nil)
	checkTokens(t, s, tsBob, nil)
}

// testRevokeGrantsRollsBack: RevokeGrants joins the caller's transaction, so
// rolling that back leaves grant and tokens as they were.
func testRevokeGrantsRollsBack(t *testing.T, s storage.Store) {
	ctx := t.Context()
	app := createClient(t, s, "app")
	ts := createTokens(t, s, app, "sub-alice")
	g := createGrant(t, s, "sub-alice", "app", ts.req.ID, now())

	txCtx, err := s.BeginTX(ctx)
	mustOK(t, err, "BeginTX")
	n, err := s.RevokeGrants(txCtx, "sub-alice", "app", now())
	mustOK(t, err, "RevokeGrants in tx")
	if n != 1 {
		t.Errorf("RevokeGrants in tx: revoked %d, want 1", n)
	}
	_, err = s.GetAccessTokenSession(txCtx, ts.access, nil)
	mustErr(t, err, fosite.ErrNotFound, "GetAccessTokenSession in tx")
	mustOK(t, s.Rollback(txCtx), "Rollback")

	got, err := s.GetGrantByRequestID(ctx, g.RequestID)
	mustOK(t, err, "GetGrantByRequestID after rollback")
	checkGrant(t, got, g)
	checkTokens(t, s, ts, nil)
}

// testDeleteUserDeletesConsent: a deleted user's grants and own agreements go
// with them; other users' and all-users agreements stay.
func testDeleteUserDeletesConsent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	createClient(t, s, "app")
	mustOK(t, s.CreateUser(ctx, newUser("sub-alice", "alice")), "CreateUser")
	mustOK(t, s.CreateUser(ctx, newUser("sub-bob", "bob")), "CreateUser")
	gAlice := createGrant(t, s, "sub-alice", "app", randomID(), now())
	gBob := createGrant(t, s, "sub-bob", "app", randomID(), now())
	aAlice := createAgreement(t, s, newAgreement("app", "sub-alice", now()))
	aBob := createAgreement(t, s, newAgreement("app", "sub-bob", now()))
	aAll := createAgreement(t, s, newAgreement("app", "", now()))

	mustOK(t, s.DeleteUser(ctx, "sub-alice"), "DeleteUser")
	_, err := s.GetGrantByRequestID(ctx, gAlice.RequestID)
	mustErr(t, err, storage.ErrNotFound, "grant of a deleted user")
	_, err = s.GetAgreement(ctx, aAlice.ID)
	mustErr(t, err, storage.ErrNotFound, "agreement of a deleted user")
	_, err = s.GetGrantByRequestID(ctx, gBob.RequestID)
	mustOK(t, err, "grant of another user")
	for _, a := range []*storage.Agreement{aBob, aAll} {
		_, err = s.GetAgreement(ctx, a.ID)
		mustOK(t, err, "agreement kept")
	}
}

// testDeleteClientDeletesConsent: a deleted client's grants and agreements go
// with it, and do not come back when the id is registered again.
func testDeleteClientDeletesConsent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	createClient(t, s, "app")
	createClient(t, s, "other")
	gApp := createGrant(t, s, "sub-alice", "app", randomID(), now())
	gOther := createGrant(t, s, "sub-alice", "other", randomID(), now())
	aAppAll := createAgreement(t, s, newAgreement("app", "", now()))
	aAppAlice := createAgreement(t, s, newAgreement("app", "sub-alice", now()))
	aOther := createAgreement(t, s, newAgreement("other", "", now()))

	mustOK(t, s.DeleteClient(ctx, "app"), "DeleteClient")
	createClient(t, s, "app")
	_, err := s.GetGrantByRequestID(ctx, gApp.RequestID)
	mustErr(t, err, storage.ErrNotFound, "grant to a deleted client")
	for _, a := range []*storage.Agreement{aAppAll, aAppAlice} {
		_, err = s.GetAgreement(ctx, a.ID)
		mustErr(t, err, storage.ErrNotFound, "agreement of a deleted client")
	}
	list, err := s.ListGrants(ctx, storage.GrantFilter{})
	mustOK(t, err, "ListGrants")
	checkGrantIDs(t, list, []*storage.Grant{gOther}, "ListGrants after DeleteClient")
	_, err = s.GetAgreement(ctx, aOther.ID)
	mustOK(t, err, "agreement of another client")
}
