package storagetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/consentry/consentry/storage"
)

func appendEvent(t *testing.T, s storage.Store, e *storage.AuditEvent) *storage.AuditEvent {
	t.Helper()
	mustOK(t, s.AppendAuditEvent(t.Context(), e), "AppendAuditEvent")
	if e.ID == 0 {
		t.Fatalf("AppendAuditEvent did not set the id")
	}
	return e
}

func checkEvent(t *testing.T, got, want *storage.AuditEvent) {
	t.Helper()
	sameTime(t, got.Time, want.Time, "audit event Time")
	g, w := *got, *want
	g.Time, w.Time = time.Time{}, time.Time{}
	if len(g.Scopes) == 0 && len(w.Scopes) == 0 {
		g.Scopes, w.Scopes = nil, nil
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("audit event:\n got %+v\nwant %+v", g, w)
	}
}

// checkEvents compares a listing with want, in order.
func checkEvents(t *testing.T, got []storage.AuditEvent, want []*storage.AuditEvent, what string) {
	t.Helper()
	ids := make([]string, len(got))
	for i, e := range got {
		ids[i] = fmt.Sprint(e.ID)
	}
	wantIDs := make([]string, len(want))
	for i, e := range want {
		wantIDs[i] = fmt.Sprint(e.ID)
	}
	sameStrings(t, ids, wantIDs, what+" (event ids)")
	if len(got) == len(want) {
		for i := range got {
			checkEvent(t, &got[i], want[i])
		}
	}
}

func listEvents(t *testing.T, s storage.Store, f storage.AuditFilter, want []*storage.AuditEvent, what string) {
	t.Helper()
	list, err := s.ListAuditEvents(t.Context(), f)
	mustOK(t, err, "ListAuditEvents "+what)
	checkEvents(t, list, want, "ListAuditEvents "+what)
}

func testAuditLog(t *testing.T, s storage.Store) {
	ctx := t.Context()
	listEvents(t, s, storage.AuditFilter{}, nil, "empty")

	t0 := now().Add(-time.Hour)
	consent := appendEvent(t, s, &storage.AuditEvent{
		Time: t0.Add(2 * time.Minute), Type: storage.EventConsentGiven, Actor: storage.ActorUser,
		Subject: "sub-alice", ClientID: "app", Scopes: []string{"openid", "profile"}, Basis: storage.BasisConsent,
		GrantID: "grant-1", IPAddress: "192.0.2.10", UserAgent: "Mozilla/5.0", Detail: "remember for 30 days",
	})
	denied := appendEvent(t, s, &storage.AuditEvent{
		Time: t0, Type: storage.EventConsentDenied, Actor: storage.ActorUser, Subject: "sub-bob", ClientID: "app",
	})
	// The same time as consent, appended later: listed after it. A time in
	// another zone is the same instant.
	revoked := appendEvent(t, s, &storage.AuditEvent{
		Time: t0.Add(2 * time.Minute).In(time.FixedZone("LINT", 14*3600)), Type: storage.EventGrantRevoked,
		Actor: storage.ActorAdmin, ActorName: "root", Subject: "sub-alice", ClientID: "other", GrantID: "grant-2",
	})
	created := appendEvent(t, s, &storage.AuditEvent{
		Time: t0.Add(time.Minute), Type: storage.EventAgreementCreated, Actor: storage.ActorAdmin, ActorName: "root",
		ClientID: "app", AgreementID: "agreement-1", Scopes: []string{"openid"},
	})
	before := time.Now().Add(-time.Second)
	latest := appendEvent(t, s, &storage.AuditEvent{
		Type: storage.EventRefreshReuse, Actor: storage.ActorReuseDetection, Subject: "sub-alice", ClientID: "app",
	})
	if latest.Time.IsZero() || latest.Time.Before(before) || latest.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("zero Time not set to now: %v", latest.Time)
	}
	ids := map[int64]bool{}
	for _, e := range []*storage.AuditEvent{consent, denied, revoked, created, latest} {
		if ids[e.ID] {
			t.Errorf("id %d assigned twice", e.ID)
		}
		ids[e.ID] = true
	}

	all := []*storage.AuditEvent{denied, created, consent, revoked, latest}
	listEvents(t, s, storage.AuditFilter{}, all, "all")
	listEvents(t, s, storage.AuditFilter{Subject: "sub-alice"}, []*storage.AuditEvent{consent, revoked, latest}, "subject")
	listEvents(t, s, storage.AuditFilter{ClientID: "app"}, []*storage.AuditEvent{denied, created, consent, latest}, "client")
	listEvents(t, s, storage.AuditFilter{Subject: "sub-alice", ClientID: "other"}, []*storage.AuditEvent{revoked}, "subject and client")
	listEvents(t, s, storage.AuditFilter{Since: t0.Add(time.Minute)}, []*storage.AuditEvent{created, consent, revoked, latest}, "since (inclusive)")
	listEvents(t, s, storage.AuditFilter{Since: t0.Add(time.Minute), Limit: 2}, []*storage.AuditEvent{created, consent}, "since with limit")
	listEvents(t, s, storage.AuditFilter{Limit: 1}, []*storage.AuditEvent{denied}, "limit")
	listEvents(t, s, storage.AuditFilter{Subject: "sub-nobody"}, nil, "unknown subject")

	if err := s.AppendAuditEvent(ctx, &storage.AuditEvent{Subject: "sub-alice"}); err == nil {
		t.Error("AppendAuditEvent without a type succeeded")
	}

	// Appended in the caller's transaction: gone with its rollback, kept
	// with its commit.
	undone := &storage.AuditEvent{Time: now(), Type: storage.EventConsentGiven, Actor: storage.ActorUser, Subject: "sub-carol"}
	txCtx, err := s.BeginTX(ctx)
	mustOK(t, err, "BeginTX")
	mustOK(t, s.AppendAuditEvent(txCtx, undone), "AppendAuditEvent in tx")
	list, err := s.ListAuditEvents(txCtx, storage.AuditFilter{Subject: "sub-carol"})
	mustOK(t, err, "ListAuditEvents in tx")
	checkEvents(t, list, []*storage.AuditEvent{undone}, "ListAuditEvents in tx")
	mustOK(t, s.Rollback(txCtx), "Rollback")
	listEvents(t, s, storage.AuditFilter{Subject: "sub-carol"}, nil, "after rollback")

	kept := &storage.AuditEvent{Time: now(), Type: storage.EventConsentGiven, Actor: storage.ActorUser, Subject: "sub-carol"}
	mustOK(t, withTx(ctx, s, func(ctx context.Context) error { return s.AppendAuditEvent(ctx, kept) }), "AppendAuditEvent in committed tx")
	listEvents(t, s, storage.AuditFilter{Subject: "sub-carol"}, []*storage.AuditEvent{kept}, "after commit")
}

