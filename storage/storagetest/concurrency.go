package storagetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentry/consentry/storage"
)

// racers is how many goroutines compete in each race; rounds how often each
// race is run.
const (
	racers = 4
	rounds = 3
)

// RunConcurrencyTests runs the tests of concurrent use: races that fosite's
// flows and a multi-instance deployment depend on. RunTests includes them;
// they are exported on their own to be run repeatedly (go test -count).
func RunConcurrencyTests(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Helper()
	runAll(t, newStore, []subtest{
		{"RedeemCodeOnce", testRedeemCodeOnce},
		{"RotateRefreshTokenOnce", testRotateRefreshTokenOnce},
		{"UpdateUserAtomic", testUpdateUserAtomic},
		{"CreateSecretOnce", testCreateSecretOnce},
		{"EncryptAtRestOnce", testEncryptAtRestOnce},
		{"RevokeGrantsDuringRefresh", testRevokeGrantsDuringRefresh},
		{"RetireRefreshTokenOnce", testRetireRefreshTokenOnce},
		{"RevokeGrantDuringRetire", testRevokeGrantDuringRetire},
		{"OptOutOnce", testOptOutOnce},
		{"AppendAuditEventConcurrently", testAppendAuditEventConcurrently},
		{"RedeemDeviceCodeOnce", testRedeemDeviceCodeOnce},
		{"CountAttemptConcurrently", testCountAttemptConcurrently},
		{"UpdateLoginThrottlesConcurrently", testUpdateLoginThrottlesConcurrently},
	})
}

// race runs fn in n goroutines started together and returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one error is nil and every other matches
// loser; it returns the winner's index.
func oneWinner(t *testing.T, errs []error, loser error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("racers %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, loser):
			t.Errorf("racer %d: got %v, want an error matching %v", i, err, loser)
		}
	}
	if winner < 0 {
		t.Fatalf("no racer succeeded: %v", errs)
	}
	return winner
}

// testRedeemCodeOnce is fosite's code exchange run by several token requests
// with the same code at once: exactly one may get tokens.
func testRedeemCodeOnce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	for round := range rounds {
		req := newRequest(t, client, "sub-alice")
		code := randomID()
		mustOK(t, s.CreateAuthorizeCodeSession(ctx, code, req), "CreateAuthorizeCodeSession")
		access := make([]string, racers)
		for i := range access {
			access[i] = randomID()
		}
		errs := race(racers, func(i int) error {
			return withTx(ctx, s, func(ctx context.Context) error {
				if err := s.InvalidateAuthorizeCodeSession(ctx, code); err != nil {
					return err
				}
				return s.CreateAccessTokenSession(ctx, access[i], req)
			})
		})
		winner := oneWinner(t, errs, fosite.ErrInvalidatedAuthorizeCode)
		for i, sig := range access {
			_, err := s.GetAccessTokenSession(ctx, sig, nil)
			if i == winner && err != nil {
				t.Errorf("round %d: winner's access token: %v", round, err)
			} else if i != winner && !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("round %d: loser %d's access token: got %v, want not found", round, i, err)
			}
		}
	}
}

// testRotateRefreshTokenOnce is fosite's refresh grant run by several
// requests with the same refresh token at once: exactly one may rotate it.
func testRotateRefreshTokenOnce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	for range rounds {
		req := newRequest(t, client, "sub-alice")
		access, refresh := randomID(), randomID()
		mustOK(t, s.CreateAccessTokenSession(ctx, access, req), "CreateAccessTokenSession")
		mustOK(t, s.CreateRefreshTokenSession(ctx, refresh, access, req), "CreateRefreshTokenSession")
		errs := race(racers, func(int) error {
			return withTx(ctx, s, func(ctx context.Context) error {
				if err := s.RotateRefreshToken(ctx, req.ID, refresh); err != nil {
					return err
				}
				newAccess := randomID()
				if err := s.CreateAccessTokenSession(ctx, newAccess, req); err != nil {
					return err
				}
				return s.CreateRefreshTokenSession(ctx, randomID(), newAccess, req)
			})
		})
		oneWinner(t, errs, fosite.ErrInactiveToken)
		_, err := s.GetRefreshTokenSession(ctx, refresh, openid.NewDefaultSession())
		mustErr(t, err, fosite.ErrInactiveToken, "GetRefreshTokenSession after rotation")
	}
}

// testUpdateUserAtomic: concurrent read-modify-write updates lose nothing.
func testUpdateUserAtomic(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustOK(t, s.CreateUser(ctx, newUser("sub-alice", "alice")), "CreateUser")
	const n = 8
	errs := race(n, func(i int) error {
		return s.UpdateUser(ctx, "sub-alice", func(u *storage.User) error {
			u.Name += fmt.Sprintf("[%d]", i)
			return nil
		})
	})
	for i, err := range errs {
		mustOK(t, err, fmt.Sprintf("UpdateUser %d", i))
	}
	u, err := s.GetUser(ctx, "sub-alice")
	mustOK(t, err, "GetUser")
	for i := range n {
		if !strings.Contains(u.Name, fmt.Sprintf("[%d]", i)) {
			t.Errorf("update %d lost: name is %q", i, u.Name)
		}
	}
}

// testCreateSecretOnce: instances starting together agree on one secret.
func testCreateSecretOnce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	errs := race(racers, func(i int) error {
		return s.CreateSecret(ctx, &storage.Secret{Name: "hmac", Value: []byte(fmt.Sprintf("value-%d", i))})
	})
	winner := oneWinner(t, errs, storage.ErrAlreadyExists)
	got, err := s.GetSecret(ctx, "hmac")
	mustOK(t, err, "GetSecret")
	if want := fmt.Sprintf("value-%d", winner); string(got.Value) != want {
		t.Errorf("secret: got %q, want the winner's %q", got.Value, want)
	}
}

// testRevokeGrantsDuringRefresh is a user revoking a grant while its client
// refreshes: whichever comes first, no token issued under the grant may stay
// usable.
func testRevokeGrantsDuringRefresh(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "app")
	for round := range rounds {
		req := newRequest(t, client, "sub-alice")
		access, refresh := randomID(), randomID()
		mustOK(t, s.CreateAccessTokenSession(ctx, access, req), "CreateAccessTokenSession")
		mustOK(t, s.CreateRefreshTokenSession(ctx, refresh, access, req), "CreateRefreshTokenSession")
		createGrant(t, s, "sub-alice", "app", req.ID, now())

		// Racer 0 revokes; the others refresh, recording what they issue.
		issued := make([][2]string, racers)
		errs := race(racers, func(i int) error {
			if i == 0 {
				n, err := s.RevokeGrants(ctx, "sub-alice", "app", time.Now())
				if err == nil && n != 1 {
					return fmt.Errorf("revoked %d grants, want 1", n)
				}
				return err
			}
			return withTx(ctx, s, func(ctx context.Context) error {
				if err := s.RotateRefreshToken(ctx, req.ID, refresh); err != nil {
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
			t.Fatalf("round %d: RevokeGrants: %v", round, errs[0])
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
			// Inactive when it was committed, not found when rolled back.
			_, err := s.GetRefreshTokenSession(ctx, tokens[1], nil)
			if !errors.Is(err, fosite.ErrInactiveToken) && !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("round %d: refresh token of racer %d: got %v, want inactive", round, i, err)
			}
		}
	}
}
