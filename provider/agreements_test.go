package provider_test

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

// agreementFixture is a store with two clients and two users.
type agreementFixture struct {
	st           *storage.GormStore
	alice, bob   *storage.User
	app, website *storage.Client
}

func newAgreementFixture(t *testing.T) agreementFixture {
	t.Helper()
	ctx := context.Background()
	st := newAdminStore(t)
	f := agreementFixture{st: st}
	var err error
	f.app, _, err = provider.RegisterClient(ctx, st, adminHasher, provider.ClientSpec{
		ID: "com.example.app", Public: true, RedirectURIs: []string{"com.example.app:/cb"},
		Scopes: []string{"openid profile offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"},
	}, adminNow)
	if err != nil {
		t.Fatalf("register app: %v", err)
	}
	f.website, _, err = provider.RegisterClient(ctx, st, adminHasher, provider.ClientSpec{
		ID: "website", RedirectURIs: []string{"https://www.example.com/cb"}, Scopes: []string{"openid email"},
	}, adminNow)
	if err != nil {
		t.Fatalf("register website: %v", err)
	}
	for _, u := range []struct {
		name string
		dst  **storage.User
	}{{"alice", &f.alice}, {"bob", &f.bob}} {
		*u.dst, err = provider.CreateUser(ctx, st, provider.UserSpec{Username: u.name, Password: "correct horse"}, 4, adminNow)
		if err != nil {
			t.Fatalf("create user %s: %v", u.name, err)
		}
	}
	return f
}

func timePtr(t time.Time) *time.Time { return &t }

var agreementIDPattern = regexp.MustCompile(`^agr_[A-Za-z0-9_-]{22}$`)

