package handlers_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/provider"
)

// deviceClients registers "tv" (public, offline access) and "kiosk"
// (confidential) for the device grant, and returns kiosk's secret.
func deviceClients(e *env) string {
	e.t.Helper()
	e.client(provider.ClientSpec{ID: "tv", Name: "Living Room TV", Public: true, RedirectURIs: []string{},
		Scopes: []string{"openid profile offline_access"}, GrantTypes: []string{provider.GrantTypeDeviceCode, "refresh_token"}})
	_, secret := e.client(provider.ClientSpec{ID: "kiosk", RedirectURIs: []string{}, Scopes: []string{"openid profile"},
		GrantTypes: []string{provider.GrantTypeDeviceCode}})
	return secret
}

// startDevice posts a device authorization request; a public client (no
// secret) sends its client_id in the form.
func startDevice(t *testing.T, e *env, clientID, secret, scope string) jsonResponse {
	t.Helper()
	form := url.Values{"scope": {scope}}
	if secret == "" {
		form.Set("client_id", clientID)
		clientID = ""
	}
	return postForm(t, e.Issuer+provider.PathDeviceAuthorize, clientID, secret, form)
}

func pollDevice(t *testing.T, e *env, clientID, deviceCode string) jsonResponse {
	t.Helper()
	return postForm(t, e.Issuer+"/oauth2/token", "", "", url.Values{"grant_type": {provider.GrantTypeDeviceCode},
		"device_code": {deviceCode}, "client_id": {clientID}})
}

// deviceID is the stored id of a device code.
func deviceID(deviceCode string) string {
	sum := sha256.Sum256([]byte(deviceCode))
	return hex.EncodeToString(sum[:])
}

func wantDeviceError(t *testing.T, r jsonResponse, status int, code, what string) {
	t.Helper()
	if r.status != status || r.json["error"] != code {
		t.Fatalf("%s: %d %v, want %d %s", what, r.status, r.json, status, code)
	}
	if _, ok := r.json["error_description"].(string); !ok {
		t.Errorf("%s: no error_description: %v", what, r.json)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("%s: Cache-Control %q", what, r.header.Get("Cache-Control"))
	}
}

func TestDeviceAuthorizationEndpoint(t *testing.T) {
	e := newEnv(t)
	kioskSecret := deviceClients(e)
	e.client(provider.ClientSpec{ID: "web", Scopes: []string{"openid"}})

	r := startDevice(t, e, "tv", "", "openid profile offline_access")
	if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("public client: %d %v %v", r.status, r.header, r.json)
	}
	userCode, _ := r.json["user_code"].(string)
	code := strings.ReplaceAll(userCode, "-", "")
	if r.json["device_code"] == "" || len(userCode) != 9 || userCode[4] != '-' ||
		r.json["verification_uri"] != e.Issuer+"/device" || r.json["verification_uri_complete"] != e.Issuer+"/device?user_code="+code ||
		r.json["expires_in"] != float64(600) || r.json["interval"] != float64(5) {
		t.Errorf("response %v", r.json)
	}

	if r := startDevice(t, e, "kiosk", kioskSecret, "openid"); r.status != http.StatusOK {
		t.Errorf("confidential client: %d %v", r.status, r.json)
	}
	wantDeviceError(t, startDevice(t, e, "kiosk", "wrong-secret-wrong-secret-wrong-secret", "openid"), http.StatusUnauthorized, "invalid_client", "wrong secret")
	wantDeviceError(t, startDevice(t, e, "kiosk", "", "openid"), http.StatusUnauthorized, "invalid_client", "confidential client without its secret")
	_, webSecret := e.client(provider.ClientSpec{ID: "web2", Scopes: []string{"openid"}})
	wantDeviceError(t, startDevice(t, e, "web2", webSecret, "openid"), http.StatusBadRequest, "unauthorized_client", "client without the grant")
	wantDeviceError(t, startDevice(t, e, "tv", "", "openid admin"), http.StatusBadRequest, "invalid_scope", "unregistered scope")
	wantDeviceError(t, postForm(t, e.Issuer+provider.PathDeviceAuthorize, "", "", url.Values{"scope": {"openid"}}),
		http.StatusBadRequest, "invalid_request", "no client")

	req, _ := http.NewRequest(http.MethodGet, e.Issuer+provider.PathDiscovery, nil)
	doc := doJSON(t, req).json
	if doc["device_authorization_endpoint"] != e.Issuer+provider.PathDeviceAuthorize {
		t.Errorf("discovery device_authorization_endpoint: %v", doc["device_authorization_endpoint"])
	}
	if !contains(doc["grant_types_supported"], provider.GrantTypeDeviceCode) {
		t.Errorf("discovery grant_types_supported: %v", doc["grant_types_supported"])
	}
}

