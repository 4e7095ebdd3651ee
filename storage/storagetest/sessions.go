package storagetest

import (
	"testing"
	"time"

	"github.com/consentry/consentry/storage"
)

// newBrowserSession is a session of subject created at `at`, living for
// absolute and, unseen, for idle.
func newBrowserSession(subject string, at time.Time, absolute, idle time.Duration) *storage.BrowserSession {
	return &storage.BrowserSession{
		IDHash: randomID(), ID: randomID(), Subject: subject, AuthTime: at, AMR: []string{"pwd"},
		CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(absolute), IdleExpiresAt: at.Add(idle),
		IPAddress: "192.0.2.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
	}
}

func createBrowserSession(t *testing.T, s storage.Store, sess *storage.BrowserSession) *storage.BrowserSession {
	t.Helper()
	mustOK(t, s.CreateSession(t.Context(), sess), "CreateSession")
	return sess
}

func sessionIDs(t *testing.T, s storage.Store, subject string, at time.Time) []string {
	t.Helper()
	list, err := s.ListSessions(t.Context(), subject, at)
	mustOK(t, err, "ListSessions")
	var ids []string
	for _, sess := range list {
		ids = append(ids, sess.ID)
	}
	return ids
}

func testBrowserSessions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	a := createBrowserSession(t, s, newBrowserSession("sub-alice", at.Add(-time.Hour), 24*time.Hour, 8*time.Hour))

	got, err := s.GetSession(ctx, a.IDHash)
	mustOK(t, err, "GetSession")
	if got.ID != a.ID || got.Subject != a.Subject || got.IPAddress != a.IPAddress || got.UserAgent != a.UserAgent {
		t.Errorf("GetSession = %+v, want %+v", got, a)
	}
	sameStrings(t, got.AMR, []string{"pwd"}, "AMR")
	sameTime(t, got.AuthTime, a.AuthTime, "AuthTime")
	sameTime(t, got.CreatedAt, a.CreatedAt, "CreatedAt")
	sameTime(t, got.LastSeenAt, a.LastSeenAt, "LastSeenAt")
	sameTime(t, got.ExpiresAt, a.ExpiresAt, "ExpiresAt")
	sameTime(t, got.IdleExpiresAt, a.IdleExpiresAt, "IdleExpiresAt")
	_, err = s.GetSession(ctx, a.ID)
	mustErr(t, err, storage.ErrNotFound, "GetSession by the public id")

	dupHash := newBrowserSession("sub-alice", at, time.Hour, time.Hour)
	dupHash.IDHash = a.IDHash
	mustErr(t, s.CreateSession(ctx, dupHash), storage.ErrAlreadyExists, "CreateSession with a taken id hash")
	dupID := newBrowserSession("sub-alice", at, time.Hour, time.Hour)
	dupID.ID = a.ID
	mustErr(t, s.CreateSession(ctx, dupID), storage.ErrAlreadyExists, "CreateSession with a taken id")

	// A touch moves the idle expiry; an older one changes nothing.
	mustOK(t, s.TouchSession(ctx, a.IDHash, at, at.Add(8*time.Hour)), "TouchSession")
	mustOK(t, s.TouchSession(ctx, a.IDHash, at.Add(-time.Minute), at.Add(time.Minute)), "TouchSession older")
	mustOK(t, s.TouchSession(ctx, randomID(), at, at), "TouchSession of an unknown session")
	got, err = s.GetSession(ctx, a.IDHash)
	mustOK(t, err, "GetSession after touch")
	sameTime(t, got.LastSeenAt, at, "LastSeenAt after touch")
	sameTime(t, got.IdleExpiresAt, at.Add(8*time.Hour), "IdleExpiresAt after touch")

	// The listing: alive only, the subject's only, last seen first.
	b := createBrowserSession(t, s, newBrowserSession("sub-alice", at.Add(-2*time.Hour), 24*time.Hour, 8*time.Hour))
	createBrowserSession(t, s, newBrowserSession("sub-alice", at.Add(-25*time.Hour), 24*time.Hour, 48*time.Hour)) // past absolute
	createBrowserSession(t, s, newBrowserSession("sub-alice", at.Add(-9*time.Hour), 24*time.Hour, 8*time.Hour))   // idle too long
	bob := createBrowserSession(t, s, newBrowserSession("sub-bob", at, time.Hour, time.Hour))
	sameStrings(t, sessionIDs(t, s, "sub-alice", at), []string{a.ID, b.ID}, "alice's live sessions")
	sameStrings(t, sessionIDs(t, s, "sub-bob", at), []string{bob.ID}, "bob's sessions")

	// No one ends another user's session by its id.
	mustErr(t, s.DeleteSubjectSession(ctx, "sub-alice", bob.ID), storage.ErrNotFound, "DeleteSubjectSession of another subject")
	mustOK(t, s.DeleteSubjectSession(ctx, "sub-alice", b.ID), "DeleteSubjectSession")
	mustErr(t, s.DeleteSubjectSession(ctx, "sub-alice", b.ID), storage.ErrNotFound, "DeleteSubjectSession twice")
	_, err = s.GetSession(ctx, b.IDHash)
	mustErr(t, err, storage.ErrNotFound, "GetSession of a deleted session")

	mustOK(t, s.DeleteSession(ctx, bob.IDHash), "DeleteSession")
	mustErr(t, s.DeleteSession(ctx, bob.IDHash), storage.ErrNotFound, "DeleteSession twice")
}

