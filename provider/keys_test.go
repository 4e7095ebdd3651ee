package provider

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/consentry/consentry/storage"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openSharedStore opens a second connection pool on the database at path,
// as another instance would.
func openSharedStore(t *testing.T, path string) *storage.GormStore {
	t.Helper()
	s, err := storage.Open(t.Context(), "sqlite://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func rotationConfig() Config {
	cfg := DefaultConfig()
	cfg.IDTokenLifespan = Duration(time.Hour)
	cfg.KeyPropagationDelay = Duration(time.Minute)
	return cfg
}

// issueIDToken signs an ID token as the provider's token endpoint would, for
// a client registered with alg.
func issueIDToken(t *testing.T, p *Provider, alg string) string {
	t.Helper()
	return issueIDTokenWith(t, p, alg, nil)
}

// issueIDTokenWith signs as issueIDToken does, RS256 through signers when
// they are set.
func issueIDTokenWith(t *testing.T, p *Provider, alg string, signers *rsaSigners) string {
	t.Helper()
	s := openid.NewDefaultSession()
	s.Claims.Subject = "sub-alice"
	s.Claims.Audience = []string{"app"}
	s.Claims.AuthTime = time.Now().UTC()
	s.Claims.RequestedAt = time.Now().UTC()
	req := fosite.NewAccessRequest(s)
	req.Client = &storage.Client{ID: "app", IDTokenSignedResponseAlg: alg}
	req.GrantTypes = fosite.Arguments{"authorization_code"}
	tok, err := newIDTokenStrategy(p.Keys, p.fositeConfig(), newSigningSlots(0), signers).GenerateIDToken(t.Context(), time.Hour, req)
	if err != nil {
		t.Fatalf("generate %s ID token: %v", alg, err)
	}
	return tok
}

func tokenKID(t *testing.T, raw string) string {
	t.Helper()
	sig, err := jose.ParseSigned(raw)
	if err != nil {
		t.Fatal(err)
	}
	return sig.Signatures[0].Header.KeyID
}

func publishedKIDs(ks *KeySet) []string {
	var kids []string
	for _, k := range ks.Public().Keys {
		kids = append(kids, k.KeyID)
	}
	slices.Sort(kids)
	return kids
}

func signingKID(t *testing.T, ks *KeySet, alg string) string {
	t.Helper()
	k, ok := ks.Signing(alg)
	if !ok {
		t.Fatalf("no %s signing key", alg)
	}
	return k.KeyID
}

// jwksVerifier verifies ID tokens as a relying party would: go-oidc fetching
// the JWKS over HTTP from what the provider publishes at the time.
func jwksVerifier(t *testing.T, p *Provider) *oidc.IDTokenVerifier {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.Keys.Public())
	}))
	t.Cleanup(srv.Close)
	keySet := oidc.NewRemoteKeySet(t.Context(), srv.URL)
	return oidc.NewVerifier(p.issuer(), keySet, &oidc.Config{ClientID: "app", SupportedSigningAlgs: []string{AlgRS256, AlgES256}})
}

