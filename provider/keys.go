package provider

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v3"

	"github.com/consentry/consentry/storage"
)

// Signing algorithms a client may register as id_token_signed_response_alg.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
)

// rsaKeyBits is the RS256 key size: 2048 bits is the interoperable default;
// 4096 bits costs about 20 ms per signature on small machines.
const rsaKeyBits = 2048

// SigningKeys holds the private key used for each algorithm and the public
// key set served at the JWKS endpoint.
type SigningKeys struct {
	byAlg  map[string]*jose.JSONWebKey
	public jose.JSONWebKeySet
}

// Signing returns the private key that signs with alg.
func (k *SigningKeys) Signing(alg string) (*jose.JSONWebKey, bool) {
	key, ok := k.byAlg[alg]
	return key, ok
}

// Public returns the JSON Web Key Set of all public keys.
func (k *SigningKeys) Public() jose.JSONWebKeySet { return k.public }

// LoadSigningKeys reads the signing keys, creating an RS256 and an ES256 key
// when none exists for that algorithm. The newest key of each algorithm signs.
func LoadSigningKeys(ctx context.Context, store storage.Keys, secretsKey string, now func() time.Time) (*SigningKeys, error) {
	sealer := newSealer(secretsKey)
	stored, err := store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	keys := &SigningKeys{byAlg: map[string]*jose.JSONWebKey{}}
	for _, sk := range stored {
		jwk, err := decodeSigningKey(sealer, sk)
		if err != nil {
			return nil, err
		}
		keys.add(jwk)
	}
	for _, alg := range []string{AlgRS256, AlgES256} {
		if _, ok := keys.byAlg[alg]; ok {
			continue
		}
		jwk, err := createSigningKey(ctx, store, sealer, alg, now())
		if err != nil {
			return nil, err
		}
		keys.add(jwk)
	}
	return keys, nil
}

// add records jwk; later keys of one algorithm replace earlier ones for
// signing, and every key stays in the public set so old tokens verify.
func (k *SigningKeys) add(jwk *jose.JSONWebKey) {
	k.byAlg[jwk.Algorithm] = jwk
	k.public.Keys = append(k.public.Keys, jwk.Public())
}

func createSigningKey(ctx context.Context, store storage.Keys, sealer *sealer, alg string, at time.Time) (*jose.JSONWebKey, error) {
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
	kid := base64.RawURLEncoding.EncodeToString(kidBytes)
	sealed, encrypted, err := sealer.seal(der)
	if err != nil {
		return nil, fmt.Errorf("encrypt %s key: %w", alg, err)
	}
	sk := storage.SigningKey{KID: kid, Algorithm: alg, PrivateKey: sealed, Encrypted: encrypted, CreatedAt: at}
	if err := store.CreateSigningKey(ctx, &sk); err != nil {
		return nil, fmt.Errorf("store %s key: %w", alg, err)
	}
	return &jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: alg, Use: "sig"}, nil
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
