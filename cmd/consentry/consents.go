package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

const consentsListHelp = `
List the grants a user gave clients, newest first: the scopes, the basis
(consent on the consent screen, a remembered consent, or a standing agreement,
named by its id), when, until when a remembered consent covers later
requests, and when the grant was revoked.`

const consentsRevokeHelp = `
Revoke every grant the user gave the client, and every token issued under
them: authorization codes, access tokens and refresh tokens. The client has to
ask again, and the user sees the consent screen again.

A standing agreement with the client is not revoked by this: while one is
active the client can still be granted access without a consent screen. End
it with 'consentry agreements revoke ID'.

The revocation is written to the audit log under --revoked-by, which
defaults to the name of the operating-system user.`

func runConsentsList(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	username := fs.String("user", "", "`USERNAME` whose grants to list (required)")
	clientID := fs.String("client", "", "only grants to the client `ID`")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	if *username == "" {
		return usagef("--user is required")
	}
	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	u, err := findUser(ctx, st, *username)
	if err != nil {
		return err
	}
	if *clientID != "" {
		if err := findClient(ctx, st, *clientID); err != nil {
			return err
		}
	}
	grants, err := st.ListGrants(ctx, storage.GrantFilter{Subject: u.Subject, ClientID: *clientID})
	if err != nil {
		return fmt.Errorf("list grants of user %q: %w", u.Username, err)
	}
	views := make([]grantView, 0, len(grants))
	for _, gr := range grants {
		views = append(views, viewGrant(gr, u.Username))
	}
	if *asJSON {
		return writeJSON(e.stdout, views)
	}
	return writeList(e.stdout, views, fmt.Sprintf("no grants of user %q", u.Username),
		[]string{"CLIENT", "SCOPE", "BASIS", "WHEN", "REMEMBERED UNTIL", "REVOKED"},
		func(v grantView) []string {
			return []string{v.ClientID, v.Scope, v.basis(), fmtListTime(v.CreatedAt), fmtOptionalListTime(v.RememberUntil, "-"), fmtOptionalListTime(v.RevokedAt, "-")}
		})
}

// grantView is what the CLI shows of a grant.
type grantView struct {
	ID             string     `json:"id"`
	ClientID       string     `json:"client_id"`
	Subject        string     `json:"subject"`
	Username       string     `json:"username"`
	Scope          string     `json:"scope"`
	Basis          string     `json:"basis"`
	AgreementID    string     `json:"agreement_id,omitempty"`
	RememberedFrom string     `json:"remembered_from,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	RememberUntil  *time.Time `json:"remember_until,omitempty"`
	RevokedAt      *time.Time `json:"revoked_at,omitempty"`
	IPAddress      string     `json:"ip_address,omitempty"`
	UserAgent      string     `json:"user_agent,omitempty"`
}

func viewGrant(g storage.Grant, username string) grantView {
	return grantView{
		ID: g.ID, ClientID: g.ClientID, Subject: g.Subject, Username: username,
		Scope: strings.Join(g.Scopes, " "), Basis: g.Basis, AgreementID: g.AgreementID,
		RememberedFrom: g.RememberedFrom, CreatedAt: g.CreatedAt, RememberUntil: g.RememberUntil,
		RevokedAt: g.RevokedAt, IPAddress: g.IPAddress, UserAgent: g.UserAgent,
	}
}

func (v grantView) basis() string {
	if v.Basis == storage.BasisAgreement && v.AgreementID != "" {
		return v.Basis + " " + v.AgreementID
	}
	return v.Basis
}

func runConsentsRevoke(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	username := fs.String("user", "", "`USERNAME` whose grants to revoke (required)")
	clientID := fs.String("client", "", "client `ID` the grants were given to (required)")
	revokedBy := fs.String("revoked-by", "", "`NAME` of who revokes the grants, for the audit log (default: the operating-system user)")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	switch {
	case *username == "":
		return usagef("--user is required")
	case *clientID == "":
		return usagef("--client is required")
	}
	admin, err := e.adminName(*revokedBy, "revoking the grants", "--revoked-by")
	if err != nil {
		return err
	}
	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	now := time.Now()
	n, err := provider.RevokeConsents(ctx, st, *username, *clientID, admin, now)
	if err != nil {
		return err
	}
	switch n {
	case 0:
		fmt.Fprintf(e.stdout, "user %q has no unrevoked grants to client %q: nothing revoked\n", *username, *clientID)
	case 1:
		fmt.Fprintln(e.stdout, "revoked 1 grant and the tokens issued under it")
	default:
		fmt.Fprintf(e.stdout, "revoked %d grants and the tokens issued under them\n", n)
	}
	return warnActiveAgreements(ctx, e, st, *username, *clientID, now)
}

// warnActiveAgreements tells on stderr which active agreements still let the
// client in without a consent screen.
func warnActiveAgreements(ctx context.Context, e *env, st storage.Store, username, clientID string, now time.Time) error {
	u, err := findUser(ctx, st, username)
	if err != nil {
		return err
	}
	agreements, err := st.ListAgreements(ctx, storage.AgreementFilter{ClientID: clientID, ForSubject: u.Subject})
	if err != nil {
		return fmt.Errorf("list agreements of client %q: %w", clientID, err)
	}
	for _, a := range agreements {
		if !consent.AgreementActive(a, now) {
			continue
		}
		with, end := "with this user", "end it with 'consentry agreements revoke "+a.ID+"'"
		if a.AllUsers {
			with, end = "with all users", "'consentry agreements revoke "+a.ID+"' ends it for every user"
		}
		fmt.Fprintf(e.stderr, "note: agreement %s (%s, reference %s) still lets client %q get %q without a consent screen; %s\n",
			a.ID, with, a.Reference, clientID, strings.Join(a.Scopes, " "), end)
	}
	return nil
}
