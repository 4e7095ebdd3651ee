package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentry/consentry/storage"
)

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// tokenRequest is a granted request of client whose token of kind expires
// at expires, as fosite stores it.
func tokenRequest(t *testing.T, client *storage.Client, kind fosite.TokenType, expires time.Time) *fosite.Request {
	t.Helper()
	sess := openid.NewDefaultSession()
	sess.Subject = "subject-of-alice"
	sess.SetExpiresAt(kind, expires)
	req := fosite.NewRequest()
	req.ID = randomHex(t)
	req.Client = client
	req.RequestedAt = expires.Add(-time.Hour)
	req.GrantedScope = fosite.Arguments{"openid", "offline_access"}
	req.Session = sess
	return req
}

func TestGCDeletesExpiredRowsOnly(t *testing.T) {
	dsn := offlineFixture(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn, "CONSENTRY_REFRESH_RETRY_WINDOW": "30s"}
	ctx := context.Background()
	st := openTestStore(t, dsn)
	client, err := st.GetStoredClient(ctx, "com.example.app")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	past, future := now.Add(-time.Hour), now.Add(time.Hour)

	type row struct {
		kind    fosite.TokenType
		sig     string
		expired bool
	}
	var rows []row
	create := func(kind fosite.TokenType, expires time.Time) string {
		t.Helper()
		sig := randomHex(t)
		req := tokenRequest(t, client, kind, expires)
		var err error
		switch kind {
		case fosite.AuthorizeCode:
			err = st.CreateAuthorizeCodeSession(ctx, sig, req)
		case fosite.AccessToken:
			err = st.CreateAccessTokenSession(ctx, sig, req)
		case fosite.RefreshToken:
			err = st.CreateRefreshTokenSession(ctx, sig, "", req)
		}
		if err != nil {
			t.Fatalf("create %s: %v", kind, err)
		}
		rows = append(rows, row{kind, sig, expires.Before(now)})
		return sig
	}
	create(fosite.AuthorizeCode, past)
	create(fosite.AuthorizeCode, future)
	create(fosite.AccessToken, past)
	create(fosite.AccessToken, past)
	create(fosite.AccessToken, future)
	create(fosite.RefreshToken, past)
	// Two live refresh tokens rotated out: one before the retry window, whose
	// kept response goes, and one inside it, whose response stays.
	rotatedLongAgo := create(fosite.RefreshToken, future)
	rotatedJustNow := create(fosite.RefreshToken, future)
	if err := st.RetireRefreshToken(ctx, rotatedLongAgo, now.Add(-time.Minute), []byte("sealed response 1")); err != nil {
		t.Fatal(err)
	}
	if err := st.RetireRefreshToken(ctx, rotatedJustNow, now.Add(-time.Second), []byte("sealed response 2")); err != nil {
		t.Fatal(err)
	}
	for _, r := range []storage.AuthRequest{
		{ID: "expired-request", Query: "a=b", CreatedAt: past.Add(-time.Hour), ExpiresAt: past},
		{ID: "live-request", Query: "a=b", CreatedAt: now, ExpiresAt: future},
	} {
		if err := st.CreateAuthRequest(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	// The audit log is never collected, however old.
	if err := st.AppendAuditEvent(ctx, &storage.AuditEvent{Time: past.AddDate(-5, 0, 0), Type: storage.EventConsentGiven, Actor: storage.ActorUser}); err != nil {
		t.Fatal(err)
	}

	r := runCLI(t, "", environ, "gc")
	// 1 code, 2 access tokens, 1 refresh token, 1 request, 1 kept response.
	if r.code != 0 || r.stdout != "deleted 6 expired rows\n" {
		t.Fatalf("gc: exit %d, stdout %q, stderr %q; want 6 rows deleted", r.code, r.stdout, r.stderr)
	}

	for _, row := range rows {
		var err error
		switch row.kind {
		case fosite.AuthorizeCode:
			_, err = st.GetAuthorizeCodeSession(ctx, row.sig, openid.NewDefaultSession())
		case fosite.AccessToken:
			_, err = st.GetAccessTokenSession(ctx, row.sig, openid.NewDefaultSession())
		case fosite.RefreshToken:
			_, err = st.GetRefreshTokenRetirement(ctx, row.sig)
		}
		switch {
		case row.expired && !errors.Is(err, storage.ErrNotFound):
			t.Errorf("expired %s still stored: %v", row.kind, err)
		case !row.expired && err != nil:
			t.Errorf("live %s deleted: %v", row.kind, err)
		}
	}
	for sig, keep := range map[string]bool{rotatedLongAgo: false, rotatedJustNow: true} {
		ret, err := st.GetRefreshTokenRetirement(ctx, sig)
		if err != nil {
			t.Fatal(err)
		}
		if (len(ret.Successor) > 0) != keep {
			t.Errorf("kept response of a token retired at %v: %q; want kept %t (retry window 30s)", ret.RetiredAt, ret.Successor, keep)
		}
	}
	if _, err := st.GetAuthRequest(ctx, "live-request"); err != nil {
		t.Errorf("live authorization request deleted: %v", err)
	}
	if events, err := st.ListAuditEvents(ctx, storage.AuditFilter{}); err != nil || len(events) != 1 {
		t.Errorf("audit events %+v, %v; want the old event kept", events, err)
	}

	if r := runCLI(t, "", environ, "gc"); r.code != 0 || r.stdout != "deleted 0 expired rows\n" {
		t.Errorf("second gc: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := runCLI(t, "", environ, "gc", "now"); r.code != 2 {
		t.Errorf("gc with an argument: exit %d; want 2", r.code)
	}
}

func TestServeCollectsGarbage(t *testing.T) {
	dsn := tempDSN(t)
	if r := runCLI(t, "", map[string]string{"CONSENTRY_DSN": dsn}, "migrate"); r.code != 0 {
		t.Fatalf("migrate: exit %d, stderr %q", r.code, r.stderr)
	}
	st := openTestStore(t, dsn)
	ctx := context.Background()
	expired := storage.AuthRequest{ID: "expired", Query: "a=b", CreatedAt: time.Now().Add(-2 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour)}
	if err := st.CreateAuthRequest(ctx, &expired); err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	e := &env{stdin: strings.NewReader(""), stdout: stdout, stderr: stderr, getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, e, []string{"serve", "--listen", "127.0.0.1:0", "--dsn", dsn, "--gc-interval", "50ms"})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(stderr.String(), `msg="garbage collected"`) < 2 {
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d; stderr:\n%s", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no two garbage collections in 30s; stderr:\n%s", stderr.String())
		}
	}
	if !strings.Contains(stderr.String(), "deleted=1") {
		t.Errorf("the first collection did not report the expired request:\n%s", stderr.String())
	}
	if _, err := st.GetAuthRequest(ctx, "expired"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("expired request after serve collected: %v; want not found", err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited with %d; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}
