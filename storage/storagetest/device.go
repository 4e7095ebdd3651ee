package storagetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/consentry/consentry/storage"
)

func newDeviceAuthorization(clientID, userCode string, created time.Time) *storage.DeviceAuthorization {
	return &storage.DeviceAuthorization{
		ID:              randomID(),
		UserCode:        userCode,
		ClientID:        clientID,
		RequestedScopes: []string{"openid", "profile", "offline_access"},
		RequestID:       randomID(),
		Status:          storage.DevicePending,
		Interval:        5*time.Second + 250*time.Millisecond, // not whole seconds: must come back exactly
		CreatedAt:       created,
		ExpiresAt:       created.Add(10 * time.Minute),
	}
}

func createDeviceAuthorization(t *testing.T, s storage.Store, d *storage.DeviceAuthorization) *storage.DeviceAuthorization {
	t.Helper()
	mustOK(t, s.CreateDeviceAuthorization(t.Context(), d), "CreateDeviceAuthorization")
	return d
}

func checkDeviceAuthorization(t *testing.T, got, want *storage.DeviceAuthorization) {
	t.Helper()
	sameTime(t, got.CreatedAt, want.CreatedAt, "device CreatedAt")
	sameTime(t, got.ExpiresAt, want.ExpiresAt, "device ExpiresAt")
	sameTime(t, got.AuthTime, want.AuthTime, "device AuthTime")
	sameOptTime(t, got.LastPolledAt, want.LastPolledAt, "device LastPolledAt")
	sameStrings(t, got.RequestedScopes, want.RequestedScopes, "device requested scopes")
	sameStrings(t, got.GrantedScopes, want.GrantedScopes, "device granted scopes")
	g, w := *got, *want
	g.CreatedAt, g.ExpiresAt, g.AuthTime, g.LastPolledAt = time.Time{}, time.Time{}, time.Time{}, nil
	w.CreatedAt, w.ExpiresAt, w.AuthTime, w.LastPolledAt = time.Time{}, time.Time{}, time.Time{}, nil
	g.RequestedScopes, g.GrantedScopes, w.RequestedScopes, w.GrantedScopes = nil, nil, nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("device authorization:\n got %+v\nwant %+v", g, w)
	}
}

func testDeviceAuthorizations(t *testing.T, s storage.Store) {
	ctx := t.Context()
	createClient(t, s, "tv")
	at := now()
	d := createDeviceAuthorization(t, s, newDeviceAuthorization("tv", "WDJBMJHT", at))

	got, err := s.GetDeviceAuthorization(ctx, d.ID)
	mustOK(t, err, "GetDeviceAuthorization")
	checkDeviceAuthorization(t, got, d)
	got, err = s.GetDeviceAuthorizationByUserCode(ctx, "WDJBMJHT")
	mustOK(t, err, "GetDeviceAuthorizationByUserCode")
	checkDeviceAuthorization(t, got, d)

	_, err = s.GetDeviceAuthorization(ctx, "missing")
	mustErr(t, err, storage.ErrNotFound, "GetDeviceAuthorization unknown")
	_, err = s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
	mustErr(t, err, storage.ErrNotFound, "GetDeviceAuthorizationByUserCode unknown")

	// Both the id and the user code are unique: the provider draws another
	// user code on a collision.
	sameCode := newDeviceAuthorization("tv", "WDJBMJHT", at)
	mustErr(t, s.CreateDeviceAuthorization(ctx, sameCode), storage.ErrAlreadyExists, "CreateDeviceAuthorization same user code")
	sameID := newDeviceAuthorization("tv", "BCDFGHJK", at)
	sameID.ID = d.ID
	mustErr(t, s.CreateDeviceAuthorization(ctx, sameID), storage.ErrAlreadyExists, "CreateDeviceAuthorization same id")

	// Defaults; an expired one is still returned (the caller judges expiry).
	old := newDeviceAuthorization("tv", "LMNPQRST", time.Time{})
	old.Status, old.Interval, old.ExpiresAt = "", 0, at.Add(-time.Minute)
	mustOK(t, s.CreateDeviceAuthorization(ctx, old), "CreateDeviceAuthorization with defaults")
	got, err = s.GetDeviceAuthorizationByUserCode(ctx, "LMNPQRST")
	mustOK(t, err, "GetDeviceAuthorizationByUserCode expired")
	if got.Status != storage.DevicePending || got.CreatedAt.IsZero() || got.Interval != 0 {
		t.Errorf("defaults: got status %q, created %v, interval %v", got.Status, got.CreatedAt, got.Interval)
	}

	for _, bad := range []func(d *storage.DeviceAuthorization){
		func(d *storage.DeviceAuthorization) { d.ID = "" },
		func(d *storage.DeviceAuthorization) { d.UserCode = "" },
		func(d *storage.DeviceAuthorization) { d.ClientID = "" },
		func(d *storage.DeviceAuthorization) { d.RequestID = "" },
		func(d *storage.DeviceAuthorization) { d.ExpiresAt = time.Time{} },
		func(d *storage.DeviceAuthorization) { d.Status = "lost" },
	} {
		d := newDeviceAuthorization("tv", "XZXZXZXZ", at)
		bad(d)
		if err := s.CreateDeviceAuthorization(ctx, d); err == nil {
			t.Errorf("CreateDeviceAuthorization accepted %+v", d)
		}
	}
}

