package provider_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// fakeGC is a GarbageCollector that returns scripted results, then 0.
type fakeGC struct {
	mu      sync.Mutex
	results []gcResult
	calls   []gcCall
}

type gcResult struct {
	n   int
	err error
}

type gcCall struct {
	now, successorsBefore time.Time
	batch                 int
}

func (f *fakeGC) CollectGarbage(_ context.Context, now, successorsBefore time.Time, batch int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, gcCall{now, successorsBefore, batch})
	if len(f.results) == 0 {
		return 0, nil
	}
	r := f.results[0]
	f.results = f.results[1:]
	return r.n, r.err
}

func (f *fakeGC) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func TestCollectGarbageRepeatsUntilNothingIsLeft(t *testing.T) {
	gc := &fakeGC{results: []gcResult{{n: 500}, {n: 500}, {n: 7}}}
	now := adminNow
	start := time.Now()
	n, err := provider.CollectGarbage(context.Background(), gc, now, 10*time.Second, 500)
	if err != nil || n != 1007 {
		t.Fatalf("CollectGarbage = %d, %v; want 1007", n, err)
	}
	if len(gc.calls) != 4 {
		t.Fatalf("%d batches; want 4 (the last one finding nothing)", len(gc.calls))
	}
	for _, c := range gc.calls {
		if !c.now.Equal(now) || !c.successorsBefore.Equal(now.Add(-10*time.Second)) || c.batch != 500 {
			t.Errorf("batch called with %+v; want now, now minus the retry window, 500", c)
		}
	}
	// Three pauses between four batches.
	if took := time.Since(start); took < 3*time.Millisecond {
		t.Errorf("took %v; want a pause of at least 1ms between batches", took)
	}

	// A retry window of 0 (off) clears every kept response retired before now.
	gc = &fakeGC{}
	if n, err := provider.CollectGarbage(context.Background(), gc, now, 0, 1); err != nil || n != 0 || len(gc.calls) != 1 {
		t.Fatalf("nothing to collect: %d, %v after %d batches; want 0, nil after 1", n, err, len(gc.calls))
	}
	if !gc.calls[0].successorsBefore.Equal(now) || gc.calls[0].batch != 1 {
		t.Errorf("batch called with %+v; want successors before now, batch 1", gc.calls[0])
	}
}

func TestCollectGarbageErrors(t *testing.T) {
	storeErr := errors.New("database is locked")
	gc := &fakeGC{results: []gcResult{{n: 500}, {n: 3, err: storeErr}, {n: 500}}}
	n, err := provider.CollectGarbage(context.Background(), gc, adminNow, time.Second, 500)
	if !errors.Is(err, storeErr) || n != 503 {
		t.Errorf("CollectGarbage = %d, %v; want 503 and the store's error", n, err)
	}
	if len(gc.calls) != 2 {
		t.Errorf("%d batches; want none after the failure", len(gc.calls))
	}

	if _, err := provider.CollectGarbage(context.Background(), &fakeGC{}, adminNow, time.Second, 0); err == nil {
		t.Error("batch 0 accepted")
	}

	// A cancelled context stops between batches.
	ctx, cancel := context.WithCancel(context.Background())
	endless := &endlessGC{cancelAfter: 3, cancel: cancel}
	n, err = provider.CollectGarbage(ctx, endless, adminNow, time.Second, 10)
	if !errors.Is(err, context.Canceled) || n != 30 {
		t.Errorf("cancelled CollectGarbage = %d, %v; want 30 and context.Canceled", n, err)
	}
}

// endlessGC always finds 10 more rows and cancels its context after
// cancelAfter batches.
type endlessGC struct {
	batches, cancelAfter int
	cancel               context.CancelFunc
}

func (g *endlessGC) CollectGarbage(context.Context, time.Time, time.Time, int) (int, error) {
	g.batches++
	if g.batches == g.cancelAfter {
		g.cancel()
	}
	return 10, nil
}

