package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/consentry/consentry/storage"
)

// Tests of encrypting, once a secrets key is set, what was stored before.

// prefixSealer stands in for the provider's AES-GCM: it "encrypts" by
// prefixing, so that the tests can tell what was sealed and with which key.
type prefixSealer struct{ prefix string }

var errOtherKey = errors.New("encrypted with another key")

func (p prefixSealer) Seal(plain []byte) ([]byte, error) {
	return append([]byte(p.prefix), plain...), nil
}

func (p prefixSealer) Open(c []byte) ([]byte, error) {
	if !bytes.HasPrefix(c, []byte(p.prefix)) {
		return nil, errOtherKey
	}
	return c[len(p.prefix):], nil
}

// storedValues returns every secret and signing key as stored, by name or kid.
func storedValues(t *testing.T, s storage.Store, secretNames ...string) map[string]storage.Secret {
	t.Helper()
	out := map[string]storage.Secret{}
	for _, name := range secretNames {
		sec, err := s.GetSecret(t.Context(), name)
		mustOK(t, err, "GetSecret "+name)
		out[name] = *sec
	}
	keys, err := s.ListSigningKeys(t.Context())
	mustOK(t, err, "ListSigningKeys")
	for _, k := range keys {
		out[k.KID] = storage.Secret{Name: k.KID, Value: k.PrivateKey, Encrypted: k.Encrypted}
	}
	return out
}

// seedPlainAndEncrypted stores secrets and keys as a database used first
// without and then with a secrets key holds them: two plain secrets, one
// sealed, a plain key, a plain retired key and a sealed key.
func seedPlainAndEncrypted(t *testing.T, s storage.Store, sealer prefixSealer) {
	t.Helper()
	ctx := t.Context()
	sealed, _ := sealer.Seal([]byte("sealed-secret"))
	for _, sec := range []*storage.Secret{
		{Name: "cookie", Value: []byte("plain-cookie")},
		{Name: "hmac", Value: []byte("plain-hmac")},
		{Name: "later", Value: sealed, Encrypted: true},
	} {
		mustOK(t, s.CreateSecret(ctx, sec), "CreateSecret "+sec.Name)
	}
	sealedKey, _ := sealer.Seal([]byte("der-k-sealed"))
	for _, k := range []*storage.SigningKey{
		signingKey("k-plain", "RS256", now().Add(-2*time.Hour)),
		signingKey("k-retired", "ES256", now().Add(-3*time.Hour)),
		{KID: "k-sealed", Algorithm: "ES256", PrivateKey: sealedKey, Encrypted: true, CreatedAt: now()},
	} {
		mustOK(t, s.CreateSigningKey(ctx, k), "CreateSigningKey "+k.KID)
	}
	mustOK(t, s.RetireSigningKey(ctx, "k-retired", now()), "RetireSigningKey")
}

func testEncryptAtRest(t *testing.T, s storage.Store) {
	ctx := t.Context()
	sealer := prefixSealer{"key1:"}
	if n, m, err := s.EncryptAtRest(ctx, sealer); err != nil || n != 0 || m != 0 {
		t.Fatalf("EncryptAtRest on an empty store: %d secrets, %d keys, %v", n, m, err)
	}
	seedPlainAndEncrypted(t, s, sealer)
	before := storedValues(t, s, "cookie", "hmac", "later")

	n, m, err := s.EncryptAtRest(ctx, sealer)
	mustOK(t, err, "EncryptAtRest")
	if n != 2 || m != 2 {
		t.Errorf("EncryptAtRest: %d secrets and %d keys encrypted, want 2 and 2", n, m)
	}
	after := storedValues(t, s, "cookie", "hmac", "later")
	for name, old := range before {
		got := after[name]
		want := old.Value
		if !old.Encrypted {
			want, _ = sealer.Seal(old.Value)
		}
		if !got.Encrypted || !bytes.Equal(got.Value, want) {
			t.Errorf("%s: stored %q (encrypted %v), want %q encrypted", name, got.Value, got.Encrypted, want)
		}
	}
	if k := findKey(t, s, "k-retired"); k.RetiredAt == nil || k.Algorithm != "ES256" {
		t.Errorf("k-retired changed beyond its private key: %+v", k)
	}

	// A second call finds nothing to do and changes nothing.
	n, m, err = s.EncryptAtRest(ctx, sealer)
	mustOK(t, err, "EncryptAtRest again")
	if n != 0 || m != 0 {
		t.Errorf("EncryptAtRest again: %d secrets and %d keys encrypted, want none", n, m)
	}
	again := storedValues(t, s, "cookie", "hmac", "later")
	for name, v := range after {
		if !bytes.Equal(again[name].Value, v.Value) || !again[name].Encrypted {
			t.Errorf("%s changed at the second call: %q, was %q", name, again[name].Value, v.Value)
		}
	}
}

