package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/consentry/consentry/storage"
)

// Login throttle keys: an account is the SHA-256 of the normalised username
// typed (a password typed into the username field is not stored), an
// address the client's IPv4 address or IPv6 /64, the block one subscriber
// usually holds.
const (
	loginAccountPrefix = "login-account:"
	loginAddressPrefix = "login-address:"
)

// LoginAttempt is a sign-in whose password was wrong, to record.
type LoginAttempt struct {
	// Username is what was typed, Subject the user's when one has that
	// username.
	Username, Subject string
	IP, UserAgent     string
	// Reason is a short note for the audit log ("wrong password").
	Reason string
}

// loginRule is the limit under one kind of key.
type loginRule struct {
	kind        string // for messages: "account" or "address"
	maxFailures int
	findTime    time.Duration
	// lockout is how long the nth lockout in a row lasts.
	lockout func(n int) time.Duration
	// memory is how long after the last failure the state is kept.
	memory time.Duration
}

func (p *Provider) loginRule(key string) loginRule {
	c := p.Config.LoginThrottle
	if strings.HasPrefix(key, loginAddressPrefix) {
		window := c.AddressFindTime.Std()
		return loginRule{kind: "address", maxFailures: c.AddressMaxFailures, findTime: window,
			lockout: func(int) time.Duration { return window }, memory: window}
	}
	return loginRule{kind: "account", maxFailures: c.MaxFailures, findTime: c.FindTime.Std(),
		lockout: func(n int) time.Duration { return lockoutAfter(c.Lockout.Std(), c.MaxLockout.Std(), n) },
		// Long enough to remember the lockouts in a row: they are forgotten
		// a day after the last failure (or at a success, or an unlock).
		memory: maxThrottleMemory}
}

// lockoutAfter is the nth lockout in a row: first, doubled each time, at
// most most.
func lockoutAfter(first, most time.Duration, n int) time.Duration {
	d := first
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}

// LoginAccountKey is the throttle key of the account a username names,
// whether or not a user has it, so that a refusal tells nothing about
// existence.
func LoginAccountKey(username string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(username))))
	return loginAccountPrefix + hex.EncodeToString(sum[:])
}

// loginAddressKey is the throttle key of a client address.
func loginAddressKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return loginAddressPrefix + ip
	}
	if addr = addr.Unmap(); addr.Is6() {
		return loginAddressPrefix + netip.PrefixFrom(addr, 64).Masked().String()
	}
	return loginAddressPrefix + addr.String()
}

// LoginRetryAfter returns how long sign-ins to username from ip are still
// refused: 0 when they are not. It is asked before the password is looked
// at, so that a refused try costs no hash.
func (p *Provider) LoginRetryAfter(ctx context.Context, username, ip string) (time.Duration, error) {
	states, err := p.Store.GetLoginThrottles(ctx, LoginAccountKey(username), loginAddressKey(ip))
	if err != nil {
		return 0, fmt.Errorf("check login throttle: %w", err)
	}
	now := p.Now()
	var wait time.Duration
	for _, s := range states {
		if s.ExpiresAt.After(now) && s.LockedUntil.After(now) {
			wait = max(wait, s.LockedUntil.Sub(now))
		}
	}
	return wait, nil
}

