package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentry/consentry/storage"
)

// retirers is how many goroutines race to retire one refresh token.
const retirers = 16

// checkRetirement compares a refresh token's retirement with what is expected.
func checkRetirement(t *testing.T, got, want *storage.Retirement, what string) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: got nil retirement", what)
	}
	if got.RequestID != want.RequestID || got.ClientID != want.ClientID || got.Active != want.Active {
		t.Errorf("%s: got request %q, client %q, active %t; want %q, %q, %t",
			what, got.RequestID, got.ClientID, got.Active, want.RequestID, want.ClientID, want.Active)
	}
	sameOptTime(t, got.RetiredAt, want.RetiredAt, what+": RetiredAt")
	if !bytes.Equal(got.Successor, want.Successor) {
		t.Errorf("%s: successor %q, want %q", what, got.Successor, want.Successor)
	}
}

func getRetirement(t *testing.T, s storage.Store, signature string) *storage.Retirement {
	t.Helper()
	r, err := s.GetRefreshTokenRetirement(t.Context(), signature)
	mustOK(t, err, "GetRefreshTokenRetirement")
	return r
}

func testRetireRefreshToken(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	ts := createTokens(t, s, client, "sub-alice")
	// A second access token of the same request, and another request.
	access2 := randomID()
	mustOK(t, s.CreateAccessTokenSession(ctx, access2, ts.req), "CreateAccessTokenSession")
	other := createTokens(t, s, client, "sub-alice")

	checkRetirement(t, getRetirement(t, s, ts.refresh),
		&storage.Retirement{RequestID: ts.req.ID, ClientID: "app", Active: true}, "active token")

	at := now().Add(-time.Minute)
	successor := []byte{0, 1, 2, 0xfe, 0xff, 's', 'e', 'a', 'l', 'e', 'd'}
	mustOK(t, s.RetireRefreshToken(ctx, ts.refresh, at, successor), "RetireRefreshToken")
	successor[0] = 'X' // the store keeps its own copy
	retired := &storage.Retirement{RequestID: ts.req.ID, ClientID: "app", RetiredAt: &at,
		Successor: []byte{0, 1, 2, 0xfe, 0xff, 's', 'e', 'a', 'l', 'e', 'd'}}
	checkRetirement(t, getRetirement(t, s, ts.refresh), retired, "retired token")

	// fosite sees an inactive token, request included (for reuse detection).
	got, err := s.GetRefreshTokenSession(ctx, ts.refresh, openid.NewDefaultSession())
	mustErr(t, err, fosite.ErrInactiveToken, "GetRefreshTokenSession retired")
	checkRequest(t, got, ts.req)
	// Every access token of the request is gone; nothing else is touched.
	for _, sig := range []string{ts.access, access2} {
		_, err = s.GetAccessTokenSession(ctx, sig, nil)
		mustErr(t, err, fosite.ErrNotFound, "GetAccessTokenSession after retirement")
	}
	checkTokens(t, s, other, nil)
	_, err = s.GetPKCERequestSession(ctx, ts.pkce, nil)
	mustOK(t, err, "GetPKCERequestSession of the retired token's request")

	// A second retirement fails and changes nothing: the access token issued
	// with the successor stays.
	nextAccess := randomID()
	mustOK(t, s.CreateAccessTokenSession(ctx, nextAccess, ts.req), "CreateAccessTokenSession")
	err = s.RetireRefreshToken(ctx, ts.refresh, now(), []byte("second"))
	mustErr(t, err, fosite.ErrInactiveToken, "RetireRefreshToken twice")
	checkRetirement(t, getRetirement(t, s, ts.refresh), retired, "after a second retirement")
	_, err = s.GetAccessTokenSession(ctx, nextAccess, nil)
	mustOK(t, err, "GetAccessTokenSession after a failed retirement")

	mustErr(t, s.RetireRefreshToken(ctx, "unknown", now(), nil), storage.ErrNotFound, "RetireRefreshToken unknown")
	_, err = s.GetRefreshTokenRetirement(ctx, "unknown")
	mustErr(t, err, storage.ErrNotFound, "GetRefreshTokenRetirement unknown")

	// Without a successor; a zero time means now.
	bare := createTokens(t, s, client, "sub-alice")
	before := time.Now().Add(-time.Second)
	mustOK(t, s.RetireRefreshToken(ctx, bare.refresh, time.Time{}, nil), "RetireRefreshToken without successor")
	r := getRetirement(t, s, bare.refresh)
	if r.Active || r.Successor != nil || r.RetiredAt == nil ||
		r.RetiredAt.Before(before) || r.RetiredAt.After(time.Now().Add(time.Second)) {
		t.Errorf("retired without successor at zero time: got %+v", r)
	}
	empty := createTokens(t, s, client, "sub-alice")
	mustOK(t, s.RetireRefreshToken(ctx, empty.refresh, at, []byte{}), "RetireRefreshToken with an empty successor")
	checkRetirement(t, getRetirement(t, s, empty.refresh),
		&storage.Retirement{RequestID: empty.req.ID, ClientID: "app", RetiredAt: &at}, "empty successor")
}

