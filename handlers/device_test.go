package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

const deviceGrant = "urn:ietf:params:oauth:grant-type:device_code"

// deviceCLI is a command-line tool using the device flow through x/oauth2.
type deviceCLI struct {
	e   *env
	cfg oauth2.Config
}

func (e *env) deviceCLI(id string) *deviceCLI {
	e.t.Helper()
	e.client(provider.ClientSpec{ID: id, Name: "Example CLI", Public: true, RedirectURIs: []string{},
		Scopes: []string{"openid", "profile", "offline_access"}, GrantTypes: []string{deviceGrant, "refresh_token"}})
	return &deviceCLI{e: e, cfg: oauth2.Config{ClientID: id, Scopes: []string{"openid", "profile", "offline_access"},
		Endpoint: oauth2.Endpoint{DeviceAuthURL: e.Issuer + "/oauth2/device/authorize", TokenURL: e.Issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}}
}

// start asks for a device code.
func (c *deviceCLI) start() *oauth2.DeviceAuthResponse {
	c.e.t.Helper()
	da, err := c.cfg.DeviceAuth(context.Background())
	if err != nil {
		c.e.t.Fatalf("device authorization: %v", err)
	}
	return da
}

// poll waits for the user, as a CLI does.
func (c *deviceCLI) poll(da *oauth2.DeviceAuthResponse) (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.cfg.DeviceAccessToken(ctx, da)
}

// pollOnce makes one token request and returns the OAuth error code, or "".
func (c *deviceCLI) pollOnce(deviceCode string) (string, jsonResponse) {
	c.e.t.Helper()
	r := postForm(c.e.t, c.e.Issuer+"/oauth2/token", "", "", url.Values{"grant_type": {deviceGrant}, "device_code": {deviceCode}, "client_id": {c.cfg.ClientID}})
	code, _ := r.json["error"].(string)
	return code, r
}

// approveInBrowser opens verification_uri_complete, signs in and submits the
// code; it returns the page reached (consent screen or done page).
func (e *env) approveInBrowser(b *browser, da *oauth2.DeviceAuthResponse) *page {
	e.t.Helper()
	p := b.get(da.VerificationURIComplete)
	if strings.HasSuffix(p.URL.Path, "/login") {
		p = b.login(p, e.Issuer, "alice", testPassword)
	}
	if !strings.HasSuffix(p.URL.Path, "/device") || !strings.Contains(p.Body, strings.ReplaceAll(da.UserCode, "-", "")) && !strings.Contains(p.Body, da.UserCode) {
		e.t.Fatalf("verification page at %s does not carry the code:\n%s", p.URL, p.Body)
	}
	f := p.form(e.t, "/device")
	return b.post(e.Issuer+"/device", f.Values)
}

func TestDeviceFlowEndToEnd(t *testing.T) {
	e := newEnv(t)
	cli := e.deviceCLI("cli")
	da := cli.start()
	if len(strings.ReplaceAll(da.UserCode, "-", "")) != 8 || !strings.HasPrefix(da.VerificationURI, e.Issuer+"/device") {
		t.Fatalf("device authorization response = %+v", da)
	}
	if code, _ := cli.pollOnce(da.DeviceCode); code != "authorization_pending" {
		t.Fatalf("first poll: %q, want authorization_pending", code)
	}
	if code, _ := cli.pollOnce(da.DeviceCode); code != "slow_down" {
		t.Fatalf("immediate second poll: %q, want slow_down", code)
	}

	// Offline access without an agreement always needs the screen.
	b := e.browser()
	p := e.approveInBrowser(b, da)
	if !strings.Contains(p.Body, "Access while you are away") || !strings.Contains(p.Body, "Example CLI") {
		t.Fatalf("no consent screen with offline access:\n%s", p.Body)
	}
	p = b.consent(p, e.Issuer, "allow")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "is now connected") {
		t.Fatalf("after allow: %d\n%s", p.Status, p.Body)
	}
	tok, err := cli.poll(da)
	if err != nil {
		t.Fatalf("polling after approval: %v", err)
	}
	if tok.RefreshToken == "" || tok.Extra("id_token") == nil {
		t.Fatalf("tokens = %+v", tok)
	}
	// The refresh token follows the whole lifecycle.
	stale := *tok
	stale.Expiry = time.Now().Add(-time.Minute)
	if _, err := cli.cfg.TokenSource(context.Background(), &stale).Token(); err != nil {
		t.Fatalf("refresh of a device flow token: %v", err)
	}
	// A device code is redeemed once.
	if code, _ := cli.pollOnce(da.DeviceCode); code != "invalid_grant" {
		t.Fatalf("second redemption: %q, want invalid_grant", code)
	}
}

