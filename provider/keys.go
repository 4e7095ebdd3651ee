package provider

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/consentry/consentry/storage"
)

// Signing algorithms a client may register as id_token_signed_response_alg.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
)

// signingAlgs are the algorithms that always have a key.
var signingAlgs = []string{AlgRS256, AlgES256}

// rsaKeyBits is the RS256 key size: 2048 bits is the interoperable default;
// 4096 bits costs about 20 ms per signature on small machines.
const rsaKeyBits = 2048

// maxClockSkew is how far apart the clocks of instances and relying parties
// may be; superseded keys stay published this much longer.
const maxClockSkew = time.Minute

// Key states, as ListKeys reports them.
const (
	// KeyPending: published, signs from ActivatesAt.
	KeyPending = "pending"
	// KeySigning: published, the newest active key of its algorithm.
	KeySigning = "signing"
	// KeyVerifying: superseded by a newer key, still published so that the
	// ID tokens it signed verify until they expire.
	KeyVerifying = "verifying-only"
	// KeyExpired: superseded long enough ago that no token it signed is
	// still valid; no longer published.
	KeyExpired = "expired"
	// KeyRetired: taken out of service by an operator; not published.
	KeyRetired = "retired"
)

// KeyInfo describes one signing key; it never holds key material.
type KeyInfo struct {
	KID         string     `json:"kid"`
	Algorithm   string     `json:"alg"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatesAt time.Time  `json:"activates_at"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
	// SupersededAt is when a newer key of the algorithm started signing.
	SupersededAt *time.Time `json:"superseded_at,omitempty"`
	Status       string     `json:"status"`
	// Published reports whether the key is in the JWKS.
	Published bool `json:"published"`
}

// keyRetention is how long a superseded key stays in the JWKS: the ID token
// lifespan, plus the propagation delay (an instance that learns of a key
// made active at once keeps signing with the old one until its next
// reload), plus clock skew.
func keyRetention(cfg Config) time.Duration {
	return cfg.IDTokenLifespan.Std() + cfg.KeyPropagationDelay.Std() + maxClockSkew
}

// keyStates judges every key at now. A key signs from its ActivatesAt until
// the next unretired key of its algorithm activates.
func keyStates(keys []storage.SigningKey, now time.Time, retention time.Duration) []KeyInfo {
	sorted := slices.Clone(keys)
	slices.SortStableFunc(sorted, compareActivation)
	out := make([]KeyInfo, len(sorted))
	// newestActive[alg] is the index of the key that signs now.
	newestActive := map[string]int{}
	for i, k := range sorted {
		out[i] = KeyInfo{KID: k.KID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, RetiredAt: k.RetiredAt}
		if k.RetiredAt != nil || k.ActivatesAt.After(now) {
			continue
		}
		if prev, ok := newestActive[k.Algorithm]; ok {
			at := k.ActivatesAt
			out[prev].SupersededAt = &at
		}
		newestActive[k.Algorithm] = i
	}
	for i := range out {
		k := &out[i]
		switch {
		case k.RetiredAt != nil:
			k.Status = KeyRetired
		case k.ActivatesAt.After(now):
			k.Status, k.Published = KeyPending, true
		case k.SupersededAt == nil:
			k.Status, k.Published = KeySigning, true
		case now.Before(k.SupersededAt.Add(retention)):
			k.Status, k.Published = KeyVerifying, true
		default:
			k.Status = KeyExpired
		}
	}
	return out
}

// compareActivation orders keys by when they start signing, then by
// creation and kid, so that every instance picks the same key.
func compareActivation(a, b storage.SigningKey) int {
	return cmp.Or(a.ActivatesAt.Compare(b.ActivatesAt), a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.KID, b.KID))
}

// KeySet holds the signing keys loaded from the store. Which key signs and
// which are published is decided at each call from the clock, so a key
// activates on time between reloads. It is safe for concurrent use.
type KeySet struct {
	store     storage.Keys
	sealer    *sealer
	now       func() time.Time
	retention time.Duration

	mu sync.RWMutex
	// keys are the unretired keys without their private bytes, and jwks
	// their decoded private keys by kid.
	keys []storage.SigningKey
	jwks map[string]*jose.JSONWebKey
}

