package consent

import (
	"testing"
	"time"

	"github.com/consentry/consentry/storage"
)

// TestRule4a_ActiveAgreement: an agreement covers requests only while in
// force: started, not ended, not revoked.
func TestRule4a_ActiveAgreement(t *testing.T) {
	now := policyNow
	before, after := now.Add(-time.Second), now.Add(time.Second)
	tests := []struct {
		name string
		a    storage.Agreement
		want bool
	}{
		{name: "started, no end", a: storage.Agreement{StartsAt: before}, want: true},
		{name: "starts exactly now", a: storage.Agreement{StartsAt: now}, want: true},
		{name: "not yet started", a: storage.Agreement{StartsAt: after}, want: false},
		{name: "ends later", a: storage.Agreement{StartsAt: before, ExpiresAt: &after}, want: true},
		{name: "ends exactly now", a: storage.Agreement{StartsAt: before, ExpiresAt: &now}, want: false},
		{name: "ended", a: storage.Agreement{StartsAt: before.Add(-time.Hour), ExpiresAt: &before}, want: false},
		{name: "revoked", a: storage.Agreement{StartsAt: before, RevokedAt: &before}, want: false},
		{name: "revoked in the future still counts", a: storage.Agreement{StartsAt: before, RevokedAt: &after}, want: false},
		{name: "revoked and ended", a: storage.Agreement{StartsAt: before, ExpiresAt: &before, RevokedAt: &before}, want: false},
		{name: "not yet started and revoked", a: storage.Agreement{StartsAt: after, RevokedAt: &before}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AgreementActive(tt.a, now); got != tt.want {
				t.Errorf("AgreementActive = %t; want %t", got, tt.want)
			}
		})
	}
}
