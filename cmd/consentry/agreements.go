package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

const agreementsCreateHelp = `
Record a standing agreement: the "other conditions for processing" of
OpenID Connect Core 1.0, section 11. It states that the client has a prior,
enduring business or contractual relationship with one user (--user), or with
every user (--all-users, for a first-party client), covering the given scopes.

While the agreement is active, a request from the client whose scopes it all
covers, offline_access among them, is granted without a consent screen, and
the grant names the agreement. A request with prompt=consent still shows the
consent screen. Agreements are never created by default: only this command
records one, and 'consentry agreements revoke' ends it.

Every scope must be registered for the client: an agreement never gives more
than the client may ask for. Times are RFC 3339, e.g. 2026-12-31T23:59:59Z.
--recorded-by defaults to the name of the operating-system user; it is
written to the audit log with the new agreement.

Users may remove the access an agreement gives from their connected-apps
page unless --user-may-remove=false is given (for access the relationship
requires, for example a managed device).

Example (a company's own mobile app):
  consentry agreements create --client com.example.app --all-users \
      --scope "openid profile offline_access" --reference POL-2026-7`

const agreementsListHelp = `
List standing agreements with their status: active, not yet started,
expired or revoked. --user lists the agreements that apply to the user:
those with that user and those with all users.`

const agreementsRevokeHelp = `
Revoke a standing agreement. Requests are no longer granted under it, and
refresh tokens granted under it are refused at their next use. The
revocation is written to the audit log under --revoked-by, which defaults to
the name of the operating-system user.`

func runAgreementsCreate(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	var spec provider.AgreementSpec
	var scopes listFlag
	fs.StringVar(&spec.ClientID, "client", "", "client `ID` (required)")
	fs.StringVar(&spec.Username, "user", "", "`USERNAME` of the one user the agreement is with")
	fs.BoolVar(&spec.AllUsers, "all-users", false, "the agreement is with every user (a first-party client)")
	fs.Var(&scopes, "scope", "space-separated `SCOPES` the agreement covers (required; repeatable);\neach must be registered for the client")
	fs.StringVar(&spec.Reference, "reference", "", "`REFERENCE` naming the contract or policy (required; at most 256 characters)")
	starts := fs.String("starts", "", "`TIME` the agreement takes effect, RFC 3339 (default: now)")
	expires := fs.String("expires", "", "`TIME` the agreement ends, RFC 3339 (default: no end)")
	fs.StringVar(&spec.RecordedBy, "recorded-by", "", "`NAME` of who records the agreement (default: the operating-system user)")
	userMayRemove := fs.Bool("user-may-remove", true, "let users remove the access from their connected-apps page;\n--user-may-remove=false forbids it")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	switch {
	case spec.ClientID == "":
		return usagef("--client is required")
	case spec.Username != "" && spec.AllUsers:
		return usagef("--user and --all-users exclude each other: an agreement is with one user or with all users")
	case spec.Username == "" && !spec.AllUsers:
		return usagef("--user or --all-users is required")
	case len(scopes) == 0:
		return usagef("--scope is required: an agreement covers a stated set of scopes")
	case strings.TrimSpace(spec.Reference) == "":
		return usagef("--reference is required: name the contract or policy the agreement rests on")
	}
	spec.Scopes = scopes
	spec.UserMayRemove = userMayRemove
	if *starts != "" {
		if spec.StartsAt, err = parseTimeFlag("--starts", *starts); err != nil {
			return err
		}
	}
	if *expires != "" {
		t, err := parseTimeFlag("--expires", *expires)
		if err != nil {
			return err
		}
		spec.ExpiresAt = &t
	}
	if spec.RecordedBy == "" {
		if spec.RecordedBy = e.osUsername(); spec.RecordedBy == "" {
			return usagef("cannot tell who is recording the agreement: give --recorded-by NAME")
		}
	}
	now := time.Now()
	// Refuse a bad agreement before opening the database.
	if err := spec.Validate(now); err != nil {
		return err
	}

	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	a, err := provider.RecordAgreement(ctx, st, spec, now)
	if err != nil {
		return err
	}
	v := viewAgreement(*a, spec.Username, now)
	if *asJSON {
		return writeJSON(e.stdout, v)
	}
	fmt.Fprintf(e.stdout, "recorded agreement %s\n", a.ID)
	return printAgreement(e.stdout, v)
}