// testRetiredOrRevoked: tokens made inactive by revocation (or by fosite's
// RotateRefreshToken) have no RetiredAt, so they are told from rotated ones,
// and cannot be retired afterwards.
func testRetiredOrRevoked(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")

	revoked := createTokens(t, s, client, "sub-alice")
	mustOK(t, s.RevokeRefreshToken(ctx, revoked.req.ID), "RevokeRefreshToken")
	want := &storage.Retirement{RequestID: revoked.req.ID, ClientID: "app"}
	checkRetirement(t, getRetirement(t, s, revoked.refresh), want, "revoked token")
	mustErr(t, s.RetireRefreshToken(ctx, revoked.refresh, now(), []byte("x")), fosite.ErrInactiveToken, "RetireRefreshToken revoked")
	checkRetirement(t, getRetirement(t, s, revoked.refresh), want, "revoked token after a retirement attempt")

	byGrant := createTokens(t, s, client, "sub-bob")
	createGrant(t, s, "sub-bob", "app", byGrant.req.ID, now())
	_, err := s.RevokeGrants(ctx, "sub-bob", "app", now())
	mustOK(t, err, "RevokeGrants")
	checkRetirement(t, getRetirement(t, s, byGrant.refresh),
		&storage.Retirement{RequestID: byGrant.req.ID, ClientID: "app"}, "token of a revoked grant")

	rotated := createTokens(t, s, client, "sub-carol")
	mustOK(t, s.RotateRefreshToken(ctx, rotated.req.ID, rotated.refresh), "RotateRefreshToken")
	checkRetirement(t, getRetirement(t, s, rotated.refresh),
		&storage.Retirement{RequestID: rotated.req.ID, ClientID: "app"}, "token rotated by fosite")

	// Revoking after a retirement keeps the retirement.
	retired := createTokens(t, s, client, "sub-dave")
	at := now()
	mustOK(t, s.RetireRefreshToken(ctx, retired.refresh, at, []byte("next")), "RetireRefreshToken")
	mustOK(t, s.RevokeRefreshToken(ctx, retired.req.ID), "RevokeRefreshToken after retirement")
	checkRetirement(t, getRetirement(t, s, retired.refresh),
		&storage.Retirement{RequestID: retired.req.ID, ClientID: "app", RetiredAt: &at, Successor: []byte("next")}, "retired, then revoked")
}

// testRetireRollsBack: RetireRefreshToken joins the caller's transaction.
func testRetireRollsBack(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	ts := createTokens(t, s, client, "sub-alice")

	txCtx, err := s.BeginTX(ctx)
	mustOK(t, err, "BeginTX")
	mustOK(t, s.RetireRefreshToken(txCtx, ts.refresh, now(), []byte("next")), "RetireRefreshToken in tx")
	r, err := s.GetRefreshTokenRetirement(txCtx, ts.refresh)
	mustOK(t, err, "GetRefreshTokenRetirement in tx")
	if r.Active || string(r.Successor) != "next" {
		t.Errorf("in tx: got %+v, want retired", r)
	}
	// A failed retirement in the same transaction leaves it usable.
	mustErr(t, s.RetireRefreshToken(txCtx, ts.refresh, now(), nil), fosite.ErrInactiveToken, "RetireRefreshToken twice in tx")
	mustOK(t, s.CreateUser(txCtx, newUser("sub-alice", "alice")), "CreateUser after a failed retirement")
	mustOK(t, s.Rollback(txCtx), "Rollback")

	checkRetirement(t, getRetirement(t, s, ts.refresh),
		&storage.Retirement{RequestID: ts.req.ID, ClientID: "app", Active: true}, "after rollback")
	checkTokens(t, s, ts, nil)
}