func TestDeviceFlowDenyAndUntick(t *testing.T) {
	e := newEnv(t)
	cli := e.deviceCLI("cli")
	b := e.browser()

	da := cli.start()
	p := b.consent(e.approveInBrowser(b, da), e.Issuer, "deny")
	if !strings.Contains(p.Body, "was not connected") {
		t.Fatalf("after deny:\n%s", p.Body)
	}
	if _, err := cli.poll(da); err == nil || !strings.Contains(err.Error(), "access_denied") {
		t.Fatalf("polling after deny: %v", err)
	}

	da = cli.start()
	b.consent(e.approveInBrowser(b, da), e.Issuer, "allow", "offline_access")
	tok, err := cli.poll(da)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" {
		t.Fatal("refresh token issued although offline access was unticked")
	}
}

// deviceWarning is the anti-phishing line of the device confirmation screen.
const deviceWarning = "Only continue if you started this sign-in yourself on a device you have with you. If someone sent you this code, deny."

// assertDeviceConfirmation checks that p is the device's confirmation
// screen: it names the application, shows the code as the device shows it
// and warns against codes sent by someone else (RFC 8628 §5.4).
func assertDeviceConfirmation(t *testing.T, p *page, clientName, userCode string) {
	t.Helper()
	if !strings.Contains(p.Body, `action="/device/consent"`) {
		t.Fatalf("no device confirmation screen (status %d):\n%s", p.Status, p.Body)
	}
	for _, want := range []string{clientName, deviceWarning, ">" + userCode + "<"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("the confirmation screen lacks %q:\n%s", want, p.Body)
		}
	}
}

// onlyGrant returns the one grant of clientID, failing otherwise.
func (e *env) onlyGrant(clientID string) storage.Grant {
	e.t.Helper()
	grants, err := e.Provider.Store.ListGrants(context.Background(), storage.GrantFilter{Subject: e.User.Subject, ClientID: clientID})
	if err != nil || len(grants) != 1 {
		e.t.Fatalf("grants of %s: %+v, %v", clientID, grants, err)
	}
	return grants[0]
}

// An agreement needs no consent, but the device screen is about phishing,
// not consent: it is shown anyway, and the grant keeps the agreement as
// its basis.
func TestDeviceFlowUnderAnAgreementStillConfirms(t *testing.T) {
	e := newEnv(t)
	cli := e.deviceCLI("corp-cli")
	a := e.agreement(provider.AgreementSpec{ClientID: "corp-cli", AllUsers: true, Scopes: []string{"openid", "profile", "offline_access"}})
	b := e.browser()
	da := cli.start()
	p := e.approveInBrowser(b, da)
	assertDeviceConfirmation(t, p, "Example CLI", da.UserCode)
	if p = b.consent(p, e.Issuer, "allow"); !strings.Contains(p.Body, "is now connected") {
		t.Fatalf("after allow:\n%s", p.Body)
	}
	tok, err := cli.poll(da)
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("tokens under the agreement: %+v, %v", tok, err)
	}
	if g := e.onlyGrant("corp-cli"); g.Basis != storage.BasisAgreement || g.AgreementID != a.ID {
		t.Errorf("grant basis %q agreement %q, want agreement %q", g.Basis, g.AgreementID, a.ID)
	}
}