func keyStatus(t *testing.T, p *Provider, now time.Time, kid string) string {
	t.Helper()
	infos, err := ListKeys(t.Context(), p.Store, p.Config, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range infos {
		if k.KID == kid {
			return k.Status
		}
	}
	t.Fatalf("key %s not listed", kid)
	return ""
}

func TestKeyRotation(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	cfg := rotationConfig()
	p, err := New(ctx, cfg, openTestStore(t), nil, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	oldRS, oldES := signingKID(t, p.Keys, AlgRS256), signingKID(t, p.Keys, AlgES256)
	if got := len(p.Keys.Public().Keys); got != 2 {
		t.Fatalf("first start: %d published keys, want 2", got)
	}
	oldToken := issueIDToken(t, p, AlgRS256)
	oldESToken := issueIDToken(t, p, AlgES256)

	delay := cfg.KeyPropagationDelay.Std()
	rotated, err := RotateKeys(ctx, p.Store, cfg.SecretsKey, clock.Now(), clock.Now().Add(delay))
	if err != nil {
		t.Fatal(err)
	}
	if len(rotated) != 2 || rotated[0].Status != KeyPending {
		t.Fatalf("RotateKeys: %+v, want two pending keys", rotated)
	}
	newRS := rotated[0].KID
	if err := p.Keys.Reload(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("published before it signs", func(t *testing.T) {
		if kids := publishedKIDs(p.Keys); len(kids) != 4 || !slices.Contains(kids, newRS) {
			t.Errorf("JWKS after rotation: %v, want the old and the new keys", kids)
		}
		if kid := tokenKID(t, issueIDToken(t, p, AlgRS256)); kid != oldRS {
			t.Errorf("ID token before activation signed by %s, want the old key %s", kid, oldRS)
		}
		if s := keyStatus(t, p, clock.Now(), newRS); s != KeyPending {
			t.Errorf("new key: %s, want %s", s, KeyPending)
		}
	})

	clock.Advance(delay)
	t.Run("signs once active", func(t *testing.T) {
		tok := issueIDToken(t, p, AlgRS256)
		if kid := tokenKID(t, tok); kid != newRS {
			t.Errorf("ID token after activation signed by %s, want the new key %s", kid, newRS)
		}
		if kid := tokenKID(t, issueIDToken(t, p, AlgES256)); kid == oldES {
			t.Error("ES256 ID token still signed by the old key")
		}
		verifier := jwksVerifier(t, p)
		for name, raw := range map[string]string{"old RS256": oldToken, "old ES256": oldESToken, "new RS256": tok} {
			if _, err := verifier.Verify(ctx, raw); err != nil {
				t.Errorf("%s token does not verify against the JWKS: %v", name, err)
			}
		}
		if s := keyStatus(t, p, clock.Now(), oldRS); s != KeyVerifying {
			t.Errorf("old key: %s, want %s", s, KeyVerifying)
		}
	})

	t.Run("id_token_hint of the old key", func(t *testing.T) {
		signer := newPublishedKeySigner(p.Keys)
		for _, raw := range []string{oldToken, oldESToken} {
			if _, err := signer.Decode(ctx, raw); err != nil {
				t.Errorf("hint signed by %s refused: %v", tokenKID(t, raw), err)
			}
		}
	})

	// Published until every ID token it signed has expired.
	clock.Advance(cfg.IDTokenLifespan.Std())
	if !slices.Contains(publishedKIDs(p.Keys), oldRS) {
		t.Error("old key left the JWKS before its tokens expired")
	}
	clock.Advance(keyRetention(cfg) - cfg.IDTokenLifespan.Std())
	t.Run("leaves the JWKS after the ID token lifespan", func(t *testing.T) {
		kids := publishedKIDs(p.Keys)
		if slices.Contains(kids, oldRS) || slices.Contains(kids, oldES) || len(kids) != 2 {
			t.Errorf("JWKS %v still has an old key", kids)
		}
		if s := keyStatus(t, p, clock.Now(), oldRS); s != KeyExpired {
			t.Errorf("old key: %s, want %s", s, KeyExpired)
		}
		if _, err := newPublishedKeySigner(p.Keys).Decode(ctx, oldToken); err == nil {
			t.Error("hint signed by an unpublished key accepted")
		}
	})
}

func TestRetireKey(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	p, err := New(ctx, rotationConfig(), openTestStore(t), nil, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	current := signingKID(t, p.Keys, AlgRS256)
	if err := RetireKey(ctx, p.Store, current, clock.Now()); !errors.Is(err, ErrSigningKeyInUse) {
		t.Fatalf("retiring the signing key: %v, want ErrSigningKeyInUse", err)
	}
	if err := RetireKey(ctx, p.Store, "no-such-kid", clock.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("retiring an unknown key: %v, want ErrNotFound", err)
	}

	// A compromised key: replace it at once, then retire it.
	clock.Advance(time.Second)
	rotated, err := RotateKeys(ctx, p.Store, "", clock.Now(), clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rotated[0].Status != KeySigning {
		t.Errorf("rotated with --now: %s, want %s", rotated[0].Status, KeySigning)
	}
	if err := p.Keys.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if kid := tokenKID(t, issueIDToken(t, p, AlgRS256)); kid != rotated[0].KID {
		t.Fatalf("after rotate --now signed by %s, want %s", kid, rotated[0].KID)
	}
	if err := RetireKey(ctx, p.Store, current, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := p.Keys.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(publishedKIDs(p.Keys), current) {
		t.Error("retired key still published")
	}
	if s := keyStatus(t, p, clock.Now(), current); s != KeyRetired {
		t.Errorf("retired key: %s, want %s", s, KeyRetired)
	}
	if err := RetireKey(ctx, p.Store, current, clock.Now()); err != nil {
		t.Errorf("retiring a retired key: %v", err)
	}

	// A pending key may be retired: the current one keeps signing.
	pending, err := RotateKeys(ctx, p.Store, "", clock.Now(), clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := RetireKey(ctx, p.Store, pending[0].KID, clock.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	if err := p.Keys.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if kid := signingKID(t, p.Keys, AlgRS256); kid != rotated[0].KID {
		t.Errorf("after retiring the pending key, %s signs; want %s", kid, rotated[0].KID)
	}
}

// TestKeySetsConverge: instances on one database start together and agree
// on the initial keys, and agree again after a rotation once both reloaded.
func TestKeySetsConverge(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "shared.db")
	stores := []*storage.GormStore{openSharedStore(t, path), openSharedStore(t, path)}
	cfg := rotationConfig()
	clock := newFakeClock()

	sets := make([]*KeySet, len(stores))
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { sets[i], errs[i] = LoadKeySet(ctx, s, cfg, clock.Now) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all, err := stores[0].ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("two instances starting together stored %d keys, want 2", len(all))
	}
	for _, alg := range signingAlgs {
		if a, b := signingKID(t, sets[0], alg), signingKID(t, sets[1], alg); a != b {
			t.Errorf("%s: instances sign with %s and %s", alg, a, b)
		}
	}

	clock.Advance(time.Second)
	rotated, err := RotateKeys(ctx, stores[0], "", clock.Now(), clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := sets[0].Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if a, b := signingKID(t, sets[0], AlgRS256), signingKID(t, sets[1], AlgRS256); a == b {
		t.Fatal("the instance that did not reload already uses the new key")
	}
	if err := sets[1].Reload(ctx); err != nil {
		t.Fatal(err)
	}
	for _, alg := range signingAlgs {
		if a, b := signingKID(t, sets[0], alg), signingKID(t, sets[1], alg); a != b {
			t.Errorf("%s after reload: instances sign with %s and %s", alg, a, b)
		}
	}
	if kid := signingKID(t, sets[1], AlgRS256); kid != rotated[0].KID {
		t.Errorf("signing with %s, want the rotated key %s", kid, rotated[0].KID)
	}
	if a, b := publishedKIDs(sets[0]), publishedKIDs(sets[1]); !slices.Equal(a, b) {
		t.Errorf("instances publish %v and %v", a, b)
	}
}

// TestKeyReloader: a running reloader picks up a key created elsewhere.
func TestKeyReloader(t *testing.T) {
	ctx := t.Context()
	store := openTestStore(t)
	ks, err := LoadKeySet(ctx, store, rotationConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ks.RunKeyReloader(runCtx, 10*time.Millisecond, slog.New(slog.DiscardHandler))
	}()
	defer func() { stop(); <-done }()

	rotated, err := RotateKeys(ctx, store, "", time.Now(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for signingKID(t, ks, AlgES256) != rotated[1].KID {
		if time.Now().After(deadline) {
			t.Fatal("the reloader did not pick up the rotated key")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAutomaticRotation: instances rotating on the same schedule create one
// key per algorithm between them, only once the newest key is old enough,
// and the new key is pending for the propagation delay.
func TestAutomaticRotation(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "shared.db")
	stores := []*storage.GormStore{openSharedStore(t, path), openSharedStore(t, path), openSharedStore(t, path)}
	cfg := rotationConfig()
	clock := newFakeClock()
	if _, err := LoadKeySet(ctx, stores[0], cfg, clock.Now); err != nil {
		t.Fatal(err)
	}
	interval, delay := 24*time.Hour, cfg.KeyPropagationDelay.Std()

	rotateAll := func() []KeyInfo {
		t.Helper()
		var mu sync.Mutex
		var created []KeyInfo
		var wg sync.WaitGroup
		for _, s := range stores {
			wg.Go(func() {
				keys, err := RotateKeysIfDue(ctx, s, "", interval, delay, clock.Now())
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				created = append(created, keys...)
				mu.Unlock()
			})
		}
		wg.Wait()
		return created
	}
	if created := rotateAll(); len(created) != 0 {
		t.Fatalf("rotated keys that are not due: %+v", created)
	}
	clock.Advance(interval - time.Second)
	if created := rotateAll(); len(created) != 0 {
		t.Fatalf("rotated keys a second before they are due: %+v", created)
	}
	clock.Advance(2 * time.Second)
	created := rotateAll()
	if len(created) != 2 || created[0].Algorithm == created[1].Algorithm {
		t.Fatalf("due rotation by three instances created %+v, want one key per algorithm", created)
	}
	for _, k := range created {
		if !k.ActivatesAt.Equal(clock.Now().Add(delay)) {
			t.Errorf("%s key activates at %v, want now + the propagation delay", k.Algorithm, k.ActivatesAt)
		}
	}
	if again := rotateAll(); len(again) != 0 {
		t.Errorf("rotated again right after a rotation: %+v", again)
	}
	all, err := stores[1].ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 {
		t.Errorf("%d keys stored, want 4", len(all))
	}
}

// TestRunKeyRotation: the background loop rotates at once when due and
// stops with its context.
func TestRunKeyRotation(t *testing.T) {
	ctx := t.Context()
	store := openTestStore(t)
	clock := newFakeClock()
	if _, err := LoadKeySet(ctx, store, rotationConfig(), clock.Now); err != nil {
		t.Fatal(err)
	}
	clock.Advance(48 * time.Hour)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunKeyRotation(runCtx, store, "", 24*time.Hour, time.Minute, clock.Now, nil)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, err := store.ListSigningKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RunKeyRotation created %d keys, want 2 more than the initial 2", len(keys)-2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunKeyRotation did not stop with its context")
	}
}

func TestKeyStates(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	retired := t0.Add(time.Minute)
	keys := []storage.SigningKey{
		{KID: "a", Algorithm: AlgRS256, CreatedAt: t0, ActivatesAt: t0},
		{KID: "b", Algorithm: AlgRS256, CreatedAt: t0.Add(time.Hour), ActivatesAt: t0.Add(time.Hour)},
		{KID: "c", Algorithm: AlgRS256, CreatedAt: t0.Add(3 * time.Hour), ActivatesAt: t0.Add(3 * time.Hour)},
		{KID: "d", Algorithm: AlgRS256, CreatedAt: t0.Add(4 * time.Hour), ActivatesAt: t0.Add(5 * time.Hour)},
		{KID: "r", Algorithm: AlgRS256, CreatedAt: t0, ActivatesAt: t0, RetiredAt: &retired},
		{KID: "e", Algorithm: AlgES256, CreatedAt: t0, ActivatesAt: t0},
	}
	got := map[string]KeyInfo{}
	for _, k := range keyStates(keys, t0.Add(4*time.Hour), 90*time.Minute) {
		got[k.KID] = k
	}
	for kid, want := range map[string]struct {
		status    string
		published bool
	}{
		"a": {KeyExpired, false},  // superseded at 1h, 3h ago
		"b": {KeyVerifying, true}, // superseded at 3h, 1h ago
		"c": {KeySigning, true},
		"d": {KeyPending, true},
		"r": {KeyRetired, false},
		"e": {KeySigning, true}, // the other algorithm is independent
	} {
		if got[kid].Status != want.status || got[kid].Published != want.published {
			t.Errorf("key %s: %s (published %v), want %s (published %v)", kid, got[kid].Status, got[kid].Published, want.status, want.published)
		}
	}
	if s := got["b"].SupersededAt; s == nil || !s.Equal(t0.Add(3*time.Hour)) {
		t.Errorf("b superseded at %v, want when c activated", s)
	}
}

// TestRunKeyMaintenance: serve's key goroutine rotates when due and stops
// with its context.
func TestRunKeyMaintenance(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	cfg := rotationConfig()
	cfg.KeyRotationInterval = Duration(24 * time.Hour)
	p, err := New(ctx, cfg, openTestStore(t), nil, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(25 * time.Hour)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.RunKeyMaintenance(runCtx)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, err := p.Store.ListSigningKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rotation: %d keys", len(keys))
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunKeyMaintenance did not stop with its context")
	}
}
