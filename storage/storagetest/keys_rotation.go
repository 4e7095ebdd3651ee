package storagetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/consentry/consentry/storage"
)

// Tests of signing-key and client-secret rotation.

func signingKey(kid, alg string, created time.Time) *storage.SigningKey {
	return &storage.SigningKey{KID: kid, Algorithm: alg, PrivateKey: []byte("der-" + kid), CreatedAt: created}
}

func findKey(t *testing.T, s storage.Store, kid string) storage.SigningKey {
	t.Helper()
	keys, err := s.ListSigningKeys(t.Context())
	mustOK(t, err, "ListSigningKeys")
	for _, k := range keys {
		if k.KID == kid {
			return k
		}
	}
	t.Fatalf("key %q not listed", kid)
	return storage.SigningKey{}
}

func testSigningKeyActivation(t *testing.T, s storage.Store) {
	ctx := t.Context()
	created := now().Add(-time.Hour)
	mustOK(t, s.CreateSigningKey(ctx, signingKey("k-default", "RS256", created)), "CreateSigningKey without ActivatesAt")
	later := signingKey("k-later", "RS256", created)
	later.ActivatesAt = created.Add(90 * time.Second)
	mustOK(t, s.CreateSigningKey(ctx, later), "CreateSigningKey with ActivatesAt")

	got := findKey(t, s, "k-default")
	sameTime(t, got.ActivatesAt, created, "ActivatesAt defaults to CreatedAt")
	if got.RetiredAt != nil {
		t.Errorf("new key retired at %v", got.RetiredAt)
	}
	sameTime(t, findKey(t, s, "k-later").ActivatesAt, later.ActivatesAt, "ActivatesAt")
}

func testRetireSigningKey(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustOK(t, s.CreateSigningKey(ctx, signingKey("k1", "ES256", now().Add(-time.Hour))), "CreateSigningKey")
	mustOK(t, s.CreateSigningKey(ctx, signingKey("k2", "ES256", now())), "CreateSigningKey")
	mustErr(t, s.RetireSigningKey(ctx, "unknown", now()), storage.ErrNotFound, "RetireSigningKey unknown")

	first := now().Add(-time.Minute)
	mustOK(t, s.RetireSigningKey(ctx, "k1", first), "RetireSigningKey")
	mustOK(t, s.RetireSigningKey(ctx, "k1", now()), "RetireSigningKey again")

	keys, err := s.ListSigningKeys(ctx)
	mustOK(t, err, "ListSigningKeys")
	if len(keys) != 2 || keys[0].KID != "k1" || keys[1].KID != "k2" {
		t.Fatalf("ListSigningKeys after retiring: got %+v, want k1 (retired) and k2, oldest first", keys)
	}
	if keys[0].RetiredAt == nil {
		t.Fatal("retired key has no RetiredAt")
	}
	sameTime(t, *keys[0].RetiredAt, first, "RetiredAt keeps the first retirement")
	if keys[1].RetiredAt != nil {
		t.Errorf("other key retired too: %v", keys[1].RetiredAt)
	}
	mustOK(t, s.RetireSigningKey(ctx, "k2", time.Time{}), "RetireSigningKey with zero time")
	if findKey(t, s, "k2").RetiredAt == nil {
		t.Error("retired with a zero time: RetiredAt not set")
	}
}

func testCreateSigningKeyIfNoneSince(t *testing.T, s storage.Store) {
	ctx := t.Context()
	t0 := now().Add(-24 * time.Hour)
	create := func(kid, alg string, created, since time.Time) bool {
		t.Helper()
		ok, err := s.CreateSigningKeyIfNoneSince(ctx, signingKey(kid, alg, created), alg, since)
		mustOK(t, err, "CreateSigningKeyIfNoneSince "+kid)
		return ok
	}
	if !create("rs-1", "RS256", t0, time.Time{}) {
		t.Fatal("first key of an empty store not created")
	}
	if create("rs-2", "RS256", t0.Add(time.Hour), time.Time{}) {
		t.Error("created a second initial key although one exists")
	}
	if !create("es-1", "ES256", t0, time.Time{}) {
		t.Error("a key of another algorithm prevented the first ES256 key")
	}
	if create("rs-3", "RS256", t0.Add(time.Hour), t0) {
		t.Error("created although a key was created exactly at since")
	}
	if !create("rs-4", "RS256", t0.Add(2*time.Hour), t0.Add(time.Second)) {
		t.Error("not created although the newest key is older than since")
	}
	// Retired keys do not count: retiring the newest key lets a new one in.
	mustOK(t, s.RetireSigningKey(ctx, "rs-4", t0.Add(3*time.Hour)), "RetireSigningKey")
	if !create("rs-5", "RS256", t0.Add(3*time.Hour), t0.Add(time.Second)) {
		t.Error("not created although the only newer key is retired")
	}
	ok, err := s.CreateSigningKeyIfNoneSince(ctx, signingKey("x", "ES256", t0), "RS256", time.Time{})
	if err == nil || ok {
		t.Error("accepted a key whose algorithm is not alg")
	}
	ok, err = s.CreateSigningKeyIfNoneSince(ctx, signingKey("rs-1", "RS256", now()), "RS256", now().Add(time.Hour))
	mustErr(t, err, storage.ErrAlreadyExists, "CreateSigningKeyIfNoneSince with a taken kid")
	if ok {
		t.Error("reported created with a taken kid")
	}

	keys, err := s.ListSigningKeys(ctx)
	mustOK(t, err, "ListSigningKeys")
	var kids []string
	for _, k := range keys {
		kids = append(kids, k.KID)
	}
	slices.Sort(kids)
	sameStrings(t, kids, []string{"es-1", "rs-1", "rs-4", "rs-5"}, "stored keys")
}

