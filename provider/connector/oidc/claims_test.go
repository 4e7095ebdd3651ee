package oidc

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v3"
)

// The upstream Consentry sends no groups claim yet, so the groups mapping
// is tested on ID tokens signed here and verified as HandleCallback does.
func TestGroupsAndEmailVerifiedClaimsFromAVerifiedIDToken(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://idp.example.com"
	verifier := oidc.NewVerifier(issuer, &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{key.Public()}}, &oidc.Config{ClientID: "downstream"})
	sign := func(extra map[string]any) string {
		claims := map[string]any{"iss": issuer, "aud": "downstream", "sub": "00u1", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
		for k, v := range extra {
			claims[k] = v
		}
		payload, _ := json.Marshal(claims)
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := jws.CompactSerialize()
		return raw
	}
	c := &Connector{cfg: Config{Claims: Claims{Groups: "roles"}}.withDefaults()}

	for _, tt := range []struct {
		name         string
		claims       map[string]any
		wantGroups   []string
		wantVerified bool
	}{
		{"list of groups", map[string]any{"roles": []string{"engineering", "admins"}, "email": "a@example.com", "email_verified": true}, []string{"engineering", "admins"}, true},
		{"a single group as a string", map[string]any{"roles": "engineering", "email": "a@example.com", "email_verified": "true"}, []string{"engineering"}, true},
		{"other claim name ignored", map[string]any{"groups": []string{"engineering"}, "email": "a@example.com"}, nil, false},
		{"non-strings dropped", map[string]any{"roles": []any{"ops", 7, ""}, "email": "a@example.com", "email_verified": "yes"}, []string{"ops"}, false},
		{"email_verified false", map[string]any{"email": "a@example.com", "email_verified": false}, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			idt, err := verifier.Verify(context.Background(), sign(tt.claims))
			if err != nil {
				t.Fatal(err)
			}
			var claims map[string]any
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			id, err := c.identity(claims)
			if err != nil {
				t.Fatal(err)
			}
			if id.UserID != "00u1" || !slices.Equal(id.Groups, tt.wantGroups) || id.EmailVerified != tt.wantVerified {
				t.Fatalf("identity = %+v, want groups %v verified %v", id, tt.wantGroups, tt.wantVerified)
			}
		})
	}
}
