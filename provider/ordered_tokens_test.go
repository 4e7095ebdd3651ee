package provider

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
)

func orderedTokensForTest(t *testing.T) (*orderedTokens, *oauth2.HMACSHAStrategy, fosite.Requester) {
	t.Helper()
	config := &fosite.Config{GlobalSecret: []byte("0123456789abcdef0123456789abcdef"), AccessTokenLifespan: time.Hour,
		RefreshTokenLifespan: time.Hour, AuthorizeCodeLifespan: time.Minute}
	stock := compose.NewOAuth2HMACStrategy(config)
	req := fosite.NewRequest()
	req.Session = &fosite.DefaultSession{}
	return newOrderedTokens(compose.NewOAuth2HMACStrategy(config), config), stock, req
}

// tokenKind is one kind of token as the strategy and fosite see it.
type tokenKind struct {
	name      string
	generate  func(s oauth2.CoreStrategy, ctx context.Context, r fosite.Requester) (string, string, error)
	validate  func(s oauth2.CoreStrategy, ctx context.Context, r fosite.Requester, token string) error
	signature func(s oauth2.CoreStrategy, ctx context.Context, token string) string
}

var tokenKinds = []tokenKind{
	{"access token", oauth2.CoreStrategy.GenerateAccessToken, oauth2.CoreStrategy.ValidateAccessToken, oauth2.CoreStrategy.AccessTokenSignature},
	{"refresh token", oauth2.CoreStrategy.GenerateRefreshToken, oauth2.CoreStrategy.ValidateRefreshToken, oauth2.CoreStrategy.RefreshTokenSignature},
	{"authorization code", oauth2.CoreStrategy.GenerateAuthorizeCode, oauth2.CoreStrategy.ValidateAuthorizeCode, oauth2.CoreStrategy.AuthorizeCodeSignature},
}

func TestOrderedTokensAreFositeTokensStoredInIssueOrder(t *testing.T) {
	ctx := context.Background()
	for _, kind := range tokenKinds {
		t.Run(kind.name, func(t *testing.T) {
			s, stock, req := orderedTokensForTest(t)
			issued := time.UnixMilli(1_780_000_000_000)
			s.now = func() time.Time { return issued }

			prev := ""
			for i := range 200 {
				// Several tokens share a millisecond: they need not sort
				// among themselves, only before the next millisecond's.
				issued = issued.Add(time.Duration(i%2) * time.Millisecond)
				token, signature, err := kind.generate(s, ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if got := kind.signature(s, ctx, token); got != signature {
					t.Fatalf("signature of the token %q, want the one it was issued with, %q", got, signature)
				}
				if err := kind.validate(stock, ctx, req, token); err != nil {
					t.Fatalf("fosite's own strategy refuses the token: %v", err)
				}
				if i%2 == 1 && signature <= prev {
					t.Fatalf("token %d: signature %q sorts before that of a token issued a millisecond earlier, %q", i, signature, prev)
				}
				prev = signature
			}
		})
	}
}

// Tokens issued before ordered tokens keep the signature they were stored
// under.
func TestOrderedTokensFindTokensIssuedBefore(t *testing.T) {
	ctx := context.Background()
	for _, kind := range tokenKinds {
		s, stock, req := orderedTokensForTest(t)
		token, signature, err := kind.generate(stock, ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if got := kind.signature(s, ctx, token); got != signature {
			t.Errorf("%s issued by fosite's strategy: signature %q, want fosite's %q", kind.name, got, signature)
		}
		if err := kind.validate(s, ctx, req, token); err != nil {
			t.Errorf("%s issued by fosite's strategy no longer validates: %v", kind.name, err)
		}
	}
}

// The issue time is part of what the HMAC covers: a token whose time is
// changed, to land on another token's row, fails validation.
func TestOrderedTokenTimeCannotBeChanged(t *testing.T) {
	ctx := context.Background()
	s, _, req := orderedTokensForTest(t)
	token, _, err := s.GenerateAccessToken(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimPrefix(token, accessTokenPrefix)
	c := key[0]
	if c == 'A' {
		c = 'B'
	} else {
		c = 'A'
	}
	forged := accessTokenPrefix + string(c) + key[1:]
	if err := s.ValidateAccessToken(ctx, req, forged); err == nil {
		t.Fatal("a token with a changed issue time validates")
	}
	if s.AccessTokenSignature(ctx, forged) == s.AccessTokenSignature(ctx, token) {
		t.Fatal("a token with a changed issue time is looked up under the original's signature")
	}
}

func TestOrderedSignatureOfMalformedTokens(t *testing.T) {
	orderedKey := strings.Repeat("A", orderedKeyLen)
	for _, token := range []string{
		"", "ory_at_", "ory_at_nodot", "ory_at_a.b.c",
		"ory_at_" + orderedKey + ".",
		"ory_at_" + "!!!!!!!!" + orderedKey[8:] + ".mac", // not base64url
	} {
		if got := orderedSignature(token, accessTokenPrefix); got != "" {
			t.Errorf("signature of malformed token %q = %q, want \"\"", token, got)
		}
	}
}

// A string that keeps a token's prefix, issue time and HMAC but not its
// key maps to no stored row: every lookup of a presented token begins with
// its signature, so none of them reaches the row of the real token.
func TestForgedTokensHaveNoSignature(t *testing.T) {
	ctx := context.Background()
	s, _, req := orderedTokensForTest(t)
	for _, kind := range tokenKinds {
		t.Run(kind.name, func(t *testing.T) {
			token, signature, err := kind.generate(s, ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			prefix, rest := token[:len(accessTokenPrefix)], token[len(accessTokenPrefix):]
			key, mac, _ := strings.Cut(rest, ".")
			raw, err := tokenEncoding.DecodeString(key)
			if err != nil {
				t.Fatal(err)
			}
			raw[len(raw)-1] ^= 1
			forged := prefix + tokenEncoding.EncodeToString(raw) + "." + mac
			if got := kind.signature(s, ctx, forged); got != "" {
				t.Errorf("forged token has the signature %q (the real one's is %q)", got, signature)
			}
			for name, bad := range map[string]string{
				"without its prefix":    rest,
				"with another prefix":   "ory_xx_" + rest,
				"with a truncated HMAC": token[:len(token)-2],
			} {
				if got := kind.signature(s, ctx, bad); got != "" {
					t.Errorf("token %s has the signature %q", name, got)
				}
			}
			if got := kind.signature(s, ctx, token); got != signature {
				t.Errorf("the real token's signature is %q, want %q", got, signature)
			}
		})
	}
}
