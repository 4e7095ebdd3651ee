package consent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/consentry/consentry/storage"
)

var policyNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func args(s string) fosite.Arguments { return fosite.Arguments(strings.Fields(s)) }

func timePtr(t time.Time) *time.Time { return &t }

// Agreements and grants used by the tables.
var (
	agreementAll = storage.Agreement{ID: "agr_all", AllUsers: true, Scopes: args("openid profile offline_access"), StartsAt: policyNow.Add(-time.Hour)}
	// Covers the sign-in scopes but not offline access.
	agreementNoOffline = storage.Agreement{ID: "agr_signin", AllUsers: true, Scopes: args("openid profile"), StartsAt: policyNow.Add(-time.Hour)}
	agreementExpired   = storage.Agreement{ID: "agr_expired", AllUsers: true, Scopes: args("openid profile offline_access"), StartsAt: policyNow.Add(-48 * time.Hour), ExpiresAt: timePtr(policyNow.Add(-time.Hour))}
	agreementRevoked   = storage.Agreement{ID: "agr_revoked", AllUsers: true, Scopes: args("openid profile offline_access"), StartsAt: policyNow.Add(-48 * time.Hour), RevokedAt: timePtr(policyNow.Add(-time.Hour))}
	agreementFuture    = storage.Agreement{ID: "agr_future", AllUsers: true, Scopes: args("openid profile offline_access"), StartsAt: policyNow.Add(time.Hour)}

	// A remembered consent that also included offline access.
	grantRemembered = storage.Grant{ID: "grt_mem", Scopes: args("openid profile offline_access"), Basis: storage.BasisConsent, RememberUntil: timePtr(policyNow.Add(24 * time.Hour))}
	grantExpired    = storage.Grant{ID: "grt_old", Scopes: args("openid profile offline_access"), Basis: storage.BasisConsent, RememberUntil: timePtr(policyNow.Add(-time.Minute))}
	grantNotRemem   = storage.Grant{ID: "grt_once", Scopes: args("openid profile offline_access"), Basis: storage.BasisConsent}
)

// decideCase is one row of the decision table; its name starts with the
// number of the rule it shows ("4b ignore: ...").
type decideCase struct {
	name       string
	policy     string
	requested  string
	response   string
	prompt     string
	signedOut  bool
	agreements []storage.Agreement
	grants     []storage.Grant

	want        Outcome
	wantScopes  string
	wantErr     string
	wantBasis   string
	wantAgreeID string
}

const all = "openid profile offline_access"