func TestRecordAgreement(t *testing.T) {
	const app = "com.example.app"
	base := provider.AgreementSpec{
		ClientID: app, AllUsers: true, Scopes: []string{"openid offline_access"},
		Reference: "POL-2026-7", RecordedBy: "ops",
	}
	with := func(fn func(s *provider.AgreementSpec)) provider.AgreementSpec {
		s := base
		s.Scopes = append([]string(nil), base.Scopes...)
		fn(&s)
		return s
	}
	later := adminNow.Add(24 * time.Hour)
	earlier := adminNow.Add(-24 * time.Hour)

	tests := []struct {
		name     string
		spec     provider.AgreementSpec
		wantErr  string // substring; "" means success
		notFound bool   // the refusal also matches storage.ErrNotFound
		check    func(t *testing.T, f agreementFixture, a *storage.Agreement)
	}{
		{
			name: "all users, defaults",
			spec: base,
			check: func(t *testing.T, f agreementFixture, a *storage.Agreement) {
				if !agreementIDPattern.MatchString(a.ID) {
					t.Errorf("id %q; want agr_ and 22 base64url characters", a.ID)
				}
				if !a.AllUsers || a.Subject != "" {
					t.Errorf("all users = %t, subject %q; want an agreement with all users", a.AllUsers, a.Subject)
				}
				adminEq(t, "client", a.ClientID, app)
				adminEqs(t, "scopes", a.Scopes, []string{"openid", "offline_access"})
				adminEq(t, "reference", a.Reference, "POL-2026-7")
				adminEq(t, "recorded by", a.RecordedBy, "ops")
				if !a.StartsAt.Equal(adminNow) || !a.CreatedAt.Equal(adminNow) {
					t.Errorf("starts %v, created %v; want both now", a.StartsAt, a.CreatedAt)
				}
				if a.ExpiresAt != nil || a.RevokedAt != nil {
					t.Errorf("expires %v, revoked %v; want neither", a.ExpiresAt, a.RevokedAt)
				}
				stored, err := f.st.GetAgreement(context.Background(), a.ID)
				if err != nil {
					t.Fatalf("load stored agreement: %v", err)
				}
				if stored.ClientID != app || !stored.AllUsers || strings.Join(stored.Scopes, " ") != "openid offline_access" ||
					stored.Reference != "POL-2026-7" || stored.RecordedBy != "ops" || !stored.StartsAt.Equal(adminNow) {
					t.Errorf("stored %+v", stored)
				}
				if !a.UserMayRemove || !stored.UserMayRemove {
					t.Errorf("user may remove = %t, stored %t; want true by default", a.UserMayRemove, stored.UserMayRemove)
				}
				events := auditEvents(t, f.st, storage.AuditFilter{})
				if len(events) != 1 {
					t.Fatalf("audit events %+v; want one", events)
				}
				checkAuditEvent(t, events[0], storage.AuditEvent{
					Time: adminNow, Type: storage.EventAgreementCreated, Actor: storage.ActorAdmin, ActorName: "ops",
					ClientID: app, Scopes: []string{"openid", "offline_access"}, AgreementID: a.ID, Detail: "POL-2026-7",
				})
			},
		},
		{
			name: "user may not remove",
			spec: with(func(s *provider.AgreementSpec) { s.UserMayRemove = boolPtr(false) }),
			check: func(t *testing.T, f agreementFixture, a *storage.Agreement) {
				stored, err := f.st.GetAgreement(context.Background(), a.ID)
				if err != nil {
					t.Fatal(err)
				}
				if a.UserMayRemove || stored.UserMayRemove {
					t.Errorf("user may remove = %t, stored %t; want false", a.UserMayRemove, stored.UserMayRemove)
				}
			},
		},
		{
			name: "user may remove, said explicitly",
			spec: with(func(s *provider.AgreementSpec) { s.UserMayRemove = boolPtr(true) }),
			check: func(t *testing.T, _ agreementFixture, a *storage.Agreement) {
				if !a.UserMayRemove {
					t.Error("user may remove = false; want true")
				}
			},
		},
		{
			name: "one user, stored by subject",
			spec: with(func(s *provider.AgreementSpec) { s.AllUsers, s.Username = false, "alice" }),
			check: func(t *testing.T, f agreementFixture, a *storage.Agreement) {
				adminEq(t, "subject", a.Subject, f.alice.Subject)
				if a.AllUsers {
					t.Error("agreement with one user is marked all users")
				}
				events := auditEvents(t, f.st, storage.AuditFilter{Subject: f.alice.Subject})
				if len(events) != 1 || events[0].Type != storage.EventAgreementCreated || events[0].AgreementID != a.ID {
					t.Errorf("alice's audit events %+v; want the agreement's creation", events)
				}
			},
		},
		{
			name: "scopes split on spaces across values, surrounding spaces trimmed",
			spec: with(func(s *provider.AgreementSpec) {
				s.Scopes = []string{"openid  profile", "offline_access"}
				s.Reference, s.RecordedBy = "  MSA-114 ", " Jo Admin "
			}),
			check: func(t *testing.T, _ agreementFixture, a *storage.Agreement) {
				adminEqs(t, "scopes", a.Scopes, []string{"openid", "profile", "offline_access"})
				adminEq(t, "reference", a.Reference, "MSA-114")
				adminEq(t, "recorded by", a.RecordedBy, "Jo Admin")
			},
		},
		{
			name: "start and end given",
			spec: with(func(s *provider.AgreementSpec) { s.StartsAt, s.ExpiresAt = later, timePtr(later.Add(time.Hour)) }),
			check: func(t *testing.T, _ agreementFixture, a *storage.Agreement) {
				if !a.StartsAt.Equal(later) || a.ExpiresAt == nil || !a.ExpiresAt.Equal(later.Add(time.Hour)) {
					t.Errorf("starts %v, expires %v", a.StartsAt, a.ExpiresAt)
				}
			},
		},
		{name: "start in the past", spec: with(func(s *provider.AgreementSpec) { s.StartsAt, s.ExpiresAt = earlier, timePtr(later) })},
		{name: "reference of 256 characters", spec: with(func(s *provider.AgreementSpec) { s.Reference = strings.Repeat("é", 256) })},

		{name: "client id required", spec: with(func(s *provider.AgreementSpec) { s.ClientID = "" }), wantErr: "client id is required"},
		{name: "unknown client", spec: with(func(s *provider.AgreementSpec) { s.ClientID = "nope" }), wantErr: `client "nope" not found`, notFound: true},
		{name: "user and all users", spec: with(func(s *provider.AgreementSpec) { s.Username = "alice" }), wantErr: "not both"},
		{name: "neither user nor all users", spec: with(func(s *provider.AgreementSpec) { s.AllUsers = false }), wantErr: "an agreement needs a user"},
		{name: "unknown user", spec: with(func(s *provider.AgreementSpec) { s.AllUsers, s.Username = false, "carol" }), wantErr: `user "carol" not found`, notFound: true},
		{name: "scopes required", spec: with(func(s *provider.AgreementSpec) { s.Scopes = nil }), wantErr: "scopes are required"},
		{name: "blank scopes", spec: with(func(s *provider.AgreementSpec) { s.Scopes = []string{"  "} }), wantErr: "scopes are required"},
		{name: "scope twice", spec: with(func(s *provider.AgreementSpec) { s.Scopes = []string{"openid offline_access", "openid"} }), wantErr: `scope "openid" is listed twice`},
		{name: "scope with quote", spec: with(func(s *provider.AgreementSpec) { s.Scopes = []string{`open"id`} }), wantErr: "not allowed in a scope"},
		{
			name:    "scope not registered for the client",
			spec:    with(func(s *provider.AgreementSpec) { s.Scopes = []string{"openid email offline_access"} }),
			wantErr: `scope "email" is not registered for client "com.example.app"`,
		},
		{
			name:    "offline_access for a client without it",
			spec:    with(func(s *provider.AgreementSpec) { s.ClientID = "website" }),
			wantErr: `scope "offline_access" is not registered for client "website"`,
		},
		{name: "reference required", spec: with(func(s *provider.AgreementSpec) { s.Reference = "" }), wantErr: "a reference is required"},
		{name: "blank reference", spec: with(func(s *provider.AgreementSpec) { s.Reference = " \t " }), wantErr: "a reference is required"},
		{name: "reference too long", spec: with(func(s *provider.AgreementSpec) { s.Reference = strings.Repeat("r", 257) }), wantErr: "at most 256 characters"},
		{name: "reference with control character", spec: with(func(s *provider.AgreementSpec) { s.Reference = "POL\n7" }), wantErr: "control character"},
		{name: "reference not UTF-8", spec: with(func(s *provider.AgreementSpec) { s.Reference = "POL\xff" }), wantErr: "valid UTF-8"},
		{name: "recorder required", spec: with(func(s *provider.AgreementSpec) { s.RecordedBy = "" }), wantErr: "who records the agreement is required"},
		{name: "recorder with control character", spec: with(func(s *provider.AgreementSpec) { s.RecordedBy = "ops\x1b[31m" }), wantErr: "control character"},
		{name: "end in the past", spec: with(func(s *provider.AgreementSpec) { s.StartsAt, s.ExpiresAt = earlier.Add(-time.Hour), timePtr(earlier) }), wantErr: "is not in the future"},
		{name: "end now", spec: with(func(s *provider.AgreementSpec) { s.StartsAt, s.ExpiresAt = earlier, timePtr(adminNow) }), wantErr: "is not in the future"},
		{name: "end in the past, start by default", spec: with(func(s *provider.AgreementSpec) { s.ExpiresAt = timePtr(earlier) }), wantErr: "is not in the future"},
		{name: "end before start", spec: with(func(s *provider.AgreementSpec) { s.StartsAt, s.ExpiresAt = later.Add(time.Hour), timePtr(later) }), wantErr: "must be after its start"},
		{name: "end at start", spec: with(func(s *provider.AgreementSpec) { s.StartsAt, s.ExpiresAt = later, timePtr(later) }), wantErr: "must be after its start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newAgreementFixture(t)
			a, err := provider.RecordAgreement(ctx, f.st, tt.spec, adminNow)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("RecordAgreement: %v", err)
				}
				if tt.check != nil {
					tt.check(t, f, a)
				}
				return
			}
			if err == nil {
				t.Fatalf("recorded %+v; want refusal %q", a, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q; want it to contain %q", err, tt.wantErr)
			}
			if !errors.Is(err, provider.ErrInvalidSpec) {
				t.Errorf("error %q does not match ErrInvalidSpec", err)
			}
			if got := errors.Is(err, storage.ErrNotFound); got != tt.notFound {
				t.Errorf("errors.Is(err, storage.ErrNotFound) = %t; want %t", got, tt.notFound)
			}
			// Validate checks every rule that needs no storage, with the same message.
			needsStore := tt.notFound || strings.Contains(tt.wantErr, "is not registered")
			switch verr := tt.spec.Validate(adminNow); {
			case needsStore && verr != nil:
				t.Errorf("Validate = %v; want nil, the rule needs storage", verr)
			case !needsStore && (verr == nil || verr.Error() != err.Error()):
				t.Errorf("Validate = %v; want %q as RecordAgreement", verr, err)
			}
			all, err := f.st.ListAgreements(ctx, storage.AgreementFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 0 {
				t.Errorf("a refused agreement was stored: %+v", all)
			}
			if events := auditEvents(t, f.st, storage.AuditFilter{}); len(events) != 0 {
				t.Errorf("a refused agreement was audited: %+v", events)
			}
		})
	}
}

