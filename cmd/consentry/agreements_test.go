package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/user"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/consentry/consentry/storage"
)

// offlineFixture is a database with a first-party mobile app that may ask
// for offline access, a web client without it, and the users alice and bob.
func offlineFixture(t *testing.T) (dsn string) {
	t.Helper()
	dsn = tempDSN(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	for _, args := range [][]string{
		{"clients", "create", "--id", "com.example.app", "--public", "--redirect-uri", "com.example.app:/cb",
			"--scope", "openid profile offline_access", "--grant-type", "authorization_code", "--grant-type", "refresh_token"},
		{"clients", "create", "--id", "website", "--public", "--redirect-uri", "https://www.example.com/cb", "--scope", "openid email"},
	} {
		if r := runCLI(t, "", environ, args...); r.code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	for _, name := range []string{"alice", "bob"} {
		if r := runCLI(t, "secret123", environ, "users", "create", "--username", name, "--password-stdin"); r.code != 0 {
			t.Fatalf("create user %s: exit %d, stderr %q", name, r.code, r.stderr)
		}
	}
	return dsn
}

var recordedID = regexp.MustCompile(`(?m)^recorded agreement (agr_[A-Za-z0-9_-]+)$`)

func TestAgreementsRoundTrip(t *testing.T) {
	dsn := offlineFixture(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	ctx := context.Background()
	st := openTestStore(t, dsn)

	// All users, JSON.
	r := runCLI(t, "", environ, "agreements", "create", "--client", "com.example.app", "--all-users",
		"--scope", "openid offline_access", "--reference", "POL-2026-7", "--recorded-by", "ops", "--json")
	if r.code != 0 {
		t.Fatalf("create --all-users: exit %d, stderr %q", r.code, r.stderr)
	}
	var allUsers agreementView
	if err := json.Unmarshal([]byte(r.stdout), &allUsers); err != nil {
		t.Fatalf("create --json output %q: %v", r.stdout, err)
	}
	if !strings.HasPrefix(allUsers.ID, "agr_") || !allUsers.AllUsers || allUsers.Scope != "openid offline_access" ||
		allUsers.Reference != "POL-2026-7" || allUsers.RecordedBy != "ops" || allUsers.Status != "active" || allUsers.ExpiresAt != nil {
		t.Errorf("created %+v", allUsers)
	}

	// One user, text, with an end; flags after a repeated --scope.
	expires := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)
	r = runCLI(t, "", environ, "agreements", "create", "--client", "com.example.app", "--user", "alice",
		"--scope", "openid", "--scope", "profile offline_access", "--reference", "MSA-114",
		"--expires", expires.Format(time.RFC3339), "--recorded-by", "Jo Admin")
	if r.code != 0 {
		t.Fatalf("create --user: exit %d, stderr %q", r.code, r.stderr)
	}
	m := recordedID.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("create output %q does not name the new agreement", r.stdout)
	}
	aliceID := m[1]
	for _, want := range []string{"client:", "com.example.app", "user:", "alice", "openid profile offline_access", "MSA-114", expires.Format(time.RFC3339), "Jo Admin", "active"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("create output %q lacks %q", r.stdout, want)
		}
	}
	stored, err := st.GetAgreement(ctx, aliceID)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := st.GetUserByUsername(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Subject != alice.Subject || stored.AllUsers || stored.ExpiresAt == nil || !stored.ExpiresAt.Equal(expires) {
		t.Errorf("stored %+v; want alice's subject and the end %v", stored, expires)
	}

	// Not yet started; and one that ended, stored directly since the CLI refuses a past end.
	starts := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	r = runCLI(t, "", environ, "agreements", "create", "--client", "website", "--user", "bob", "--scope", "openid",
		"--reference", "R-3", "--starts", starts.Format(time.RFC3339), "--recorded-by", "ops")
	if r.code != 0 || !strings.Contains(r.stdout, "not yet started") {
		t.Fatalf("create --starts: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	past := time.Now().Add(-time.Hour)
	if err := st.CreateAgreement(ctx, &storage.Agreement{
		ID: "agr_ended", ClientID: "website", AllUsers: true, Scopes: []string{"openid"}, Reference: "OLD-1",
		StartsAt: past.Add(-time.Hour), ExpiresAt: &past, RecordedBy: "ops", CreatedAt: past.Add(-time.Hour),
	}); err != nil {
		t.Fatal(err)
	}

	r = runCLI(t, "", environ, "agreements", "list")
	if r.code != 0 {
		t.Fatalf("list: exit %d, stderr %q", r.code, r.stderr)
	}
	// Who recorded it is in --json (below), not in the table, which fits
	// 100 columns.
	assertFitsTerminal(t, r.stdout)
	for _, want := range []string{"ID", "EXPIRES", "STATUS", allUsers.ID, aliceID, "all users", "alice", "bob",
		"POL-2026-7", "MSA-114", "never", "active", "not yet started", "expired"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list output lacks %q:\n%s", want, r.stdout)
		}
	}

	listJSON := func(args ...string) []agreementView {
		t.Helper()
		r := runCLI(t, "", environ, append([]string{"agreements", "list", "--json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("list %q: exit %d, stderr %q", args, r.code, r.stderr)
		}
		var out []agreementView
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("list %q output %q: %v", args, r.stdout, err)
		}
		return out
	}
	ids := func(vs []agreementView) string {
		var s []string
		for _, v := range vs {
			s = append(s, v.ID)
		}
		return strings.Join(s, " ")
	}
	// Oldest first: the ended agreement was created an hour ago.
	if got := listJSON("--user", "alice"); ids(got) != "agr_ended "+allUsers.ID+" "+aliceID {
		t.Errorf("list --user alice = %q; want the all-users agreements and alice's, oldest first", ids(got))
	}
	if got := listJSON("--client", "com.example.app"); ids(got) != allUsers.ID+" "+aliceID {
		t.Errorf("list --client com.example.app = %q", ids(got))
	}
	if got := listJSON("--client", "website", "--user", "bob"); len(got) != 2 || got[0].Status != "expired" || got[1].Username != "bob" || got[1].Status != "not yet started" {
		t.Errorf("list --client website --user bob = %+v", got)
	}
	if r := runCLI(t, "", environ, "agreements", "list", "--user", "carol"); r.code != 1 || !strings.Contains(r.stderr, `user "carol" not found`) {
		t.Errorf("list --user carol: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", environ, "agreements", "list", "--client", "nope"); r.code != 1 || !strings.Contains(r.stderr, `client "nope" not found`) {
		t.Errorf("list --client nope: exit %d, stderr %q", r.code, r.stderr)
	}

	// Revoke.
	r = runCLI(t, "", environ, "agreements", "revoke", allUsers.ID)
	if r.code != 0 || !strings.Contains(r.stdout, "revoked agreement "+allUsers.ID) {
		t.Fatalf("revoke: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	revoked, err := st.GetAgreement(ctx, allUsers.ID)
	if err != nil || revoked.RevokedAt == nil {
		t.Fatalf("after revoke: %+v, %v; want revoked", revoked, err)
	}
	if got := listJSON("--client", "com.example.app"); len(got) != 2 || got[0].Status != "revoked" || got[0].RevokedAt == nil || got[1].Status != "active" {
		t.Errorf("list after revoke = %+v", got)
	}
	r = runCLI(t, "", environ, "agreements", "revoke", allUsers.ID)
	if r.code != 0 || !strings.Contains(r.stdout, "already revoked") {
		t.Errorf("revoke again: exit %d, stdout %q", r.code, r.stdout)
	}
	again, err := st.GetAgreement(ctx, allUsers.ID)
	if err != nil || !again.RevokedAt.Equal(*revoked.RevokedAt) {
		t.Errorf("revoking again moved the revocation time: %v then %v", revoked.RevokedAt, again.RevokedAt)
	}
	r = runCLI(t, "", environ, "agreements", "revoke", "agr_nope")
	if r.code != 1 || !strings.Contains(r.stderr, `agreement "agr_nope" not found`) {
		t.Errorf("revoke unknown: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLI(t, "", environ, "agreements", "revoke"); r.code != 2 || !strings.Contains(r.stderr, "usage: consentry agreements revoke ID") {
		t.Errorf("revoke without id: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestAgreementsCreateRefusals(t *testing.T) {
	dsn := offlineFixture(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	base := []string{"--scope", "openid offline_access", "--reference", "POL-7", "--recorded-by", "ops"}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "unknown client", args: append([]string{"--client", "nope", "--all-users"}, base...), wantErr: `client "nope" not found`},
		{name: "unknown user", args: append([]string{"--client", "com.example.app", "--user", "carol"}, base...), wantErr: `user "carol" not found`},
		{name: "both --user and --all-users", args: append([]string{"--client", "com.example.app", "--user", "alice", "--all-users"}, base...), wantErr: "--user and --all-users exclude each other"},
		{name: "neither --user nor --all-users", args: append([]string{"--client", "com.example.app"}, base...), wantErr: "--user or --all-users is required"},
		{name: "no --client", args: append([]string{"--all-users"}, base...), wantErr: "--client is required"},
		{
			name:    "scope not registered for the client",
			args:    []string{"--client", "website", "--all-users", "--scope", "openid offline_access", "--reference", "POL-7", "--recorded-by", "ops"},
			wantErr: `scope "offline_access" is not registered for client "website"`,
		},
		{name: "no --scope", args: []string{"--client", "com.example.app", "--all-users", "--reference", "POL-7", "--recorded-by", "ops"}, wantErr: "--scope is required"},
		{name: "scope twice", args: []string{"--client", "com.example.app", "--all-users", "--scope", "openid openid", "--reference", "POL-7", "--recorded-by", "ops"}, wantErr: `scope "openid" is listed twice`},
		{name: "missing reference", args: []string{"--client", "com.example.app", "--all-users", "--scope", "openid", "--recorded-by", "ops"}, wantErr: "--reference is required"},
		{name: "reference too long", args: []string{"--client", "com.example.app", "--all-users", "--scope", "openid", "--reference", strings.Repeat("r", 257), "--recorded-by", "ops"}, wantErr: "at most 256 characters"},
		{name: "past --expires", args: append([]string{"--client", "com.example.app", "--all-users", "--expires", past}, base...), wantErr: "is not in the future"},
		{name: "--expires before --starts", args: append([]string{"--client", "com.example.app", "--all-users", "--starts", "2099-01-02T00:00:00Z", "--expires", "2099-01-01T00:00:00Z"}, base...), wantErr: "must be after its start"},
		{name: "--expires not RFC 3339", args: append([]string{"--client", "com.example.app", "--all-users", "--expires", "next year"}, base...), wantErr: "want an RFC 3339 time"},
		{name: "--starts not RFC 3339", args: append([]string{"--client", "com.example.app", "--all-users", "--starts", "2026-01-01"}, base...), wantErr: "want an RFC 3339 time"},
		{name: "positional argument", args: append([]string{"--client", "com.example.app", "--all-users", "extra"}, base...), wantErr: "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, "", environ, append([]string{"agreements", "create"}, tt.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tt.wantErr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q; want nothing", r.stdout)
			}
		})
	}
	all, err := openTestStore(t, dsn).ListAgreements(context.Background(), storage.AgreementFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 0 {
		t.Errorf("refused agreements were stored: %+v", all)
	}
}

// runCLIAs is runCLI with the operating-system user lookup replaced.
func runCLIAs(t *testing.T, current func() (*user.User, error), environ map[string]string, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{
		stdin:        strings.NewReader(""),
		stdout:       &stdout,
		stderr:       &stderr,
		getenv:       func(k string) string { return environ[k] },
		passwordCost: bcrypt.MinCost,
		currentUser:  current,
	}
	code := run(context.Background(), e, args)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestAgreementsRecordedByDefault(t *testing.T) {
	dsn := offlineFixture(t)
	args := []string{"agreements", "create", "--client", "com.example.app", "--all-users", "--scope", "openid",
		"--reference", "POL-7", "--json"}
	osUser := func() (*user.User, error) { return &user.User{Username: "osuser"}, nil }
	noUser := func() (*user.User, error) { return nil, errors.New("user: unknown userid 4242") }
	tests := []struct {
		name    string
		current func() (*user.User, error)
		userEnv string
		want    string // recorded_by; "" means refused
	}{
		{name: "operating-system user", current: osUser, userEnv: "envuser", want: "osuser"},
		{name: "$USER when the lookup fails", current: noUser, userEnv: "envuser", want: "envuser"},
		{name: "neither", current: noUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			environ := map[string]string{"CONSENTRY_DSN": dsn, "USER": tt.userEnv}
			r := runCLIAs(t, tt.current, environ, args...)
			if tt.want == "" {
				if r.code != 2 || !strings.Contains(r.stderr, "give --recorded-by NAME") {
					t.Errorf("exit %d, stderr %q; want 2 asking for --recorded-by", r.code, r.stderr)
				}
				return
			}
			var v agreementView
			if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil {
				t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			if v.RecordedBy != tt.want {
				t.Errorf("recorded by %q; want %q", v.RecordedBy, tt.want)
			}
		})
	}
	// --recorded-by wins over both.
	r := runCLIAs(t, osUser, map[string]string{"CONSENTRY_DSN": dsn, "USER": "envuser"}, append(args, "--recorded-by", "Jo")...)
	if r.code != 0 || !strings.Contains(r.stdout, `"recorded_by": "Jo"`) {
		t.Errorf("--recorded-by: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestConsentsListAndRevoke(t *testing.T) {
	dsn := offlineFixture(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	ctx := context.Background()
	st := openTestStore(t, dsn)
	alice, err := st.GetUserByUsername(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := st.GetUserByUsername(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)
	remember := t0.Add(720 * time.Hour)
	for _, g := range []storage.Grant{
		{ID: "g1", Subject: alice.Subject, ClientID: "website", RequestID: "r1", Scopes: []string{"openid", "email"},
			Basis: storage.BasisConsent, CreatedAt: t0, RememberUntil: &remember, IPAddress: "192.0.2.7", UserAgent: "Firefox"},
		{ID: "g2", Subject: alice.Subject, ClientID: "website", RequestID: "r2", Scopes: []string{"openid"},
			Basis: storage.BasisRemembered, RememberedFrom: "g1", CreatedAt: t0.Add(time.Hour)},
		{ID: "g3", Subject: alice.Subject, ClientID: "com.example.app", RequestID: "r3", Scopes: []string{"openid", "offline_access"},
			Basis: storage.BasisAgreement, AgreementID: "agr_mobile", CreatedAt: t0.Add(2 * time.Hour)},
		{ID: "g4", Subject: bob.Subject, ClientID: "website", RequestID: "r4", Scopes: []string{"openid"},
			Basis: storage.BasisConsent, CreatedAt: t0},
	} {
		if err := st.CreateGrant(ctx, &g); err != nil {
			t.Fatalf("create grant %s: %v", g.ID, err)
		}
	}

	r := runCLI(t, "", environ, "consents", "list", "--user", "alice")
	if r.code != 0 {
		t.Fatalf("list: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"CLIENT", "BASIS", "REMEMBERED UNTIL", "REVOKED", "website", "com.example.app",
		"openid email", "consent", "remembered", "agreement agr_mob", "2026-01-10 09:00", remember.UTC().Format("2006-01-02 15:04")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "g4") || strings.Count(r.stdout, "\n") != 4 {
		t.Errorf("list shows other users' grants or the wrong number of lines:\n%s", r.stdout)
	}

	listJSON := func(args ...string) []grantView {
		t.Helper()
		r := runCLI(t, "", environ, append([]string{"consents", "list", "--json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("list %q: exit %d, stderr %q", args, r.code, r.stderr)
		}
		var out []grantView
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("list %q output %q: %v", args, r.stdout, err)
		}
		return out
	}
	got := listJSON("--user", "alice", "--client", "website")
	if len(got) != 2 || got[0].ID != "g2" || got[1].ID != "g1" || got[0].RememberedFrom != "g1" ||
		got[1].RememberUntil == nil || got[1].Username != "alice" || got[1].IPAddress != "192.0.2.7" {
		t.Fatalf("list --client website = %+v; want g2 then g1", got)
	}

	// Revoke: alice's two grants to the website, not bob's, not the app's.
	r = runCLI(t, "", environ, "consents", "revoke", "--user", "alice", "--client", "website")
	if r.code != 0 || !strings.Contains(r.stdout, "revoked 2 grants and the tokens issued under them") {
		t.Fatalf("revoke: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, g := range listJSON("--user", "alice") {
		if (g.RevokedAt != nil) != (g.ClientID == "website") {
			t.Errorf("grant %s to %s revoked at %v", g.ID, g.ClientID, g.RevokedAt)
		}
	}
	if g := listJSON("--user", "bob"); len(g) != 1 || g[0].RevokedAt != nil {
		t.Errorf("bob's grants = %+v; want one, not revoked", g)
	}
	r = runCLI(t, "", environ, "consents", "list", "--user", "alice", "--client", "website")
	if r.code != 0 || strings.Count(r.stdout, time.Now().UTC().Format("2006-01-02 ")) < 2 {
		t.Errorf("list after revoke does not show the revocation times:\n%s", r.stdout)
	}
	r = runCLI(t, "", environ, "consents", "revoke", "--user", "alice", "--client", "website")
	if r.code != 0 || !strings.Contains(r.stdout, "nothing revoked") {
		t.Errorf("revoke again: exit %d, stdout %q", r.code, r.stdout)
	}
	r = runCLI(t, "", environ, "consents", "revoke", "--user", "bob", "--client", "website")
	if r.code != 0 || !strings.Contains(r.stdout, "revoked 1 grant and the tokens issued under it") {
		t.Errorf("revoke bob: exit %d, stdout %q", r.code, r.stdout)
	}

	// An active agreement keeps letting the client in: the command says so.
	if r := runCLI(t, "", environ, "agreements", "create", "--client", "com.example.app", "--all-users",
		"--scope", "openid offline_access", "--reference", "POL-7", "--recorded-by", "ops"); r.code != 0 {
		t.Fatalf("create agreement: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "", environ, "consents", "revoke", "--user", "alice", "--client", "com.example.app")
	if r.code != 0 || !strings.Contains(r.stdout, "revoked 1 grant") ||
		!strings.Contains(r.stderr, "still lets client \"com.example.app\"") || !strings.Contains(r.stderr, "consentry agreements revoke agr_") {
		t.Errorf("revoke under an agreement: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	for _, tt := range []struct {
		args    []string
		code    int
		wantErr string
	}{
		{[]string{"consents", "list"}, 2, "--user is required"},
		{[]string{"consents", "list", "--user", "carol"}, 1, `user "carol" not found`},
		{[]string{"consents", "list", "--user", "alice", "--client", "nope"}, 1, `client "nope" not found`},
		{[]string{"consents", "revoke", "--client", "website"}, 2, "--user is required"},
		{[]string{"consents", "revoke", "--user", "alice"}, 2, "--client is required"},
		{[]string{"consents", "revoke", "--user", "carol", "--client", "website"}, 1, `user "carol" not found`},
		{[]string{"consents", "revoke", "--user", "alice", "--client", "nope"}, 1, `client "nope" not found`},
	} {
		r := runCLI(t, "", environ, tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.wantErr) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, r.code, r.stderr, tt.code, tt.wantErr)
		}
	}
}

func TestHelpListsAgreementsAndConsents(t *testing.T) {
	r := runCLI(t, "", nil, "help")
	if r.code != 0 {
		t.Fatalf("help: exit %d", r.code)
	}
	for _, want := range []string{"agreements create", "agreements list", "agreements revoke ID", "consents list", "consents revoke",
		"--offline-access-without-prompt-consent POLICY", "--remember-consent-for DURATION"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"help", "agreements", "create"}, []string{"--client ID", "--user USERNAME", "--all-users", "--scope SCOPES", "--reference REFERENCE", "--starts TIME", "--expires TIME", "--recorded-by NAME", "--json", "other conditions for processing"}},
		{[]string{"help", "agreements", "list"}, []string{"--client ID", "--user USERNAME", "--json"}},
		{[]string{"help", "agreements"}, []string{"agreements create", "agreements list", "agreements revoke ID"}},
		{[]string{"help", "consents"}, []string{"consents list", "consents revoke"}},
		{[]string{"consents", "revoke", "-h"}, []string{"--user USERNAME", "--client ID", "standing agreement"}},
		{[]string{"consents", "list", "-h"}, []string{"--user USERNAME", "--client ID", "--json"}},
	} {
		r := runCLI(t, "", nil, tt.args...)
		if r.code != 0 {
			t.Errorf("%q: exit %d, stderr %q", tt.args, r.code, r.stderr)
		}
		for _, want := range tt.want {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%q output lacks %q:\n%s", tt.args, want, r.stdout)
			}
		}
	}
	if r := runCLI(t, "", nil, "agreements"); r.code != 2 || !strings.Contains(r.stderr, "agreements needs a subcommand: create, list, revoke") {
		t.Errorf("agreements alone: exit %d, stderr %q", r.code, r.stderr)
	}
}
