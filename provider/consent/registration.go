package consent

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MinOfflineLifetime is the shortest per-client offline-token lifetime:
// anything shorter would end offline access before a client could use it.
const MinOfflineLifetime = time.Minute

// The registration rules below return errors whose message is written for
// the person registering; the caller marks them as refused registrations.

// CheckRefreshGrant: refresh tokens only come out of the code flow and the
// device flow, which has a code of its own (rule 9), so the refresh_token
// grant needs one of them.
func CheckRefreshGrant(grantTypes []string) error {
	if slices.Contains(grantTypes, "refresh_token") && !slices.Contains(grantTypes, "authorization_code") && !slices.Contains(grantTypes, GrantTypeDeviceCode) {
		return fmt.Errorf("grant type refresh_token requires grant type authorization_code or %s: refresh tokens are only issued from an authorization code or a device code", GrantTypeDeviceCode)
	}
	return nil
}

// CheckOfflineScope (rule 1): without the refresh_token grant,
// offline_access could be consented to and never honoured.
func CheckOfflineScope(scopes, grantTypes []string) error {
	if slices.Contains(scopes, ScopeOfflineAccess) && !slices.Contains(grantTypes, "refresh_token") {
		return errors.New("scope offline_access requires grant type refresh_token: add the refresh_token grant type or remove offline_access")
	}
	return nil
}

// CheckOfflineLifetimes applies the rules for per-client offline-token
// lifetimes (rule 12); 0 means the deployment's and is always accepted. Set
// ones must be at least MinOfflineLifetime, the idle one no longer than the
// absolute one, and only for a client with offline_access, where they mean
// something.
func CheckOfflineLifetimes(idle, absolute time.Duration, offline bool) error {
	for _, l := range []struct {
		name  string
		value time.Duration
	}{{"offline idle lifetime", idle}, {"offline absolute lifetime", absolute}} {
		switch {
		case l.value < 0:
			return fmt.Errorf("%s %s must be positive; leave it unset (0) for the deployment's", l.name, FormatDuration(l.value))
		case l.value > 0 && l.value < MinOfflineLifetime:
			return fmt.Errorf("%s %s is too short: it must be at least %s", l.name, FormatDuration(l.value), FormatDuration(MinOfflineLifetime))
		}
	}
	if idle > 0 && absolute > 0 && idle > absolute {
		return fmt.Errorf("offline idle lifetime %s must not exceed the offline absolute lifetime %s", FormatDuration(idle), FormatDuration(absolute))
	}
	if (idle != 0 || absolute != 0) && !offline {
		return errors.New("offline lifetimes only apply to a client with scope offline_access: add offline_access or leave the lifetimes unset")
	}
	return nil
}

// FormatDuration writes d as Go duration syntax without zero trailing units:
// "720h", "1h30m", "90s" rather than "720h0m0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
