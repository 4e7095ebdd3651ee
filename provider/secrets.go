package provider

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"golang.org/x/crypto/hkdf"

	"github.com/consentry/consentry/storage"
)

// Names of the server secrets kept in the database.
const (
	secretTokenHMAC    = "token-hmac"
	secretCookieHash   = "cookie-hash"
	secretCookieBlock  = "cookie-block"
	secretClientHash   = "client-secret-hash"
	serverSecretLength = 32
)

// ServerSecrets are generated on first start and persisted, so that tokens,
// cookies and client secrets stay valid across restarts and instances.
type ServerSecrets struct {
	// TokenHMAC signs fosite's opaque access tokens, refresh tokens and codes.
	TokenHMAC []byte
	// CookieHash and CookieBlock sign and encrypt the browser session cookie.
	CookieHash  []byte
	CookieBlock []byte
	// ClientSecretKey keys the hash of client secrets.
	ClientSecretKey []byte
}

// LoadServerSecrets reads the server secrets, creating any that are missing.
// When secretsKey is set, new secrets are stored encrypted with it and
// encrypted ones are decrypted with it.
func LoadServerSecrets(ctx context.Context, store storage.Secrets, secretsKey string, now func() time.Time) (*ServerSecrets, error) {
	sealer := newSealer(secretsKey)
	var out ServerSecrets
	for name, dst := range map[string]*[]byte{
		secretTokenHMAC:   &out.TokenHMAC,
		secretCookieHash:  &out.CookieHash,
		secretCookieBlock: &out.CookieBlock,
		secretClientHash:  &out.ClientSecretKey,
	} {
		v, err := loadOrCreateSecret(ctx, store, sealer, name, now)
		if err != nil {
			return nil, err
		}
		*dst = v
	}
	return &out, nil
}

func loadOrCreateSecret(ctx context.Context, store storage.Secrets, sealer *sealer, name string, now func() time.Time) ([]byte, error) {
	s, err := store.GetSecret(ctx, name)
	if errors.Is(err, storage.ErrNotFound) {
		value := make([]byte, serverSecretLength)
		if _, err := rand.Read(value); err != nil {
			return nil, fmt.Errorf("generate secret %q: %w", name, err)
		}
		stored, encrypted, err := sealer.seal(value)
		if err != nil {
			return nil, fmt.Errorf("encrypt secret %q: %w", name, err)
		}
		err = store.CreateSecret(ctx, &storage.Secret{Name: name, Value: stored, Encrypted: encrypted, CreatedAt: now()})
		if err == nil {
			return value, nil
		}
		if !errors.Is(err, storage.ErrAlreadyExists) {
			return nil, fmt.Errorf("store secret %q: %w", name, err)
		}
		// Another instance created it first: use theirs.
		s, err = store.GetSecret(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("load secret %q: %w", name, err)
	}
	v, err := sealer.open(s.Value, s.Encrypted)
	if err != nil {
		return nil, fmt.Errorf("decrypt secret %q: %w", name, err)
	}
	return v, nil
}

// EncryptAtRest encrypts with secretsKey the server secrets and private
// signing keys stored unencrypted, as a database used before a secrets key
// was set holds them, and logs how many it encrypted; their values do not
// change, so tokens, cookies and ID tokens issued before stay valid.
// Without a secrets key it does nothing. When a value already encrypted
// does not open with secretsKey, it returns an error and writes nothing.
// Instances starting at once with the key encrypt each value once between
// them. Instances still running without the key keep the values they
// loaded; restarted without it they fail, as when a key was created
// encrypted.
func EncryptAtRest(ctx context.Context, store storage.AtRest, secretsKey string, logger *slog.Logger) error {
	if secretsKey == "" {
		return nil
	}
	secrets, keys, err := store.EncryptAtRest(ctx, atRestSealer{newSealer(secretsKey)})
	if err != nil {
		return fmt.Errorf("encrypt server secrets and signing keys with the secrets key: %w", err)
	}
	if secrets+keys > 0 && logger != nil {
		logger.Info("encrypted with the secrets key the server secrets and signing keys stored before it was set",
			"secrets", secrets, "signing_keys", keys)
	}
	return nil
}

// atRestSealer is the sealer as storage.EncryptAtRest uses it.
type atRestSealer struct{ s *sealer }

func (a atRestSealer) Open(ciphertext []byte) ([]byte, error) { return a.s.open(ciphertext, true) }

func (a atRestSealer) Seal(plaintext []byte) ([]byte, error) {
	sealed, _, err := a.s.seal(plaintext)
	return sealed, err
}

// sealer encrypts values at rest with AES-256-GCM under a key derived from
// the configured secrets key; without one it stores values as they are.
type sealer struct{ aead cipher.AEAD }

var errNoSecretsKey = errors.New("value is encrypted but no secrets key is configured")

func newSealer(secretsKey string) *sealer {
	if secretsKey == "" {
		return &sealer{}
	}
	return newKeyedSealer([]byte(secretsKey), "consentry at-rest v1")
}

// newKeyedSealer derives an AES-256-GCM key for one purpose from material.
func newKeyedSealer(material []byte, purpose string) *sealer {
	key := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, material, nil, []byte(purpose)), key); err != nil {
		panic(fmt.Sprintf("hkdf: %v", err)) // cannot happen: 32 bytes is far below HKDF's limit
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(fmt.Sprintf("aes: %v", err)) // cannot happen: the key is 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("gcm: %v", err))
	}
	return &sealer{aead: aead}
}

func (s *sealer) seal(plain []byte) (stored []byte, encrypted bool, err error) {
	if s.aead == nil {
		return plain, false, nil
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, false, err
	}
	return s.aead.Seal(nonce, nonce, plain, nil), true, nil
}

func (s *sealer) open(stored []byte, encrypted bool) ([]byte, error) {
	if !encrypted {
		return stored, nil
	}
	if s.aead == nil {
		return nil, errNoSecretsKey
	}
	n := s.aead.NonceSize()
	if len(stored) < n {
		return nil, errors.New("ciphertext too short")
	}
	plain, err := s.aead.Open(nil, stored[:n], stored[n:], nil)
	if err != nil {
		return nil, fmt.Errorf("wrong secrets key or corrupted value: %w", err)
	}
	return plain, nil
}

// ClientSecretHasher hashes client secrets with HMAC-SHA-256. Client secrets
// are 256-bit random values generated by the server, so a slow password hash
// would add ~0.4 s to every token request and no security.
type ClientSecretHasher struct{ Key []byte }

// Hash returns HMAC-SHA-256(key, secret).
func (h ClientSecretHasher) Hash(_ context.Context, secret []byte) ([]byte, error) {
	mac := hmac.New(sha256.New, h.Key)
	mac.Write(secret)
	return mac.Sum(nil), nil
}

// Compare checks secret against hash in constant time.
func (h ClientSecretHasher) Compare(ctx context.Context, hash, secret []byte) error {
	want, _ := h.Hash(ctx, secret)
	if !hmac.Equal(hash, want) {
		return errors.New("client secret mismatch")
	}
	return nil
}
