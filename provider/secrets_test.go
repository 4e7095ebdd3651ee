package provider

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
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
