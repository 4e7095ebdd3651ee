package consent

import (
	"strings"
	"testing"
	"time"
)

// TestRule1_OfflineAccessNeedsRefreshTokenGrant: a client registered with
// offline_access but without the refresh_token grant is refused.
func TestRule1_OfflineAccessNeedsRefreshTokenGrant(t *testing.T) {
	tests := []struct {
		name           string
		scopes, grants string
		wantErr        string
	}{
		{name: "offline without refresh_token", scopes: "openid offline_access", grants: "authorization_code", wantErr: "scope offline_access requires grant type refresh_token"},
		{name: "offline with refresh_token", scopes: "openid offline_access", grants: "authorization_code refresh_token"},
		{name: "no offline", scopes: "openid", grants: "authorization_code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRuleError(t, CheckOfflineScope(strings.Fields(tt.scopes), strings.Fields(tt.grants)), tt.wantErr)
		})
	}
}

// TestRule9_RefreshTokenGrantNeedsACode: refresh tokens only come from an
// authorization code or a device code, so the refresh_token grant needs one.
func TestRule9_RefreshTokenGrantNeedsACode(t *testing.T) {
	tests := []struct {
		name    string
		grants  string
		wantErr string
	}{
		{name: "refresh_token alone", grants: "refresh_token", wantErr: "grant type refresh_token requires grant type authorization_code or " + GrantTypeDeviceCode},
		{name: "refresh_token with client_credentials", grants: "client_credentials refresh_token", wantErr: "refresh tokens are only issued from an authorization code or a device code"},
		{name: "with the code flow", grants: "authorization_code refresh_token"},
		{name: "with the device flow", grants: GrantTypeDeviceCode + " refresh_token"},
		{name: "no refresh_token", grants: "client_credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRuleError(t, CheckRefreshGrant(strings.Fields(tt.grants)), tt.wantErr)
		})
	}
}

// TestRule12_OfflineLifetimeRegistration: per-client lifetimes are at least
// a minute, idle no longer than absolute, and only with offline_access.
func TestRule12_OfflineLifetimeRegistration(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name           string
		idle, absolute time.Duration
		offline        bool
		wantErr        string
	}{
		{name: "unset", offline: true},
		{name: "unset without offline", offline: false},
		{name: "both set", idle: day, absolute: 30 * day, offline: true},
		{name: "exactly the minimum", idle: MinOfflineLifetime, offline: true},
		{name: "idle under a minute", idle: 59 * time.Second, offline: true, wantErr: "offline idle lifetime 59s is too short: it must be at least 1m"},
		{name: "absolute under a minute", absolute: time.Second, offline: true, wantErr: "offline absolute lifetime 1s is too short"},
		{name: "negative idle", idle: -time.Hour, offline: true, wantErr: "offline idle lifetime -1h must be positive"},
		{name: "idle longer than absolute", idle: 31 * day, absolute: 30 * day, offline: true, wantErr: "offline idle lifetime 744h must not exceed the offline absolute lifetime 720h"},
		{name: "without offline_access", idle: day, wantErr: "offline lifetimes only apply to a client with scope offline_access"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRuleError(t, CheckOfflineLifetimes(tt.idle, tt.absolute, tt.offline), tt.wantErr)
		})
	}
}

func checkRuleError(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("refused: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("error %v; want %q", err, want)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		720 * time.Hour:                  "720h",
		90 * time.Minute:                 "1h30m",
		time.Hour + time.Second:          "1h0m1s",
		time.Minute:                      "1m",
		10 * time.Second:                 "10s",
		0:                                "0s",
		-2 * time.Hour:                   "-2h",
		1500 * time.Millisecond:          "1.5s",
		time.Hour + 30*time.Second + 1e8: "1h0m30.1s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q; want %q", time.Duration(d), got, want)
		}
	}
}
