package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

func TestConnectedAppsPage(t *testing.T) {
	e := newEnv(t)
	secret, tok := offlineTokens(t, e, "cal")
	refreshed := refreshWith(t, e, "cal", secret, tok["refresh_token"].(string), nil)

	b := e.signedInBrowser("alice")
	p := b.get(e.Issuer + "/account/apps")
	for _, want := range []string{"Calendar Sync", "View your profile", "Has access while you are away", "Your consent", "Remove access"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("connected apps page lacks %q:\n%s", want, p.Body)
		}
	}
	if strings.Contains(p.Body, "Last used</dt><dd>never") {
		t.Error("last use not shown after a refresh")
	}

	form := p.form(t, "/account/apps/remove")
	forged := form.Values
	forged.Set("csrf_token", "forged")
	if got := b.post(e.Issuer+"/account/apps/remove", forged); got.Status != http.StatusForbidden {
		t.Fatalf("forged removal accepted: %d", got.Status)
	}
	form = b.get(e.Issuer+"/account/apps").form(t, "/account/apps/remove")
	p = b.post(e.Issuer+"/account/apps/remove", form.Values)
	if p.Status != http.StatusOK || strings.Contains(p.Body, "Calendar Sync") || !strings.Contains(p.Body, "Access removed") {
		t.Fatalf("after removal: %d\n%s", p.Status, p.Body)
	}
	if active(t, e, "cal", secret, refreshed.json["refresh_token"].(string)) || active(t, e, "cal", secret, refreshed.json["access_token"].(string)) {
		t.Fatal("tokens survived \"Remove access\"")
	}
	events, _ := e.Provider.Store.ListAuditEvents(context.Background(), storage.AuditFilter{Subject: e.User.Subject, ClientID: "cal"})
	if !hasEvent(events, storage.EventGrantRevoked) {
		t.Error("no grant_revoked event")
	}
}

func TestConnectedAppsRequiresSignIn(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get(e.Issuer + "/account/apps")
	if !strings.HasSuffix(p.URL.Path, "/login") {
		t.Fatalf("landed on %s, want the login page", p.URL)
	}
	p = b.login(p, e.Issuer, "alice", testPassword)
	if !strings.HasSuffix(p.URL.Path, "/account/apps") {
		t.Fatalf("after login landed on %s, want the connected apps page", p.URL)
	}
}

func TestConnectedAppsUnderAgreements(t *testing.T) {
	e := newEnv(t)
	removable := e.offlineApp("partner")
	e.agreement(provider.AgreementSpec{ClientID: "partner", AllUsers: true, Scopes: []string{"openid", "profile", "offline_access"}, Reference: "MSA-42"})
	fixed := e.offlineApp("corp")
	no := false
	e.agreement(provider.AgreementSpec{ClientID: "corp", AllUsers: true, Scopes: []string{"openid", "profile", "offline_access"}, Reference: "HR-1", UserMayRemove: &no})

	b := e.signedInBrowser("alice")
	removable.request("").exchangeIn(b)
	fixedTok := fixed.request("").exchangeIn(b)

	p := b.get(e.Issuer + "/account/apps")
	if !strings.Contains(p.Body, "Company agreement") || !strings.Contains(p.Body, "MSA-42") || !strings.Contains(p.Body, "only an administrator can remove it") {
		t.Fatalf("agreement-based access not shown as such:\n%s", p.Body)
	}
	// The one removable form is the partner's.
	form := p.form(t, "/account/apps/remove")
	if form.Values.Get("client_id") != "partner" {
		t.Fatalf("removal offered for %q", form.Values.Get("client_id"))
	}
	b.post(e.Issuer+"/account/apps/remove", form.Values)
	// Alice opted out of the partner's all-users agreement: she is asked now.
	if got := b.get(removable.request("").url); got.Location != nil {
		t.Fatal("removed agreement-based access came back without a consent screen")
	}

	err := e.Provider.RemoveAccess(context.Background(), e.User.Subject, "corp", "127.0.0.1", "test")
	if !errors.Is(err, provider.ErrRemovalForbidden) {
		t.Fatalf("removing access the agreement keeps: %v", err)
	}
	if !fixed.refreshWorks(fixedTok) {
		t.Fatal("the agreement-based access that may not be removed was removed")
	}
}