// A consent remembered in the browser flow does not approve a device code
// by itself: someone else's device could be showing it.
func TestDeviceFlowRememberedConsentStillConfirms(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "tv", Name: "Living Room TV", Public: true, Scopes: []string{"openid", "profile"},
		GrantTypes: []string{"authorization_code", deviceGrant}})
	b := e.signedInBrowser("alice")
	v := authParams("tv")
	v.Set("scope", "openid profile")
	f := b.get(e.Issuer+"/oauth2/auth?"+v.Encode()).form(t, "/consent")
	f.Values.Set("remember", "1")
	f.Values.Set("action", "allow")
	b.post(e.Issuer+"/consent", f.Values).callback(t)
	remembered := e.onlyGrant("tv")

	cfg := oauth2.Config{ClientID: "tv", Scopes: []string{"openid", "profile"},
		Endpoint: oauth2.Endpoint{DeviceAuthURL: e.Issuer + "/oauth2/device/authorize", TokenURL: e.Issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	da, err := cfg.DeviceAuth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := e.approveInBrowser(b, da)
	assertDeviceConfirmation(t, p, "Living Room TV", da.UserCode)
	for _, scope := range []string{"openid", "profile"} {
		if !strings.Contains(p.Body, `value="`+scope+`" checked`) && !strings.Contains(p.Body, `id="scope-`+scope+`" checked`) {
			t.Errorf("remembered scope %s not ticked", scope)
		}
	}
	if code, _ := (&deviceCLI{e: e, cfg: cfg}).pollOnce(da.DeviceCode); code != "authorization_pending" {
		t.Fatalf("device code approved before the user confirmed: %q", code)
	}
	if p = b.consent(p, e.Issuer, "allow"); !strings.Contains(p.Body, "is now connected") {
		t.Fatalf("after allow:\n%s", p.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cfg.DeviceAccessToken(ctx, da); err != nil {
		t.Fatalf("polling after approval: %v", err)
	}
	grants, err := e.Provider.Store.ListGrants(context.Background(), storage.GrantFilter{Subject: e.User.Subject, ClientID: "tv"})
	if err != nil || len(grants) != 2 {
		t.Fatalf("grants: %+v, %v", grants, err)
	}
	for _, g := range grants {
		if g.ID != remembered.ID && (g.Basis != storage.BasisRemembered || g.RememberedFrom != remembered.ID) {
			t.Errorf("device grant basis %q from %q, want remembered from %q", g.Basis, g.RememberedFrom, remembered.ID)
		}
	}
}

func TestDeviceCodeExpires(t *testing.T) {
	c := &clock{}
	e := newEnv(t, withClock(c))
	cli := e.deviceCLI("cli")
	da := cli.start()
	c.Advance(11 * time.Minute)
	if code, _ := cli.pollOnce(da.DeviceCode); code != "expired_token" {
		t.Fatalf("poll after expiry: %q, want expired_token", code)
	}
	b := e.signedInBrowser("alice")
	f := b.get(e.Issuer+"/device").form(t, "/device")
	f.Values.Set("user_code", da.UserCode)
	if p := b.post(e.Issuer+"/device", f.Values); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "expired") {
		t.Fatalf("entering an expired code: %d", p.Status)
	}
}

// wrongCodes submits n wrong codes from b and returns the last page.
func (e *env) wrongCodes(b *browser, n int) *page {
	e.t.Helper()
	form := b.get(e.Issuer+"/device").form(e.t, "/device")
	var last *page
	for i := range n {
		form.Values.Set("user_code", "BCDF-GH"+string("JKLMNPQRSTVWXZ"[i/14%14])+string("JKLMNPQRSTVWXZ"[i%14]))
		last = b.post(e.Issuer+"/device", form.Values)
	}
	return last
}

// enterCode submits code from b.
func (e *env) enterCode(b *browser, code string) *page {
	e.t.Helper()
	form := b.get(e.Issuer+"/device").form(e.t, "/device")
	form.Values.Set("user_code", code)
	return b.post(e.Issuer+"/device", form.Values)
}

func TestDeviceCodeBruteForceIsStoppedPerSession(t *testing.T) {
	e := newEnv(t)
	cli := e.deviceCLI("cli")
	da := cli.start()
	b := e.signedInBrowser("alice")
	if p := e.wrongCodes(b, provider.MaxFailedVerificationsPerSession); p.Status != http.StatusBadRequest {
		t.Fatalf("wrong code within the limit: %d, want 400", p.Status)
	}
	if p := e.wrongCodes(b, 1); p.Status != http.StatusTooManyRequests {
		t.Fatalf("wrong code past the session limit: %d, want 429", p.Status)
	}
	// Even the right code is refused while blocked.
	if p := e.enterCode(b, strings.ToLower(da.UserCode)); p.Status != http.StatusTooManyRequests {
		t.Fatalf("right code while blocked: %d", p.Status)
	}
	// Another session from the same address (a colleague behind the same
	// NAT) still enters codes.
	other := e.signedInBrowser("alice")
	if p := e.enterCode(other, da.UserCode); p.Status != http.StatusOK {
		t.Fatalf("right code from another session on the same address: %d", p.Status)
	} else {
		assertDeviceConfirmation(t, p, "Example CLI", da.UserCode)
	}
}

func TestDeviceCodeBruteForceIsStoppedPerAddress(t *testing.T) {
	e := newEnv(t)
	cli := e.deviceCLI("cli")
	da := cli.start()
	// A guesser starting fresh sessions: each stays within the session
	// limit, the address's budget runs out.
	perSession := provider.MaxFailedVerificationsPerSession
	for wrong := 0; wrong < provider.MaxFailedVerificationsPerAddress; wrong += perSession {
		n := min(perSession, provider.MaxFailedVerificationsPerAddress-wrong)
		if p := e.wrongCodes(e.signedInBrowser("alice"), n); p.Status != http.StatusBadRequest {
			t.Fatalf("wrong codes %d-%d from a fresh session: %d, want 400", wrong+1, wrong+n, p.Status)
		}
	}
	if p := e.enterCode(e.signedInBrowser("alice"), da.UserCode); p.Status != http.StatusTooManyRequests {
		t.Fatalf("right code from a fresh session past the address limit: %d, want 429", p.Status)
	}
}

func TestDeviceCodeEntryIsCaseAndDashInsensitive(t *testing.T) {
	e := newEnv(t)
	cli := e.deviceCLI("cli")
	da := cli.start()
	b := e.signedInBrowser("alice")
	f := b.get(e.Issuer+"/device").form(t, "/device")
	f.Values.Set("user_code", strings.ToLower(strings.ReplaceAll(da.UserCode, "-", "")))
	if p := b.post(e.Issuer+"/device", f.Values); !strings.Contains(p.Body, "Access while you are away") {
		t.Fatalf("lower-case code without dash not accepted: %d", p.Status)
	}
}

func TestLoopbackRedirectsForNativeApps(t *testing.T) {
	e := newEnv(t)
	e.client(provider.ClientSpec{ID: "native", Public: true, RedirectURIs: []string{"http://127.0.0.1/callback", "http://[::1]/callback", "com.example.app:/cb"}, Scopes: []string{"openid"}})
	e.client(provider.ClientSpec{ID: "web", RedirectURIs: []string{"https://app.example.com/cb", "http://localhost/cb"}, Scopes: []string{"openid"}})
	try := func(client, redirect string) *page {
		v := authParams(client)
		v.Set("redirect_uri", redirect)
		b := e.browser()
		b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return b.get(e.Issuer + "/oauth2/auth?" + v.Encode())
	}
	for _, ok := range []string{"http://127.0.0.1:53127/callback", "http://[::1]:61000/callback", "com.example.app:/cb"} {
		if p := try("native", ok); p.Location == nil || !strings.HasPrefix(p.Location.Path, "/login") {
			t.Errorf("redirect %s refused: %d %v", ok, p.Status, p.Location)
		}
	}
	for _, bad := range [][2]string{{"native", "http://127.0.0.1:53127/other"}, {"web", "https://app.example.com:8443/cb"}, {"web", "http://localhost:8080/cb"}} {
		if p := try(bad[0], bad[1]); p.Location != nil || p.Status < 400 {
			t.Errorf("redirect %s for %s accepted: %d %v", bad[1], bad[0], p.Status, p.Location)
		}
	}
	// PKCE is required for the native (public) client.
	v := authParams("native")
	v.Set("redirect_uri", "http://127.0.0.1:53127/callback")
	v.Del("code_challenge")
	v.Del("code_challenge_method")
	b := e.browser()
	b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if p := b.get(e.Issuer + "/oauth2/auth?" + v.Encode()); p.Location == nil || p.Location.Query().Get("error") != "invalid_request" {
		t.Fatalf("native client without PKCE: %d %v", p.Status, p.Location)
	}
}
