package provider

import (
	"context"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"

	"github.com/consentry/consentry/storage"
)

// benchRequester is a token request as the code exchange sees it: a
// confidential client, a signed-in user's session, openid and offline
// access granted.
func benchRequester(alg string) *fosite.AccessRequest {
	now := time.Now().UTC()
	user := &storage.User{Subject: "01JBENCHSUBJECT0000000000", Username: "alice", Name: "Alice Example", Email: "alice@example.com", EmailVerified: true}
	granted := fosite.Arguments{"openid", "profile", "email", "offline_access"}
	session := NewSession(user, "", now.Add(-time.Minute), now.Add(-time.Minute), granted)
	session.SetExpiresAt(fosite.AccessToken, now.Add(15*time.Minute))
	session.SetExpiresAt(fosite.RefreshToken, now.Add(30*24*time.Hour))
	ar := fosite.NewAccessRequest(session)
	ar.Client = &storage.Client{ID: "bench-app", Scopes: granted, IDTokenSignedResponseAlg: alg,
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"}}
	ar.GrantTypes = fosite.Arguments{"authorization_code"}
	ar.RequestedScope, ar.GrantedScope = granted, granted
	ar.Form = url.Values{"nonce": {"n-0123456789abcdef"}}
	return ar
}

// BenchmarkHMACTokens generates and validates access and refresh tokens
// with fosite's HMAC strategy, keyed as the provider keys it.
func BenchmarkHMACTokens(b *testing.B) {
	p := newBenchProvider(b)
	strategy := compose.NewOAuth2HMACStrategy(p.fositeConfig())
	ctx := context.Background()
	ar := benchRequester(AlgRS256)
	access, _, err := strategy.GenerateAccessToken(ctx, ar)
	if err != nil {
		b.Fatal(err)
	}
	refresh, _, err := strategy.GenerateRefreshToken(ctx, ar)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("generate_access", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := strategy.GenerateAccessToken(ctx, ar); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("generate_refresh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := strategy.GenerateRefreshToken(ctx, ar); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("validate_access", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := strategy.ValidateAccessToken(ctx, ar, access); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("validate_refresh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := strategy.ValidateRefreshToken(ctx, ar, refresh); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("signature", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = strategy.AccessTokenSignature(ctx, access)
		}
	})
}

// BenchmarkIDTokenSigning signs ID tokens through the provider's strategy,
// which picks the key by the client's id_token_signed_response_alg.
// RS256 is measured with Go's crypto/rsa and with OpenSSL (rsa_signer).
func BenchmarkIDTokenSigning(b *testing.B) {
	p := newBenchProvider(b)
	signers, _ := newRSASigners(RSASignerAuto, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	for _, bc := range []struct {
		name, alg string
		signers   *rsaSigners
	}{{"RS256-go", AlgRS256, nil}, {"RS256-openssl", AlgRS256, signers}, {"ES256", AlgES256, nil}} {
		alg := bc.alg
		strategy := newIDTokenStrategy(p.Keys, p.fositeConfig(), newSigningSlots(0), bc.signers)
		b.Run(bc.name, func(b *testing.B) {
			if bc.name == "RS256-openssl" && bc.signers == nil {
				b.Skip("OpenSSL is not available here")
			}
			ar := benchRequester(alg)
			if _, err := strategy.GenerateIDToken(ctx, time.Hour, ar); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := strategy.GenerateIDToken(ctx, time.Hour, ar); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
