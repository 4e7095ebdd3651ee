package main

import (
	"context"
	"fmt"
	"time"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/storage"
)

const sessionsListHelp = `
List the browsers where a user is signed in, most recently seen first: the
session's ID (the sid claim of the ID tokens issued in it), when the user
signed in, when the browser was last seen, when the session ends at the
latest, the IP address it signed in from and the browser and operating
system its User-Agent names. Sessions past their end or idle for longer
than session_idle_lifetime are left out.`

const sessionsRevokeHelp = `
Sign a user out: end the session with --id, or without it every session of
the user. A browser whose session ended is signed out at its next request,
whichever instance serves it. Tokens already issued to applications are not
revoked: use 'consentry consents revoke' for those.

The revocation is written to the audit log under --revoked-by, which
defaults to the name of the operating-system user.`

// sessionView is what the CLI shows of a browser session: never its secret
// or the hash of it.
type sessionView struct {
	ID         string    `json:"id"`
	Subject    string    `json:"subject"`
	Username   string    `json:"username"`
	AuthTime   time.Time `json:"auth_time"`
	AMR        []string  `json:"amr"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IPAddress  string    `json:"ip_address,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	Device     string    `json:"device"`
}

func viewSession(s storage.BrowserSession, username string) sessionView {
	return sessionView{
		ID: s.ID, Subject: s.Subject, Username: username, AuthTime: s.AuthTime, AMR: s.AMR, CreatedAt: s.CreatedAt,
		LastSeenAt: s.LastSeenAt, ExpiresAt: s.ExpiresAt, IPAddress: s.IPAddress, UserAgent: s.UserAgent,
		Device: provider.ParseUserAgent(s.UserAgent).String(),
	}
}

func runSessionsList(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	username := fs.String("user", "", "`USERNAME` whose sessions to list (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	if *username == "" {
		return usagef("--user is required")
	}
	s, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	u, err := findUser(ctx, st, *username)
	if err != nil {
		return err
	}
	now := time.Now()
	sessions, err := st.ListSessions(ctx, u.Subject, now)
	if err != nil {
		return fmt.Errorf("list sessions of user %q: %w", u.Username, err)
	}
	views := make([]sessionView, 0, len(sessions))
	idle := s.cfg.SessionIdleLifetime.Std()
	for _, sess := range sessions {
		// The store knows the idle expiry as of the last touch; the
		// setting may have been lowered since.
		if !now.Before(sess.LastSeenAt.Add(idle)) {
			continue
		}
		views = append(views, viewSession(sess, u.Username))
	}
	if *asJSON {
		return writeJSON(e.stdout, views)
	}
	return writeList(e.stdout, views, fmt.Sprintf("user %q is not signed in anywhere", u.Username),
		[]string{"ID", "SIGNED IN", "LAST SEEN", "EXPIRES", "IP", "DEVICE"},
		func(v sessionView) []string {
			return []string{v.ID, fmtListTime(v.CreatedAt), fmtListTime(v.LastSeenAt), fmtListTime(v.ExpiresAt), orDash(v.IPAddress), v.Device}
		})
}

func runSessionsRevoke(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	username := fs.String("user", "", "`USERNAME` whose sessions to end (required)")
	id := fs.String("id", "", "end only the session `ID` (as 'sessions list' shows it); default: every session of the user")
	revokedBy := fs.String("revoked-by", "", "`NAME` of who ends the sessions, for the audit log (default: the operating-system user)")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	if *username == "" {
		return usagef("--user is required")
	}
	admin, err := e.adminName(*revokedBy, "ending the sessions", "--revoked-by")
	if err != nil {
		return err
	}
	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	n, err := provider.RevokeSessions(ctx, st, *username, *id, admin, time.Now())
	if err != nil {
		return err
	}
	switch n {
	case 0:
		fmt.Fprintf(e.stdout, "user %q is not signed in anywhere: no session ended\n", *username)
	case 1:
		fmt.Fprintf(e.stdout, "ended 1 session of user %q\n", *username)
	default:
		fmt.Fprintf(e.stdout, "ended %d sessions of user %q\n", n, *username)
	}
	return nil
}
