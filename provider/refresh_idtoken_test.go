package provider

import (
	"net/url"
	"testing"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// tokenEndpointHandler finds the composed token endpoint handler of type H.
func tokenEndpointHandler[H fosite.TokenEndpointHandler](t *testing.T, p *Provider) H {
	t.Helper()
	for _, h := range p.OAuth2.(*fosite.Fosite).Config.GetTokenEndpointHandlers(t.Context()) {
		if f, ok := h.(grantTypeFilter); ok {
			if found, ok := f.TokenEndpointHandler.(H); ok {
				return found
			}
		}
	}
	var none H
	t.Fatalf("no %T composed", none)
	return none
}

// deviceRefreshToken signs alice in on the TV and returns its tokens.
func (f *deviceFixture) deviceRefreshToken() map[string]any {
	f.t.Helper()
	resp := f.mustStart("tv", "", "openid profile offline_access")
	f.approve(resp.DeviceCode, "openid", "profile", "offline_access")
	tok, err := f.poll("tv", "", resp.DeviceCode)
	if err != nil || tok["refresh_token"] == nil {
		f.t.Fatalf("device tokens: %v %v", tok, err)
	}
	return tok
}

// Along a refresh chain every response has an ID token for the user that
// verifies against the JWKS and whose at_hash is that of the response's
// access token, and the stored session keeps none of the ID token's
// per-response claims.
func TestRefreshChainIDTokens(t *testing.T) {
	f := newDeviceFixture(t)
	refresh := f.deviceRefreshToken()["refresh_token"].(string)
	h := tokenEndpointHandler[*refreshHandler](t, f.p)

	for range 3 {
		tok, err := f.token("tv", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		access, _ := tok["access_token"].(string)
		raw, _ := tok["id_token"].(string)
		if raw == "" || access == "" {
			t.Fatalf("refresh response without an ID token or access token: %v", tok)
		}
		idToken := verifyDeviceIDToken(t, f.p, raw)
		if idToken.Subject != f.user.Subject {
			t.Errorf("ID token subject %q, want %q", idToken.Subject, f.user.Subject)
		}
		if err := idToken.VerifyAccessToken(access); err != nil {
			t.Errorf("at_hash: %v", err)
		}
		if header := jwtHeaderOf(t, raw); header["alg"] != AlgRS256 {
			t.Errorf("alg %v, want RS256", header["alg"])
		}
		refresh = tok["refresh_token"].(string)

		stored, err := f.store.GetRefreshTokenSession(t.Context(), h.strategy.RefreshTokenSignature(t.Context(), refresh), EmptySession())
		if err != nil {
			t.Fatalf("load the new refresh token: %v", err)
		}
		if claims := stored.GetSession().(*openid.DefaultSession).IDTokenClaims(); claims.AccessTokenHash != "" || claims.JTI != "" {
			t.Errorf("the stored session carries an ID token's claims: at_hash %q, jti %q", claims.AccessTokenHash, claims.JTI)
		}
	}
}

// jwtHeaderOf is the alg and kid of a signed token's header.
func jwtHeaderOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	sig, err := jose.ParseSigned(raw)
	if err != nil {
		t.Fatalf("parse signed token: %v", err)
	}
	h := sig.Signatures[0].Header
	return map[string]any{"alg": h.Algorithm, "kid": h.KeyID}
}