// testRetireRefreshTokenOnce is a client sending one refresh token several
// times at once (a retry after a lost response): exactly one request retires
// it, every other gets fosite.ErrInactiveToken and, still in its own
// transaction, reads the winner's successor to answer with.
func testRetireRefreshTokenOnce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	for round := range rounds {
		req := newRequest(t, client, "sub-alice")
		access, refresh := randomID(), randomID()
		mustOK(t, s.CreateAccessTokenSession(ctx, access, req), "CreateAccessTokenSession")
		mustOK(t, s.CreateRefreshTokenSession(ctx, refresh, access, req), "CreateRefreshTokenSession")

		successors := make([][]byte, retirers)
		for i := range successors {
			successors[i] = []byte(fmt.Sprintf("sealed-%d-%s", i, randomID()))
		}
		seen := make([][]byte, retirers)
		issued := make([]string, retirers)
		errs := race(retirers, func(i int) error {
			return withTx(ctx, s, func(ctx context.Context) error {
				err := s.RetireRefreshToken(ctx, refresh, time.Now(), successors[i])
				if errors.Is(err, fosite.ErrInactiveToken) {
					r, rerr := s.GetRefreshTokenRetirement(ctx, refresh)
					if rerr != nil {
						return fmt.Errorf("GetRefreshTokenRetirement after a lost race: %w", rerr)
					}
					seen[i] = r.Successor
					return err
				}
				if err != nil {
					return err
				}
				issued[i] = randomID()
				if err := s.CreateAccessTokenSession(ctx, issued[i], req); err != nil {
					return err
				}
				return s.CreateRefreshTokenSession(ctx, randomID(), issued[i], req)
			})
		})
		winner := oneWinner(t, errs, fosite.ErrInactiveToken)
		// The losers changed nothing: the winner's new access token is there.
		if _, err := s.GetAccessTokenSession(ctx, issued[winner], nil); err != nil {
			t.Errorf("round %d: winner's access token: %v", round, err)
		}
		for i := range seen {
			if i != winner && !bytes.Equal(seen[i], successors[winner]) {
				t.Errorf("round %d: loser %d read successor %q, want the winner's %q", round, i, seen[i], successors[winner])
			}
		}
		r := getRetirement(t, s, refresh)
		if r.Active || r.RetiredAt == nil || !bytes.Equal(r.Successor, successors[winner]) {
			t.Errorf("round %d: after the race: got %+v, want retired with the winner's successor", round, r)
		}
		_, err := s.GetAccessTokenSession(ctx, access, nil)
		mustErr(t, err, fosite.ErrNotFound, "access token of the retired refresh token")
	}
}

// testRevokeGrantDuringRetire is a user revoking one grant while its client
// refreshes with RetireRefreshToken: whichever comes first, no token issued
// under the grant may stay usable.
func testRevokeGrantDuringRetire(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	for round := range rounds {
		req := newRequest(t, client, "sub-alice")
		access, refresh := randomID(), randomID()
		mustOK(t, s.CreateAccessTokenSession(ctx, access, req), "CreateAccessTokenSession")
		mustOK(t, s.CreateRefreshTokenSession(ctx, refresh, access, req), "CreateRefreshTokenSession")
		createGrant(t, s, "sub-alice", "app", req.ID, now())

		issued := make([][2]string, racers)
		errs := race(racers, func(i int) error {
			if i == 0 {
				return s.RevokeGrantByRequestID(ctx, req.ID, time.Now())
			}
			return withTx(ctx, s, func(ctx context.Context) error {
				if err := s.RetireRefreshToken(ctx, refresh, time.Now(), []byte("sealed")); err != nil {
					return err
				}
				issued[i] = [2]string{randomID(), randomID()}
				if err := s.CreateAccessTokenSession(ctx, issued[i][0], req); err != nil {
					return err
				}
				return s.CreateRefreshTokenSession(ctx, issued[i][1], issued[i][0], req)
			})
		})
		if errs[0] != nil {
			t.Fatalf("round %d: RevokeGrantByRequestID: %v", round, errs[0])
		}
		for i, err := range errs[1:] {
			if err != nil && !errors.Is(err, fosite.ErrInactiveToken) {
				t.Errorf("round %d: refresh %d: got %v, want success or an inactive token", round, i+1, err)
			}
		}
		issued[0] = [2]string{access, refresh}
		for i, tokens := range issued {
			if tokens[0] == "" {
				continue
			}
			if _, err := s.GetAccessTokenSession(ctx, tokens[0], nil); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("round %d: access token of racer %d: got %v, want not found", round, i, err)
			}
			_, err := s.GetRefreshTokenSession(ctx, tokens[1], nil)
			if !errors.Is(err, fosite.ErrInactiveToken) && !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("round %d: refresh token of racer %d: got %v, want inactive", round, i, err)
			}
		}
	}
}

func testRefreshFamilyActive(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	family := func(requestID string) bool {
		t.Helper()
		alive, err := s.RefreshFamilyActive(ctx, requestID)
		mustOK(t, err, "RefreshFamilyActive")
		return alive
	}
	ts := createTokens(t, s, client, "sub-alice")
	other := createTokens(t, s, client, "sub-alice")
	if !family(ts.req.ID) {
		t.Fatal("a family with an active refresh token is not active")
	}
	// A rotation leaves the successor active.
	mustOK(t, s.RetireRefreshToken(ctx, ts.refresh, now(), []byte("sealed")), "RetireRefreshToken")
	if family(ts.req.ID) {
		t.Fatal("a family whose only token was retired is still active")
	}
	next := randomID()
	mustOK(t, s.CreateRefreshTokenSession(ctx, next, "", ts.req), "CreateRefreshTokenSession")
	if !family(ts.req.ID) {
		t.Fatal("a rotated family is not active")
	}
	// A revocation ends it, and only it.
	mustOK(t, s.RevokeRefreshToken(ctx, ts.req.ID), "RevokeRefreshToken")
	if family(ts.req.ID) {
		t.Error("a revoked family is still active")
	}
	if !family(other.req.ID) {
		t.Error("revoking one family ended another")
	}
	if family("unknown") {
		t.Error("an unknown request id is an active family")
	}
}