// testEncryptAtRestRefusesAnotherKey: a key that does not open what is
// already encrypted writes nothing, so values never end up under two keys.
func testEncryptAtRestRefusesAnotherKey(t *testing.T, s storage.Store) {
	ctx := t.Context()
	seedPlainAndEncrypted(t, s, prefixSealer{"key1:"})
	before := storedValues(t, s, "cookie", "hmac", "later")
	n, m, err := s.EncryptAtRest(ctx, prefixSealer{"key2:"})
	if !errors.Is(err, errOtherKey) || n != 0 || m != 0 {
		t.Fatalf("EncryptAtRest with another key: %d secrets, %d keys, %v; want an error matching %v", n, m, err, errOtherKey)
	}
	after := storedValues(t, s, "cookie", "hmac", "later")
	for name, v := range before {
		if after[name].Encrypted != v.Encrypted || !bytes.Equal(after[name].Value, v.Value) {
			t.Errorf("%s changed although the key was refused: %q, was %q", name, after[name].Value, v.Value)
		}
	}

	// Only a retired key under another key: it is not read, so no refusal.
	s2Key, _ := prefixSealer{"old:"}.Seal([]byte("der"))
	mustOK(t, s.CreateSigningKey(ctx, &storage.SigningKey{KID: "k-old", Algorithm: "RS256", PrivateKey: s2Key, Encrypted: true, CreatedAt: now().Add(-time.Hour)}), "CreateSigningKey k-old")
	mustOK(t, s.RetireSigningKey(ctx, "k-old", now()), "RetireSigningKey k-old")
	if _, _, err := s.EncryptAtRest(ctx, prefixSealer{"key1:"}); err != nil {
		t.Errorf("EncryptAtRest refused for a retired key under another key: %v", err)
	}
}

// testEncryptAtRestOnce: instances starting together with the new key
// encrypt each value once between them.
func testEncryptAtRestOnce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	sealer := prefixSealer{"key1:"}
	for i := range 5 {
		mustOK(t, s.CreateSecret(ctx, &storage.Secret{Name: fmt.Sprintf("s%d", i), Value: []byte("plain")}), "CreateSecret")
		mustOK(t, s.CreateSigningKey(ctx, signingKey(fmt.Sprintf("k%d", i), "RS256", now())), "CreateSigningKey")
	}
	counts := make([][2]int, racers)
	errs := race(racers, func(i int) (err error) {
		counts[i][0], counts[i][1], err = s.EncryptAtRest(ctx, sealer)
		return err
	})
	var secrets, keys int
	for i, err := range errs {
		mustOK(t, err, fmt.Sprintf("EncryptAtRest racer %d", i))
		secrets += counts[i][0]
		keys += counts[i][1]
	}
	if secrets != 5 || keys != 5 {
		t.Errorf("racers encrypted %d secrets and %d keys between them, want 5 and 5", secrets, keys)
	}
	names := []string{"s0", "s1", "s2", "s3", "s4"}
	for name, v := range storedValues(t, s, names...) {
		if !v.Encrypted || bytes.Count(v.Value, []byte("key1:")) != 1 {
			t.Errorf("%s: stored %q (encrypted %v), want it sealed once", name, v.Value, v.Encrypted)
		}
	}
}
