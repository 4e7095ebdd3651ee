// Package provider composes fosite into Consentry's OAuth 2.0 and OpenID
// Connect provider: configuration, server secrets, signing keys, client and
// user registration rules, and the offline-access and consent policy.
//
// Only this package imports fosite's compose package.
package provider
