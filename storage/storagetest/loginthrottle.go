package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/consentry/consentry/storage"
)

// countFailure is the update a failed sign-in makes: one more failure.
func countFailure(at time.Time) func(*storage.LoginThrottle) error {
	return func(l *storage.LoginThrottle) error {
		if l.Failures == 0 {
			l.WindowStart = at
		}
		l.Failures++
		l.ExpiresAt = at.Add(time.Hour)
		return nil
	}
}

func testLoginThrottles(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	got, err := s.GetLoginThrottles(ctx, "account:alice", "address:192.0.2.1")
	mustOK(t, err, "GetLoginThrottles before any failure")
	if len(got) != 0 {
		t.Fatalf("state before any failure: %+v", got)
	}

	// A key seen the first time starts from nothing; both keys in one call.
	var seen []storage.LoginThrottle
	err = s.UpdateLoginThrottles(ctx, []string{"address:192.0.2.1", "account:alice"}, func(l *storage.LoginThrottle) error {
		seen = append(seen, *l)
		return countFailure(at)(l)
	})
	mustOK(t, err, "UpdateLoginThrottles")
	if len(seen) != 2 || seen[0].Key != "account:alice" || seen[1].Key != "address:192.0.2.1" || seen[0].Failures != 0 || !seen[0].ExpiresAt.IsZero() {
		t.Fatalf("fn saw %+v, want two fresh states in key order", seen)
	}
	locked := at.Add(2 * time.Minute)
	mustOK(t, s.UpdateLoginThrottles(ctx, []string{"account:alice"}, func(l *storage.LoginThrottle) error {
		if err := countFailure(at.Add(time.Second))(l); err != nil {
			return err
		}
		l.Lockouts, l.LockedUntil = 3, locked
		return nil
	}), "UpdateLoginThrottles again")

	got, err = s.GetLoginThrottles(ctx, "account:alice", "address:192.0.2.1", "account:bob")
	mustOK(t, err, "GetLoginThrottles")
	if len(got) != 2 {
		t.Fatalf("states %+v, want alice's and the address's", got)
	}
	alice, addr := got[0], got[1]
	if alice.Key != "account:alice" || alice.Failures != 2 || alice.Lockouts != 3 {
		t.Errorf("alice: %+v", alice)
	}
	sameTime(t, alice.WindowStart, at, "window start")
	sameTime(t, alice.LockedUntil, locked, "locked until")
	sameTime(t, alice.ExpiresAt, at.Add(time.Second+time.Hour), "expires at")
	if addr.Key != "address:192.0.2.1" || addr.Failures != 1 || addr.Lockouts != 0 || !addr.LockedUntil.IsZero() {
		t.Errorf("address: %+v", addr)
	}

	// fn's error undoes every key's update, the first-time placeholder too.
	errStop := errors.New("stop")
	err = s.UpdateLoginThrottles(ctx, []string{"account:alice", "account:carol"}, func(l *storage.LoginThrottle) error {
		if l.Key == "account:carol" {
			return errStop
		}
		return countFailure(at)(l)
	})
	mustErr(t, err, errStop, "UpdateLoginThrottles with a failing fn")
	got, err = s.GetLoginThrottles(ctx, "account:alice", "account:carol")
	mustOK(t, err, "GetLoginThrottles after the failed update")
	if len(got) != 1 || got[0].Failures != 2 {
		t.Errorf("after a failed update: %+v, want alice's unchanged state alone", got)
	}
	if err := s.UpdateLoginThrottles(ctx, []string{"account:alice"}, func(l *storage.LoginThrottle) error {
		l.ExpiresAt = time.Time{}
		return nil
	}); err == nil {
		t.Error("an update without ExpiresAt was stored")
	}
	if err := s.UpdateLoginThrottles(ctx, nil, countFailure(at)); err == nil {
		t.Error("an update without keys succeeded")
	}

	deleted, err := s.DeleteLoginThrottle(ctx, "account:alice")
	mustOK(t, err, "DeleteLoginThrottle")
	if !deleted {
		t.Error("DeleteLoginThrottle reported nothing deleted")
	}
	deleted, err = s.DeleteLoginThrottle(ctx, "account:alice")
	mustOK(t, err, "DeleteLoginThrottle again")
	if deleted {
		t.Error("DeleteLoginThrottle of a deleted key reported a deletion")
	}
	got, err = s.GetLoginThrottles(ctx, "account:alice", "address:192.0.2.1")
	mustOK(t, err, "GetLoginThrottles after delete")
	if len(got) != 1 || got[0].Key != "address:192.0.2.1" {
		t.Errorf("after deleting alice's: %+v, want the address's alone", got)
	}

	// Garbage collection deletes expired states only.
	mustOK(t, s.UpdateLoginThrottles(ctx, []string{"account:old"}, func(l *storage.LoginThrottle) error {
		l.Failures, l.ExpiresAt = 1, at.Add(-time.Second)
		return nil
	}), "store an expired state")
	n, err := s.CollectGarbage(ctx, at, at.Add(-time.Hour), 100)
	mustOK(t, err, "CollectGarbage")
	if n != 1 {
		t.Errorf("CollectGarbage deleted %d rows, want the expired state", n)
	}
	got, err = s.GetLoginThrottles(ctx, "account:old", "address:192.0.2.1")
	mustOK(t, err, "GetLoginThrottles after CollectGarbage")
	if len(got) != 1 || got[0].Key != "address:192.0.2.1" {
		t.Errorf("after CollectGarbage: %+v, want the live state alone", got)
	}
}

// Failures recorded at once, as several instances would, are all counted.
func testUpdateLoginThrottlesConcurrently(t *testing.T, s storage.Store) {
	ctx := t.Context()
	const n = 12
	at := now()
	keys := [][]string{{"account:alice", "address:192.0.2.1"}, {"address:192.0.2.1", "account:alice"}}
	errs := race(n, func(i int) error {
		return s.UpdateLoginThrottles(ctx, keys[i%2], countFailure(at))
	})
	for i, err := range errs {
		mustOK(t, err, fmt.Sprintf("UpdateLoginThrottles %d", i))
	}
	got, err := s.GetLoginThrottles(ctx, "account:alice", "address:192.0.2.1")
	mustOK(t, err, "GetLoginThrottles")
	if len(got) != 2 || got[0].Failures != n || got[1].Failures != n {
		t.Fatalf("after %d concurrent failures: %+v", n, got)
	}
}
