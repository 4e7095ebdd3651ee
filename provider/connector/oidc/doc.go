// Package oidc is the connector for an upstream OpenID provider (Google
// Workspace, Entra ID, Okta, another Consentry): Consentry is the relying
// party, with the authorization code flow, PKCE (S256), state and nonce,
// and a verified ID token. The upstream's refresh token, when it gives one,
// is kept as the identity's data so that every refresh of offline access
// asks the upstream whether the person is still there.
package oidc