// adminName is the name of the administrator acting: given, when not empty,
// else the operating-system user. doing and flag complete the message when
// neither is known.
func (e *env) adminName(given, doing, flag string) (string, error) {
	if given != "" {
		return given, nil // a blank name is refused by the provider
	}
	if name := e.osUsername(); name != "" {
		return name, nil
	}
	return "", usagef("cannot tell who is %s: give %s NAME", doing, flag)
}

// osUsername names the operating-system user, falling back to $USER; it is
// empty when neither is known.
func (e *env) osUsername() string {
	current := e.currentUser
	if current == nil {
		current = user.Current
	}
	if u, err := current(); err == nil && strings.TrimSpace(u.Username) != "" {
		return u.Username
	}
	return strings.TrimSpace(e.getenv("USER"))
}

func parseTimeFlag(name, val string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, val)
	if err != nil {
		return time.Time{}, usagef("%s %q: want an RFC 3339 time such as 2026-12-31T23:59:59Z", name, val)
	}
	return t, nil
}

// Statuses of an agreement.
const (
	statusActive     = "active"
	statusNotStarted = "not yet started"
	statusExpired    = "expired"
	statusRevoked    = "revoked"
)

func agreementStatus(a storage.Agreement, now time.Time) string {
	switch {
	case a.RevokedAt != nil:
		return statusRevoked
	case a.ExpiresAt != nil && !a.ExpiresAt.After(now):
		return statusExpired
	case a.StartsAt.After(now):
		return statusNotStarted
	case consent.AgreementActive(a, now):
		return statusActive
	}
	return "unknown" // unreachable while the cases above mirror AgreementActive
}

// agreementView is what the CLI shows of an agreement.
type agreementView struct {
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	AllUsers bool   `json:"all_users"`
	Subject  string `json:"subject,omitempty"`
	// Username is empty when the user no longer exists.
	Username   string     `json:"username,omitempty"`
	Scope      string     `json:"scope"`
	Reference  string     `json:"reference"`
	StartsAt   time.Time  `json:"starts_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RecordedBy string     `json:"recorded_by"`
	// UserMayRemove tells whether users may remove the access from their
	// connected-apps page.
	UserMayRemove bool       `json:"user_may_remove"`
	CreatedAt     time.Time  `json:"created_at"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	Status        string     `json:"status"`
}

