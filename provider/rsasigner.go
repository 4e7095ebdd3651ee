package provider

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/go-jose/go-jose/v3"
)

// Values of Config.RSASigner.
const (
	RSASignerAuto = "auto"
	RSASignerGo   = "go"
)

// An RS256 signature is two thirds of the CPU of a refresh or code exchange
// with an ID token. Go's crypto/rsa computes it in portable constant-time
// code; OpenSSL 3 uses the CPU's vector instructions where it has them and
// was 3.5 times faster on the machines of docs/performance.md (step 25).
// Both produce the same bytes: PKCS #1 v1.5 signatures are deterministic.

// rsaBackend signs an RS256 payload with a private key loaded elsewhere.
type rsaBackend interface {
	signPKCS1v15SHA256(digest []byte) ([]byte, error)
}

// rsaSigners hands out, for each RSA signing key, a JSON Web Key that signs
// through OpenSSL, made once per key id. Keys OpenSSL cannot take stay with
// Go's crypto/rsa.
type rsaSigners struct {
	load   func(*rsa.PrivateKey) (rsaBackend, error)
	logger *slog.Logger

	mu    sync.Mutex
	byKID map[string]*jose.JSONWebKey
}

// newRSASigners returns the signers the configuration asks for, and a
// description of what signs RS256 for the startup log.
func newRSASigners(choice string, logger *slog.Logger) (*rsaSigners, string) {
	if choice == RSASignerGo {
		return nil, "Go crypto/rsa (rsa_signer: go)"
	}
	version, err := loadOpenSSL()
	if err != nil {
		return nil, fmt.Sprintf("Go crypto/rsa (OpenSSL not used: %v)", err)
	}
	return &rsaSigners{load: newOpenSSLRSAKey, logger: logger, byKID: map[string]*jose.JSONWebKey{}}, version
}

// key returns the key to sign with in place of jwk.
func (s *rsaSigners) key(jwk *jose.JSONWebKey) *jose.JSONWebKey {
	if s == nil {
		return jwk
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.byKID[jwk.KeyID]; ok {
		return k
	}
	k, err := s.openSSLKey(jwk)
	if err != nil {
		// The startup log said OpenSSL signs; say which key does not.
		s.logger.Warn("RS256 key signs with Go's crypto/rsa instead of OpenSSL", "kid", jwk.KeyID, "err", err)
		k = jwk
	}
	s.byKID[jwk.KeyID] = k
	return k
}

func (s *rsaSigners) openSSLKey(jwk *jose.JSONWebKey) (*jose.JSONWebKey, error) {
	private, ok := jwk.Key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("not an RSA private key: %T", jwk.Key)
	}
	backend, err := s.load(private)
	if err != nil {
		return nil, err
	}
	if !agreesWithGo(backend, private) {
		return nil, errors.New("its test signature differs from Go's")
	}
	signer := &rsaOpaqueSigner{public: jwk.Public(), backend: backend}
	return &jose.JSONWebKey{Key: signer, KeyID: jwk.KeyID, Algorithm: jwk.Algorithm, Use: jwk.Use}, nil
}

// agreesWithGo checks a loaded key once: its signature of a fixed digest
// must be the one Go computes, so that a broken or mismatched library never
// signs an ID token.
func agreesWithGo(backend rsaBackend, private *rsa.PrivateKey) bool {
	digest := sha256.Sum256([]byte("consentry rsa signer self-check"))
	got, err := backend.signPKCS1v15SHA256(digest[:])
	if err != nil {
		return false
	}
	want, err := rsa.SignPKCS1v15(nil, private, crypto.SHA256, digest[:])
	return err == nil && string(got) == string(want)
}

// rsaOpaqueSigner is a go-jose opaque signer for RS256 over a backend.
type rsaOpaqueSigner struct {
	public  jose.JSONWebKey
	backend rsaBackend
}

var _ jose.OpaqueSigner = (*rsaOpaqueSigner)(nil)

func (s *rsaOpaqueSigner) Public() *jose.JSONWebKey { return &s.public }

func (s *rsaOpaqueSigner) Algs() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.RS256}
}

func (s *rsaOpaqueSigner) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != jose.RS256 {
		return nil, fmt.Errorf("rsa signer: algorithm %s not supported", alg)
	}
	digest := sha256.Sum256(payload)
	sig, err := s.backend.signPKCS1v15SHA256(digest[:])
	if err != nil {
		return nil, fmt.Errorf("rsa signer %q: %w", s.public.KeyID, err)
	}
	return sig, nil
}