func boolPtr(b bool) *bool { return &b }

// auditEvents lists the audit log of st matching f.
func auditEvents(t *testing.T, st storage.AuditLog, f storage.AuditFilter) []storage.AuditEvent {
	t.Helper()
	events, err := st.ListAuditEvents(context.Background(), f)
	if err != nil {
		t.Fatalf("list audit events: %v", err)
	}
	return events
}

// checkAuditEvent compares got with want, ignoring the id.
func checkAuditEvent(t *testing.T, got, want storage.AuditEvent) {
	t.Helper()
	if !got.Time.Equal(want.Time) {
		t.Errorf("audit event time %v; want %v", got.Time, want.Time)
	}
	got.ID, got.Time, want.Time = 0, time.Time{}, time.Time{}
	if len(got.Scopes) == 0 && len(want.Scopes) == 0 {
		got.Scopes, want.Scopes = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("audit event\n got %+v\nwant %+v", got, want)
	}
}

// auditFails is a store whose audit log refuses every event, to show that a
// change is not kept without its event.
type auditFails struct{ *storage.GormStore }

var errAuditDown = errors.New("audit log unavailable")

func (auditFails) AppendAuditEvent(context.Context, *storage.AuditEvent) error { return errAuditDown }

func TestChangesAreNotKeptWithoutTheirAuditEvent(t *testing.T) {
	ctx := context.Background()
	f := newAgreementFixture(t)
	broken := auditFails{f.st}
	spec := provider.AgreementSpec{ClientID: "com.example.app", Username: "alice", Scopes: []string{"openid offline_access"}, Reference: "MSA-1", RecordedBy: "ops"}

	if _, err := provider.RecordAgreement(ctx, broken, spec, adminNow); !errors.Is(err, errAuditDown) {
		t.Fatalf("RecordAgreement with a failing audit log: %v; want the audit error", err)
	}
	if all, err := f.st.ListAgreements(ctx, storage.AgreementFilter{}); err != nil || len(all) != 0 {
		t.Fatalf("agreements %+v, %v; want none stored without its audit event", all, err)
	}

	a, err := provider.RecordAgreement(ctx, f.st, spec, adminNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := provider.RevokeAgreement(ctx, broken, a.ID, "ops", adminNow.Add(time.Hour)); !errors.Is(err, errAuditDown) {
		t.Fatalf("RevokeAgreement with a failing audit log: %v; want the audit error", err)
	}
	if stored, err := f.st.GetAgreement(ctx, a.ID); err != nil || stored.RevokedAt != nil {
		t.Fatalf("agreement %+v, %v; want it still unrevoked", stored, err)
	}

	if err := f.st.CreateGrant(ctx, &storage.Grant{ID: "g1", Subject: f.alice.Subject, ClientID: "website", RequestID: "req-g1",
		Scopes: []string{"openid"}, Basis: storage.BasisConsent, CreatedAt: adminNow}); err != nil {
		t.Fatal(err)
	}
	if _, err := provider.RevokeConsents(ctx, broken, "alice", "website", "ops", adminNow.Add(time.Hour)); !errors.Is(err, errAuditDown) {
		t.Fatalf("RevokeConsents with a failing audit log: %v; want the audit error", err)
	}
	grants, err := f.st.ListGrants(ctx, storage.GrantFilter{UnrevokedOnly: true})
	if err != nil || len(grants) != 1 {
		t.Fatalf("unrevoked grants %+v, %v; want the grant still unrevoked", grants, err)
	}
}

func TestRecordAgreementIDsAreUnique(t *testing.T) {
	ctx := context.Background()
	f := newAgreementFixture(t)
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		a, err := provider.RecordAgreement(ctx, f.st, provider.AgreementSpec{
			ClientID: "website", Username: "bob", Scopes: []string{"openid"}, Reference: "R", RecordedBy: "ops",
		}, adminNow)
		if err != nil {
			t.Fatal(err)
		}
		if seen[a.ID] || !agreementIDPattern.MatchString(a.ID) {
			t.Fatalf("id %q repeated or malformed", a.ID)
		}
		seen[a.ID] = true
	}
}