func viewAgreement(a storage.Agreement, username string, now time.Time) agreementView {
	return agreementView{
		ID: a.ID, ClientID: a.ClientID, AllUsers: a.AllUsers, Subject: a.Subject, Username: username,
		Scope: strings.Join(a.Scopes, " "), Reference: a.Reference, StartsAt: a.StartsAt, ExpiresAt: a.ExpiresAt,
		RecordedBy: a.RecordedBy, UserMayRemove: a.UserMayRemove, CreatedAt: a.CreatedAt, RevokedAt: a.RevokedAt,
		Status: agreementStatus(a, now),
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// who says whom the agreement is with.
func (v agreementView) who() string {
	switch {
	case v.AllUsers:
		return "all users"
	case v.Username != "":
		return v.Username
	}
	return "deleted user " + v.Subject
}

func printAgreement(w io.Writer, v agreementView) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, val string) { fmt.Fprintf(tw, "%s:\t%s\n", k, val) }
	row("id", v.ID)
	row("client", v.ClientID)
	row("user", v.who())
	row("scope", v.Scope)
	row("reference", v.Reference)
	row("starts", fmtTime(v.StartsAt))
	row("expires", fmtOptionalTime(v.ExpiresAt, "never"))
	row("recorded by", v.RecordedBy)
	row("user may remove", yesNo(v.UserMayRemove))
	if v.RevokedAt != nil {
		row("revoked", fmtTime(*v.RevokedAt))
	}
	row("status", v.Status)
	return tw.Flush()
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func fmtOptionalTime(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return fmtTime(*t)
}

func runAgreementsList(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	clientID := fs.String("client", "", "only agreements with the client `ID`")
	username := fs.String("user", "", "only agreements that apply to `USERNAME` (theirs and those with all users)")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parseN(e, fs, args); err != nil {
		return err
	}
	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	var filter storage.AgreementFilter
	if *clientID != "" {
		if err := findClient(ctx, st, *clientID); err != nil {
			return err
		}
		filter.ClientID = *clientID
	}
	if *username != "" {
		u, err := findUser(ctx, st, *username)
		if err != nil {
			return err
		}
		filter.ForSubject = u.Subject
	}
	agreements, err := st.ListAgreements(ctx, filter)
	if err != nil {
		return fmt.Errorf("list agreements: %w", err)
	}
	names, err := usernames(ctx, st)
	if err != nil {
		return err
	}
	now := time.Now()
	views := make([]agreementView, 0, len(agreements))
	for _, a := range agreements {
		views = append(views, viewAgreement(a, names[a.Subject], now))
	}
	if *asJSON {
		return writeJSON(e.stdout, views)
	}
	return writeList(e.stdout, views, "no agreements",
		// To fit 100 columns the table leaves out the start (STATUS says
		// "not yet started"), who recorded it and whether the user may
		// remove it, and shows the expiry's day: --json has them all.
		[]string{"ID", "CLIENT", "USER", "SCOPE", "REFERENCE", "EXPIRES", "STATUS"},
		func(v agreementView) []string {
			expires := "never"
			if v.ExpiresAt != nil {
				expires = fmtListDate(*v.ExpiresAt)
			}
			return []string{v.ID, v.ClientID, v.who(), v.Scope, v.Reference, expires, v.Status}
		})
}

func runAgreementsRevoke(ctx context.Context, e *env, c *command, args []string) (err error) {
	fs, g := c.newFlagSet(e)
	revokedBy := fs.String("revoked-by", "", "`NAME` of who revokes the agreement, for the audit log (default: the operating-system user)")
	pos, err := c.parseN(e, fs, args)
	if err != nil {
		return err
	}
	admin, err := e.adminName(*revokedBy, "revoking the agreement", "--revoked-by")
	if err != nil {
		return err
	}
	_, st, err := setup(ctx, e, fs, g)
	if err != nil {
		return err
	}
	defer closeStore(st, &err)

	id := pos[0]
	a, err := st.GetAgreement(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("agreement %q not found", id)
	}
	if err != nil {
		return fmt.Errorf("load agreement %q: %w", id, err)
	}
	if a.RevokedAt != nil {
		fmt.Fprintf(e.stdout, "agreement %s was already revoked at %s\n", id, fmtTime(*a.RevokedAt))
		return nil
	}
	if err := provider.RevokeAgreement(ctx, st, id, admin, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "revoked agreement %s: client %s no longer gets access under it, and refresh tokens granted under it are refused\n", id, a.ClientID)
	return nil
}

// findClient checks that the client exists.
func findClient(ctx context.Context, clients storage.Clients, id string) error {
	_, err := clients.GetStoredClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("client %q not found", id)
	}
	if err != nil {
		return fmt.Errorf("load client %q: %w", id, err)
	}
	return nil
}

// usernames maps subjects to usernames, to show people by name.
func usernames(ctx context.Context, users storage.Users) (map[string]string, error) {
	all, err := users.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	names := make(map[string]string, len(all))
	for _, u := range all {
		names[u.Subject] = u.Username
	}
	return names, nil
}