// LoadKeySet loads the signing keys. On the first start (no unretired key
// of an algorithm) it creates an RS256 and an ES256 key that sign at once;
// instances starting together agree on one key per algorithm, as the store
// creates one only when none exists.
func LoadKeySet(ctx context.Context, store storage.Keys, cfg Config, now func() time.Time) (*KeySet, error) {
	if now == nil {
		now = time.Now
	}
	ks := &KeySet{store: store, sealer: newSealer(cfg.SecretsKey), now: now, retention: keyRetention(cfg), jwks: map[string]*jose.JSONWebKey{}}
	if _, err := createKeysIfNoneSince(ctx, store, ks.sealer, time.Time{}, now(), 0); err != nil {
		return nil, fmt.Errorf("create initial signing keys: %w", err)
	}
	if err := ks.Reload(ctx); err != nil {
		return nil, err
	}
	return ks, nil
}

// Reload reads the keys from the store, picking up keys rotated or retired
// by another instance or the CLI. On error the loaded keys stay in use.
func (ks *KeySet) Reload(ctx context.Context) error {
	stored, err := ks.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("reload signing keys: %w", err)
	}
	ks.mu.RLock()
	known := ks.jwks
	ks.mu.RUnlock()

	keys := make([]storage.SigningKey, 0, len(stored))
	jwks := make(map[string]*jose.JSONWebKey, len(stored))
	for _, sk := range stored {
		if sk.RetiredAt != nil {
			continue
		}
		jwk, ok := known[sk.KID]
		if !ok {
			// Decoded once per key, not at every reload.
			if jwk, err = decodeSigningKey(ks.sealer, sk); err != nil {
				return fmt.Errorf("reload signing keys: %w", err)
			}
		}
		sk.PrivateKey = nil
		keys = append(keys, sk)
		jwks[sk.KID] = jwk
	}
	slices.SortStableFunc(keys, compareActivation)

	ks.mu.Lock()
	ks.keys, ks.jwks = keys, jwks
	ks.mu.Unlock()
	return nil
}

// Signing returns the private key that signs with alg now: the newest
// unretired key of alg whose ActivatesAt has come.
func (ks *KeySet) Signing(alg string) (*jose.JSONWebKey, bool) {
	now := ks.now()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	for i := len(ks.keys) - 1; i >= 0; i-- {
		if k := ks.keys[i]; k.Algorithm == alg && !k.ActivatesAt.After(now) {
			return ks.jwks[k.KID], true
		}
	}
	return nil, false
}

// Public returns the JSON Web Key Set: the pending keys (published before
// they sign), the signing keys, and superseded keys until every ID token
// they signed has expired.
func (ks *KeySet) Public() jose.JSONWebKeySet {
	now := ks.now()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range keyStates(ks.keys, now, ks.retention) {
		if k.Published {
			set.Keys = append(set.Keys, ks.jwks[k.KID].Public())
		}
	}
	return set
}

// publicKey returns the published key with this kid.
func (ks *KeySet) publicKey(kid string) (jose.JSONWebKey, bool) {
	for _, k := range ks.Public().Keys {
		if k.KeyID == kid {
			return k, true
		}
	}
	return jose.JSONWebKey{}, false
}

// signingKeyGetter returns the current key of alg, for fosite's signers.
func (ks *KeySet) signingKeyGetter(alg string) func(context.Context) (any, error) {
	return func(context.Context) (any, error) {
		key, ok := ks.Signing(alg)
		if !ok {
			return nil, fosite.ErrServerError.WithDebugf("no signing key for %s", alg)
		}
		return key, nil
	}
}

// RunKeyReloader reloads the keys every interval until ctx ends, so that
// keys rotated or retired elsewhere are used here too. A failed reload is
// logged and retried at the next tick; the loaded keys stay in use.
func (ks *KeySet) RunKeyReloader(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		logger.Warn("signing key reload disabled: the interval must be positive", "interval", interval)
		return
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := ks.Reload(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("signing key reload failed", "err", err)
		}
	}
}

// RotateKeys creates a new RS256 and a new ES256 key that sign from
// activateAt (at the earliest now); the keys they supersede stay published
// until the ID tokens they signed have expired. For several instances,
// activateAt should be at least the key propagation delay after now, so
// that every instance and relying party knows the keys before they sign.
func RotateKeys(ctx context.Context, store storage.Keys, secretsKey string, now, activateAt time.Time) ([]KeyInfo, error) {
	if activateAt.Before(now) {
		activateAt = now
	}
	sealer := newSealer(secretsKey)
	if err := checkSealer(ctx, store, sealer); err != nil {
		return nil, err
	}
	var out []KeyInfo
	for _, alg := range signingAlgs {
		sk, err := newSigningKey(sealer, alg, now, activateAt)
		if err != nil {
			return nil, err
		}
		if err := store.CreateSigningKey(ctx, sk); err != nil {
			return nil, fmt.Errorf("store %s key: %w", alg, err)
		}
		out = append(out, KeyInfo{KID: sk.KID, Algorithm: alg, CreatedAt: now, ActivatesAt: activateAt, Status: KeyPending, Published: true})
		if !activateAt.After(now) {
			out[len(out)-1].Status = KeySigning
		}
	}
	return out, nil
}

