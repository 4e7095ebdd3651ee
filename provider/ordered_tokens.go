package provider

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
)

// orderedTokens issues access tokens, refresh tokens and authorization codes
// whose signature, the key they are stored under, begins with their issue
// time. fosite's signatures are random, so every stored token lands on a
// random leaf page of its table's signature index, and so does every row
// the collector deletes; in issue order they share the last pages, and a
// commit writes far fewer pages to the WAL.
//
// The tokens keep fosite's format (prefix, base64url key, ".", base64url
// HMAC of the key under the global secret), and fosite validates them
// unchanged.
//
// A signature is only ever derived from a token whose prefix names its kind
// and whose HMAC verifies: the stored key is the HMAC alone, so a string that
// keeps a token's HMAC with another key part would otherwise find the same
// row, and whoever can read the token tables could mint working strings.
// Every path that looks a presented token up therefore verifies it first. Only the key differs: 6 bytes of Unix milliseconds
// (big-endian) then 27 random bytes, 33 bytes where fosite's has 32 random
// ones, so its length tells the two apart. An ordered token's signature is
// the time in hex (which sorts as the time does, unlike base64url) followed
// by the HMAC; any other token's is fosite's, the HMAC alone, so tokens
// issued before keep working.
type orderedTokens struct {
	*oauth2.HMACSHAStrategy
	config orderedTokensConfig
	now    func() time.Time
}

// orderedTokensConfig is the part of fosite's configuration the tokens are
// made with, the same fosite validates them with.
type orderedTokensConfig interface {
	GetGlobalSecret(ctx context.Context) ([]byte, error)
	GetHMACHasher(ctx context.Context) func() hash.Hash
}

var _ oauth2.CoreStrategy = (*orderedTokens)(nil)

const (
	orderedTimeBytes   = 6
	orderedRandomBytes = 27
	// hmacKeyBytes is how much of the global secret fosite's HMAC uses.
	hmacKeyBytes = 32
	// Prefixes fosite's HMACSHAStrategy gives each kind of token.
	accessTokenPrefix   = "ory_at_"
	refreshTokenPrefix  = "ory_rt_"
	authorizeCodePrefix = "ory_ac_"
)

var (
	tokenEncoding = base64.RawURLEncoding
	// strictEncoding refuses encodings with stray trailing bits, so that one
	// token has exactly one spelling.
	strictEncoding = base64.RawURLEncoding.Strict()
	orderedKeyLen  = tokenEncoding.EncodedLen(orderedTimeBytes + orderedRandomBytes)
	orderedTimeLen = tokenEncoding.EncodedLen(orderedTimeBytes)
)

func newOrderedTokens(core *oauth2.HMACSHAStrategy, config orderedTokensConfig) *orderedTokens {
	return &orderedTokens{HMACSHAStrategy: core, config: config, now: time.Now}
}

func (s *orderedTokens) GenerateAccessToken(ctx context.Context, _ fosite.Requester) (string, string, error) {
	return s.generate(ctx, accessTokenPrefix)
}

func (s *orderedTokens) AccessTokenSignature(ctx context.Context, token string) string {
	return s.verifiedSignature(ctx, token, accessTokenPrefix)
}

func (s *orderedTokens) GenerateRefreshToken(ctx context.Context, _ fosite.Requester) (string, string, error) {
	return s.generate(ctx, refreshTokenPrefix)
}

func (s *orderedTokens) RefreshTokenSignature(ctx context.Context, token string) string {
	return s.verifiedSignature(ctx, token, refreshTokenPrefix)
}

func (s *orderedTokens) GenerateAuthorizeCode(ctx context.Context, _ fosite.Requester) (string, string, error) {
	return s.generate(ctx, authorizeCodePrefix)
}

func (s *orderedTokens) AuthorizeCodeSignature(ctx context.Context, token string) string {
	return s.verifiedSignature(ctx, token, authorizeCodePrefix)
}

// generate returns a new token with prefix and its signature.
func (s *orderedTokens) generate(ctx context.Context, prefix string) (token, signature string, err error) {
	secret, err := s.config.GetGlobalSecret(ctx)
	if err != nil {
		return "", "", fmt.Errorf("token secret: %w", err)
	}
	if len(secret) < hmacKeyBytes {
		return "", "", fmt.Errorf("token secret is %d bytes, want at least %d", len(secret), hmacKeyBytes)
	}
	var key [orderedTimeBytes + orderedRandomBytes]byte
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(s.now().UnixMilli()))
	copy(key[:orderedTimeBytes], ms[8-orderedTimeBytes:])
	if _, err := rand.Read(key[orderedTimeBytes:]); err != nil {
		return "", "", fmt.Errorf("token key: %w", err)
	}
	encodedMAC := tokenEncoding.EncodeToString(s.mac(ctx, secret, key[:]))
	return prefix + tokenEncoding.EncodeToString(key[:]) + "." + encodedMAC,
		hex.EncodeToString(key[:orderedTimeBytes]) + encodedMAC, nil
}

// mac is the HMAC of a token's key as fosite computes it.
func (s *orderedTokens) mac(ctx context.Context, secret, key []byte) []byte {
	newHash := s.config.GetHMACHasher(ctx)
	if newHash == nil {
		newHash = sha512.New512_256 // fosite's default
	}
	mac := hmac.New(newHash, secret[:hmacKeyBytes])
	mac.Write(key)
	return mac.Sum(nil)
}

// verifiedSignature returns the signature token is stored under, or "" (which
// no stored token has) unless token begins with prefix and its HMAC verifies
// under the global secret. The comparison is constant-time.
func (s *orderedTokens) verifiedSignature(ctx context.Context, token, prefix string) string {
	rest, ok := strings.CutPrefix(token, prefix)
	if !ok {
		return ""
	}
	signature := orderedSignature(rest, "")
	if signature == "" {
		return ""
	}
	encodedKey, encodedMAC, _ := strings.Cut(rest, ".")
	key, err := strictEncoding.DecodeString(encodedKey)
	if err != nil {
		return ""
	}
	presented, err := strictEncoding.DecodeString(encodedMAC)
	if err != nil {
		return ""
	}
	secret, err := s.config.GetGlobalSecret(ctx)
	if err != nil || len(secret) < hmacKeyBytes {
		return ""
	}
	if !hmac.Equal(s.mac(ctx, secret, key), presented) {
		return ""
	}
	return signature
}

// orderedSignature returns the signature token is stored under: "" for a
// malformed token (as fosite), the time in hex and the HMAC for an ordered
// one, the HMAC alone for any other.
func orderedSignature(token, prefix string) string {
	key, mac, ok := strings.Cut(strings.TrimPrefix(token, prefix), ".")
	if !ok || key == "" || mac == "" || strings.Contains(mac, ".") {
		return ""
	}
	if len(key) != orderedKeyLen {
		return mac
	}
	issued, err := tokenEncoding.DecodeString(key[:orderedTimeLen])
	if err != nil {
		return ""
	}
	return hex.EncodeToString(issued) + mac
}
