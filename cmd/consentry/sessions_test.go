package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/storage"
)

// signInSession stores a browser session of username, as a login does.
func signInSession(t *testing.T, st storage.Store, username, id, userAgent string, at time.Time) *storage.BrowserSession {
	t.Helper()
	ctx := context.Background()
	u, err := st.GetUserByUsername(ctx, username)
	if err != nil {
		t.Fatal(err)
	}
	sess := &storage.BrowserSession{
		IDHash: "hash-" + id, ID: id, Subject: u.Subject, AuthTime: at, AMR: []string{"pwd"}, CreatedAt: at, LastSeenAt: at,
		ExpiresAt: at.Add(24 * time.Hour), IdleExpiresAt: at.Add(8 * time.Hour), IPAddress: "192.0.2.7", UserAgent: userAgent,
	}
	if err := st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	return sess
}

func TestSessionsListAndRevoke(t *testing.T) {
	dsn := offlineFixture(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	ctx := context.Background()
	st := openTestStore(t, dsn)
	at := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	const iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	signInSession(t, st, "alice", "s-laptop", firefox, at)
	signInSession(t, st, "alice", "s-phone", iphone, at.Add(time.Minute))
	signInSession(t, st, "alice", "s-old", firefox, at.Add(-10*time.Hour)) // idle too long: not listed
	bob := signInSession(t, st, "bob", "s-bob", firefox, at)

	r := runCLI(t, "", environ, "sessions", "list", "--user", "alice")
	if r.code != 0 {
		t.Fatalf("list: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"ID", "SIGNED IN", "LAST SEEN", "EXPIRES", "IP", "DEVICE", "s-laptop", "s-phone",
		"Firefox on Linux", "Safari on iOS", "192.0.2.7", at.UTC().Format("2006-01-02 15:04")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "s-old") || strings.Contains(r.stdout, "s-bob") || strings.Contains(r.stdout, "hash-") {
		t.Errorf("list shows an expired session, another user's or a hash:\n%s", r.stdout)
	}
	listJSON := func(username string) []sessionView {
		t.Helper()
		r := runCLI(t, "", environ, "sessions", "list", "--user", username, "--json")
		var out []sessionView
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil {
			t.Fatalf("list --json: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		return out
	}
	if got := listJSON("alice"); len(got) != 2 || got[0].ID != "s-phone" || got[1].ID != "s-laptop" || got[0].Username != "alice" {
		t.Fatalf("list --json = %+v; want s-phone then s-laptop", got)
	}

	r = runCLI(t, "", environ, "sessions", "revoke", "--user", "alice", "--id", "s-phone", "--revoked-by", "ops")
	if r.code != 0 || !strings.Contains(r.stdout, `ended 1 session of user "alice"`) {
		t.Fatalf("revoke --id: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := listJSON("alice"); len(got) != 1 || got[0].ID != "s-laptop" {
		t.Fatalf("after revoke --id: %+v", got)
	}
	// Another user's session cannot be named under alice.
	r = runCLI(t, "", environ, "sessions", "revoke", "--user", "alice", "--id", "s-bob", "--revoked-by", "ops")
	if r.code != 1 || !strings.Contains(r.stderr, `session "s-bob" not found`) {
		t.Errorf("revoke another user's session: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := st.GetSession(ctx, bob.IDHash); err != nil {
		t.Fatalf("bob's session: %v", err)
	}

	r = runCLI(t, "", environ, "sessions", "revoke", "--user", "alice", "--revoked-by", "ops")
	if r.code != 0 || !strings.Contains(r.stdout, `ended 2 sessions of user "alice"`) { // s-laptop and the idle s-old
		t.Fatalf("revoke: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, "", environ, "sessions", "list", "--user", "alice"); r.code != 0 || !strings.Contains(r.stdout, "not signed in anywhere") {
		t.Errorf("list after revoke: exit %d, stdout %q", r.code, r.stdout)
	}
	r = runCLI(t, "", environ, "sessions", "revoke", "--user", "alice", "--revoked-by", "ops")
	if r.code != 0 || !strings.Contains(r.stdout, "no session ended") {
		t.Errorf("revoke again: exit %d, stdout %q", r.code, r.stdout)
	}
	events, err := st.ListAuditEvents(ctx, storage.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var revoked int
	for _, e := range events {
		if e.Type == storage.EventSessionRevoked && e.Actor == storage.ActorAdmin && e.ActorName == "ops" {
			revoked++
		}
	}
	if revoked != 2 {
		t.Errorf("%d session_revoked events by ops, want 2: %+v", revoked, events)
	}

	for _, tt := range []struct {
		args    []string
		code    int
		wantErr string
	}{
		{[]string{"sessions", "list"}, 2, "--user is required"},
		{[]string{"sessions", "list", "--user", "carol"}, 1, `user "carol" not found`},
		{[]string{"sessions", "revoke", "--revoked-by", "ops"}, 2, "--user is required"},
		{[]string{"sessions", "revoke", "--user", "carol", "--revoked-by", "ops"}, 1, `user "carol" not found`},
	} {
		r := runCLI(t, "", environ, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.wantErr) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, r.code, r.stderr, tt.code, tt.wantErr)
		}
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"help", "sessions"}, []string{"sessions list", "sessions revoke"}},
		{[]string{"sessions", "list", "-h"}, []string{"--user USERNAME", "--json", "sid"}},
		{[]string{"sessions", "revoke", "-h"}, []string{"--user USERNAME", "--id ID", "--revoked-by NAME"}},
	} {
		r := runCLI(t, "", nil, tt.args...)
		for _, want := range tt.want {
			if r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Errorf("%q: exit %d, output lacks %q:\n%s", tt.args, r.code, want, r.stdout)
			}
		}
	}
}

// TestDisablingAndDeletingUsersEndsTheirSessions: `users disable` and
// `users delete` sign the user out everywhere.
func TestDisablingAndDeletingUsersEndsTheirSessions(t *testing.T) {
	dsn := offlineFixture(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	st := openTestStore(t, dsn)
	at := time.Now().UTC().Add(-time.Minute)
	alice := signInSession(t, st, "alice", "s-alice", "", at)
	bob := signInSession(t, st, "bob", "s-bob", "", at)

	if r := runCLI(t, "", environ, "users", "disable", "alice"); r.code != 0 || !strings.Contains(r.stdout, "signed out everywhere") {
		t.Fatalf("disable: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, "", environ, "users", "delete", "bob"); r.code != 0 {
		t.Fatalf("delete: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, sess := range []*storage.BrowserSession{alice, bob} {
		if _, err := st.GetSession(context.Background(), sess.IDHash); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("session %s survived: %v", sess.ID, err)
		}
	}
}
