// Package provider composes fosite into Consentry's OAuth 2.0 and OpenID
// Connect provider: configuration, server secrets, signing keys, client and
// user registration rules, and the flows that apply the offline-access and
// consent rules of package consent. The provider loads what the rules need
// (users, grants, agreements, clients) and records what they decide
// (Provider.Grant); the handlers reach the store only through it.
//
// Only this package imports fosite's compose package.
package provider