func testDeleteSubjectSessions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	keep := createBrowserSession(t, s, newBrowserSession("sub-alice", at, time.Hour, time.Hour))
	createBrowserSession(t, s, newBrowserSession("sub-alice", at, time.Hour, time.Hour))
	createBrowserSession(t, s, newBrowserSession("sub-alice", at.Add(-2*time.Hour), time.Hour, time.Hour)) // expired, still a row
	bob := createBrowserSession(t, s, newBrowserSession("sub-bob", at, time.Hour, time.Hour))

	n, err := s.DeleteSubjectSessions(ctx, "sub-alice", keep.IDHash)
	mustOK(t, err, "DeleteSubjectSessions except one")
	if n != 2 {
		t.Errorf("DeleteSubjectSessions except one deleted %d, want 2", n)
	}
	sameStrings(t, sessionIDs(t, s, "sub-alice", at), []string{keep.ID}, "alice's sessions after sign-out elsewhere")
	n, err = s.DeleteSubjectSessions(ctx, "sub-alice", "")
	mustOK(t, err, "DeleteSubjectSessions")
	if n != 1 {
		t.Errorf("DeleteSubjectSessions deleted %d, want 1", n)
	}
	sameStrings(t, sessionIDs(t, s, "sub-alice", at), nil, "alice's sessions after sign-out everywhere")
	sameStrings(t, sessionIDs(t, s, "sub-bob", at), []string{bob.ID}, "bob's sessions")
}

// testUserChangesEndSessions: disabling or deleting a user ends their
// sessions; other changes keep them.
func testUserChangesEndSessions(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	mustOK(t, s.CreateUser(ctx, newUser("sub-alice", "alice")), "CreateUser")
	mustOK(t, s.CreateUser(ctx, newUser("sub-bob", "bob")), "CreateUser")
	a := createBrowserSession(t, s, newBrowserSession("sub-alice", at, time.Hour, time.Hour))
	bob := createBrowserSession(t, s, newBrowserSession("sub-bob", at, time.Hour, time.Hour))

	mustOK(t, s.UpdateUser(ctx, "sub-alice", func(u *storage.User) error { u.Name = "Alice"; return nil }), "UpdateUser name")
	sameStrings(t, sessionIDs(t, s, "sub-alice", at), []string{a.ID}, "sessions after a name change")

	mustOK(t, s.UpdateUser(ctx, "sub-alice", func(u *storage.User) error { u.Disabled = true; return nil }), "UpdateUser disable")
	_, err := s.GetSession(ctx, a.IDHash)
	mustErr(t, err, storage.ErrNotFound, "session of a disabled user")

	mustOK(t, s.DeleteUser(ctx, "sub-bob"), "DeleteUser")
	_, err = s.GetSession(ctx, bob.IDHash)
	mustErr(t, err, storage.ErrNotFound, "session of a deleted user")
}

// testCollectSessionGarbage: sessions past their absolute or their idle
// expiry are collected, in batches; live ones stay.
func testCollectSessionGarbage(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	live := createBrowserSession(t, s, newBrowserSession("sub-alice", at.Add(-time.Hour), 24*time.Hour, 8*time.Hour))
	for range 2 {
		createBrowserSession(t, s, newBrowserSession("sub-alice", at.Add(-25*time.Hour), 24*time.Hour, 48*time.Hour)) // absolute
		createBrowserSession(t, s, newBrowserSession("sub-alice", at.Add(-9*time.Hour), 24*time.Hour, 8*time.Hour))   // idle
	}
	// One per pass: one past its absolute and one past its idle expiry.
	collect(t, s, at, at.Add(-time.Hour), 1, 2, "first batch of sessions")
	collect(t, s, at, at.Add(-time.Hour), 10, 2, "the rest of the sessions")
	collect(t, s, at, at.Add(-time.Hour), 10, 0, "nothing left")
	if _, err := s.GetSession(ctx, live.IDHash); err != nil {
		t.Fatalf("live session collected: %v", err)
	}
}
