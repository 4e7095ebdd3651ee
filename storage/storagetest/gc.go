package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentry/consentry/storage"
)

// createTokensExpiring is createTokens with every expiry of the session set
// to exp, or none at all when exp is zero.
func createTokensExpiring(t *testing.T, s storage.Store, client *storage.Client, subject string, exp time.Time) tokenSet {
	t.Helper()
	ctx := t.Context()
	ts := tokenSet{req: newRequest(t, client, subject), code: randomID(), access: randomID(), refresh: randomID(), pkce: randomID(), oidcCode: randomID()}
	sess := ts.req.Session.(*openid.DefaultSession)
	sess.ExpiresAt = map[fosite.TokenType]time.Time{}
	if !exp.IsZero() {
		for _, tt := range []fosite.TokenType{fosite.AuthorizeCode, fosite.AccessToken, fosite.RefreshToken} {
			sess.ExpiresAt[tt] = exp
		}
	}
	mustOK(t, s.CreateAuthorizeCodeSession(ctx, ts.code, ts.req), "CreateAuthorizeCodeSession")
	mustOK(t, s.CreateAccessTokenSession(ctx, ts.access, ts.req), "CreateAccessTokenSession")
	mustOK(t, s.CreateRefreshTokenSession(ctx, ts.refresh, ts.access, ts.req), "CreateRefreshTokenSession")
	mustOK(t, s.CreatePKCERequestSession(ctx, ts.pkce, ts.req), "CreatePKCERequestSession")
	mustOK(t, s.CreateOpenIDConnectSession(ctx, ts.oidcCode, ts.req), "CreateOpenIDConnectSession")
	return ts
}

func collect(t *testing.T, s storage.Store, now, successorsBefore time.Time, batch, want int, what string) {
	t.Helper()
	n, err := s.CollectGarbage(t.Context(), now, successorsBefore, batch)
	mustOK(t, err, "CollectGarbage "+what)
	if n != want {
		t.Errorf("CollectGarbage %s: got %d, want %d", what, n, want)
	}
}

