package main

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/consentry/consentry/storage"
)

const auditListHelp = `
List the audit log, oldest first: consents given and denied, remembered
consents and agreements used, grants revoked, agreements recorded, revoked or
removed by a user, browser sessions ended by a user or an administrator,
refresh-token reuse detected, failed sign-ins, lockouts after too many of
them and unlocks. Each event shows when,
what, who did it (the administrator's name, "user", "reuse_detection" or
"system"), the user and client concerned, the scopes, the basis of a grant,
the agreement, the address the request came from and a short note. The log
never holds tokens, codes or secrets. The table fits 100 columns: times are
to the minute in UTC and long values are cut short with "…"; --json prints
every field whole, with the user agent and the grant id.

--since takes an RFC 3339 time (2026-03-01T00:00:00Z) or a duration back
from now (24h, 90m). --client also finds events of clients deleted since;
events of a deleted user are shown as "deleted user SUBJECT".`

func runAuditList(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	username := fs.String("user", "", "only events concerning the user `USERNAME`")
	clientID := fs.String("client", "", "only events concerning the client `ID`")
	since := fs.String("since", "", "only events at or after `TIME`: RFC 3339, or a duration back from now such as 24h")
	limit := fs.Int("limit", 0, "at most `N` events (default: all)")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	now := time.Now()
	filter := storage.AuditFilter{ClientID: *clientID, Limit: *limit}
	if *limit < 0 {
		return usagef("--limit %d: want 0 (all) or more", *limit)
	}
	if *since != "" {
		if filter.Since, err = parseSince(*since, now); err != nil {
			return err
		}
	}
	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	if *username != "" {
		u, err := findUser(ctx, st, *username)
		if err != nil {
			return err
		}
		filter.Subject = u.Subject
	}
	events, err := st.ListAuditEvents(ctx, filter)
	if err != nil {
		return fmt.Errorf("list audit events: %w", err)
	}
	names, err := usernames(ctx, st)
	if err != nil {
		return err
	}
	views := make([]auditView, 0, len(events))
	for _, ev := range events {
		views = append(views, viewAuditEvent(ev, names[ev.Subject]))
	}
	if *asJSON {
		return writeJSON(e.stdout, views)
	}
	return writeList(e.stdout, views, "no audit events",
		[]string{"TIME", "TYPE", "ACTOR", "USER", "CLIENT", "DETAIL"},
		func(v auditView) []string {
			// Agreement, basis, scope, address and note share the last
			// column: with a column each the table was twice as wide as a
			// terminal. The agreement id comes first, to be copied whole.
			var detail []string
			for _, s := range []string{v.AgreementID, v.Basis, v.Scope, v.IPAddress, v.Detail} {
				if s != "" {
					detail = append(detail, s)
				}
			}
			fields := []string{fmtListTime(v.Time), v.Type, v.actor(), v.user(), v.ClientID, strings.Join(detail, ", ")}
			for i, f := range fields {
				fields[i] = orDash(printable(f))
			}
			return fields
		})
}

// parseSince reads --since: an RFC 3339 time, or a non-negative duration
// back from now.
func parseSince(val string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, val); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(val)
	if err != nil || d < 0 {
		return time.Time{}, usagef("--since %q: want an RFC 3339 time such as 2026-03-01T00:00:00Z or a duration such as 24h", val)
	}
	return now.Add(-d), nil
}

// auditView is what the CLI shows of an audit event.
type auditView struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	Type      string    `json:"type"`
	Actor     string    `json:"actor"`
	ActorName string    `json:"actor_name,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	// Username is empty when there is no subject or the user was deleted.
	Username    string `json:"username,omitempty"`
	ClientID    string `json:"client_id,omitempty"`
	Scope       string `json:"scope,omitempty"`
	Basis       string `json:"basis,omitempty"`
	GrantID     string `json:"grant_id,omitempty"`
	AgreementID string `json:"agreement_id,omitempty"`
	IPAddress   string `json:"ip_address,omitempty"`
	UserAgent   string `json:"user_agent,omitempty"`
	Detail      string `json:"detail,omitempty"`
}

func viewAuditEvent(ev storage.AuditEvent, username string) auditView {
	return auditView{
		ID: ev.ID, Time: ev.Time, Type: ev.Type, Actor: ev.Actor, ActorName: ev.ActorName,
		Subject: ev.Subject, Username: username, ClientID: ev.ClientID, Scope: strings.Join(ev.Scopes, " "),
		Basis: ev.Basis, GrantID: ev.GrantID, AgreementID: ev.AgreementID, IPAddress: ev.IPAddress,
		UserAgent: ev.UserAgent, Detail: ev.Detail,
	}
}

// actor is the administrator's name when there is one, else the kind of actor.
func (v auditView) actor() string { return cmp.Or(v.ActorName, v.Actor) }

// user names the user concerned by username, or by subject once deleted.
func (v auditView) user() string {
	switch {
	case v.Subject == "":
		return ""
	case v.Username != "":
		return v.Username
	}
	return "deleted user " + v.Subject
}

// printable keeps text from the log, which may come from a browser (the
// address, for example), from driving the terminal: control characters are
// shown escaped.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
