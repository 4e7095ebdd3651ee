package consent

import (
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/consentry/consentry/storage"
)

var refreshNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// standing returns a sound standing, changed by edit.
func standing(edit func(s *Standing)) Standing {
	s := Standing{
		User:  &storage.User{Subject: "alice"},
		Grant: &storage.Grant{ID: "grt_1", Basis: storage.BasisConsent, CreatedAt: refreshNow.Add(-time.Hour)},
		Now:   refreshNow,
	}
	if edit != nil {
		edit(&s)
	}
	return s
}

func onAgreement(a storage.Agreement) func(s *Standing) {
	return func(s *Standing) {
		s.Grant.Basis, s.Grant.AgreementID, s.Agreement = storage.BasisAgreement, a.ID, &a
	}
}

// checkStanding runs CheckStanding and compares its hint.
func checkStanding(t *testing.T, s Standing, wantHint string) {
	t.Helper()
	err := CheckStanding(s)
	if wantHint == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("accepted; want invalid_grant with hint %q", wantHint)
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.ErrorField != "invalid_grant" || !strings.Contains(rfc.HintField, wantHint) {
		t.Fatalf("error %v (hint %q); want invalid_grant with hint %q", err, rfc.HintField, wantHint)
	}
}

func TestRule11_SoundGrantKeepsOfflineAccess(t *testing.T) {
	checkStanding(t, standing(nil), "")
	checkStanding(t, standing(onAgreement(agreementAll)), "")
}

func TestRule11_RevokedConsentEndsOfflineAccess(t *testing.T) {
	revoked := refreshNow.Add(-time.Minute)
	checkStanding(t, standing(func(s *Standing) { s.Grant.RevokedAt = &revoked }), "consent for this application was revoked")
	checkStanding(t, standing(func(s *Standing) { s.Grant = nil }), "no recorded grant")
}

func TestRule11_RevokedOrEndedAgreementEndsOfflineAccess(t *testing.T) {
	for name, a := range map[string]storage.Agreement{"revoked": agreementRevoked, "ended": agreementExpired, "not started": agreementFuture} {
		t.Run(name, func(t *testing.T) {
			checkStanding(t, standing(onAgreement(a)), "agreement this offline access relied on is no longer in force")
		})
	}
	t.Run("deleted", func(t *testing.T) {
		s := standing(onAgreement(agreementAll))
		s.Agreement = nil
		checkStanding(t, s, "no longer in force")
	})
}

func TestRule11_DisabledOrDeletedUserEndsOfflineAccess(t *testing.T) {
	checkStanding(t, standing(func(s *Standing) { s.User.Disabled = true }), "can no longer sign in")
	checkStanding(t, standing(func(s *Standing) { s.User = nil }), "can no longer sign in")
}

func TestRule11_ClientWithoutOfflineAccessCannotRefresh(t *testing.T) {
	if err := CheckOfflineAccess(args("openid offline_access"), args("openid offline_access")); err != nil {
		t.Fatalf("refused: %v", err)
	}
	for name, c := range map[string][2]string{
		"token without offline_access":          {"openid", "openid offline_access"},
		"registration lost offline_access":      {"openid offline_access", "openid"},
		"neither has offline_access any longer": {"openid", "openid"},
	} {
		err := CheckOfflineAccess(args(c[0]), args(c[1]))
		if rfc := fosite.ErrorToRFC6749Error(err); err == nil || rfc.ErrorField != "invalid_grant" {
			t.Errorf("%s: %v; want invalid_grant", name, err)
		}
	}
}

func TestRule9_RefreshTokenOnlyWithOfflineAccess(t *testing.T) {
	tests := []struct {
		granted, scopes, grants string
		want                    bool
	}{
		{"openid offline_access", "openid offline_access", "authorization_code refresh_token", true},
		{"openid", "openid offline_access", "authorization_code refresh_token", false},
		{"openid offline_access", "openid", "authorization_code refresh_token", false},
		{"openid offline_access", "openid offline_access", "authorization_code", false},
	}
	for _, tt := range tests {
		if got := IssuesRefreshToken(args(tt.granted), args(tt.scopes), args(tt.grants)); got != tt.want {
			t.Errorf("granted %q, client scopes %q, grant types %q: %t; want %t", tt.granted, tt.scopes, tt.grants, got, tt.want)
		}
	}
	if got := RefreshTokenScopes(); len(got) != 1 || got[0] != ScopeOfflineAccess {
		t.Errorf("RefreshTokenScopes = %v; want only offline_access", got)
	}
}

