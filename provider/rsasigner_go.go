//go:build !linux || !cgo

package provider

import (
	"crypto/rsa"
	"errors"
)

func loadOpenSSL() (string, error) {
	return "", errors.New("OpenSSL signing is built for linux with cgo only")
}

func newOpenSSLRSAKey(*rsa.PrivateKey) (rsaBackend, error) {
	return nil, errors.New("OpenSSL signing is built for linux with cgo only")
}