// testCreateSigningKeyOnce: instances that rotate at the same moment create
// one key per algorithm between them.
func testCreateSigningKeyOnce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for round := range rounds {
		since := now().Add(time.Duration(round) * time.Hour)
		for _, alg := range []string{"RS256", "ES256"} {
			created := make([]bool, racers)
			errs := race(racers, func(i int) error {
				var err error
				k := signingKey(fmt.Sprintf("%s-%d-%d", alg, round, i), alg, since)
				created[i], err = s.CreateSigningKeyIfNoneSince(ctx, k, alg, since)
				return err
			})
			n := 0
			for i, err := range errs {
				mustOK(t, err, fmt.Sprintf("racer %d", i))
				if created[i] {
					n++
				}
			}
			if n != 1 {
				t.Errorf("round %d, %s: %d racers created a key, want 1", round, alg, n)
			}
		}
	}
	keys, err := s.ListSigningKeys(ctx)
	mustOK(t, err, "ListSigningKeys")
	if len(keys) != 2*rounds {
		t.Errorf("%d keys stored, want %d", len(keys), 2*rounds)
	}
}

func testClientRotatedSecrets(t *testing.T, s storage.Store) {
	ctx := t.Context()
	c := newClient("rotating")
	c.RotatedSecrets = []storage.RotatedSecret{
		{Hash: []byte{0, 1, 0xff}, ExpiresAt: now().Add(time.Hour)},
		{Hash: []byte("expired"), ExpiresAt: now().Add(-time.Hour)},
	}
	mustOK(t, s.CreateClient(ctx, c), "CreateClient")
	got, err := s.GetStoredClient(ctx, c.ID)
	mustOK(t, err, "GetStoredClient")
	if len(got.RotatedSecrets) != 2 {
		t.Fatalf("RotatedSecrets: got %+v, want 2 entries", got.RotatedSecrets)
	}
	for i, want := range c.RotatedSecrets {
		if !slices.Equal(got.RotatedSecrets[i].Hash, want.Hash) {
			t.Errorf("RotatedSecrets[%d].Hash: got %x, want %x", i, got.RotatedSecrets[i].Hash, want.Hash)
		}
		sameTime(t, got.RotatedSecrets[i].ExpiresAt, want.ExpiresAt, "RotatedSecrets ExpiresAt")
	}
	hashes := got.GetRotatedHashes()
	if len(hashes) != 1 || string(hashes[0]) != string([]byte{0, 1, 0xff}) {
		t.Errorf("GetRotatedHashes: got %x, want only the unexpired hash", hashes)
	}

	mustOK(t, s.UpdateClient(ctx, c.ID, func(c *storage.Client) error {
		c.RotatedSecrets = c.RotatedSecrets[:1]
		return nil
	}), "UpdateClient")
	got, err = s.GetStoredClient(ctx, c.ID)
	mustOK(t, err, "GetStoredClient after update")
	if len(got.RotatedSecrets) != 1 {
		t.Errorf("RotatedSecrets after update: got %d entries, want 1", len(got.RotatedSecrets))
	}

	plain := newClient("plain")
	mustOK(t, s.CreateClient(ctx, plain), "CreateClient without rotated secrets")
	got, err = s.GetStoredClient(ctx, plain.ID)
	mustOK(t, err, "GetStoredClient")
	if got.RotatedSecrets != nil || got.GetRotatedHashes() != nil {
		t.Errorf("client without rotated secrets: got %+v", got.RotatedSecrets)
	}
}