func testUpdateDeviceAuthorization(t *testing.T, s storage.Store) {
	ctx := t.Context()
	createClient(t, s, "tv")
	at := now()
	d := createDeviceAuthorization(t, s, newDeviceAuthorization("tv", "WDJBMJHT", at))

	polled := at.Add(7 * time.Second)
	mustOK(t, s.UpdateDeviceAuthorization(ctx, d.ID, func(cur *storage.DeviceAuthorization) error {
		checkDeviceAuthorization(t, cur, d)
		cur.Interval += 5 * time.Second
		cur.LastPolledAt = &polled
		cur.Status = storage.DeviceApproved
		cur.Subject = "sub-alice"
		cur.GrantedScopes = []string{"openid", "profile"}
		cur.AuthTime = at.Add(-time.Hour)
		// Ignored: these cannot change.
		cur.ID, cur.UserCode, cur.ClientID, cur.RequestID, cur.CreatedAt = "other", "BCDFGHJK", "other", "other", at.Add(time.Hour)
		return nil
	}), "UpdateDeviceAuthorization")
	want := *d
	want.Interval += 5 * time.Second
	want.LastPolledAt = &polled
	want.Status, want.Subject, want.GrantedScopes, want.AuthTime = storage.DeviceApproved, "sub-alice", []string{"openid", "profile"}, at.Add(-time.Hour)
	got, err := s.GetDeviceAuthorization(ctx, d.ID)
	mustOK(t, err, "GetDeviceAuthorization after update")
	checkDeviceAuthorization(t, got, &want)
	_, err = s.GetDeviceAuthorizationByUserCode(ctx, "WDJBMJHT")
	mustOK(t, err, "the user code did not change")

	// fn's error aborts the update and comes back.
	errStop := errors.New("stop")
	err = s.UpdateDeviceAuthorization(ctx, d.ID, func(cur *storage.DeviceAuthorization) error {
		cur.Status = storage.DeviceRedeemed
		return errStop
	})
	mustErr(t, err, errStop, "UpdateDeviceAuthorization with a failing fn")
	got, err = s.GetDeviceAuthorization(ctx, d.ID)
	mustOK(t, err, "GetDeviceAuthorization after an aborted update")
	if got.Status != storage.DeviceApproved {
		t.Errorf("aborted update changed the status to %q", got.Status)
	}
	if err := s.UpdateDeviceAuthorization(ctx, d.ID, func(cur *storage.DeviceAuthorization) error {
		cur.Status = "lost"
		return nil
	}); err == nil {
		t.Error("UpdateDeviceAuthorization stored an unknown status")
	}

	called := false
	err = s.UpdateDeviceAuthorization(ctx, "missing", func(*storage.DeviceAuthorization) error { called = true; return nil })
	mustErr(t, err, storage.ErrNotFound, "UpdateDeviceAuthorization unknown")
	if called {
		t.Error("fn called for an unknown device authorization")
	}

	// Inside a transaction that rolls back, nothing is kept.
	err = withTx(ctx, s, func(ctx context.Context) error {
		if err := s.UpdateDeviceAuthorization(ctx, d.ID, func(cur *storage.DeviceAuthorization) error {
			cur.Status = storage.DeviceRedeemed
			return nil
		}); err != nil {
			return err
		}
		return errStop
	})
	mustErr(t, err, errStop, "transaction")
	got, err = s.GetDeviceAuthorization(ctx, d.ID)
	mustOK(t, err, "GetDeviceAuthorization after rollback")
	if got.Status != storage.DeviceApproved {
		t.Errorf("rolled-back update kept status %q", got.Status)
	}
}

