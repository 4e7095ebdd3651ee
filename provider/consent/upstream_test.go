package consent

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/consentry/consentry/provider/connector"
)

func TestCheckUpstream(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ok := Upstream{Configured: true, Linked: true, Now: now, LastLoginAt: now.Add(-time.Hour)}
	for _, tt := range []struct {
		name string
		edit func(*Upstream)
		want *fosite.RFC6749Error
	}{
		{"still there", func(u *Upstream) { u.Asked = true }, nil},
		{"no max age, not asked", func(*Upstream) {}, nil},
		{"connector removed", func(u *Upstream) { u.Configured = false }, fosite.ErrInvalidGrant},
		{"no identity", func(u *Upstream) { u.Linked = false }, fosite.ErrInvalidGrant},
		{"gone before", func(u *Upstream) { u.Gone = true }, fosite.ErrInvalidGrant},
		{"gone now", func(u *Upstream) { u.Asked, u.Err = true, fmt.Errorf("search: %w", connector.ErrGone) }, fosite.ErrInvalidGrant},
		{"unavailable", func(u *Upstream) { u.Asked, u.Err = true, connector.ErrUnavailable }, fosite.ErrTemporarilyUnavailable},
		{"other failure", func(u *Upstream) { u.Asked, u.Err = true, errors.New("boom") }, fosite.ErrTemporarilyUnavailable},
		{"within max login age", func(u *Upstream) { u.MaxLoginAge = 2 * time.Hour }, nil},
		{"past max login age", func(u *Upstream) { u.MaxLoginAge = 30 * time.Minute }, fosite.ErrInvalidGrant},
		// A connector asked now decides; the age cap is for those that cannot be.
		{"asked, max age ignored", func(u *Upstream) { u.Asked, u.MaxLoginAge = true, time.Minute }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := ok
			tt.edit(&u)
			err := CheckUpstream(u)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckUpstream = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckUpstream = %v, want %v", err, tt.want)
			}
		})
	}
}