// decideCases are the rules of the authorization endpoint, 1 to 6.
var decideCases = []decideCase{
	// Rule 1.
	{name: "1: unregistered scope", requested: "openid admin", want: OutcomeError, wantErr: "invalid_scope"},
	// Rule 2.
	{name: "2: id_token drops offline_access", requested: all, response: "id_token", prompt: "consent", want: OutcomeScreen, wantScopes: "openid profile"},
	{name: "2: id_token token drops offline_access even under an agreement", requested: all, response: "id_token token", agreements: []storage.Agreement{agreementAll}, want: OutcomeGrant, wantScopes: "openid profile", wantBasis: storage.BasisAgreement},
	{name: "2: code id_token keeps offline_access", requested: all, response: "code id_token", prompt: "consent", want: OutcomeScreen, wantScopes: all},
	// Rule 3.
	{name: "3: prompt=consent shows the screen", requested: all, prompt: "consent", want: OutcomeScreen, wantScopes: all},
	{name: "3: prompt=consent shows the screen despite an agreement", requested: all, prompt: "consent", agreements: []storage.Agreement{agreementAll}, want: OutcomeScreen, wantScopes: all},
	{name: "3: prompt=consent shows the screen despite a remembered consent", requested: all, prompt: "consent", grants: []storage.Grant{grantRemembered}, want: OutcomeScreen, wantScopes: all},
	{name: "3: prompt=consent login shows the screen", requested: all, prompt: "login consent", want: OutcomeScreen, wantScopes: all},
	// Rule 4a.
	{name: "4a: agreement grants offline access without a screen", requested: all, agreements: []storage.Agreement{agreementAll}, want: OutcomeGrant, wantScopes: all, wantBasis: storage.BasisAgreement, wantAgreeID: "agr_all"},
	{name: "4a: agreement must cover every requested scope", requested: "openid profile email offline_access", agreements: []storage.Agreement{agreementAll}, want: OutcomeScreen, wantScopes: "openid profile email"},
	{name: "4a: agreement without offline_access does not grant it", requested: all, agreements: []storage.Agreement{agreementNoOffline}, want: OutcomeGrant, wantScopes: "openid profile", wantBasis: storage.BasisAgreement, wantAgreeID: "agr_signin"},
	{name: "4a: expired agreement covers nothing", requested: all, agreements: []storage.Agreement{agreementExpired}, want: OutcomeScreen, wantScopes: "openid profile"},
	{name: "4a: revoked agreement covers nothing", requested: all, agreements: []storage.Agreement{agreementRevoked}, want: OutcomeScreen, wantScopes: "openid profile"},
	{name: "4a: agreement not yet started covers nothing", requested: all, agreements: []storage.Agreement{agreementFuture}, want: OutcomeScreen, wantScopes: "openid profile"},
	// Rule 4b.
	{name: "4b ignore: offline_access dropped", policy: OfflineIgnore, requested: all, want: OutcomeScreen, wantScopes: "openid profile"},
	{name: "4b ignore: dropped, rest remembered", policy: OfflineIgnore, requested: all, grants: []storage.Grant{grantRemembered}, want: OutcomeGrant, wantScopes: "openid profile", wantBasis: storage.BasisRemembered},
	{name: "4b prompt: screen anyway", policy: OfflinePrompt, requested: all, want: OutcomeScreen, wantScopes: all},
	{name: "4b prompt: screen although the rest is remembered", policy: OfflinePrompt, requested: all, grants: []storage.Grant{grantRemembered}, want: OutcomeScreen, wantScopes: all},
	{name: "4b reject: consent_required", policy: OfflineReject, requested: all, want: OutcomeError, wantErr: "consent_required"},
	{name: "4b reject: agreement still grants", policy: OfflineReject, requested: all, agreements: []storage.Agreement{agreementAll}, want: OutcomeGrant, wantScopes: all, wantBasis: storage.BasisAgreement},
	// Rule 5.
	{name: "5: no basis shows the screen", requested: "openid profile", want: OutcomeScreen, wantScopes: "openid profile"},
	{name: "5: remembered consent covers fewer scopes", requested: "openid", grants: []storage.Grant{grantRemembered}, want: OutcomeGrant, wantScopes: "openid", wantBasis: storage.BasisRemembered},
	{name: "5: remembered consent does not cover more scopes", requested: "openid profile email", grants: []storage.Grant{grantRemembered}, want: OutcomeScreen, wantScopes: "openid profile email"},
	{name: "5: expired remembered consent", requested: "openid profile", grants: []storage.Grant{grantExpired}, want: OutcomeScreen, wantScopes: "openid profile"},
	{name: "5: consent not remembered", requested: "openid profile", grants: []storage.Grant{grantNotRemem}, want: OutcomeScreen, wantScopes: "openid profile"},
	{name: "5: agreement covers sign-in scopes", requested: "openid profile", agreements: []storage.Agreement{agreementNoOffline}, want: OutcomeGrant, wantScopes: "openid profile", wantBasis: storage.BasisAgreement},
	{name: "5: prompt=consent beats remembered consent", requested: "openid profile", prompt: "consent", grants: []storage.Grant{grantRemembered}, want: OutcomeScreen, wantScopes: "openid profile"},
	// Rule 6.
	{name: "6: prompt=none signed out", requested: "openid", prompt: "none", signedOut: true, want: OutcomeError, wantErr: "login_required"},
	{name: "6: signed out needs a login", requested: "openid", signedOut: true, want: OutcomeLogin},
	{name: "6: prompt=none needing a screen", requested: "openid profile", prompt: "none", want: OutcomeError, wantErr: "consent_required"},
	{name: "6: prompt=none remembered", requested: "openid profile", prompt: "none", grants: []storage.Grant{grantRemembered}, want: OutcomeGrant, wantScopes: "openid profile", wantBasis: storage.BasisRemembered},
	{name: "6: prompt=none offline under agreement", requested: all, prompt: "none", agreements: []storage.Agreement{agreementAll}, want: OutcomeGrant, wantScopes: all, wantBasis: storage.BasisAgreement},
	{name: "6: prompt=none offline ignored, rest remembered", requested: all, prompt: "none", grants: []storage.Grant{grantRemembered}, want: OutcomeGrant, wantScopes: "openid profile", wantBasis: storage.BasisRemembered},
	{name: "6: prompt=none offline under prompt policy", policy: OfflinePrompt, requested: all, prompt: "none", grants: []storage.Grant{grantRemembered}, want: OutcomeError, wantErr: "consent_required"},
	{name: "6: prompt=none combined with consent", requested: "openid", prompt: "none consent", want: OutcomeError, wantErr: "invalid_request"},
}