func testCountAttempt(t *testing.T, s storage.Store) {
	ctx := t.Context()
	const window = 10 * time.Minute
	start := now().Truncate(window)
	for i := 1; i <= 3; i++ {
		n, err := s.CountAttempt(ctx, "ip:192.0.2.1", window, start.Add(time.Duration(i)*time.Minute))
		mustOK(t, err, "CountAttempt")
		if n != i {
			t.Errorf("attempt %d in the window: count %d", i, n)
		}
	}
	n, err := s.CountAttempt(ctx, "ip:192.0.2.2", window, start)
	mustOK(t, err, "CountAttempt other key")
	if n != 1 {
		t.Errorf("another key: count %d, want 1", n)
	}
	// The next window starts afresh; the previous one is not touched.
	n, err = s.CountAttempt(ctx, "ip:192.0.2.1", window, start.Add(window))
	mustOK(t, err, "CountAttempt next window")
	if n != 1 {
		t.Errorf("next window: count %d, want 1", n)
	}
	n, err = s.CountAttempt(ctx, "ip:192.0.2.1", window, start.Add(window-time.Nanosecond))
	mustOK(t, err, "CountAttempt end of the first window")
	if n != 4 {
		t.Errorf("end of the first window: count %d, want 4", n)
	}

	// Rolled back with the caller's transaction, so a caller can read a
	// count without recording an attempt.
	errStop := errors.New("stop")
	err = withTx(ctx, s, func(ctx context.Context) error {
		if n, err := s.CountAttempt(ctx, "ip:192.0.2.1", window, start); err != nil || n != 5 {
			return fmt.Errorf("in the transaction: %d, %v; want 5", n, err)
		}
		return errStop
	})
	mustErr(t, err, errStop, "transaction")
	n, err = s.CountAttempt(ctx, "ip:192.0.2.1", window, start)
	mustOK(t, err, "CountAttempt after rollback")
	if n != 5 {
		t.Errorf("after a rolled-back attempt: count %d, want 5", n)
	}

	for _, bad := range []struct {
		key    string
		window time.Duration
	}{{"", window}, {"k", 0}, {"k", -time.Second}} {
		if _, err := s.CountAttempt(ctx, bad.key, bad.window, start); err == nil {
			t.Errorf("CountAttempt(%q, %v) succeeded", bad.key, bad.window)
		}
	}
}

func testCollectDeviceGarbage(t *testing.T, s storage.Store) {
	ctx := t.Context()
	createClient(t, s, "tv")
	at := now()
	expired := newDeviceAuthorization("tv", "BCDFGHJK", at.Add(-time.Hour))
	expired.ExpiresAt = at.Add(-time.Second)
	live := newDeviceAuthorization("tv", "LMNPQRST", at)
	createDeviceAuthorization(t, s, expired)
	createDeviceAuthorization(t, s, live)

	const window = time.Minute
	for _, ts := range []time.Time{at.Add(-2 * window), at.Add(-2 * window), at.Add(-3 * window), at} {
		_, err := s.CountAttempt(ctx, "ip:192.0.2.1", window, ts)
		mustOK(t, err, "CountAttempt")
	}

	// One device authorization, two ended windows; with batch 1 the
	// windows take two calls.
	collect(t, s, at, at.Add(-time.Hour), 1, 2, "first batch")
	collect(t, s, at, at.Add(-time.Hour), 1, 1, "second batch")
	collect(t, s, at, at.Add(-time.Hour), 1, 0, "nothing left")

	_, err := s.GetDeviceAuthorization(ctx, expired.ID)
	mustErr(t, err, storage.ErrNotFound, "expired device authorization")
	_, err = s.GetDeviceAuthorization(ctx, live.ID)
	mustOK(t, err, "live device authorization")
	n, err := s.CountAttempt(ctx, "ip:192.0.2.1", window, at)
	mustOK(t, err, "CountAttempt current window")
	if n != 2 {
		t.Errorf("the current window was touched: count %d, want 2", n)
	}
	n, err = s.CountAttempt(ctx, "ip:192.0.2.1", window, at.Add(-2*window))
	mustOK(t, err, "CountAttempt collected window")
	if n != 1 {
		t.Errorf("a collected window counted on: count %d, want 1", n)
	}
}

