package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

func TestUsersUnlock(t *testing.T) {
	dsn := tempDSN(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	if r := runCLI(t, "secret123", environ, "users", "create", "--username", "carol", "--password-stdin"); r.code != 0 {
		t.Fatalf("create: exit %d, stderr %q", r.code, r.stderr)
	}
	ctx := context.Background()
	st := openTestStore(t, dsn)
	key := provider.LoginAccountKey("carol")
	now := time.Now()
	if err := st.UpdateLoginThrottles(ctx, []string{key}, func(l *storage.LoginThrottle) error {
		l.Failures, l.Lockouts, l.WindowStart, l.LockedUntil, l.ExpiresAt = 2, 3, now, now.Add(time.Hour), now.Add(24*time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	r := runCLI(t, "", environ, "users", "unlock", "carol", "--unlocked-by", "root")
	if r.code != 0 || !strings.Contains(r.stdout, `unlocked user "carol"`) {
		t.Fatalf("unlock: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if states, err := st.GetLoginThrottles(ctx, key); err != nil || len(states) != 0 {
		t.Errorf("after unlock: %+v, %v; want no state", states, err)
	}
	events, err := st.ListAuditEvents(ctx, storage.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Type != storage.EventLoginUnlocked || events[0].Actor != storage.ActorAdmin || events[0].ActorName != "root" || events[0].Subject == "" {
		t.Errorf("audit events %+v, want one login_unlocked by root", events)
	}

	if r := runCLI(t, "", environ, "users", "unlock", "carol", "--unlocked-by", "root"); r.code != 0 || !strings.Contains(r.stdout, "no failed sign-ins to clear") {
		t.Errorf("unlock again: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := runCLI(t, "", environ, "users", "unlock", "dave", "--unlocked-by", "root"); r.code != 1 || !strings.Contains(r.stderr, `user "dave" not found`) {
		t.Errorf("unknown user: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", environ, "users", "unlock"); r.code != 2 {
		t.Errorf("without a username: exit %d, stderr %q", r.code, r.stderr)
	}
}