// checkSealer makes sure that sealer opens the stored keys, so that a key
// created with a missing or wrong secrets key (a CLI run without the
// server's setting) is refused instead of stored in a form the server
// cannot read, or in the clear beside encrypted ones.
func checkSealer(ctx context.Context, store storage.Keys, sealer *sealer) error {
	keys, err := store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("list signing keys: %w", err)
	}
	for _, k := range slices.Backward(keys) {
		if k.RetiredAt != nil {
			continue
		}
		if !k.Encrypted && sealer.aead != nil {
			// Keys stored before a secrets key was set: new ones are
			// encrypted, and the server reads both.
			return nil
		}
		if _, err := sealer.open(k.PrivateKey, k.Encrypted); err != nil {
			return fmt.Errorf("signing key %q: %w (use the server's secrets key)", k.KID, err)
		}
		return nil
	}
	return nil
}

// ErrSigningKeyInUse refuses to retire the key that signs now: ID tokens
// of its algorithm could not be issued until another key activates.
var ErrSigningKeyInUse = errors.New("the key signs ID tokens now: run 'consentry keys rotate --now' first, then retire it")

// RetireKey takes the key out of service at once: it leaves the JWKS at the
// next reload of each instance, and ID tokens it signed stop verifying.
// ErrNotFound (as `signing key "X" not found`) for an unknown kid,
// ErrSigningKeyInUse for the key that signs now. Retiring a retired key
// changes nothing.
func RetireKey(ctx context.Context, store storage.Keys, kid string, now time.Time) error {
	keys, err := store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("retire signing key: %w", err)
	}
	// The retention does not matter for telling the signing key.
	for _, k := range keyStates(keys, now, 0) {
		if k.KID != kid {
			continue
		}
		if k.Status == KeySigning {
			return fmt.Errorf("retire signing key %q: %w", kid, ErrSigningKeyInUse)
		}
		if err := store.RetireSigningKey(ctx, kid, now); err != nil {
			return fmt.Errorf("retire signing key: %w", err)
		}
		return nil
	}
	return notFound("signing key", kid)
}

// ListKeys returns every signing key with its state at now under cfg's
// lifespans, in the order they start signing.
func ListKeys(ctx context.Context, store storage.Keys, cfg Config, now time.Time) ([]KeyInfo, error) {
	keys, err := store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return keyStates(keys, now, keyRetention(cfg)), nil
}

// keyCheckInterval is how often automatic rotation looks at the keys' age.
const keyCheckInterval = time.Minute

// RotateKeysIfDue creates a new key of each algorithm whose newest
// unretired key was created longer than interval ago; the new key signs
// from now+delay. Instances calling it together create one key per
// algorithm between them. It returns the keys it created.
func RotateKeysIfDue(ctx context.Context, store storage.Keys, secretsKey string, interval, delay time.Duration, now time.Time) ([]KeyInfo, error) {
	created, err := createKeysIfNoneSince(ctx, store, newSealer(secretsKey), now.Add(-interval), now, delay)
	if err != nil {
		return created, fmt.Errorf("rotate signing keys: %w", err)
	}
	return created, nil
}

// createKeysIfNoneSince creates, for each algorithm without an unretired key
// created at or after since, a key that signs from now+delay. It reads the
// keys first so that a new RSA key, slow to generate, is made only when
// probably needed; the store's conditional insert settles races.
func createKeysIfNoneSince(ctx context.Context, store storage.Keys, sealer *sealer, since, now time.Time, delay time.Duration) ([]KeyInfo, error) {
	keys, err := store.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []KeyInfo
	for _, alg := range signingAlgs {
		if slices.ContainsFunc(keys, func(k storage.SigningKey) bool {
			return k.Algorithm == alg && k.RetiredAt == nil && !k.CreatedAt.Before(since)
		}) {
			continue
		}
		sk, err := newSigningKey(sealer, alg, now, now.Add(delay))
		if err != nil {
			return out, err
		}
		created, err := store.CreateSigningKeyIfNoneSince(ctx, sk, alg, since)
		if err != nil {
			return out, fmt.Errorf("create %s key: %w", alg, err)
		}
		if created {
			info := KeyInfo{KID: sk.KID, Algorithm: alg, CreatedAt: now, ActivatesAt: sk.ActivatesAt, Status: KeySigning, Published: true}
			if delay > 0 {
				info.Status = KeyPending
			}
			out = append(out, info)
		}
	}
	return out, nil
}

