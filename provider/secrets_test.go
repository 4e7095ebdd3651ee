package provider

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/storage"
)

func openTestStore(t *testing.T) *storage.GormStore {
	t.Helper()
	ctx := context.Background()
	store, err := storage.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "t.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return store
}

// testSecretsKey is a secrets key as a deployment sets one.
const testSecretsKey = "a production secrets key of 32+ bytes"

func TestServerSecretsPersistAcrossStarts(t *testing.T) {
	store := openTestStore(t)
	ctx := context.Background()
	first, err := LoadServerSecrets(ctx, store, "", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	second, err := LoadServerSecrets(ctx, store, "", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.TokenHMAC, second.TokenHMAC) || !bytes.Equal(first.CookieHash, second.CookieHash) {
		t.Fatal("secrets changed between two starts")
	}
	if len(first.TokenHMAC) != 32 || bytes.Equal(first.TokenHMAC, first.CookieHash) {
		t.Fatal("secrets are not independent 256-bit values")
	}
}

func TestSecretsKeyEncryptsAtRest(t *testing.T) {
	store := openTestStore(t)
	ctx := context.Background()
	secrets, err := LoadServerSecrets(ctx, store, testSecretsKey, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := store.GetSecret(ctx, secretTokenHMAC)
	if err != nil {
		t.Fatal(err)
	}
	if !stored.Encrypted || bytes.Contains(stored.Value, secrets.TokenHMAC) {
		t.Fatal("token secret stored in the clear although a secrets key is set")
	}
	if _, err := LoadServerSecrets(ctx, store, "another key, also long enough to be accepted", time.Now); err == nil {
		t.Fatal("secrets decrypted with the wrong key")
	}
	if _, err := LoadServerSecrets(ctx, store, "", time.Now); err == nil {
		t.Fatal("encrypted secrets loaded without a key")
	}

	cfg := DefaultConfig()
	cfg.SecretsKey = testSecretsKey
	keys, err := LoadKeySet(ctx, store, cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadKeySet(ctx, store, cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	rs1, _ := keys.Signing(AlgRS256)
	rs2, _ := again.Signing(AlgRS256)
	if rs1.KeyID != rs2.KeyID || len(keys.Public().Keys) != 2 {
		t.Fatalf("signing keys not persisted: %s vs %s, %d public keys", rs1.KeyID, rs2.KeyID, len(keys.Public().Keys))
	}
	for _, k := range keys.Public().Keys {
		if !k.IsPublic() {
			t.Fatal("the JWKS contains a private key")
		}
	}
	rotated, err := RotateKeys(ctx, store, cfg.SecretsKey, time.Now(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sks, err := store.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sk := range sks {
		if !sk.Encrypted {
			t.Errorf("signing key %s (rotated: %v) stored in the clear although a secrets key is set", sk.KID, sk.KID == rotated[0].KID || sk.KID == rotated[1].KID)
		}
	}
	cfg.SecretsKey = "a wrong key, though long enough to be accepted"
	if _, err := LoadKeySet(ctx, store, cfg, time.Now); err == nil {
		t.Fatal("signing keys decrypted with the wrong key")
	}
}

func TestClientSecretHasherComparesByKeyedHash(t *testing.T) {
	ctx := context.Background()
	h := ClientSecretHasher{Key: []byte("k1")}
	hash, _ := h.Hash(ctx, []byte("s3cret"))
	if err := h.Compare(ctx, hash, []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	if err := h.Compare(ctx, hash, []byte("s3cres")); err == nil {
		t.Fatal("wrong secret accepted")
	}
	if err := (ClientSecretHasher{Key: []byte("k2")}).Compare(ctx, hash, []byte("s3cret")); err == nil {
		t.Fatal("hash accepted under another server key")
	}
}

// issueClientCredentialsToken gets an access token at the token endpoint
// for a client_credentials client.
func issueClientCredentialsToken(t *testing.T, p *Provider, clientID, secret string) string {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	ar, err := p.OAuth2.NewAccessRequest(t.Context(), r, EmptySession())
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	resp, err := p.OAuth2.NewAccessResponse(t.Context(), ar)
	if err != nil {
		t.Fatalf("token response: %v", err)
	}
	return resp.GetAccessToken()
}

// storedAtRest returns the server secrets and private signing keys as the
// database holds them, by name or kid.
func storedAtRest(t *testing.T, store *storage.GormStore) map[string]storage.Secret {
	t.Helper()
	out := map[string]storage.Secret{}
	for _, name := range []string{secretTokenHMAC, secretCookieHash, secretCookieBlock, secretClientHash} {
		s, err := store.GetSecret(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = *s
	}
	keys, err := store.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		out[k.KID] = storage.Secret{Name: k.KID, Value: k.PrivateKey, Encrypted: k.Encrypted}
	}
	return out
}

func TestSecretsKeySetLaterEncryptsWhatWasStored(t *testing.T) {
	ctx := t.Context()
	store := openTestStore(t)
	cfg := DefaultConfig()
	before, err := New(ctx, cfg, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, clientSecret, err := RegisterClient(ctx, store, before.Hasher, ClientSpec{ID: "backend", GrantTypes: []string{"client_credentials"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	accessToken := issueClientCredentialsToken(t, before, "backend", clientSecret)
	idTokens := map[string]string{AlgRS256: issueIDToken(t, before, AlgRS256), AlgES256: issueIDToken(t, before, AlgES256)}
	plain := storedAtRest(t, store)
	if len(plain) != 6 {
		t.Fatalf("stored %d secrets and keys, want 4 secrets and 2 keys", len(plain))
	}
	for name, v := range plain {
		if v.Encrypted {
			t.Fatalf("%s is encrypted without a secrets key", name)
		}
	}

	// The deployer sets a secrets key and restarts.
	cfg.SecretsKey = testSecretsKey
	var logs bytes.Buffer
	after, err := New(ctx, cfg, store, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	if err != nil {
		t.Fatalf("start with a secrets key on a database made without one: %v", err)
	}
	sealer := newSealer(testSecretsKey)
	encrypted := storedAtRest(t, store)
	for name, old := range plain {
		got := encrypted[name]
		if !got.Encrypted || bytes.Contains(got.Value, old.Value) {
			t.Errorf("%s: still stored in the clear (encrypted flag %v)", name, got.Encrypted)
			continue
		}
		if opened, err := sealer.open(got.Value, true); err != nil || !bytes.Equal(opened, old.Value) {
			t.Errorf("%s: does not decrypt to its old value (%v)", name, err)
		}
	}
	if !strings.Contains(logs.String(), "level=INFO") || !strings.Contains(logs.String(), "secrets=4 signing_keys=2") {
		t.Errorf("the encryption is not logged at INFO:\n%s", logs.String())
	}

	// Same values, so everything issued before still works.
	if !bytes.Equal(after.Secrets.TokenHMAC, before.Secrets.TokenHMAC) || !bytes.Equal(after.Secrets.CookieBlock, before.Secrets.CookieBlock) {
		t.Error("the server secrets changed")
	}
	if ar := introspect(t, after, accessToken); ar.GetClient().GetID() != "backend" {
		t.Errorf("the access token issued before is for %q", ar.GetClient().GetID())
	}
	if !authenticates(t, after, "backend", clientSecret) {
		t.Error("the client secret registered before is refused")
	}
	verifier := jwksVerifier(t, after)
	for alg, raw := range idTokens {
		if _, err := verifier.Verify(ctx, raw); err != nil {
			t.Errorf("%s ID token signed before: %v", alg, err)
		}
		if signingKID(t, after.Keys, alg) != signingKID(t, before.Keys, alg) {
			t.Errorf("%s: another key signs", alg)
		}
		if _, err := verifier.Verify(ctx, issueIDToken(t, after, alg)); err != nil {
			t.Errorf("%s ID token signed after: %v", alg, err)
		}
	}

	// A second start changes nothing and logs nothing of it.
	logs.Reset()
	if _, err := New(ctx, cfg, store, slog.New(slog.NewTextHandler(&logs, nil)), nil); err != nil {
		t.Fatal(err)
	}
	for name, v := range storedAtRest(t, store) {
		if !bytes.Equal(v.Value, encrypted[name].Value) || !v.Encrypted {
			t.Errorf("%s changed at the second start", name)
		}
	}
	if strings.Contains(logs.String(), "encrypted with the secrets key") {
		t.Errorf("the second start logs an encryption:\n%s", logs.String())
	}

	// Removing the key again fails clearly, as does another key.
	cfg.SecretsKey = ""
	if _, err := New(ctx, cfg, store, nil, nil); !errors.Is(err, errNoSecretsKey) {
		t.Errorf("start without the secrets key: %v, want %v", err, errNoSecretsKey)
	}
	cfg.SecretsKey = "another key, also long enough to be accepted"
	if _, err := New(ctx, cfg, store, nil, nil); err == nil || !strings.Contains(err.Error(), "wrong secrets key") {
		t.Errorf("start with another secrets key: %v, want a wrong-key error", err)
	}
}

func TestSecretsKeyNeverEncryptsBesideAnotherKey(t *testing.T) {
	ctx := t.Context()
	store := openTestStore(t)
	// Secrets stored with one key, signing keys without any.
	if _, err := LoadServerSecrets(ctx, store, testSecretsKey, time.Now); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeySet(ctx, store, DefaultConfig(), time.Now); err != nil {
		t.Fatal(err)
	}
	before := storedAtRest(t, store)
	err := EncryptAtRest(ctx, store, "another key, also long enough to be accepted", nil)
	if err == nil || !strings.Contains(err.Error(), "wrong secrets key") {
		t.Fatalf("EncryptAtRest with another key: %v, want a wrong-key error", err)
	}
	for name, v := range storedAtRest(t, store) {
		if v.Encrypted != before[name].Encrypted || !bytes.Equal(v.Value, before[name].Value) {
			t.Errorf("%s changed although the key was refused", name)
		}
	}
	if err := EncryptAtRest(ctx, store, testSecretsKey, nil); err != nil {
		t.Fatal(err)
	}
	for name, v := range storedAtRest(t, store) {
		if !v.Encrypted {
			t.Errorf("%s not encrypted with the right key", name)
		}
	}
}