func TestRevokeAgreement(t *testing.T) {
	ctx := context.Background()
	f := newAgreementFixture(t)
	a, err := provider.RecordAgreement(ctx, f.st, provider.AgreementSpec{
		ClientID: "com.example.app", AllUsers: true, Scopes: []string{"openid offline_access"}, Reference: "POL-7", RecordedBy: "ops",
	}, adminNow)
	if err != nil {
		t.Fatal(err)
	}
	first := adminNow.Add(time.Hour)
	if err := provider.RevokeAgreement(ctx, f.st, a.ID, " Jo Admin ", first); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if err := provider.RevokeAgreement(ctx, f.st, a.ID, "someone else", first.Add(time.Hour)); err != nil {
		t.Fatalf("revoke again: %v", err)
	}
	events := auditEvents(t, f.st, storage.AuditFilter{})
	if len(events) != 2 {
		t.Fatalf("audit events %+v; want the creation and one revocation", events)
	}
	checkAuditEvent(t, events[1], storage.AuditEvent{
		Time: first, Type: storage.EventAgreementRevoked, Actor: storage.ActorAdmin, ActorName: "Jo Admin",
		ClientID: "com.example.app", Scopes: []string{"openid", "offline_access"}, AgreementID: a.ID, Detail: "POL-7",
	})
	stored, err := f.st.GetAgreement(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.RevokedAt == nil || !stored.RevokedAt.Equal(first) {
		t.Errorf("revoked at %v; want the first revocation, %v", stored.RevokedAt, first)
	}
	if consent.AgreementActive(*stored, first.Add(time.Minute)) {
		t.Error("revoked agreement is still active")
	}

	err = provider.RevokeAgreement(ctx, f.st, "agr_nope", "ops", adminNow)
	if err == nil || err.Error() != `agreement "agr_nope" not found` || !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown id: error %v; want `agreement \"agr_nope\" not found` matching storage.ErrNotFound", err)
	}

	// Who revokes must be named: the audit log says who did it.
	b, err := provider.RecordAgreement(ctx, f.st, provider.AgreementSpec{
		ClientID: "website", Username: "bob", Scopes: []string{"openid"}, Reference: "R-2", RecordedBy: "ops",
	}, adminNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "  ", "ops\x1b[2J"} {
		if err := provider.RevokeAgreement(ctx, f.st, b.ID, name, first); !errors.Is(err, provider.ErrInvalidSpec) {
			t.Errorf("revoked by %q: error %v; want a refusal matching ErrInvalidSpec", name, err)
		}
	}
	if stored, err := f.st.GetAgreement(ctx, b.ID); err != nil || stored.RevokedAt != nil {
		t.Errorf("agreement %+v, %v; want it unrevoked after the refusals", stored, err)
	}
	// Bob's agreement: created, with his subject.
	bobs := auditEvents(t, f.st, storage.AuditFilter{Subject: f.bob.Subject})
	if len(bobs) != 1 || bobs[0].Type != storage.EventAgreementCreated || bobs[0].AgreementID != b.ID || bobs[0].Detail != "R-2" {
		t.Errorf("bob's audit events %+v; want only the creation of his agreement", bobs)
	}
}