// RunKeyRotation calls RotateKeysIfDue at once and then every minute (or
// every interval, when shorter) until ctx ends. Failures are logged and
// retried at the next check.
func RunKeyRotation(ctx context.Context, store storage.Keys, secretsKey string, interval, delay time.Duration, now func() time.Time, logger *slog.Logger) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		return
	}
	ticker := time.NewTicker(min(keyCheckInterval, interval))
	defer ticker.Stop()
	for {
		created, err := RotateKeysIfDue(ctx, store, secretsKey, interval, delay, now())
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			logger.Warn("signing key rotation failed", "err", err)
		}
		for _, k := range created {
			logger.Info("signing key rotated", "kid", k.KID, "alg", k.Algorithm, "activates_at", k.ActivatesAt)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// newSigningKey generates a key of alg and seals it for storage.
func newSigningKey(sealer *sealer, alg string, createdAt, activatesAt time.Time) (*storage.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaKeyBits)
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("unsupported signing algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode %s key: %w", alg, err)
	}
	kidBytes := make([]byte, 12)
	if _, err := rand.Read(kidBytes); err != nil {
		return nil, fmt.Errorf("generate key id: %w", err)
	}
	sealed, encrypted, err := sealer.seal(der)
	if err != nil {
		return nil, fmt.Errorf("encrypt %s key: %w", alg, err)
	}
	return &storage.SigningKey{
		KID:         hex.EncodeToString(kidBytes), // hex: never starts with "-", which a command line would take for a flag
		Algorithm:   alg,
		PrivateKey:  sealed,
		Encrypted:   encrypted,
		CreatedAt:   createdAt,
		ActivatesAt: activatesAt,
	}, nil
}

func decodeSigningKey(sealer *sealer, sk storage.SigningKey) (*jose.JSONWebKey, error) {
	der, err := sealer.open(sk.PrivateKey, sk.Encrypted)
	if err != nil {
		return nil, fmt.Errorf("decrypt signing key %q: %w", sk.KID, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse signing key %q: %w", sk.KID, err)
	}
	switch priv.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
	default:
		return nil, errors.New("signing key " + sk.KID + ": unsupported key type")
	}
	return &jose.JSONWebKey{Key: priv, KeyID: sk.KID, Algorithm: sk.Algorithm, Use: "sig"}, nil
}

// publishedKeySigner is the jwt.Signer fosite uses besides ID tokens, to
// read an id_token_hint: it verifies with the published key the token names
// (kid), so that hints signed before a rotation, or with ES256, verify.
type publishedKeySigner struct {
	jwt.DefaultSigner // generates with the current RS256 key
	keys              *KeySet
}

var _ jwt.Signer = (*publishedKeySigner)(nil)

func newPublishedKeySigner(keys *KeySet) *publishedKeySigner {
	return &publishedKeySigner{DefaultSigner: jwt.DefaultSigner{GetPrivateKey: keys.signingKeyGetter(AlgRS256)}, keys: keys}
}

func (s *publishedKeySigner) keyFunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	key, ok := s.keys.publicKey(kid)
	if !ok {
		return nil, fmt.Errorf("no published key with kid %q", kid)
	}
	if string(t.Method) != key.Algorithm {
		return nil, fmt.Errorf("token algorithm %q does not match key %q (%s)", t.Method, kid, key.Algorithm)
	}
	return key.Key, nil
}

// Decode parses and verifies a token signed by any published key.
func (s *publishedKeySigner) Decode(_ context.Context, token string) (*jwt.Token, error) {
	return jwt.Parse(token, s.keyFunc)
}

// Validate verifies a token signed by any published key and returns its signature.
func (s *publishedKeySigner) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

// RunKeyMaintenance keeps the signing keys current until ctx ends: it
// reloads them every quarter of the key propagation delay, so that a key
// created elsewhere is known here well before it signs, and, when
// KeyRotationInterval is set, rotates them once the newest is that old.
func (p *Provider) RunKeyMaintenance(ctx context.Context) {
	logger := p.Logger.With("component", "keys")
	var wg sync.WaitGroup
	wg.Go(func() { p.Keys.RunKeyReloader(ctx, p.Config.KeyPropagationDelay.Std()/4, logger) })
	if interval := p.Config.KeyRotationInterval.Std(); interval > 0 {
		wg.Go(func() {
			RunKeyRotation(ctx, p.Store, p.Config.SecretsKey, interval, p.Config.KeyPropagationDelay.Std(), p.Now, logger)
		})
	}
	wg.Wait()
}