// testAuditSurvivesDeletion: the audit trail outlives the users and clients
// it describes.
func testAuditSurvivesDeletion(t *testing.T, s storage.Store) {
	ctx := t.Context()
	app := createClient(t, s, "app")
	mustOK(t, s.CreateUser(ctx, newUser("sub-alice", "alice")), "CreateUser")
	ts := createTokens(t, s, app, "sub-alice")
	createGrant(t, s, "sub-alice", "app", ts.req.ID, now())
	events := []*storage.AuditEvent{
		appendEvent(t, s, &storage.AuditEvent{Time: now().Add(-time.Minute), Type: storage.EventConsentGiven,
			Actor: storage.ActorUser, Subject: "sub-alice", ClientID: "app", Scopes: []string{"openid"}}),
		appendEvent(t, s, &storage.AuditEvent{Time: now(), Type: storage.EventAgreementCreated,
			Actor: storage.ActorAdmin, ActorName: "root", ClientID: "app", AgreementID: "agreement-1"}),
	}
	mustOK(t, s.DeleteUser(ctx, "sub-alice"), "DeleteUser")
	listEvents(t, s, storage.AuditFilter{}, events, "after DeleteUser")
	mustOK(t, s.DeleteClient(ctx, "app"), "DeleteClient")
	listEvents(t, s, storage.AuditFilter{}, events, "after DeleteClient")
	listEvents(t, s, storage.AuditFilter{Subject: "sub-alice"}, events[:1], "of the deleted user")
}

// testAppendAuditEventConcurrently: events appended at once all get their
// own id.
func testAppendAuditEventConcurrently(t *testing.T, s storage.Store) {
	ctx := t.Context()
	events := make([]*storage.AuditEvent, retirers)
	errs := race(retirers, func(i int) error {
		events[i] = &storage.AuditEvent{Type: storage.EventConsentGiven, Actor: storage.ActorUser, Subject: fmt.Sprintf("sub-%d", i)}
		return s.AppendAuditEvent(ctx, events[i])
	})
	ids := map[int64]bool{}
	for i, err := range errs {
		mustOK(t, err, fmt.Sprintf("AppendAuditEvent %d", i))
		if events[i].ID == 0 || ids[events[i].ID] {
			t.Errorf("event %d: id %d missing or assigned twice", i, events[i].ID)
		}
		ids[events[i].ID] = true
	}
	list, err := s.ListAuditEvents(ctx, storage.AuditFilter{})
	mustOK(t, err, "ListAuditEvents")
	if len(list) != retirers {
		t.Errorf("ListAuditEvents: got %d events, want %d", len(list), retirers)
	}
}