func TestRule12_RefreshMayNarrowScopesNeverWiden(t *testing.T) {
	granted := args("openid profile offline_access")
	if got, err := NarrowScopes(granted, nil); err != nil || strings.Join(got, " ") != "openid profile offline_access" {
		t.Errorf("no scope asked: %v %v; want all granted", got, err)
	}
	if got, err := NarrowScopes(granted, args("openid")); err != nil || strings.Join(got, " ") != "openid" {
		t.Errorf("narrower: %v %v; want openid", got, err)
	}
	_, err := NarrowScopes(granted, args("openid email"))
	if rfc := fosite.ErrorToRFC6749Error(err); err == nil || rfc.ErrorField != "invalid_scope" {
		t.Errorf("wider: %v; want invalid_scope", err)
	}
}

func TestRule12_IdleAbsoluteAndAgreementEndLifetimes(t *testing.T) {
	const day = 24 * time.Hour
	deployment := Lifetimes{Idle: 30 * day, Absolute: 365 * day}
	grantAt := func(ago time.Duration) *storage.Grant { return &storage.Grant{CreatedAt: refreshNow.Add(-ago)} }
	ends := refreshNow.Add(10 * day)
	tests := []struct {
		name      string
		l         Lifetimes
		grant     *storage.Grant
		agreement *storage.Agreement
		want      time.Time
	}{
		{name: "idle lifetime", l: deployment, grant: grantAt(day), want: refreshNow.Add(30 * day)},
		{name: "absolute lifetime caps the idle one", l: deployment, grant: grantAt(350 * day), want: refreshNow.Add(15 * day)},
		{name: "agreement end caps both", l: deployment, grant: grantAt(day), agreement: &storage.Agreement{ExpiresAt: &ends}, want: ends},
		{name: "agreement without end", l: deployment, grant: grantAt(day), agreement: &storage.Agreement{}, want: refreshNow.Add(30 * day)},
		{name: "client idle lifetime", l: Lifetimes{Idle: 30 * day, Absolute: 365 * day, ClientIdle: day}, grant: grantAt(day), want: refreshNow.Add(day)},
		{name: "client absolute lifetime", l: Lifetimes{Idle: 30 * day, Absolute: 365 * day, ClientAbsolute: 2 * day}, grant: grantAt(day), want: refreshNow.Add(day)},
		{name: "no grant caps nothing", l: deployment, want: refreshNow.Add(30 * day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RefreshExpiry(tt.l, tt.grant, tt.agreement, refreshNow); !got.Equal(tt.want) {
				t.Errorf("expiry %v; want %v", got, tt.want)
			}
		})
	}
}

// TestRule8_GrantRecordsThePolicysBasis: a grant without a screen rests on
// the agreement or remembered consent the policy used; anything else is
// the user's consent.
func TestRule8_GrantRecordsThePolicysBasis(t *testing.T) {
	tests := []struct {
		d                        Decision
		basis, agreement, rememb string
	}{
		{Decision{Outcome: OutcomeGrant, Basis: storage.BasisAgreement, AgreementID: "agr_1"}, storage.BasisAgreement, "agr_1", ""},
		{Decision{Outcome: OutcomeGrant, Basis: storage.BasisRemembered, RememberedFrom: "grt_0"}, storage.BasisRemembered, "", "grt_0"},
		{Decision{Outcome: OutcomeScreen}, storage.BasisConsent, "", ""},
		{Decision{}, storage.BasisConsent, "", ""},
	}
	for _, tt := range tests {
		basis, agreement, remembered := tt.d.GrantBasis()
		if basis != tt.basis || agreement != tt.agreement || remembered != tt.rememb {
			t.Errorf("%+v: basis %q %q %q; want %q %q %q", tt.d, basis, agreement, remembered, tt.basis, tt.agreement, tt.rememb)
		}
	}
	p := Policy{RememberFor: time.Hour}
	if until := p.RememberUntil(args("openid profile"), true, refreshNow); until == nil || !until.Equal(refreshNow.Add(time.Hour)) {
		t.Errorf("remembered until %v; want in an hour", until)
	}
	if until := p.RememberUntil(args("offline_access"), true, refreshNow); until != nil {
		t.Errorf("offline access alone remembered until %v", until)
	}
	if until := p.RememberUntil(args("openid"), false, refreshNow); until != nil {
		t.Errorf("remembered without being asked: %v", until)
	}
}
