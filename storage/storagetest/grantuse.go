package storagetest

import (
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/consentry/consentry/storage"
)

func testRevokeGrantByRequestID(t *testing.T, s storage.Store) {
	ctx := t.Context()
	app := createClient(t, s, "app")
	// Two grants of alice to app (two devices), and bob's.
	ts1 := createTokens(t, s, app, "sub-alice")
	ts2 := createTokens(t, s, app, "sub-alice")
	tsBob := createTokens(t, s, app, "sub-bob")
	g1 := createGrant(t, s, "sub-alice", "app", ts1.req.ID, now().Add(-2*time.Hour))
	g2 := createGrant(t, s, "sub-alice", "app", ts2.req.ID, now().Add(-time.Hour))
	gBob := createGrant(t, s, "sub-bob", "app", tsBob.req.ID, now())

	at := now().Add(-time.Minute)
	mustOK(t, s.RevokeGrantByRequestID(ctx, ts1.req.ID, at), "RevokeGrantByRequestID")
	checkRevokedTokens(t, s, ts1)
	checkTokens(t, s, ts2, nil)
	checkTokens(t, s, tsBob, nil)
	got, err := s.GetGrantByRequestID(ctx, g1.RequestID)
	mustOK(t, err, "GetGrantByRequestID")
	sameOptTime(t, got.RevokedAt, &at, "RevokedAt of the revoked grant")
	for _, g := range []*storage.Grant{g2, gBob} {
		got, err := s.GetGrantByRequestID(ctx, g.RequestID)
		mustOK(t, err, "GetGrantByRequestID kept")
		checkGrant(t, got, g)
	}
	// Revoked, not rotated.
	checkRetirement(t, getRetirement(t, s, ts1.refresh),
		&storage.Retirement{RequestID: ts1.req.ID, ClientID: "app"}, "refresh token of the revoked grant")

	// Again: the first time stays, and tokens issued under the grant since
	// (say, by a refresh that committed just after) are revoked as well.
	lateAccess, lateRefresh := randomID(), randomID()
	mustOK(t, s.CreateAccessTokenSession(ctx, lateAccess, ts1.req), "CreateAccessTokenSession")
	mustOK(t, s.CreateRefreshTokenSession(ctx, lateRefresh, lateAccess, ts1.req), "CreateRefreshTokenSession")
	mustOK(t, s.RevokeGrantByRequestID(ctx, ts1.req.ID, now()), "RevokeGrantByRequestID again")
	got, err = s.GetGrantByRequestID(ctx, g1.RequestID)
	mustOK(t, err, "GetGrantByRequestID")
	sameOptTime(t, got.RevokedAt, &at, "RevokedAt after a second revocation")
	_, err = s.GetAccessTokenSession(ctx, lateAccess, nil)
	mustErr(t, err, fosite.ErrNotFound, "late access token")
	_, err = s.GetRefreshTokenSession(ctx, lateRefresh, nil)
	mustErr(t, err, fosite.ErrInactiveToken, "late refresh token")
	checkTokens(t, s, ts2, nil)

	mustErr(t, s.RevokeGrantByRequestID(ctx, "unknown", now()), storage.ErrNotFound, "RevokeGrantByRequestID unknown")
	// A request id with tokens but no grant is unknown too, and keeps its tokens.
	noGrant := createTokens(t, s, app, "sub-alice")
	mustErr(t, s.RevokeGrantByRequestID(ctx, noGrant.req.ID, now()), storage.ErrNotFound, "RevokeGrantByRequestID without grant")
	checkTokens(t, s, noGrant, nil)

	// A zero time means now.
	before := time.Now().Add(-time.Second)
	mustOK(t, s.RevokeGrantByRequestID(ctx, ts2.req.ID, time.Time{}), "RevokeGrantByRequestID at zero time")
	got, err = s.GetGrantByRequestID(ctx, g2.RequestID)
	mustOK(t, err, "GetGrantByRequestID")
	if got.RevokedAt == nil || got.RevokedAt.Before(before) || got.RevokedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("RevokedAt not set to now: %v", got.RevokedAt)
	}
	checkRevokedTokens(t, s, ts2)

	// In a transaction that rolls back, nothing happens.
	txCtx, err := s.BeginTX(ctx)
	mustOK(t, err, "BeginTX")
	mustOK(t, s.RevokeGrantByRequestID(txCtx, tsBob.req.ID, now()), "RevokeGrantByRequestID in tx")
	mustOK(t, s.Rollback(txCtx), "Rollback")
	got, err = s.GetGrantByRequestID(ctx, gBob.RequestID)
	mustOK(t, err, "GetGrantByRequestID")
	checkGrant(t, got, gBob)
	checkTokens(t, s, tsBob, nil)
}

func testTouchGrant(t *testing.T, s storage.Store) {
	ctx := t.Context()
	g := createGrant(t, s, "sub-alice", "app", randomID(), now().Add(-time.Hour))
	other := createGrant(t, s, "sub-alice", "app", randomID(), now().Add(-time.Hour))

	first := now().Add(-time.Minute)
	mustOK(t, s.TouchGrant(ctx, g.RequestID, first), "TouchGrant")
	got, err := s.GetGrantByRequestID(ctx, g.RequestID)
	mustOK(t, err, "GetGrantByRequestID")
	g.LastUsedAt = &first
	checkGrant(t, got, g)

	later := now()
	mustOK(t, s.TouchGrant(ctx, g.RequestID, later), "TouchGrant again")
	g.LastUsedAt = &later
	list, err := s.ListGrants(ctx, storage.GrantFilter{Subject: "sub-alice"})
	mustOK(t, err, "ListGrants")
	if len(list) != 2 {
		t.Fatalf("ListGrants: got %d grants, want 2", len(list))
	}
	for i := range list {
		switch list[i].ID {
		case g.ID:
			checkGrant(t, &list[i], g)
		case other.ID:
			checkGrant(t, &list[i], other) // untouched: LastUsedAt nil
		default:
			t.Errorf("ListGrants: unexpected grant %q", list[i].ID)
		}
	}

	// Touching a revoked grant is recorded too: it says when it was last used.
	mustOK(t, s.RevokeGrantByRequestID(ctx, other.RequestID, now()), "RevokeGrantByRequestID")
	mustOK(t, s.TouchGrant(ctx, other.RequestID, later), "TouchGrant revoked")

	mustErr(t, s.TouchGrant(ctx, "unknown", now()), storage.ErrNotFound, "TouchGrant unknown")
}