func testDeleteDeviceAuthorizations(t *testing.T, s storage.Store) {
	ctx := t.Context()
	createClient(t, s, "tv")
	createClient(t, s, "car")
	mustOK(t, s.CreateUser(ctx, newUser("sub-alice", "alice")), "CreateUser")
	at := now()
	tv := createDeviceAuthorization(t, s, newDeviceAuthorization("tv", "BCDFGHJK", at))
	car := createDeviceAuthorization(t, s, newDeviceAuthorization("car", "LMNPQRST", at))
	approved := createDeviceAuthorization(t, s, newDeviceAuthorization("car", "VWXZBCDF", at))
	mustOK(t, s.UpdateDeviceAuthorization(ctx, approved.ID, func(d *storage.DeviceAuthorization) error {
		d.Status, d.Subject, d.GrantedScopes, d.AuthTime = storage.DeviceApproved, "sub-alice", []string{"openid"}, at
		return nil
	}), "approve")

	mustOK(t, s.DeleteClient(ctx, "tv"), "DeleteClient")
	_, err := s.GetDeviceAuthorization(ctx, tv.ID)
	mustErr(t, err, storage.ErrNotFound, "device authorization of a deleted client")

	mustOK(t, s.DeleteUser(ctx, "sub-alice"), "DeleteUser")
	_, err = s.GetDeviceAuthorization(ctx, approved.ID)
	mustErr(t, err, storage.ErrNotFound, "device authorization approved by a deleted user")
	_, err = s.GetDeviceAuthorization(ctx, car.ID)
	mustOK(t, err, "another client's pending device authorization")
}

// errAlreadyRedeemed is what a losing redemption returns from its fn.
var errAlreadyRedeemed = errors.New("already redeemed")

// testRedeemDeviceCodeOnce is the token endpoint run by several polls of one
// approved device code at once, each redeeming it in a transaction that also
// stores a token: exactly one may succeed.
func testRedeemDeviceCodeOnce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	client := createClient(t, s, "tv")
	for round := range rounds {
		d := newDeviceAuthorization("tv", fmt.Sprintf("BCDFGHJ%c", "KLM"[round]), now())
		d.Status, d.Subject, d.GrantedScopes, d.AuthTime = storage.DeviceApproved, "sub-alice", []string{"openid"}, now()
		createDeviceAuthorization(t, s, d)
		req := newRequest(t, client, "sub-alice")
		req.ID = d.RequestID
		access := make([]string, racers)
		for i := range access {
			access[i] = randomID()
		}
		errs := race(racers, func(i int) error {
			return withTx(ctx, s, func(ctx context.Context) error {
				if err := s.UpdateDeviceAuthorization(ctx, d.ID, func(cur *storage.DeviceAuthorization) error {
					if cur.Status != storage.DeviceApproved {
						return errAlreadyRedeemed
					}
					cur.Status = storage.DeviceRedeemed
					return nil
				}); err != nil {
					return err
				}
				return s.CreateAccessTokenSession(ctx, access[i], req)
			})
		})
		winner := oneWinner(t, errs, errAlreadyRedeemed)
		for i, sig := range access {
			_, err := s.GetAccessTokenSession(ctx, sig, nil)
			if i == winner && err != nil {
				t.Errorf("round %d: winner's access token: %v", round, err)
			} else if i != winner && err == nil {
				t.Errorf("round %d: loser %d's access token was stored", round, i)
			}
		}
		got, err := s.GetDeviceAuthorization(ctx, d.ID)
		mustOK(t, err, "GetDeviceAuthorization")
		if got.Status != storage.DeviceRedeemed {
			t.Errorf("round %d: status %q, want redeemed", round, got.Status)
		}
	}
}

// testCountAttemptConcurrently: attempts from many instances at once are
// each counted once.
func testCountAttemptConcurrently(t *testing.T, s storage.Store) {
	ctx := t.Context()
	const n = 16
	at := now()
	counts := make([]int, n)
	errs := race(n, func(i int) error {
		var err error
		counts[i], err = s.CountAttempt(ctx, "ip:192.0.2.1", 10*time.Minute, at)
		return err
	})
	for i, err := range errs {
		mustOK(t, err, fmt.Sprintf("CountAttempt %d", i))
	}
	slices.Sort(counts)
	for i, c := range counts {
		if c != i+1 {
			t.Fatalf("counts returned: %v, want 1 to %d once each", counts, n)
		}
	}
	last, err := s.CountAttempt(ctx, "ip:192.0.2.1", 10*time.Minute, at)
	mustOK(t, err, "CountAttempt after the race")
	if last != n+1 {
		t.Errorf("count after the race: %d, want %d", last, n+1)
	}
}