// TestDeviceGrantOverHTTP: the token endpoint's answers to a polling device,
// with the approval made through the provider as the verification page
// makes it.
func TestDeviceGrantOverHTTP(t *testing.T) {
	e := newEnv(t)
	deviceClients(e)
	ctx := context.Background()
	da := startDevice(t, e, "tv", "", "openid profile offline_access").json
	deviceCode := da["device_code"].(string)

	wantDeviceError(t, pollDevice(t, e, "tv", deviceCode), http.StatusBadRequest, "authorization_pending", "first poll")
	wantDeviceError(t, pollDevice(t, e, "tv", deviceCode), http.StatusBadRequest, "slow_down", "immediate second poll")
	d, err := e.Provider.Store.GetDeviceAuthorization(ctx, deviceID(deviceCode))
	if err != nil || d.Interval != 10*time.Second {
		t.Fatalf("after slow_down: %+v, %v; want the interval raised to 10s", d, err)
	}

	if _, err := e.Provider.Grant(ctx, provider.GrantRequest{DeviceID: d.ID, Subject: e.User.Subject, AuthTime: time.Now(),
		Scopes: []string{"openid", "profile", "offline_access"}, IPAddress: "192.0.2.7", UserAgent: "test"}); err != nil {
		t.Fatal(err)
	}
	tok := pollDevice(t, e, "tv", deviceCode)
	if tok.status != http.StatusOK || tok.json["access_token"] == nil || tok.json["refresh_token"] == nil || tok.json["id_token"] == nil ||
		tok.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("tokens: %d %v", tok.status, tok.json)
	}
	wantDeviceError(t, pollDevice(t, e, "tv", deviceCode), http.StatusBadRequest, "invalid_grant", "second redemption")

	req, _ := http.NewRequest(http.MethodGet, e.Issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.json["access_token"].(string))
	if ui := doJSON(t, req); ui.status != http.StatusOK || ui.json["sub"] != e.User.Subject || ui.json["name"] != "Alice Example" {
		t.Errorf("userinfo with the device's access token: %d %v", ui.status, ui.json)
	}

	// The refresh token rotates; the rotated-out one is then a reuse.
	refresh := tok.json["refresh_token"].(string)
	next := postForm(t, e.Issuer+"/oauth2/token", "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {"tv"}})
	if next.status != http.StatusOK || next.json["refresh_token"] == nil || next.json["refresh_token"] == refresh {
		t.Fatalf("refresh: %d %v", next.status, next.json)
	}
	again := postForm(t, e.Issuer+"/oauth2/token", "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.json["refresh_token"].(string)}, "client_id": {"tv"}})
	if again.status != http.StatusOK {
		t.Fatalf("second refresh: %d %v", again.status, again.json)
	}
}

func TestDeviceGrantDeniedAndExpired(t *testing.T) {
	c := &clock{}
	e := newEnv(t, withClock(c))
	deviceClients(e)
	ctx := context.Background()

	denied := startDevice(t, e, "tv", "", "openid").json["device_code"].(string)
	if err := e.Provider.DenyDevice(ctx, deviceID(denied), e.User.Subject, "192.0.2.7", "test"); err != nil {
		t.Fatal(err)
	}
	wantDeviceError(t, pollDevice(t, e, "tv", denied), http.StatusBadRequest, "access_denied", "poll after deny")

	// Without offline access granted there is no refresh token.
	unticked := startDevice(t, e, "tv", "", "openid offline_access").json["device_code"].(string)
	if _, err := e.Provider.Grant(ctx, provider.GrantRequest{DeviceID: deviceID(unticked), Subject: e.User.Subject, AuthTime: time.Now(),
		Scopes: []string{"openid"}}); err != nil {
		t.Fatal(err)
	}
	if tok := pollDevice(t, e, "tv", unticked); tok.status != http.StatusOK || tok.json["refresh_token"] != nil || tok.json["scope"] != "openid" {
		t.Errorf("offline access not granted: %d %v", tok.status, tok.json)
	}

	expired := startDevice(t, e, "tv", "", "openid").json["device_code"].(string)
	c.Advance(provider.DeviceCodeLifespan + time.Second)
	wantDeviceError(t, pollDevice(t, e, "tv", expired), http.StatusBadRequest, "expired_token", "poll after expiry")
	wantDeviceError(t, pollDevice(t, e, "kiosk", expired), http.StatusUnauthorized, "invalid_client", "confidential client without its secret")
}

// TestDeviceAuthorizationDuringOutage: with the database unreachable the
// device authorization endpoint answers 503 temporarily_unavailable, not
// invalid_client.
func TestDeviceAuthorizationDuringOutage(t *testing.T) {
	e, proxy := newEnvBehindProxy(t)
	deviceClients(e)
	proxy.Cut()
	wantDeviceError(t, startDevice(t, e, "tv", "", "openid"), http.StatusServiceUnavailable, "temporarily_unavailable", "during the outage")
	proxy.Restore()
}