// runDecideRule runs the rows of decideCases for one rule (their name
// starts with prefix); a rule without rows fails.
func runDecideRule(t *testing.T, prefix string) {
	t.Helper()
	ran := 0
	for _, tt := range decideCases {
		if !strings.HasPrefix(tt.name, prefix) {
			continue
		}
		ran++
		t.Run(tt.name, func(t *testing.T) {
			policy := tt.policy
			if policy == "" {
				policy = OfflineIgnore
			}
			response := tt.response
			if response == "" {
				response = "code"
			}
			d := Policy{WithoutPromptConsent: policy}.Decide(Request{
				Requested: args(tt.requested), ClientScopes: args("openid profile email offline_access"),
				ResponseTypes: args(response), Prompt: args(tt.prompt), SignedIn: !tt.signedOut,
				Agreements: tt.agreements, Grants: tt.grants, Now: policyNow,
			})
			if d.Outcome != tt.want {
				t.Fatalf("outcome = %v (%+v), want %v", d.Outcome, d, tt.want)
			}
			if tt.wantErr != "" && (d.Err == nil || d.Err.ErrorField != tt.wantErr) {
				t.Fatalf("error = %v, want %s", d.Err, tt.wantErr)
			}
			if tt.wantScopes != "" && strings.Join(d.Scopes, " ") != tt.wantScopes {
				t.Errorf("scopes = %q, want %q", strings.Join(d.Scopes, " "), tt.wantScopes)
			}
			if d.Basis != tt.wantBasis {
				t.Errorf("basis = %q, want %q", d.Basis, tt.wantBasis)
			}
			if tt.wantAgreeID != "" && d.AgreementID != tt.wantAgreeID {
				t.Errorf("agreement = %q, want %q", d.AgreementID, tt.wantAgreeID)
			}
		})
	}
	if ran == 0 {
		t.Fatalf("no decision rows for rule %q", prefix)
	}
}

func TestRule1_UnregisteredScopeIsInvalidScope(t *testing.T) { runDecideRule(t, "1:") }

func TestRule2_CodelessResponseTypeDropsOfflineAccess(t *testing.T) { runDecideRule(t, "2:") }

func TestRule3_PromptConsentAlwaysShowsTheScreen(t *testing.T) { runDecideRule(t, "3:") }

func TestRule4a_AgreementGrantsOfflineAccessWithoutScreen(t *testing.T) { runDecideRule(t, "4a:") }

func TestRule4b_PolicyDecidesOfflineAccessWithoutPromptConsent(t *testing.T) {
	runDecideRule(t, "4b ")
}

func TestRule5_OtherScopesNeedAgreementOrRememberedConsent(t *testing.T) { runDecideRule(t, "5:") }

func TestRule6_PromptNoneNeverShowsAPage(t *testing.T) { runDecideRule(t, "6:") }