func testCollectGarbage(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	at := now()

	expired := createTokensExpiring(t, s, client, "sub-alice", at.Add(-time.Minute)) // 5 rows
	live := createTokensExpiring(t, s, client, "sub-alice", at.Add(time.Minute))
	forever := createTokensExpiring(t, s, client, "sub-alice", time.Time{})

	expiredReq := &storage.AuthRequest{ID: randomID(), Query: "a=b", CreatedAt: at.Add(-time.Hour), ExpiresAt: at.Add(-time.Second)}
	liveReq := &storage.AuthRequest{ID: randomID(), Query: "a=b", CreatedAt: at.Add(-time.Hour), ExpiresAt: at.Add(time.Hour)}
	for _, r := range []*storage.AuthRequest{expiredReq, liveReq} {
		mustOK(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
	}
	liveJTI, expiredJTI := randomID(), randomID()
	mustOK(t, s.SetClientAssertionJWT(ctx, liveJTI, at.Add(time.Hour)), "SetClientAssertionJWT")
	// Last: SetClientAssertionJWT forgets expired jtis itself.
	mustOK(t, s.SetClientAssertionJWT(ctx, expiredJTI, at.Add(-time.Minute)), "SetClientAssertionJWT expired")

	// Successors: one retired before the cut-off, one after.
	old := createTokensExpiring(t, s, client, "sub-bob", at.Add(time.Hour))
	recent := createTokensExpiring(t, s, client, "sub-bob", at.Add(time.Hour))
	oldAt, recentAt := at.Add(-2*time.Hour), at.Add(-time.Minute)
	mustOK(t, s.RetireRefreshToken(ctx, old.refresh, oldAt, []byte("old")), "RetireRefreshToken old")
	mustOK(t, s.RetireRefreshToken(ctx, recent.refresh, recentAt, []byte("recent")), "RetireRefreshToken recent")
	// Retired long ago without a successor: nothing to clear, nothing counted.
	bare := createTokensExpiring(t, s, client, "sub-bob", at.Add(time.Hour))
	empty := createTokensExpiring(t, s, client, "sub-bob", at.Add(time.Hour))
	mustOK(t, s.RetireRefreshToken(ctx, bare.refresh, oldAt, nil), "RetireRefreshToken without successor")
	mustOK(t, s.RetireRefreshToken(ctx, empty.refresh, oldAt, []byte{}), "RetireRefreshToken with an empty successor")

	// Audit events far older than anything collected.
	events := []*storage.AuditEvent{
		appendEvent(t, s, &storage.AuditEvent{Time: at.Add(-400 * 24 * time.Hour), Type: storage.EventConsentGiven, Actor: storage.ActorUser, Subject: "sub-alice", ClientID: "app"}),
		appendEvent(t, s, &storage.AuditEvent{Time: at.Add(-2 * time.Hour), Type: storage.EventGrantRevoked, Actor: storage.ActorSystem, Subject: "sub-alice", ClientID: "app"}),
	}

	// 5 fosite records, 1 auth request, 1 jti, 1 successor.
	collect(t, s, at, at.Add(-time.Hour), 100, 8, "")
	collect(t, s, at, at.Add(-time.Hour), 100, 0, "again")

	checkTokens(t, s, expired, fosite.ErrNotFound)
	checkTokens(t, s, live, nil)
	checkTokens(t, s, forever, nil)
	got, err := s.GetAccessTokenSession(ctx, live.access, openid.NewDefaultSession())
	mustOK(t, err, "GetAccessTokenSession live")
	checkRequest(t, got, live.req)

	_, err = s.GetAuthRequest(ctx, liveReq.ID)
	mustOK(t, err, "GetAuthRequest live")
	mustErr(t, s.ClientAssertionJWTValid(ctx, liveJTI), fosite.ErrJTIKnown, "ClientAssertionJWTValid live")

	// The old successor is cleared, the retirement itself kept; the recent
	// one is untouched.
	checkRetirement(t, getRetirement(t, s, old.refresh),
		&storage.Retirement{RequestID: old.req.ID, ClientID: "app", RetiredAt: &oldAt}, "old retirement")
	checkRetirement(t, getRetirement(t, s, recent.refresh),
		&storage.Retirement{RequestID: recent.req.ID, ClientID: "app", RetiredAt: &recentAt, Successor: []byte("recent")}, "recent retirement")
	_, err = s.GetRefreshTokenSession(ctx, old.refresh, nil)
	mustErr(t, err, fosite.ErrInactiveToken, "GetRefreshTokenSession of a collected retirement")

	listEvents(t, s, storage.AuditFilter{}, events, "after CollectGarbage")

	// Later, the rest expires too: live's five records, four of each retired
	// set (retiring deleted their access tokens; recent's refresh token goes
	// with its successor), the auth request and the jti. The token without
	// expiry stays.
	collect(t, s, at.Add(2*time.Hour), at, 100, 5+4*4+1+1, "later")
	checkTokens(t, s, live, fosite.ErrNotFound)
	checkTokens(t, s, forever, nil)
	listEvents(t, s, storage.AuditFilter{}, events, "after the later CollectGarbage")

	if _, err := s.CollectGarbage(ctx, at, at, 0); err == nil {
		t.Error("CollectGarbage with batch 0 succeeded")
	}
}

// testCollectGarbageBatches: at most batch rows per kind per call.
func testCollectGarbageBatches(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	at := now()
	req := newRequest(t, client, "sub-alice")
	req.Session.(*openid.DefaultSession).ExpiresAt[fosite.AccessToken] = at.Add(-time.Minute)
	for range 5 {
		mustOK(t, s.CreateAccessTokenSession(ctx, randomID(), req), "CreateAccessTokenSession")
	}
	liveReq := newRequest(t, client, "sub-alice")
	live := randomID()
	mustOK(t, s.CreateAccessTokenSession(ctx, live, liveReq), "CreateAccessTokenSession live")

	for i, want := range []int{2, 2, 1, 0} {
		collect(t, s, at, at, 2, want, fmt.Sprintf("call %d", i+1))
	}
	_, err := s.GetAccessTokenSession(ctx, live, nil)
	mustOK(t, err, "GetAccessTokenSession live")

	// Successors are cleared in batches too.
	for range 3 {
		ts := createTokensExpiring(t, s, client, "sub-bob", at.Add(time.Hour))
		mustOK(t, s.RetireRefreshToken(ctx, ts.refresh, at.Add(-time.Hour), []byte("sealed")), "RetireRefreshToken")
	}
	for i, want := range []int{2, 1, 0} {
		collect(t, s, at, at, 2, want, fmt.Sprintf("successors call %d", i+1))
	}
}
