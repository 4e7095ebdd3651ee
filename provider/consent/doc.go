// Package consent holds Consentry's offline-access and consent rules (OpenID
// Connect Core §11, RFC 9700) as pure functions over plain values: no HTTP,
// no database, no fosite handlers. The provider loads the user, grant,
// agreement and client, and calls these; the code, refresh and device flows
// all go through them.
//
// Rule (offline-access rules) -> function -> test:
//
//	1  unregistered scope: invalid_scope         Policy.Decide            TestRule1_UnregisteredScopeIsInvalidScope
//	1  offline_access needs refresh_token        CheckOfflineScope        TestRule1_OfflineAccessNeedsRefreshTokenGrant
//	2  code-less response drops offline_access   Policy.Decide            TestRule2_CodelessResponseTypeDropsOfflineAccess
//	3  prompt=consent always shows the screen    Policy.Decide            TestRule3_PromptConsentAlwaysShowsTheScreen
//	4a agreement grants without a screen         Policy.Decide            TestRule4a_AgreementGrantsOfflineAccessWithoutScreen
//	4a agreement in force                        AgreementActive          TestRule4a_ActiveAgreement
//	4b ignore / prompt / reject                  Policy.Decide            TestRule4b_PolicyDecidesOfflineAccessWithoutPromptConsent
//	5  other scopes: agreement or remembered     Policy.Decide            TestRule5_OtherScopesNeedAgreementOrRememberedConsent
//	6  prompt=none never shows a page            Policy.Decide            TestRule6_PromptNoneNeverShowsAPage
//	1-6 all combinations                         Policy.Decide            TestDecideInvariants
//	7  untick optional scopes; Deny              Policy.Choose            TestRule7_UserMayUntickOptionalScopes
//	8  the grant's basis; remembering            Decision.GrantBasis,     TestRule8_GrantRecordsThePolicysBasis
//	                                             Policy.RememberUntil
//	9  refresh token only with offline_access    IssuesRefreshToken,      TestRule9_RefreshTokenOnlyWithOfflineAccess
//	                                             RefreshTokenScopes
//	9  refresh_token grant needs a code          CheckRefreshGrant        TestRule9_RefreshTokenGrantNeedsACode
//	11 revoked consent ends offline access       CheckStanding            TestRule11_RevokedConsentEndsOfflineAccess
//	11 revoked or ended agreement ends it        CheckStanding            TestRule11_RevokedOrEndedAgreementEndsOfflineAccess
//	11 disabled or deleted user ends it          CheckStanding            TestRule11_DisabledOrDeletedUserEndsOfflineAccess
//	11 client without offline_access             CheckOfflineAccess       TestRule11_ClientWithoutOfflineAccessCannotRefresh
//	12 idle, absolute, agreement-end lifetimes   RefreshExpiry            TestRule12_IdleAbsoluteAndAgreementEndLifetimes
//	12 per-client lifetimes at registration      CheckOfflineLifetimes    TestRule12_OfflineLifetimeRegistration
//	12 a refresh narrows scopes, never widens    NarrowScopes             TestRule12_RefreshMayNarrowScopesNeverWiden
//
// Rules 10 (rotation and reuse detection) and 13 (revocation of a family)
// are token mechanics rather than decisions: they live in the provider's
// refresh and revocation handlers and the store, tested by the handlers'
// TestRefreshRotatesAndDetectsReuse and TestRetryWithinTheWindowGetsTheSameSuccessor
// and the storage conformance suite. End-to-end tests of every rule through
// real requests are in the handlers package (offline_test.go,
// refresh_test.go, device_test.go).
package consent
