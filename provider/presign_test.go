package provider

import (
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// refreshHandlerOf finds the provider's refresh grant handler.
func refreshHandlerOf(t *testing.T, p *Provider) *refreshHandler {
	t.Helper()
	for _, h := range p.OAuth2.(*fosite.Fosite).Config.GetTokenEndpointHandlers(t.Context()) {
		if f, ok := h.(grantTypeFilter); ok {
			if r, ok := f.TokenEndpointHandler.(*refreshHandler); ok {
				return r
			}
		}
	}
	t.Fatal("no refresh handler composed")
	return nil
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

// A refresh chain with the RSA slots free (each ID token signed while the
// rotation is written) and with them all taken (signed after the commit,
// in turn): either way every response has an ID token for the user that
// verifies against the JWKS and whose at_hash is that of the response's
// access token, and the stored session keeps none of the ID token's
// per-response claims.
func TestRefreshIDTokensSignedAheadOrInTurn(t *testing.T) {
	f := newDeviceFixture(t)
	refresh := f.deviceRefreshToken()["refresh_token"].(string)
	h := refreshHandlerOf(t, f.p)

	for _, tc := range []struct {
		name      string
		slotsFree bool
	}{{"slots free", true}, {"slots taken", false}, {"slots free again", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var leaves []func()
			if !tc.slotsFree {
				// Taken by signatures of other requests until this refresh has
				// committed its rotation: it cannot sign ahead, and signs
				// once they give their slots back.
				for range cap(h.rsaSlots) {
					leave, ok := h.rsaSlots.tryEnter()
					if !ok {
						t.Fatal("a slot is still held by an earlier refresh")
					}
					leaves = append(leaves, leave)
				}
				presented := h.strategy.RefreshTokenSignature(t.Context(), refresh)
				go func() {
					defer func() {
						for _, leave := range leaves {
							leave()
						}
					}()
					for t.Context().Err() == nil {
						if r, err := f.store.GetRefreshTokenRetirement(t.Context(), presented); err == nil && r.RetiredAt != nil {
							return
						}
						time.Sleep(time.Millisecond)
					}
				}()
			}
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
			wantNoIDTokenClaims(t, stored.GetSession(), "the stored session")
			wantSlotsFree(t, h)
		})
	}
}

// Only an RS256 ID token is signed ahead, only by a refresh written alone
// with a slot free, and only when the refresh gets an ID token at all.
func TestWhichRefreshesSignAhead(t *testing.T) {
	p := newBenchProvider(t)
	h := refreshHandlerOf(t, p)
	const access = "ory_at_example.signature"

	withoutOpenID := benchRequester(AlgRS256)
	withoutOpenID.GrantedScope = fosite.Arguments{"profile", "offline_access"}
	for name, request := range map[string]*fosite.AccessRequest{
		"ES256 client":   benchRequester(AlgES256),
		"openid dropped": withoutOpenID,
	} {
		if h.presignIDToken(t.Context(), request, access) != nil {
			t.Errorf("%s: signed ahead", name)
		}
	}

	var leaves []func()
	for range cap(h.rsaSlots) {
		leave, _ := h.rsaSlots.tryEnter()
		leaves = append(leaves, leave)
	}
	if h.presignIDToken(t.Context(), benchRequester(AlgRS256), access) != nil {
		t.Error("signed ahead with every RSA slot taken")
	}
	for _, leave := range leaves {
		leave()
	}

	h.rotating.Add(2) // this refresh and another one
	if h.presignIDToken(t.Context(), benchRequester(AlgRS256), access) != nil {
		t.Error("signed ahead while another refresh was being written")
	}
	h.rotating.Add(-1)
	defer h.rotating.Add(-1)

	request := benchRequester(AlgRS256)
	request.GrantTypes = fosite.Arguments{"refresh_token"}
	presigned := h.presignIDToken(t.Context(), request, access)
	if presigned == nil {
		t.Fatal("RS256 with a free slot: not signed ahead")
	}
	responder := fosite.NewAccessResponse()
	presigned.deliver(responder)
	raw, _ := responder.GetExtra("id_token").(string)
	if raw == "" {
		t.Fatal("no ID token delivered")
	}
	if header := jwtHeaderOf(t, raw); header["alg"] != AlgRS256 || header["kid"] == "" {
		t.Errorf("header %v, want RS256 with a kid", header)
	}
	wantNoIDTokenClaims(t, request.GetSession(), "the request's session after signing ahead")
	wantSlotsFree(t, h)
}

// A signature ahead that fails leaves the response without an ID token,
// for fosite's handler to sign in turn and report its own error, and gives
// its slot back.
func TestFailedSignatureAheadDeliversNothing(t *testing.T) {
	p := newBenchProvider(t)
	h := refreshHandlerOf(t, p)
	request := benchRequester(AlgRS256)
	request.GrantTypes = fosite.Arguments{"refresh_token"}
	// fosite refuses to sign an ID token without a subject.
	request.GetSession().(*openid.DefaultSession).Claims.Subject = ""

	presigned := h.presignIDToken(t.Context(), request, "ory_at_example.signature")
	if presigned == nil {
		t.Fatal("not signed ahead")
	}
	responder := fosite.NewAccessResponse()
	presigned.deliver(responder)
	if got := responder.GetExtra("id_token"); got != nil {
		t.Errorf("a failed signature delivered %v", got)
	}
	wantSlotsFree(t, h)
}

// wantNoIDTokenClaims checks that a session holds none of the claims
// fosite computes for each ID token it signs.
func wantNoIDTokenClaims(t *testing.T, session fosite.Session, what string) {
	t.Helper()
	if claims := session.(*openid.DefaultSession).IDTokenClaims(); claims.AccessTokenHash != "" || claims.JTI != "" {
		t.Errorf("%s carries an ID token's claims: at_hash %q, jti %q", what, claims.AccessTokenHash, claims.JTI)
	}
}

func wantSlotsFree(t *testing.T, h *refreshHandler) {
	t.Helper()
	if len(h.rsaSlots) != 0 {
		t.Errorf("%d RSA slots still held after the signature", len(h.rsaSlots))
	}
}

// fosite's ID token handler leaves a refresh response that already has a
// presigned ID token alone, and signs one for a response that has none.
func TestRefreshIDTokenHandlerSignsOnlyWhatIsMissing(t *testing.T) {
	p := newBenchProvider(t)
	h := refreshHandlerOf(t, p)
	handler := refreshIDTokenHandler{h.idTokens}
	request := benchRequester(AlgRS256)
	request.GrantTypes = fosite.Arguments{"refresh_token"}

	presigned := fosite.NewAccessResponse()
	presigned.SetAccessToken("ory_at_example.signature")
	presigned.SetExtra("id_token", "presigned")
	if err := handler.PopulateTokenEndpointResponse(t.Context(), request, presigned); err != nil {
		t.Fatal(err)
	}
	if got := presigned.GetExtra("id_token"); got != "presigned" {
		t.Errorf("presigned ID token replaced by %v", got)
	}

	missing := fosite.NewAccessResponse()
	missing.SetAccessToken("ory_at_example.signature")
	if err := handler.PopulateTokenEndpointResponse(t.Context(), request, missing); err != nil {
		t.Fatal(err)
	}
	if raw, _ := missing.GetExtra("id_token").(string); raw == "" || jwtHeaderOf(t, raw)["alg"] != AlgRS256 {
		t.Errorf("no ID token signed for a response without one: %v", missing.GetExtra("id_token"))
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