// syncBuffer is a bytes.Buffer safe for a logger writing from another goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunGarbageCollector(t *testing.T) {
	gc := &fakeGC{results: []gcResult{{n: 3}, {n: 0}, {n: 0, err: errors.New("database is locked")}}}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := func() time.Time { return adminNow }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		provider.RunGarbageCollector(ctx, gc, 5*time.Millisecond, time.Minute, clock, logger)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for gc.callCount() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d batches in 10s", gc.callCount())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunGarbageCollector did not return after its context ended")
	}

	gc.mu.Lock()
	first := gc.calls[0]
	gc.mu.Unlock()
	if !first.now.Equal(adminNow) || !first.successorsBefore.Equal(adminNow.Add(-time.Minute)) || first.batch != provider.GCBatchSize {
		t.Errorf("first batch %+v; want the injected clock, the retry window and batch %d", first, provider.GCBatchSize)
	}
	out := logs.String()
	for _, want := range []string{
		`level=INFO msg="garbage collected" deleted=3`,
		`level=INFO msg="garbage collected" deleted=0`,
		`level=WARN msg="garbage collection failed" deleted=0 err="collect garbage: database is locked"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}

func TestRunGarbageCollectorStopsQuietly(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	provider.RunGarbageCollector(ctx, &fakeGC{}, time.Hour, 0, time.Now, logger)
	if strings.Contains(logs.String(), "WARN") {
		t.Errorf("stopping logged a warning:\n%s", logs.String())
	}
}

// TestCollectGarbageOnTheStore runs the collector on a real store: expired
// codes, tokens and pending requests go, live ones stay.
func TestCollectGarbageOnTheStore(t *testing.T) {
	ctx := context.Background()
	st := newAdminStore(t)
	client, _, err := provider.RegisterClient(ctx, st, adminHasher, provider.ClientSpec{
		ID: "app", Public: true, RedirectURIs: []string{"https://app.example.com/cb"},
		Scopes: []string{"openid offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"},
	}, adminNow)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	past, future := now.Add(-time.Hour), now.Add(time.Hour)

	type token struct {
		sig     string
		kind    fosite.TokenType
		expired bool
	}
	var tokens []token
	add := func(kind fosite.TokenType, expires time.Time) {
		t.Helper()
		sig := randomSignature(t)
		req := gcRequest(client, randomSignature(t), kind, expires)
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
		tokens = append(tokens, token{sig, kind, expires.Before(now)})
	}
	for range 3 {
		add(fosite.AccessToken, past)
	}
	add(fosite.AccessToken, future)
	add(fosite.RefreshToken, past)
	add(fosite.RefreshToken, past)
	add(fosite.RefreshToken, future)
	add(fosite.AuthorizeCode, past)
	add(fosite.AuthorizeCode, future)
	for _, r := range []storage.AuthRequest{
		{ID: "expired", Query: "a=b", CreatedAt: past.Add(-time.Hour), ExpiresAt: past},
		{ID: "live", Query: "a=b", CreatedAt: now, ExpiresAt: future},
	} {
		if err := st.CreateAuthRequest(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}

	// Batches of one: the loop, not one big delete, clears everything.
	n, err := provider.CollectGarbage(ctx, st, now, 10*time.Second, 1)
	if err != nil {
		t.Fatalf("CollectGarbage: %v", err)
	}
	if n != 7 {
		t.Errorf("CollectGarbage deleted %d rows; want 7 (3 access tokens, 2 refresh tokens, 1 code, 1 request)", n)
	}
	for _, tok := range tokens {
		var err error
		switch tok.kind {
		case fosite.AuthorizeCode:
			_, err = st.GetAuthorizeCodeSession(ctx, tok.sig, openid.NewDefaultSession())
		case fosite.AccessToken:
			_, err = st.GetAccessTokenSession(ctx, tok.sig, openid.NewDefaultSession())
		case fosite.RefreshToken:
			_, err = st.GetRefreshTokenSession(ctx, tok.sig, openid.NewDefaultSession())
		}
		switch {
		case tok.expired && !errors.Is(err, fosite.ErrNotFound):
			t.Errorf("expired %s still there: %v", tok.kind, err)
		case !tok.expired && err != nil:
			t.Errorf("live %s gone: %v", tok.kind, err)
		}
	}
	if _, err := st.GetAuthRequest(ctx, "live"); err != nil {
		t.Errorf("live authorization request gone: %v", err)
	}
	if n, err := provider.CollectGarbage(ctx, st, now, 10*time.Second, 500); err != nil || n != 0 {
		t.Errorf("second run = %d, %v; want nothing left to delete", n, err)
	}
}

// gcRequest is a granted request whose token of kind expires at expires.
func gcRequest(client *storage.Client, id string, kind fosite.TokenType, expires time.Time) *fosite.Request {
	sess := openid.NewDefaultSession()
	sess.Subject = "alice-subject"
	sess.SetExpiresAt(kind, expires)
	req := fosite.NewRequest()
	req.ID = id
	req.Client = client
	req.RequestedAt = expires.Add(-time.Hour)
	req.GrantedScope = fosite.Arguments{"openid", "offline_access"}
	req.Session = sess
	return req
}

func randomSignature(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
