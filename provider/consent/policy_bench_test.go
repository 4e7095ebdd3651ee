package consent

import (
	"fmt"
	"testing"
	"time"

	"github.com/consentry/consentry/storage"
)

// BenchmarkConsentPolicyDecide decides realistic requests: a signed-in user
// of a client with a few agreements (one covering, some expired or revoked)
// and a history of grants, some remembered.
func BenchmarkConsentPolicyDecide(b *testing.B) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Hour), now.Add(24*time.Hour)
	var agreements []storage.Agreement
	for i := range 4 {
		agreements = append(agreements, storage.Agreement{ID: fmt.Sprintf("agr_old_%d", i), AllUsers: true,
			Scopes: args("openid profile offline_access"), StartsAt: now.Add(-48 * time.Hour), ExpiresAt: &past})
	}
	agreements = append(agreements, storage.Agreement{ID: "agr_active", Subject: "user-1",
		Scopes: args("openid profile email offline_access"), StartsAt: now.Add(-time.Hour)})
	var grants []storage.Grant
	for i := range 20 {
		g := storage.Grant{ID: fmt.Sprintf("grt_%d", i), Scopes: args("openid profile email offline_access"), Basis: storage.BasisConsent}
		if i%4 == 0 {
			g.RememberUntil = &future
		}
		if i%5 == 0 {
			g.RevokedAt = &past
		}
		grants = append(grants, g)
	}
	clientScopes := args("openid profile email offline_access api.read")
	cases := []struct {
		name string
		req  Request
	}{
		{"prompt_consent_offline", Request{Requested: args("openid profile email offline_access"), Prompt: args("consent")}},
		{"agreement_offline", Request{Requested: args("openid profile email offline_access")}},
		{"remembered", Request{Requested: args("openid profile"), Agreements: agreements[:4]}},
		{"screen", Request{Requested: args("openid api.read")}},
	}
	policy := Policy{WithoutPromptConsent: OfflineIgnore, RememberFor: 30 * 24 * time.Hour}
	for _, c := range cases {
		req := c.req
		req.ClientScopes, req.ResponseTypes, req.SignedIn, req.Now = clientScopes, args("code"), true, now
		if req.Agreements == nil {
			req.Agreements = agreements
		}
		req.Grants = grants
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := policy.Decide(req); d.Outcome == OutcomeError {
					b.Fatal(d.Err)
				}
			}
		})
	}
}
