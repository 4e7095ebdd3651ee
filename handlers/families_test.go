package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/uuid"
	"github.com/ory/fosite"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

// familyOf returns the request id stored with token: the id of its family.
func familyOf(t *testing.T, e *env, token string, use fosite.TokenType) string {
	t.Helper()
	_, ar, err := e.Provider.OAuth2.IntrospectToken(context.Background(), token, use, provider.EmptySession())
	if err != nil {
		t.Fatalf("introspect %s: %v", use, err)
	}
	return ar.GetID()
}

// wantTimeOrdered fails unless id is a version 7 UUID, which sorts by
// creation time: the token tables' request_id indexes then grow at their
// end instead of at a random page.
func wantTimeOrdered(t *testing.T, what, id string) {
	t.Helper()
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 {
		t.Errorf("%s: request id %q is not a version 7 UUID (err %v)", what, id, err)
	}
}

func TestNewFamiliesGetTimeOrderedRequestIDs(t *testing.T) {
	e := newEnv(t)

	// Authorization code flow: the grant, the tokens of the code exchange
	// and those of every refresh share one id.
	secret, tok := offlineTokens(t, e, "cal")
	grants, err := e.Provider.Store.ListGrants(context.Background(), storage.GrantFilter{Subject: e.User.Subject, ClientID: "cal"})
	if err != nil || len(grants) != 1 {
		t.Fatalf("grants = %+v, %v", grants, err)
	}
	codeFamily := grants[0].RequestID
	wantTimeOrdered(t, "authorization grant", codeFamily)
	if got := familyOf(t, e, tok["access_token"].(string), fosite.AccessToken); got != codeFamily {
		t.Errorf("access token of the code exchange: family %q, want the grant's %q", got, codeFamily)
	}
	refreshed := refreshWith(t, e, "cal", secret, tok["refresh_token"].(string), nil)
	if refreshed.status != http.StatusOK {
		t.Fatalf("refresh: %d %v", refreshed.status, refreshed.json)
	}
	if got := familyOf(t, e, refreshed.json["refresh_token"].(string), fosite.RefreshToken); got != codeFamily {
		t.Errorf("rotated refresh token: family %q, want the grant's %q", got, codeFamily)
	}

	// Client credentials: each grant is a family of its own, in issue order.
	_, ccSecret := e.client(provider.ClientSpec{ID: "backend", Scopes: []string{"reports"}, GrantTypes: []string{"client_credentials"}, RedirectURIs: []string{}})
	var families []string
	for range 2 {
		resp := postForm(t, e.Issuer+"/oauth2/token", "backend", ccSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"reports"}})
		if resp.status != http.StatusOK {
			t.Fatalf("client credentials: %d %v", resp.status, resp.json)
		}
		family := familyOf(t, e, resp.json["access_token"].(string), fosite.AccessToken)
		wantTimeOrdered(t, "client credentials", family)
		families = append(families, family)
	}
	if !(codeFamily < families[0] && families[0] < families[1]) {
		t.Errorf("request ids not in issue order: code flow %q, then client credentials %q and %q", codeFamily, families[0], families[1])
	}

	// Device flow: the id is made when the device asks for a code.
	cli := e.deviceCLI("cli")
	da := cli.start()
	b := e.browser()
	b.consent(e.approveInBrowser(b, da), e.Issuer, "allow")
	devTok, err := cli.poll(da)
	if err != nil {
		t.Fatalf("device flow: %v", err)
	}
	wantTimeOrdered(t, "device flow", familyOf(t, e, devTok.AccessToken, fosite.AccessToken))
}
