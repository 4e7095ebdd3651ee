package provider

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	"github.com/consentry/consentry/storage"
)

// Token types introspection reports, so that a resource server can tell an
// access token (RFC 6749 §7.1 "Bearer") from a refresh token, which is never
// a credential for an API.
const (
	TokenTypeBearer  = "Bearer"
	TokenTypeRefresh = "refresh_token"
)

// clientAuthenticator is the part of fosite that authenticates a client the
// way the token endpoint does (client_secret_basic, client_secret_post,
// private_key_jwt).
type clientAuthenticator interface {
	AuthenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error)
}

// Introspect answers an RFC 7662 introspection request. Unlike fosite's
// handler it
//   - requires client authentication and refuses a bearer token as the
//     caller's credential (RFC 7662 §2.1 leaves the choice to the server; a
//     leaked access token must not open every other token's details);
//   - refuses public clients, which cannot authenticate;
//   - answers inactive for a token issued to another client, unless the
//     caller is registered as a resource server allowed to introspect
//     (ClientSpec.Introspect), so a client cannot learn another's users.
//
// An error is an OAuth error for the caller (invalid_request,
// invalid_client, temporarily_unavailable); an inactive or foreign token is
// a response with IsActive false, never an error.
func (p *Provider) Introspect(ctx context.Context, r *http.Request) (fosite.IntrospectionResponder, error) {
	inactive := &fosite.IntrospectionResponse{Active: false}
	if r.Method != http.MethodPost {
		return inactive, fosite.ErrInvalidRequest.WithHintf("HTTP method is %q, expected POST.", r.Method)
	}
	if err := r.ParseForm(); err != nil {
		return inactive, fosite.ErrInvalidRequest.WithHint("The request body is not a valid form.").WithWrap(err)
	}
	token := r.PostForm.Get("token")
	if token == "" {
		return inactive, fosite.ErrInvalidRequest.WithHint("The token parameter is missing.")
	}
	if scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") {
		return inactive, fosite.ErrInvalidClient.WithHint("Introspection needs client authentication; a bearer token is not accepted.")
	}
	authenticator, ok := p.OAuth2.(clientAuthenticator)
	if !ok {
		return inactive, fosite.ErrServerError.WithDebug("the composed provider cannot authenticate clients")
	}
	caller, err := authenticator.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		if storage.IsUnavailable(err) {
			return inactive, err
		}
		// Missing credentials too: RFC 7662 §2.3 answers 401.
		return inactive, fosite.ErrInvalidClient.WithHint("Introspection needs client authentication.").WithWrap(err).
			WithDebug(fosite.ErrorToRFC6749Error(err).GetDescription())
	}
	if caller.IsPublic() {
		return inactive, fosite.ErrInvalidClient.WithHint("A public client cannot introspect tokens.")
	}

	use, ar, err := p.OAuth2.IntrospectToken(ctx, token, fosite.TokenUse(r.PostForm.Get("token_type_hint")), EmptySession())
	if err != nil {
		if storage.IsUnavailable(err) {
			return inactive, err
		}
		return inactive, nil
	}
	if ar.GetClient().GetID() != caller.GetID() && !mayIntrospectOthers(caller) {
		return inactive, nil
	}
	tokenType := TokenTypeBearer
	if use == fosite.RefreshToken {
		tokenType = TokenTypeRefresh
	}
	return &fosite.IntrospectionResponse{Active: true, AccessRequester: ar, TokenUse: use, AccessTokenType: tokenType}, nil
}

func mayIntrospectOthers(c fosite.Client) bool {
	stored, ok := c.(*storage.Client)
	return ok && stored.Introspect
}