// TestDecideInvariants runs every combination of policy, prompt, agreement,
// remembered consent and response type, and checks what must hold in all of
// them.
func TestDecideInvariants(t *testing.T) {
	policies := []string{OfflineIgnore, OfflinePrompt, OfflineReject}
	prompts := []string{"", "consent", "none", "login"}
	agreementSets := map[string][]storage.Agreement{
		"none": nil, "all": {agreementAll}, "no-offline": {agreementNoOffline},
		"expired": {agreementExpired}, "revoked": {agreementRevoked}, "future": {agreementFuture},
	}
	grantSets := map[string][]storage.Grant{"none": nil, "remembered": {grantRemembered}, "expired": {grantExpired}, "once": {grantNotRemem}}
	responses := []string{"code", "id_token", "id_token token", "code id_token"}
	requests := []string{"openid profile offline_access", "openid profile", "openid offline_access", "openid"}

	combos := 0
	for _, policy := range policies {
		for _, prompt := range prompts {
			for aName, agreements := range agreementSets {
				for gName, grants := range grantSets {
					for _, response := range responses {
						for _, requested := range requests {
							combos++
							name := fmt.Sprintf("policy=%s prompt=%q agreement=%s grant=%s response=%q scope=%q", policy, prompt, aName, gName, response, requested)
							d := Policy{WithoutPromptConsent: policy}.Decide(Request{
								Requested: args(requested), ClientScopes: args("openid profile email offline_access"),
								ResponseTypes: args(response), Prompt: args(prompt), SignedIn: true,
								Agreements: agreements, Grants: grants, Now: policyNow,
							})
							checkInvariants(t, name, d, policy, prompt, aName, response, requested)
						}
					}
				}
			}
		}
	}
	if combos != 3*4*6*4*4*4 {
		t.Fatalf("ran %d combinations", combos)
	}
}

func checkInvariants(t *testing.T, name string, d Decision, policy, prompt, agreement, response, requested string) {
	t.Helper()
	offlineRequested := args(requested).Has(ScopeOfflineAccess)
	code := args(response).Has("code")
	switch {
	case d.Outcome == OutcomeScreen && prompt == "none":
		t.Errorf("%s: prompt=none showed a screen", name)
	case d.Outcome == OutcomeGrant && prompt == "consent":
		t.Errorf("%s: prompt=consent granted without a screen", name)
	case d.Scopes.Has(ScopeOfflineAccess) && !code:
		t.Errorf("%s: offline_access kept for a code-less response type", name)
	case d.Outcome == OutcomeGrant && d.Scopes.Has(ScopeOfflineAccess) && (d.Basis != storage.BasisAgreement || agreement != "all"):
		t.Errorf("%s: offline access granted without a screen on basis %q", name, d.Basis)
	case d.Basis == storage.BasisAgreement && agreement != "all" && agreement != "no-offline":
		t.Errorf("%s: an inactive agreement (%s) was used", name, agreement)
	case d.Outcome == OutcomeGrant && d.Basis == "":
		t.Errorf("%s: grant without a basis", name)
	case offlineRequested && code && prompt == "consent" && d.Outcome != OutcomeScreen:
		t.Errorf("%s: offline_access with prompt=consent did not show the screen", name)
	case offlineRequested && code && prompt != "consent" && prompt != "none" && agreement != "all" && policy == OfflineReject &&
		(d.Outcome != OutcomeError || d.Err.ErrorField != "consent_required"):
		t.Errorf("%s: reject policy did not answer consent_required", name)
	case offlineRequested && code && prompt != "consent" && agreement != "all" && policy == OfflineIgnore && d.Scopes.Has(ScopeOfflineAccess):
		t.Errorf("%s: ignore policy kept offline_access", name)
	}
}

// TestRule7_UserMayUntickOptionalScopes: Deny is access_denied; openid
// cannot be unticked; a scope that was not offered is never granted.
func TestRule7_UserMayUntickOptionalScopes(t *testing.T) {
	p := Policy{}
	offered := args("openid profile offline_access")
	if _, err := p.Choose(offered, []string{"openid", "profile"}, false); err == nil || fosite.ErrorToRFC6749Error(err).ErrorField != "access_denied" {
		t.Fatalf("deny: %v", err)
	}
	got, err := p.Choose(offered, []string{"profile", "admin"}, true)
	if err != nil || strings.Join(got, " ") != "openid profile" {
		t.Fatalf("allow with offline unticked and a forged scope: %v %v", got, err)
	}
	if got := Remembered(offered); got.Has(ScopeOfflineAccess) {
		t.Fatal("a remembered consent covers offline_access")
	}
}
