package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/ory/fosite"
	"golang.org/x/crypto/bcrypt"

	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

// deviceFixture is a provider on SQLite with a fake clock, three clients and
// a user:
//   - "tv": public, device and refresh_token grants, offline access;
//   - "kiosk": confidential, device grant only;
//   - "web": confidential, authorization code only.
type deviceFixture struct {
	t           *testing.T
	p           *Provider
	store       *storage.GormStore
	clock       *fakeClock
	user        *storage.User
	kioskSecret string
	webSecret   string
}

func newDeviceFixture(t *testing.T) *deviceFixture {
	t.Helper()
	ctx := t.Context()
	clock := newFakeClock()
	store := openTestStore(t)
	p, err := New(ctx, DefaultConfig(), store, nil, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	f := &deviceFixture{t: t, p: p, store: store, clock: clock}
	for _, spec := range []ClientSpec{
		{ID: "tv", Public: true, Scopes: []string{"openid profile email offline_access"}, GrantTypes: []string{GrantTypeDeviceCode, "refresh_token"}},
		{ID: "kiosk", Scopes: []string{"openid profile"}, GrantTypes: []string{GrantTypeDeviceCode}},
		{ID: "web", Scopes: []string{"openid"}, RedirectURIs: []string{"https://web.example/cb"}},
	} {
		_, secret, err := RegisterClient(ctx, store, p.Hasher, spec, clock.Now())
		if err != nil {
			t.Fatalf("register %s: %v", spec.ID, err)
		}
		switch spec.ID {
		case "kiosk":
			f.kioskSecret = secret
		case "web":
			f.webSecret = secret
		}
	}
	f.user, err = CreateUser(ctx, store, UserSpec{Username: "alice", Email: "alice@example.com", EmailVerified: true,
		Name: "Alice Example", Password: "correct horse battery"}, bcrypt.MinCost, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// post builds a form POST, with HTTP Basic client authentication when
// secret is set and client_id in the form otherwise.
func post(path, clientID, secret string, form url.Values) *http.Request {
	form = cloneForm(form)
	if secret == "" && clientID != "" {
		form.Set("client_id", clientID)
	}
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		r.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	return r
}

func cloneForm(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func (f *deviceFixture) start(clientID, secret, scope string) (*DeviceAuthorizationResponse, error) {
	return f.p.StartDeviceAuthorization(f.t.Context(), post(PathDeviceAuthorize, clientID, secret, url.Values{"scope": {scope}}))
}

func (f *deviceFixture) mustStart(clientID, secret, scope string) *DeviceAuthorizationResponse {
	f.t.Helper()
	resp, err := f.start(clientID, secret, scope)
	if err != nil {
		f.t.Fatalf("device authorization of %s: %v", clientID, err)
	}
	return resp
}

// token runs a token request through fosite as the token endpoint does.
func (f *deviceFixture) token(clientID, secret string, form url.Values) (map[string]any, error) {
	ctx := f.t.Context()
	ar, err := f.p.OAuth2.NewAccessRequest(ctx, post(PathToken, clientID, secret, form), EmptySession())
	if err != nil {
		return nil, err
	}
	resp, err := f.p.OAuth2.NewAccessResponse(ctx, ar)
	if err != nil {
		return nil, err
	}
	return resp.ToMap(), nil
}

func (f *deviceFixture) poll(clientID, secret, deviceCode string) (map[string]any, error) {
	return f.token(clientID, secret, url.Values{"grant_type": {GrantTypeDeviceCode}, "device_code": {deviceCode}})
}

func (f *deviceFixture) stored(deviceCode string) *storage.DeviceAuthorization {
	f.t.Helper()
	d, err := f.store.GetDeviceAuthorization(f.t.Context(), deviceCodeID(deviceCode))
	if err != nil {
		f.t.Fatalf("load device authorization: %v", err)
	}
	return d
}

func (f *deviceFixture) approve(deviceCode string, granted ...string) {
	f.t.Helper()
	err := approveDevice(f.t.Context(), f.p, GrantRequest{DeviceID: deviceCodeID(deviceCode), Subject: f.user.Subject, AuthTime: f.clock.Now(), Scopes: granted, IPAddress: "192.0.2.7", UserAgent: "test-agent"})
	if err != nil {
		f.t.Fatalf("approve device: %v", err)
	}
}

// wantOAuthError checks that err is the OAuth error code with status.
func wantOAuthError(t *testing.T, err error, code string, status int, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want %s", what, code)
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.ErrorField != code || rfc.CodeField != status {
		t.Fatalf("%s: got %s (%d: %v), want %s (%d)", what, rfc.ErrorField, rfc.CodeField, err, code, status)
	}
}

func TestStartDeviceAuthorization(t *testing.T) {
	f := newDeviceFixture(t)
	resp := f.mustStart("tv", "", "openid profile offline_access")
	if !strings.Contains(resp.UserCode, "-") || len(resp.UserCode) != UserCodeLength+1 {
		t.Errorf("user code %q, want XXXX-XXXX", resp.UserCode)
	}
	code, ok := NormaliseUserCode(resp.UserCode)
	if !ok {
		t.Fatalf("user code %q is not one of the alphabet", resp.UserCode)
	}
	if want := f.p.issuer() + "/device"; resp.VerificationURI != want || resp.VerificationURIComplete != want+"?user_code="+code {
		t.Errorf("verification URIs %q, %q", resp.VerificationURI, resp.VerificationURIComplete)
	}
	if resp.ExpiresIn != 600 || resp.Interval != 5 || len(resp.DeviceCode) != 43 {
		t.Errorf("response %+v: want expires_in 600, interval 5, a 43-character device code", resp)
	}
	d := f.stored(resp.DeviceCode)
	now := f.clock.Now()
	if d.ClientID != "tv" || d.Status != storage.DevicePending || d.UserCode != code || d.Interval != DevicePollInterval ||
		!slices.Equal(d.RequestedScopes, []string{"openid", "profile", "offline_access"}) ||
		!d.CreatedAt.Equal(now) || !d.ExpiresAt.Equal(now.Add(DeviceCodeLifespan)) {
		t.Errorf("stored %+v", d)
	}
	if len(d.RequestID) != 36 || strings.Count(d.RequestID, "-") != 4 {
		t.Errorf("request id %q is not a UUID", d.RequestID)
	}

	// A confidential client authenticates, by Basic or in the form.
	f.mustStart("kiosk", f.kioskSecret, "openid")
	form := url.Values{"client_id": {"kiosk"}, "client_secret": {f.kioskSecret}, "scope": {"profile"}}
	if _, err := f.p.StartDeviceAuthorization(t.Context(), post(PathDeviceAuthorize, "", "", form)); err == nil {
		t.Error("client_secret_post accepted for a client registered for client_secret_basic")
	}

	tests := []struct {
		name, client, secret, scope string
		method                      string
		code                        string
		status                      int
	}{
		{name: "wrong secret", client: "kiosk", secret: "wrong-secret-wrong-secret-wrong-secret", scope: "openid", code: "invalid_client", status: 401},
		{name: "confidential client without its secret", client: "kiosk", scope: "openid", code: "invalid_client", status: 401},
		{name: "unknown client", client: "nobody", scope: "openid", code: "invalid_client", status: 401},
		{name: "no client", scope: "openid", code: "invalid_request", status: 400},
		{name: "unregistered scope", client: "tv", scope: "openid admin", code: "invalid_scope", status: 400},
		{name: "scope of another client only", client: "kiosk", secret: f.kioskSecret, scope: "offline_access", code: "invalid_scope", status: 400},
		{name: "GET", client: "tv", scope: "openid", method: http.MethodGet, code: "invalid_request", status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := post(PathDeviceAuthorize, tc.client, tc.secret, url.Values{"scope": {tc.scope}})
			if tc.method != "" {
				r.Method = tc.method
			}
			_, err := f.p.StartDeviceAuthorization(t.Context(), r)
			wantOAuthError(t, err, tc.code, tc.status, tc.name)
		})
	}

	// "web" authenticates fine but may not use the grant.
	_, err := f.start("web", f.webSecret, "openid")
	wantOAuthError(t, err, "unauthorized_client", 400, "client without the grant type")
}

// TestDeviceCodeIsNotStoredInClear reads every column of the table.
func TestDeviceCodeIsNotStoredInClear(t *testing.T) {
	f := newDeviceFixture(t)
	resp := f.mustStart("tv", "", "openid")
	rows, err := f.store.SQLDB().QueryContext(t.Context(), "SELECT * FROM consentry_device_authorizations")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	n := 0
	for rows.Next() {
		n++
		values := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range values {
			if s := fmt.Sprint(v); strings.Contains(s, resp.DeviceCode) || (len(s) > 20 && strings.Contains(resp.DeviceCode, s)) {
				t.Errorf("column %s holds the device code: %q", cols[i], s)
			}
			if b, ok := v.([]byte); ok && strings.Contains(string(b), resp.DeviceCode) {
				t.Errorf("column %s holds the device code", cols[i])
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
	sum := sha256.Sum256([]byte(resp.DeviceCode))
	if _, err := f.store.GetDeviceAuthorization(t.Context(), hex.EncodeToString(sum[:])); err != nil {
		t.Errorf("not stored under the SHA-256 of the code: %v", err)
	}
}

// TestDevicePolling walks a device through the whole grant: pending, too
// fast, approved, redeemed once, refreshed.
func TestDevicePolling(t *testing.T) {
	f := newDeviceFixture(t)
	authTime := f.clock.Now()
	resp := f.mustStart("tv", "", "openid profile offline_access")

	_, err := f.poll("tv", "", resp.DeviceCode)
	wantOAuthError(t, err, "authorization_pending", 400, "first poll")
	_, err = f.poll("tv", "", resp.DeviceCode)
	wantOAuthError(t, err, "slow_down", 400, "immediate second poll")
	if d := f.stored(resp.DeviceCode); d.Interval != 10*time.Second {
		t.Fatalf("interval after slow_down: %v, want 10s", d.Interval)
	}
	// A device that missed the slow_down and waits 5 s is told again; its
	// waits add up, so it gets through.
	f.clock.Advance(5 * time.Second)
	_, err = f.poll("tv", "", resp.DeviceCode)
	wantOAuthError(t, err, "slow_down", 400, "poll after the old interval")
	f.clock.Advance(10 * time.Second)
	_, err = f.poll("tv", "", resp.DeviceCode)
	wantOAuthError(t, err, "authorization_pending", 400, "poll after the raised interval")
	if d := f.stored(resp.DeviceCode); d.Interval != 15*time.Second || d.LastPolledAt == nil || !d.LastPolledAt.Equal(f.clock.Now()) {
		t.Fatalf("after the polls: interval %v, last polled %v", d.Interval, d.LastPolledAt)
	}

	// Another client cannot use the code, nor disturb the device's polling.
	_, err = f.poll("kiosk", f.kioskSecret, resp.DeviceCode)
	wantOAuthError(t, err, "invalid_grant", 400, "another client's device code")
	if d := f.stored(resp.DeviceCode); d.Interval != 15*time.Second || !d.LastPolledAt.Equal(f.clock.Now()) {
		t.Errorf("another client's poll was recorded: interval %v, last polled %v", d.Interval, d.LastPolledAt)
	}
	_, err = f.poll("web", f.webSecret, resp.DeviceCode)
	wantOAuthError(t, err, "unauthorized_client", 400, "client without the grant")
	_, err = f.poll("tv", "", "not-a-device-code")
	wantOAuthError(t, err, "invalid_grant", 400, "unknown device code")
	_, err = f.token("tv", "", url.Values{"grant_type": {GrantTypeDeviceCode}})
	wantOAuthError(t, err, "invalid_request", 400, "no device code")

	err = approveDevice(t.Context(), f.p, GrantRequest{DeviceID: deviceCodeID(resp.DeviceCode), Subject: f.user.Subject, AuthTime: authTime,
		Scopes: []string{"openid", "profile", "offline_access"}, IPAddress: "192.0.2.7", UserAgent: "test-agent"})
	if err != nil {
		t.Fatal(err)
	}
	// A decided request answers at once, however fast the device polls.
	tok, err := f.poll("tv", "", resp.DeviceCode)
	if err != nil {
		t.Fatalf("poll after approval: %v", err)
	}
	access, _ := tok["access_token"].(string)
	refresh, _ := tok["refresh_token"].(string)
	rawID, _ := tok["id_token"].(string)
	if access == "" || refresh == "" || rawID == "" || tok["scope"] != "openid profile offline_access" || tok["token_type"] != "bearer" {
		t.Fatalf("token response: %v", tok)
	}
	if exp, _ := tok["expires_in"].(int64); exp != int64(f.p.Config.AccessTokenLifespan.Std()/time.Second) {
		t.Errorf("expires_in %v", tok["expires_in"])
	}
	idToken := verifyDeviceIDToken(t, f.p, rawID)
	if idToken.Subject != f.user.Subject {
		t.Errorf("ID token subject %q", idToken.Subject)
	}
	if err := idToken.VerifyAccessToken(access); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var claims struct {
		AuthTime int64  `json:"auth_time"`
		Name     string `json:"name"`
		Email    string `json:"email"`
	}
	if err := idToken.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.AuthTime != authTime.Unix() || claims.Name != "Alice Example" || claims.Email != "" {
		t.Errorf("ID token claims %+v: want auth_time %d, the name, no email (not granted)", claims, authTime.Unix())
	}
	if d := f.stored(resp.DeviceCode); d.Status != storage.DeviceRedeemed {
		t.Errorf("status after redemption %q", d.Status)
	}

	// The tokens carry the grant's request id; the grant was recorded.
	ar := introspect(t, f.p, access)
	d := f.stored(resp.DeviceCode)
	if ar.GetID() != d.RequestID || ar.GetSession().GetSubject() != f.user.Subject {
		t.Errorf("access token: request id %q, subject %q", ar.GetID(), ar.GetSession().GetSubject())
	}
	g, err := f.store.GetGrantByRequestID(t.Context(), d.RequestID)
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	if g.Subject != f.user.Subject || g.ClientID != "tv" || g.Basis != storage.BasisConsent || g.IPAddress != "192.0.2.7" ||
		!slices.Equal(g.Scopes, []string{"openid", "profile", "offline_access"}) {
		t.Errorf("grant %+v", g)
	}

	// Once only.
	_, err = f.poll("tv", "", resp.DeviceCode)
	wantOAuthError(t, err, "invalid_grant", 400, "second redemption")

	// The refresh token rotates like any other.
	next, err := f.token("tv", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if next["refresh_token"] == nil || next["refresh_token"] == refresh || next["id_token"] == nil {
		t.Fatalf("refresh response %v", next)
	}
	f.clock.Advance(time.Minute) // past the retry window: a reuse
	_, err = f.token("tv", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	wantOAuthError(t, err, "invalid_grant", 400, "reuse of the rotated-out refresh token")
}

func verifyDeviceIDToken(t *testing.T, p *Provider, raw string) *oidc.IDToken {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.Keys.Public())
	}))
	t.Cleanup(srv.Close)
	verifier := oidc.NewVerifier(p.issuer(), oidc.NewRemoteKeySet(t.Context(), srv.URL),
		&oidc.Config{ClientID: "tv", SupportedSigningAlgs: []string{AlgRS256, AlgES256}})
	tok, err := verifier.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	return tok
}

func introspect(t *testing.T, p *Provider, token string) fosite.AccessRequester {
	t.Helper()
	_, ar, err := p.OAuth2.IntrospectToken(t.Context(), token, fosite.AccessToken, EmptySession())
	if err != nil {
		t.Fatalf("introspect: %v", err)
	}
	return ar
}

func TestDeviceRefreshTokenNeedsOfflineAccess(t *testing.T) {
	f := newDeviceFixture(t)
	// Requested, but the user unticked it.
	resp := f.mustStart("tv", "", "openid profile offline_access")
	f.approve(resp.DeviceCode, "openid", "profile")
	tok, err := f.poll("tv", "", resp.DeviceCode)
	if err != nil {
		t.Fatal(err)
	}
	if tok["refresh_token"] != nil || tok["scope"] != "openid profile" || tok["id_token"] == nil {
		t.Errorf("without offline access: %v", tok)
	}

	// Without openid there is no ID token; a confidential client
	// authenticates at the token endpoint too.
	resp = f.mustStart("kiosk", f.kioskSecret, "profile")
	f.approve(resp.DeviceCode, "profile")
	_, err = f.poll("kiosk", "", resp.DeviceCode)
	wantOAuthError(t, err, "invalid_client", 401, "confidential client polling without its secret")
	tok, err = f.poll("kiosk", f.kioskSecret, resp.DeviceCode)
	if err != nil {
		t.Fatal(err)
	}
	if tok["refresh_token"] != nil || tok["id_token"] != nil || tok["access_token"] == nil {
		t.Errorf("profile only: %v", tok)
	}

	// Only requested scopes can be granted.
	resp = f.mustStart("tv", "", "openid")
	err = approveDevice(t.Context(), f.p, GrantRequest{DeviceID: deviceCodeID(resp.DeviceCode), Subject: f.user.Subject, AuthTime: f.clock.Now(), Scopes: []string{"openid", "email"}, IPAddress: "", UserAgent: ""})
	if err == nil {
		t.Error("approving granted a scope that was not requested")
	}
	if d := f.stored(resp.DeviceCode); d.Status != storage.DevicePending {
		t.Errorf("refused approval left status %q", d.Status)
	}
}

func TestDeviceCodeExpires(t *testing.T) {
	f := newDeviceFixture(t)
	resp := f.mustStart("tv", "", "openid")
	f.clock.Advance(DeviceCodeLifespan)
	_, err := f.poll("tv", "", resp.DeviceCode)
	wantOAuthError(t, err, "expired_token", 400, "poll at expiry")
	err = approveDevice(t.Context(), f.p, GrantRequest{DeviceID: deviceCodeID(resp.DeviceCode), Subject: f.user.Subject, AuthTime: f.clock.Now(), Scopes: []string{"openid"}, IPAddress: "", UserAgent: ""})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("approval after expiry: %v, want not found", err)
	}

	// Approved in time but redeemed too late.
	resp = f.mustStart("tv", "", "openid")
	f.approve(resp.DeviceCode, "openid")
	f.clock.Advance(DeviceCodeLifespan + time.Second)
	_, err = f.poll("tv", "", resp.DeviceCode)
	wantOAuthError(t, err, "expired_token", 400, "redemption after expiry")
}

func TestDenyDevice(t *testing.T) {
	f := newDeviceFixture(t)
	resp := f.mustStart("tv", "", "openid profile")
	id := deviceCodeID(resp.DeviceCode)
	if err := f.p.DenyDevice(t.Context(), id, f.user.Subject, "192.0.2.7", "test-agent"); err != nil {
		t.Fatal(err)
	}
	_, err := f.poll("tv", "", resp.DeviceCode)
	wantOAuthError(t, err, "access_denied", 400, "poll after deny")
	if err := f.p.DenyDevice(t.Context(), id, f.user.Subject, "", ""); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second DenyDevice: %v, want not found", err)
	}
	err = approveDevice(t.Context(), f.p, GrantRequest{DeviceID: id, Subject: f.user.Subject, AuthTime: f.clock.Now(), Scopes: []string{"openid"}, IPAddress: "", UserAgent: ""})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("approval after deny: %v, want not found", err)
	}
	events, err := f.store.ListAuditEvents(t.Context(), storage.AuditFilter{Subject: f.user.Subject})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Type != storage.EventConsentDenied || events[0].ClientID != "tv" ||
		events[0].IPAddress != "192.0.2.7" || !slices.Equal(events[0].Scopes, []string{"openid", "profile"}) {
		t.Errorf("audit events %+v", events)
	}
}

// TestDeviceRedemptionRechecksTheGrant: what happens between approval and
// redemption counts.
func TestDeviceRedemptionRechecksTheGrant(t *testing.T) {
	f := newDeviceFixture(t)
	ctx := t.Context()
	revoked := f.mustStart("tv", "", "openid")
	f.approve(revoked.DeviceCode, "openid")
	if _, err := f.store.RevokeGrants(ctx, f.user.Subject, "tv", time.Time{}); err != nil {
		t.Fatal(err)
	}
	_, err := f.poll("tv", "", revoked.DeviceCode)
	wantOAuthError(t, err, "invalid_grant", 400, "redemption after the grant was revoked")

	disabled := f.mustStart("tv", "", "openid")
	f.approve(disabled.DeviceCode, "openid")
	if err := f.store.UpdateUser(ctx, f.user.Subject, func(u *storage.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = f.poll("tv", "", disabled.DeviceCode)
	wantOAuthError(t, err, "invalid_grant", 400, "redemption for a disabled user")
	// Refused, not consumed: the code is still approved.
	if d := f.stored(disabled.DeviceCode); d.Status != storage.DeviceApproved {
		t.Errorf("status %q", d.Status)
	}
}

// TestDeviceCodeRedeemedOnceConcurrently: polls racing with one approved
// code get one set of tokens between them.
func TestDeviceCodeRedeemedOnceConcurrently(t *testing.T) {
	f := newDeviceFixture(t)
	resp := f.mustStart("tv", "", "openid offline_access")
	f.approve(resp.DeviceCode, "openid", "offline_access")
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = f.poll("tv", "", resp.DeviceCode)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case fosite.ErrorToRFC6749Error(err).ErrorField != "invalid_grant":
			t.Errorf("poll %d: %v, want invalid_grant", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d polls got tokens, want 1: %v", won, errs)
	}
}

func TestNormaliseUserCode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"WDJBMJHT", "WDJBMJHT"}, {"wdjb-mjht", "WDJBMJHT"}, {"wdjb mjht", "WDJBMJHT"}, {" WdJb-MjHt\t", "WDJBMJHT"},
		{"WDJB-MJH", ""}, {"WDJB-MJHTX", ""}, {"AEIOUAEI", ""}, {"WDJB-MJH1", ""}, {"", ""}, {"ＷDJBMJHT", ""},
	} {
		got, ok := NormaliseUserCode(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("NormaliseUserCode(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	if got := FormatUserCode("WDJBMJHT"); got != "WDJB-MJHT" {
		t.Errorf("FormatUserCode: %q", got)
	}
	seen := map[rune]bool{}
	for range 200 {
		code, err := newUserCode()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := NormaliseUserCode(code); !ok || len(code) != UserCodeLength {
			t.Fatalf("newUserCode: %q", code)
		}
		for _, r := range code {
			seen[r] = true
		}
	}
	if len(seen) != len(UserCodeAlphabet) {
		t.Errorf("200 codes used %d of %d letters", len(seen), len(UserCodeAlphabet))
	}
}

func TestFindDeviceAuthorization(t *testing.T) {
	f := newDeviceFixture(t)
	ctx := t.Context()
	now := f.clock.Now()
	create := func(code, status string, expires time.Time) {
		t.Helper()
		err := f.store.CreateDeviceAuthorization(ctx, &storage.DeviceAuthorization{ID: "id-" + code, UserCode: code, ClientID: "tv",
			RequestedScopes: []string{"openid"}, RequestID: "req-" + code, Status: status, Interval: DevicePollInterval,
			CreatedAt: now, ExpiresAt: expires})
		if err != nil {
			t.Fatal(err)
		}
	}
	create("WDJBMJHT", storage.DevicePending, now.Add(time.Minute))
	create("BCDFGHJK", storage.DeviceApproved, now.Add(time.Minute))
	create("LMNPQRST", storage.DevicePending, now)
	for _, in := range []string{"wdjb-mjht", "WDJBMJHT", "wdjb mjht"} {
		d, err := f.p.FindDeviceAuthorization(ctx, in)
		if err != nil || d.ID != "id-WDJBMJHT" {
			t.Errorf("FindDeviceAuthorization(%q): %v, %v", in, d, err)
		}
	}
	for _, in := range []string{"BCDF-GHJK", "LMNP-QRST", "WDJB-MJHV", "WDJB-MJH", "not a code"} {
		if _, err := f.p.FindDeviceAuthorization(ctx, in); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("FindDeviceAuthorization(%q): %v, want not found", in, err)
		}
	}
}

func TestDecideDeviceConsent(t *testing.T) {
	f := newDeviceFixture(t)
	ctx := t.Context()
	decide := func(scope string) consent.Decision {
		t.Helper()
		resp := f.mustStart("tv", "", scope)
		decision, err := f.p.DecideDeviceConsent(ctx, f.stored(resp.DeviceCode), f.user.Subject)
		if err != nil {
			t.Fatal(err)
		}
		return decision
	}
	// The deployment's policy ("ignore") would drop offline access: a device
	// always offers it on the screen instead.
	if f.p.Policy.WithoutPromptConsent != consent.OfflineIgnore {
		t.Fatalf("fixture policy %q", f.p.Policy.WithoutPromptConsent)
	}
	if d := decide("openid profile offline_access"); d.Outcome != consent.OutcomeScreen || !slices.Equal(d.Scopes, []string{"openid", "profile", "offline_access"}) {
		t.Errorf("offline access without an agreement: %+v", d)
	}

	// A remembered consent covers sign-in scopes, never offline access.
	until := f.clock.Now().Add(time.Hour)
	remembered, err := f.p.Grant(ctx, GrantRequest{Subject: f.user.Subject, ClientID: "tv", RequestID: "req-mem",
		Scopes: []string{"openid", "profile", "offline_access"}, RememberUntil: &until})
	if err != nil {
		t.Fatal(err)
	}
	if d := decide("openid profile"); d.Outcome != consent.OutcomeGrant || d.Basis != storage.BasisRemembered || d.RememberedFrom != remembered.ID {
		t.Errorf("remembered sign-in: %+v", d)
	}
	if d := decide("openid profile offline_access"); d.Outcome != consent.OutcomeScreen {
		t.Errorf("offline access with a remembered consent: %+v", d)
	}

	// An agreement covering everything grants without a screen.
	if _, err := RecordAgreement(ctx, f.store, AgreementSpec{ClientID: "tv", AllUsers: true, Scopes: []string{"openid profile offline_access"},
		Reference: "MSA-1", RecordedBy: "test"}, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if d := decide("openid profile offline_access"); d.Outcome != consent.OutcomeGrant || d.Basis != storage.BasisAgreement || d.AgreementID == "" {
		t.Errorf("under an agreement: %+v", d)
	}

	// A scope the client lost since the request is invalid_scope.
	resp := f.mustStart("tv", "", "openid email")
	if err := f.store.UpdateClient(ctx, "tv", func(c *storage.Client) error { c.Scopes = []string{"openid"}; return nil }); err != nil {
		t.Fatal(err)
	}
	d, err := f.p.DecideDeviceConsent(ctx, f.stored(resp.DeviceCode), f.user.Subject)
	if err != nil || d.Outcome != consent.OutcomeError || d.Err.ErrorField != "invalid_scope" {
		t.Errorf("scope no longer registered: %+v, %v", d, err)
	}
}

func TestVerificationRateLimit(t *testing.T) {
	f := newDeviceFixture(t)
	ctx := t.Context()
	blocked := func(limits ...VerificationLimit) bool {
		t.Helper()
		b, err := f.p.VerificationBlocked(ctx, limits...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fail := func(limits ...VerificationLimit) {
		t.Helper()
		if err := f.p.RecordFailedVerification(ctx, limits...); err != nil {
			t.Fatal(err)
		}
	}
	sessionA, sessionB := SessionVerificationLimit("session-a"), SessionVerificationLimit("session-b")
	addr1, addr2 := AddressVerificationLimit("192.0.2.1"), AddressVerificationLimit("192.0.2.2")
	// Checking costs nothing.
	for range 2 * MaxFailedVerificationsPerSession {
		if blocked(sessionA, addr1) {
			t.Fatal("blocked by checks alone")
		}
	}
	for i := range MaxFailedVerificationsPerSession {
		if blocked(sessionA, addr1) {
			t.Fatalf("blocked after %d failures", i)
		}
		fail(sessionA, addr1)
	}
	if !blocked(sessionA, addr1) || !blocked(sessionA, addr2) || !blocked(sessionA) {
		t.Error("the session is not blocked after its limit")
	}
	if blocked(sessionB, addr1) {
		t.Error("another session of the same address is blocked by one session's failures")
	}
	// The address has its own, larger limit.
	for range MaxFailedVerificationsPerAddress - MaxFailedVerificationsPerSession {
		fail(SessionVerificationLimit("fresh"), addr1)
	}
	if !blocked(sessionB, addr1) || blocked(sessionB, addr2) {
		t.Error("the address limit does not block exactly its address")
	}
	// The keys are the verification page's own, and name no session id.
	if strings.Contains(sessionA.Key, "session-a") {
		t.Errorf("session key %q holds the session id", sessionA.Key)
	}
	if n, err := f.store.CountAttempt(ctx, sessionA.Key, VerificationWindow, f.clock.Now()); err != nil || n != 1 {
		t.Errorf("an unprefixed key shares the count: %d, %v", n, err)
	}
	f.clock.Advance(VerificationWindow)
	if blocked(sessionA, addr1) {
		t.Error("still blocked in the next window")
	}
}

func TestDeviceDiscoveryAndRegistration(t *testing.T) {
	f := newDeviceFixture(t)
	doc := f.p.Discovery()
	if doc["device_authorization_endpoint"] != f.p.issuer()+PathDeviceAuthorize {
		t.Errorf("device_authorization_endpoint %v", doc["device_authorization_endpoint"])
	}
	if gts, _ := doc["grant_types_supported"].([]string); !slices.Contains(gts, GrantTypeDeviceCode) {
		t.Errorf("grant_types_supported %v", doc["grant_types_supported"])
	}
	if !f.p.SupportsGrantType(GrantTypeDeviceCode) {
		t.Error("SupportsGrantType refuses the device grant")
	}

	for _, tc := range []struct {
		name    string
		spec    ClientSpec
		wantErr string
	}{
		{name: "public device client without redirect URIs", spec: ClientSpec{ID: "a", Public: true, GrantTypes: []string{GrantTypeDeviceCode}}},
		{name: "confidential device client", spec: ClientSpec{ID: "b", GrantTypes: []string{GrantTypeDeviceCode}}},
		{name: "device client with offline access", spec: ClientSpec{ID: "c", Public: true, Scopes: []string{"openid offline_access"},
			GrantTypes: []string{GrantTypeDeviceCode, "refresh_token"}}},
		{name: "offline access still needs refresh_token", spec: ClientSpec{ID: "d", Public: true, Scopes: []string{"openid offline_access"},
			GrantTypes: []string{GrantTypeDeviceCode}}, wantErr: "offline_access requires grant type refresh_token"},
		{name: "refresh_token still needs a code", spec: ClientSpec{ID: "e", GrantTypes: []string{"client_credentials", "refresh_token"}},
			wantErr: "refresh_token requires grant type authorization_code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := RegisterClient(t.Context(), f.store, f.p.Hasher, tc.spec, f.clock.Now())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			case tc.wantErr == "" && (len(c.RedirectURIs) != 0 || len(c.ResponseTypes) != 0):
				t.Errorf("registered %+v", c)
			}
		})
	}
}

// approveDevice records a grant approving a device authorization, as the
// verification page does, and returns only its error.
func approveDevice(ctx context.Context, p *Provider, req GrantRequest) error {
	_, err := p.Grant(ctx, req)
	return err
}