func TestRevokeConsents(t *testing.T) {
	ctx := context.Background()
	f := newAgreementFixture(t)
	grant := func(id string, u *storage.User, clientID string) {
		t.Helper()
		err := f.st.CreateGrant(ctx, &storage.Grant{
			ID: id, Subject: u.Subject, ClientID: clientID, RequestID: "req-" + id,
			Scopes: []string{"openid"}, Basis: storage.BasisConsent, CreatedAt: adminNow,
		})
		if err != nil {
			t.Fatalf("create grant %s: %v", id, err)
		}
	}
	grant("g1", f.alice, "website")
	grant("g2", f.alice, "website")
	grant("g3", f.alice, "com.example.app")
	grant("g4", f.bob, "website")

	at := adminNow.Add(time.Hour)
	n, err := provider.RevokeConsents(ctx, f.st, "alice", "website", "Jo Admin", at)
	if err != nil || n != 2 {
		t.Fatalf("RevokeConsents = %d, %v; want 2", n, err)
	}
	events := auditEvents(t, f.st, storage.AuditFilter{})
	if len(events) != 1 {
		t.Fatalf("audit events %+v; want one", events)
	}
	checkAuditEvent(t, events[0], storage.AuditEvent{
		Time: at, Type: storage.EventGrantRevoked, Actor: storage.ActorAdmin, ActorName: "Jo Admin",
		Subject: f.alice.Subject, ClientID: "website", Detail: "2 grants",
	})
	all, err := f.st.ListGrants(ctx, storage.GrantFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range all {
		revoked := g.ID == "g1" || g.ID == "g2"
		if (g.RevokedAt != nil) != revoked {
			t.Errorf("grant %s revoked at %v; want revoked %t", g.ID, g.RevokedAt, revoked)
		}
		if revoked && g.RevokedAt != nil && !g.RevokedAt.Equal(at) {
			t.Errorf("grant %s revoked at %v; want %v", g.ID, g.RevokedAt, at)
		}
	}
	if n, err := provider.RevokeConsents(ctx, f.st, "alice", "website", "Jo Admin", at.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("second RevokeConsents = %d, %v; want 0", n, err)
	}
	if events := auditEvents(t, f.st, storage.AuditFilter{}); len(events) != 1 {
		t.Errorf("audit events after revoking nothing %+v; want still one", events)
	}
	if n, err := provider.RevokeConsents(ctx, f.st, "bob", "website", "ops", at); err != nil || n != 1 {
		t.Errorf("RevokeConsents of bob = %d, %v; want 1", n, err)
	}
	if events := auditEvents(t, f.st, storage.AuditFilter{Subject: f.bob.Subject}); len(events) != 1 || events[0].Detail != "1 grant" || events[0].ActorName != "ops" {
		t.Errorf("bob's audit events %+v; want one, \"1 grant\" by ops", events)
	}
	if _, err := provider.RevokeConsents(ctx, f.st, "alice", "com.example.app", "", at); !errors.Is(err, provider.ErrInvalidSpec) {
		t.Errorf("RevokeConsents without a name: error %v; want a refusal matching ErrInvalidSpec", err)
	}

	for _, tt := range []struct{ user, client, want string }{
		{"carol", "website", `user "carol" not found`},
		{"alice", "nope", `client "nope" not found`},
	} {
		_, err := provider.RevokeConsents(ctx, f.st, tt.user, tt.client, "ops", at)
		if err == nil || err.Error() != tt.want || !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("RevokeConsents(%q, %q): error %v; want %q matching storage.ErrNotFound", tt.user, tt.client, err, tt.want)
		}
	}
}
