//go:build linux && cgo

package provider

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/golang-fips/openssl/v2"
	"github.com/golang-fips/openssl/v2/bbig"
)

// libcrypto is loaded with dlopen at first use: the binary has no link-time
// dependency on OpenSSL and runs, with Go's signatures, where it is missing.
const libcrypto = "libcrypto.so.3"

var loadOpenSSL = sync.OnceValues(func() (string, error) {
	if err := openssl.Init(libcrypto); err != nil {
		return "", fmt.Errorf("load %s: %w", libcrypto, err)
	}
	return openssl.VersionText(), nil
})

type opensslRSAKey struct{ key *openssl.PrivateKeyRSA }

func newOpenSSLRSAKey(private *rsa.PrivateKey) (rsaBackend, error) {
	if len(private.Primes) != 2 {
		return nil, fmt.Errorf("rsa key with %d primes: OpenSSL takes two", len(private.Primes))
	}
	// The CRT values are computed here rather than by Precompute, which
	// would write into a key that other requests sign with.
	p, q, one := private.Primes[0], private.Primes[1], big.NewInt(1)
	dp := new(big.Int).Mod(private.D, new(big.Int).Sub(p, one))
	dq := new(big.Int).Mod(private.D, new(big.Int).Sub(q, one))
	qinv := new(big.Int).ModInverse(q, p)
	if qinv == nil {
		return nil, errors.New("rsa key: q has no inverse modulo p")
	}
	key, err := openssl.NewPrivateKeyRSA(bbig.Enc(private.N), bbig.Enc(big.NewInt(int64(private.E))), bbig.Enc(private.D),
		bbig.Enc(p), bbig.Enc(q), bbig.Enc(dp), bbig.Enc(dq), bbig.Enc(qinv))
	if err != nil {
		return nil, fmt.Errorf("load rsa key into OpenSSL: %w", err)
	}
	return opensslRSAKey{key: key}, nil
}

func (k opensslRSAKey) signPKCS1v15SHA256(digest []byte) ([]byte, error) {
	return openssl.SignRSAPKCS1v15(k.key, crypto.SHA256, digest)
}