// RecordLoginFailure counts a failed sign-in against the account and the
// address, with its audit events, in one transaction. When it reaches a
// limit the account (or address) is locked, a login_throttled event
// records that, and the lockout is returned (0 otherwise). It goes on
// when ctx is cancelled: a client that hangs up after sending its guess
// is counted too.
func (p *Provider) RecordLoginFailure(ctx context.Context, a LoginAttempt) (time.Duration, error) {
	ctx = context.WithoutCancel(ctx)
	now := p.Now()
	account, address := LoginAccountKey(a.Username), loginAddressKey(a.IP)
	type lockout struct {
		rule     loginRule
		duration time.Duration
	}
	var locked []lockout
	err := inTx(ctx, p.Store, func(ctx context.Context) error {
		locked = locked[:0]
		err := p.Store.UpdateLoginThrottles(ctx, []string{account, address}, func(l *storage.LoginThrottle) error {
			rule := p.loginRule(l.Key)
			if !l.ExpiresAt.After(now) {
				*l = storage.LoginThrottle{Key: l.Key} // forgotten
			}
			if l.Failures == 0 || !now.Before(l.WindowStart.Add(rule.findTime)) {
				l.Failures, l.WindowStart = 0, now
			}
			l.Failures++
			if l.Failures >= rule.maxFailures {
				l.Lockouts++
				d := rule.lockout(l.Lockouts)
				l.LockedUntil = now.Add(d)
				// After the lockout the count starts again.
				l.Failures, l.WindowStart = 0, now
				locked = append(locked, lockout{rule, d})
			}
			l.ExpiresAt = now.Add(max(rule.memory, l.LockedUntil.Sub(now)))
			return nil
		})
		if err != nil {
			return err
		}
		detail := a.Reason
		if a.Subject != "" {
			detail = fmt.Sprintf("%s for %q", a.Reason, a.Username)
		}
		events := []*storage.AuditEvent{{Time: now, Type: storage.EventLoginFailed, Actor: storage.ActorUser,
			Subject: a.Subject, IPAddress: a.IP, UserAgent: a.UserAgent, Detail: detail}}
		for _, l := range locked {
			events = append(events, &storage.AuditEvent{Time: now, Type: storage.EventLoginThrottled, Actor: storage.ActorSystem,
				Subject: a.Subject, IPAddress: a.IP, UserAgent: a.UserAgent,
				Detail: fmt.Sprintf("%s refused sign-ins for %s after %d failures", l.rule.kind, l.duration, l.rule.maxFailures)})
		}
		for _, e := range events {
			if err := p.Store.AppendAuditEvent(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("record failed login: %w", err)
	}
	var wait time.Duration
	for _, l := range locked {
		p.Logger.WarnContext(ctx, "sign-ins refused after too many failures", "locked", l.rule.kind, "for", l.duration,
			"sub", a.Subject, "ip", a.IP)
		wait = max(wait, l.duration)
	}
	return wait, nil
}

// ClearLoginFailures forgets the failures and lockouts of username's
// account after a successful sign-in. Its address keeps its count: a
// success does not make the other guesses from there less suspicious.
func (p *Provider) ClearLoginFailures(ctx context.Context, username string) error {
	if _, err := p.Store.DeleteLoginThrottle(ctx, LoginAccountKey(username)); err != nil {
		return fmt.Errorf("clear login failures: %w", err)
	}
	return nil
}

// UnlockLogin clears the failures and lockout of the account of username
// (an administrator's `users unlock`), recording a login_unlocked event by
// unlockedBy, and reports whether there was anything to clear. The user
// must exist.
func UnlockLogin(ctx context.Context, store storage.Store, username, unlockedBy string, now time.Time) (bool, error) {
	unlockedBy, err := checkAdminName(unlockedBy)
	if err != nil {
		return false, err
	}
	u, err := store.GetUserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) {
		return false, notFound("user", username)
	}
	if err != nil {
		return false, fmt.Errorf("load user %q: %w", username, err)
	}
	var cleared bool
	err = inTx(ctx, store, func(ctx context.Context) error {
		var err error
		if cleared, err = store.DeleteLoginThrottle(ctx, LoginAccountKey(username)); err != nil {
			return err
		}
		detail := "no failed sign-ins to clear"
		if cleared {
			detail = "failed sign-ins and lockout cleared"
		}
		return store.AppendAuditEvent(ctx, &storage.AuditEvent{Time: now, Type: storage.EventLoginUnlocked,
			Actor: storage.ActorAdmin, ActorName: unlockedBy, Subject: u.Subject, Detail: detail})
	})
	if err != nil {
		return false, fmt.Errorf("unlock sign-in of %q: %w", username, err)
	}
	return cleared, nil
}
