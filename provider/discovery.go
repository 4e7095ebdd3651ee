package provider

import (
	"slices"

	"github.com/consentry/consentry/storage"
)

// Discovery returns the OpenID Provider Metadata (OpenID Connect Discovery
// 1.0 §3) for this deployment.
func (p *Provider) Discovery() map[string]any {
	iss := p.issuer()
	return map[string]any{
		"issuer":                                        iss,
		"authorization_endpoint":                        iss + PathAuthorize,
		"token_endpoint":                                iss + PathToken,
		"userinfo_endpoint":                             iss + PathUserinfo,
		"jwks_uri":                                      iss + PathJWKS,
		"revocation_endpoint":                           iss + PathRevoke,
		"introspection_endpoint":                        iss + PathIntrospect,
		"device_authorization_endpoint":                 iss + PathDeviceAuthorize,
		"scopes_supported":                              []string{ScopeOpenID, "profile", "email", ScopeOfflineAccess},
		"response_types_supported":                      []string{"code", "id_token", "id_token token", "code id_token"},
		"response_modes_supported":                      ResponseModes(),
		"grant_types_supported":                         append(GrantTypes(), "implicit"),
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         []string{AlgRS256, AlgES256},
		"code_challenge_methods_supported":              []string{"S256"},
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"claims_supported": []string{
			"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid",
			"name", "preferred_username", "email", "email_verified",
		},
		"prompt_values_supported":         []string{"none", "login", "consent"},
		"claims_parameter_supported":      false,
		"request_parameter_supported":     false,
		"request_uri_parameter_supported": false,
	}
}

// ResponseModes lists the response modes the authorization endpoint
// serves, which every client may use. form_post's page gets the headers of
// every page, its script allowed by FormPostScriptSource.
func ResponseModes() []string {
	var modes []string
	for _, m := range (&storage.Client{}).GetResponseModes() {
		modes = append(modes, string(m))
	}
	return modes
}

// GrantTypes lists the grant types the token endpoint serves.
func GrantTypes() []string {
	return []string{"authorization_code", "refresh_token", "client_credentials", GrantTypeDeviceCode}
}

// SupportsGrantType reports whether the token endpoint serves grantType.
func (p *Provider) SupportsGrantType(grantType string) bool {
	return slices.Contains(GrantTypes(), grantType)
}
