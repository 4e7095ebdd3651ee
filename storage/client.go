package storage

import (
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
)

// Compile-time checks: fosite takes a *Client wherever it needs a client.
var (
	_ fosite.Client                   = (*Client)(nil)
	_ fosite.OpenIDConnectClient      = (*Client)(nil)
	_ fosite.ClientWithSecretRotation = (*Client)(nil)
	_ fosite.ResponseModeClient       = (*Client)(nil)
)

// GetID returns the client id.
func (c *Client) GetID() string { return c.ID }

// GetHashedSecret returns the stored secret hash; empty for public clients.
func (c *Client) GetHashedSecret() []byte { return c.SecretHash }

// GetRotatedHashes returns the hashes of previous secrets that have not
// expired; fosite accepts a secret matching any of them. fosite passes no
// clock, so expiry is judged by the wall clock.
func (c *Client) GetRotatedHashes() [][]byte {
	now := time.Now()
	var out [][]byte
	for _, r := range c.RotatedSecrets {
		if now.Before(r.ExpiresAt) {
			out = append(out, r.Hash)
		}
	}
	return out
}

// GetRedirectURIs returns the registered redirect URIs.
func (c *Client) GetRedirectURIs() []string { return c.RedirectURIs }

// GetGrantTypes returns the allowed grant types. OpenID Connect Dynamic
// Client Registration defines an omitted list as authorization_code only.
func (c *Client) GetGrantTypes() fosite.Arguments {
	if len(c.GrantTypes) == 0 {
		return fosite.Arguments{"authorization_code"}
	}
	return fosite.Arguments(c.GrantTypes)
}

// GetResponseTypes returns the allowed response types. OpenID Connect Dynamic
// Client Registration defines an omitted list as code only.
func (c *Client) GetResponseTypes() fosite.Arguments {
	if len(c.ResponseTypes) == 0 {
		return fosite.Arguments{"code"}
	}
	return fosite.Arguments(c.ResponseTypes)
}

// GetResponseModes returns the response modes a client may ask for: every
// client may use each mode the provider serves. fosite refuses the query
// mode for a response carrying tokens.
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeQuery, fosite.ResponseModeFragment, fosite.ResponseModeFormPost}
}

// GetScopes returns the scopes the client may request.
func (c *Client) GetScopes() fosite.Arguments { return fosite.Arguments(c.Scopes) }

// IsPublic reports whether the client has no secret (native and browser apps).
func (c *Client) IsPublic() bool { return c.Public }

// GetAudience returns the audiences the client may request.
func (c *Client) GetAudience() fosite.Arguments { return fosite.Arguments(c.Audience) }

// GetRequestURIs returns nil: Consentry does not accept request_uri objects.
func (c *Client) GetRequestURIs() []string { return nil }

// GetJSONWebKeys returns nil: clients do not register keys, so private_key_jwt
// authentication is never possible.
func (c *Client) GetJSONWebKeys() *jose.JSONWebKeySet { return nil }

// GetJSONWebKeysURI returns "": clients do not register keys.
func (c *Client) GetJSONWebKeysURI() string { return "" }

// GetRequestObjectSigningAlgorithm returns "": request objects are not used.
func (c *Client) GetRequestObjectSigningAlgorithm() string { return "" }

// GetTokenEndpointAuthMethod returns the registered method, or the natural
// default for the client type when none was registered: "none" for public
// clients, "client_secret_basic" (the RFC 7591 default) for confidential ones.
func (c *Client) GetTokenEndpointAuthMethod() string {
	switch {
	case c.TokenEndpointAuthMethod != "":
		return c.TokenEndpointAuthMethod
	case c.Public:
		return "none"
	default:
		return "client_secret_basic"
	}
}

// GetTokenEndpointAuthSigningAlgorithm returns fosite's default, RS256. It
// only matters for private_key_jwt, which needs keys no client has.
func (c *Client) GetTokenEndpointAuthSigningAlgorithm() string { return "RS256" }
