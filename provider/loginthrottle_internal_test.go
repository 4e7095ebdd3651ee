package provider

import (
	"testing"
	"time"
)

func TestLockoutDoublesUpToTheMaximum(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 6: 32 * time.Minute, 7: time.Hour, 100: time.Hour} {
		if got := lockoutAfter(time.Minute, time.Hour, n); got != want {
			t.Errorf("lockout %d: %v, want %v", n, got, want)
		}
	}
}

func TestLoginThrottleKeys(t *testing.T) {
	// An IPv6 client is counted by its /64, which one subscriber holds.
	if a, b := loginAddressKey("2001:db8:1:2::1"), loginAddressKey("2001:db8:1:2:ffff::9"); a != b || a != "login-address:2001:db8:1:2::/64" {
		t.Errorf("IPv6 keys %q and %q, want both login-address:2001:db8:1:2::/64", a, b)
	}
	if got := loginAddressKey("::ffff:192.0.2.1"); got != "login-address:192.0.2.1" {
		t.Errorf("IPv4 in IPv6: %q", got)
	}
	if LoginAccountKey(" Alice") != LoginAccountKey("alice") || LoginAccountKey("alice") == LoginAccountKey("bob") {
		t.Error("account keys do not follow the normalised username")
	}
	if k := LoginAccountKey("correct horse battery"); len(k) != len(loginAccountPrefix)+64 {
		t.Errorf("account key %q is not a hash", k)
	}
}
