package provider

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// openSSLSigners returns the signers "auto" chooses; on Linux with cgo,
// where Consentry is deployed, OpenSSL 3 must load.
func openSSLSigners(t *testing.T) *rsaSigners {
	t.Helper()
	signers, signedBy := newRSASigners(RSASignerAuto, slog.New(slog.DiscardHandler))
	if signers == nil {
		if runtime.GOOS == "linux" {
			t.Fatalf("rsa_signer auto fell back to Go on Linux: %s (the system needs libcrypto.so.3, Debian's libssl3)", signedBy)
		}
		t.Skipf("OpenSSL signing is not built here: %s", signedBy)
	}
	return signers
}

// PKCS #1 v1.5 signatures are deterministic: OpenSSL's must be Go's, byte
// for byte, for keys of the sizes Consentry generates and accepts.
func TestOpenSSLSignsAsGoDoes(t *testing.T) {
	signers := openSSLSigners(t)
	for _, bits := range []int{2048, 3072} {
		private, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		jwk := signers.key(&jose.JSONWebKey{Key: private, KeyID: fmt.Sprintf("k-%d", bits), Algorithm: AlgRS256, Use: "sig"})
		signer, ok := jwk.Key.(*rsaOpaqueSigner)
		if !ok {
			t.Fatalf("%d bits: key not signed through OpenSSL (%T)", bits, jwk.Key)
		}
		for _, payload := range []string{"", "header.claims", "a longer payload, as an ID token's would be"} {
			got, err := signer.SignPayload([]byte(payload), jose.RS256)
			if err != nil {
				t.Fatalf("%d bits: sign: %v", bits, err)
			}
			digest := sha256.Sum256([]byte(payload))
			want, err := rsa.SignPKCS1v15(nil, private, crypto.SHA256, digest[:])
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("%d bits, payload %q: OpenSSL's signature differs from Go's", bits, payload)
			}
		}
		if _, err := signer.SignPayload([]byte("x"), jose.RS384); err == nil {
			t.Errorf("%d bits: signed with RS384, which it does not offer", bits)
		}
	}
}

// A key that cannot be loaded, or whose loaded signature is not Go's, stays
// with Go's crypto/rsa; the choice is made once per key id.
func TestRSASignersFallBackPerKey(t *testing.T) {
	private, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	loads := 0
	wrong := &rsaSigners{logger: logger, byKID: map[string]*jose.JSONWebKey{}, load: func(*rsa.PrivateKey) (rsaBackend, error) {
		loads++
		return fixedSignature("not a signature"), nil
	}}
	jwk := &jose.JSONWebKey{Key: private, KeyID: "k1", Algorithm: AlgRS256}
	for range 2 {
		if got := wrong.key(jwk); got != jwk {
			t.Fatalf("a backend that signs wrongly was used: %T", got.Key)
		}
	}
	if loads != 1 {
		t.Errorf("key loaded %d times, want once per key id", loads)
	}
	if got := strings.Count(logs.String(), "kid=k1"); got != 1 || !strings.Contains(logs.String(), "differs from Go") {
		t.Errorf("want one warning naming the key and the mismatch, got %q", logs.String())
	}

	logs.Reset()
	unloadable := &rsaSigners{logger: logger, byKID: map[string]*jose.JSONWebKey{}, load: func(*rsa.PrivateKey) (rsaBackend, error) {
		return nil, errors.New("library refused the key")
	}}
	if got := unloadable.key(jwk); got != jwk {
		t.Fatalf("a key OpenSSL could not load was replaced: %T", got.Key)
	}
	if !strings.Contains(logs.String(), "kid=k1") || !strings.Contains(logs.String(), "library refused the key") {
		t.Errorf("want a warning naming the key and the load error, got %q", logs.String())
	}
	if got := (*rsaSigners)(nil).key(jwk); got != jwk {
		t.Error("rsa_signer go: the key was replaced")
	}
	if signers, _ := newRSASigners(RSASignerGo, slog.New(slog.DiscardHandler)); signers != nil {
		t.Error("rsa_signer go chose OpenSSL")
	}
}

type fixedSignature string

func (f fixedSignature) signPKCS1v15SHA256([]byte) ([]byte, error) { return []byte(f), nil }

// ID tokens signed through OpenSSL carry the signing key's id and verify
// against the published JWKS, as a relying party checks them.
func TestIDTokensSignedThroughOpenSSLVerify(t *testing.T) {
	signers := openSSLSigners(t)
	p := newBenchProvider(t)
	raw := issueIDTokenWith(t, p, AlgRS256, signers)
	signing, _ := p.Keys.Signing(AlgRS256)
	if header := jwtHeaderOf(t, raw); header["alg"] != AlgRS256 || header["kid"] != signing.KeyID {
		t.Errorf("header %v, want RS256 and kid %q", header, signing.KeyID)
	}
	if _, ok := signers.key(signing).Key.(*rsaOpaqueSigner); !ok {
		t.Fatal("the provider's RS256 key is not signed through OpenSSL")
	}
	idToken, err := jwksVerifier(t, p).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("verify against the JWKS: %v", err)
	}
	if idToken.Subject != "sub-alice" {
		t.Errorf("subject %q", idToken.Subject)
	}
}

// The provider's own ID token strategy signs RS256 through OpenSSL under
// the default configuration, and through Go with rsa_signer: go.
func TestProviderSignsRS256ThroughTheConfiguredSigner(t *testing.T) {
	openSSLSigners(t)
	for _, tc := range []struct {
		choice     string
		wantOpaque bool
	}{{"", true}, {RSASignerAuto, true}, {RSASignerGo, false}} {
		cfg := DefaultConfig()
		cfg.RSASigner = tc.choice
		p, err := New(t.Context(), cfg, openTestStore(t), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		strategy := tokenEndpointHandler[*openid.OpenIDConnectRefreshHandler](t, p).IDTokenStrategy.(*compose.CommonStrategy).OpenIDConnectTokenStrategy.(*idTokenStrategy)
		signer := strategy.byAlg[AlgRS256].(*openid.DefaultStrategy).Signer.(*jwt.DefaultSigner)
		key, err := signer.GetPrivateKey(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		_, opaque := key.(*jose.JSONWebKey).Key.(*rsaOpaqueSigner)
		if opaque != tc.wantOpaque {
			t.Errorf("rsa_signer %q: signs through OpenSSL %v, want %v", tc.choice, opaque, tc.wantOpaque)
		}
	}
}
