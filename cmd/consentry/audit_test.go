package main

import (
	"context"
	"encoding/json"
	"os/user"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/consentry/consentry/storage"
)

// listAudit runs audit list --json with args and decodes the events.
func listAudit(t *testing.T, environ map[string]string, args ...string) []auditView {
	t.Helper()
	r := runCLI(t, "", environ, append([]string{"audit", "list", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("audit list %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	var out []auditView
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("audit list %q output %q: %v", args, r.stdout, err)
	}
	return out
}

func auditTypes(events []auditView) string {
	var s []string
	for _, e := range events {
		s = append(s, e.Type)
	}
	return strings.Join(s, " ")
}

func TestAdminChangesAreAudited(t *testing.T) {
	dsn := offlineFixture(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	ctx := context.Background()
	st := openTestStore(t, dsn)
	alice, err := st.GetUserByUsername(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}

	// An agreement with alice the user may not remove, recorded by Jo.
	r := runCLI(t, "", environ, "agreements", "create", "--client", "com.example.app", "--user", "alice",
		"--scope", "openid offline_access", "--reference", "MSA-114", "--recorded-by", "Jo Admin", "--user-may-remove=false", "--json")
	var aliceAgreement agreementView
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &aliceAgreement) != nil {
		t.Fatalf("create: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if aliceAgreement.UserMayRemove {
		t.Error("--user-may-remove=false: the agreement says the user may remove it")
	}
	// An all-users agreement, removable by default, recorded by the OS user.
	osUser := func() (*user.User, error) { return &user.User{Username: "osuser"}, nil }
	r = runCLIAs(t, osUser, environ, "agreements", "create", "--client", "com.example.app", "--all-users",
		"--scope", "openid", "--reference", "POL-7")
	m := recordedID.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("create --all-users: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	allUsersID := m[1]
	if !strings.Contains(r.stdout, "user may remove:  yes") {
		t.Errorf("create output does not say the user may remove it:\n%s", r.stdout)
	}

	// The table leaves it out to fit 100 columns; --json has it.
	list := runCLI(t, "", environ, "agreements", "list", "--json")
	var listed []agreementView
	if list.code != 0 || json.Unmarshal([]byte(list.stdout), &listed) != nil || len(listed) != 2 {
		t.Fatalf("agreements list: exit %d, stdout:\n%s", list.code, list.stdout)
	}
	for _, a := range listed {
		if want := a.ID != aliceAgreement.ID; a.UserMayRemove != want {
			t.Errorf("agreement %s: user may remove %v; want %v", a.ID, a.UserMayRemove, want)
		}
	}
	assertFitsTerminal(t, runCLI(t, "", environ, "agreements", "list").stdout)

	// Revoke both: one named, one by the OS user.
	if r := runCLI(t, "", environ, "agreements", "revoke", aliceAgreement.ID, "--revoked-by", "Sam Ops"); r.code != 0 {
		t.Fatalf("revoke: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runCLIAs(t, osUser, environ, "agreements", "revoke", allUsersID); r.code != 0 {
		t.Fatalf("revoke as the OS user: exit %d, stderr %q", r.code, r.stderr)
	}
	// Revoking again changes nothing and records nothing.
	if r := runCLI(t, "", environ, "agreements", "revoke", allUsersID, "--revoked-by", "Sam Ops"); r.code != 0 || !strings.Contains(r.stdout, "already revoked") {
		t.Fatalf("revoke again: exit %d, stdout %q", r.code, r.stdout)
	}

	// A consent revoked by an administrator.
	if err := st.CreateGrant(ctx, &storage.Grant{ID: "g1", Subject: alice.Subject, ClientID: "website", RequestID: "r1",
		Scopes: []string{"openid", "email"}, Basis: storage.BasisConsent, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "", environ, "consents", "revoke", "--user", "alice", "--client", "website", "--revoked-by", "Sam Ops"); r.code != 0 {
		t.Fatalf("consents revoke: exit %d, stderr %q", r.code, r.stderr)
	}

	events := listAudit(t, environ)
	if got, want := auditTypes(events), "agreement_created agreement_created agreement_revoked agreement_revoked grant_revoked"; got != want {
		t.Fatalf("audit events %q; want %q", got, want)
	}
	for i, want := range []auditView{
		{Actor: "admin", ActorName: "Jo Admin", Subject: alice.Subject, Username: "alice", ClientID: "com.example.app", Scope: "openid offline_access", AgreementID: aliceAgreement.ID, Detail: "MSA-114"},
		{Actor: "admin", ActorName: "osuser", ClientID: "com.example.app", Scope: "openid", AgreementID: allUsersID, Detail: "POL-7"},
		{Actor: "admin", ActorName: "Sam Ops", Subject: alice.Subject, Username: "alice", ClientID: "com.example.app", Scope: "openid offline_access", AgreementID: aliceAgreement.ID, Detail: "MSA-114"},
		{Actor: "admin", ActorName: "osuser", ClientID: "com.example.app", Scope: "openid", AgreementID: allUsersID, Detail: "POL-7"},
		{Actor: "admin", ActorName: "Sam Ops", Subject: alice.Subject, Username: "alice", ClientID: "website", Detail: "1 grant"},
	} {
		got := events[i]
		got.ID, got.Time, got.Type = 0, time.Time{}, ""
		if got != want {
			t.Errorf("event %d\n got %+v\nwant %+v", i, got, want)
		}
	}

	text := runCLI(t, "", environ, "audit", "list", "--user", "alice")
	if text.code != 0 {
		t.Fatalf("audit list: exit %d, stderr %q", text.code, text.stderr)
	}
	// The note (MSA-114) may be cut to fit 100 columns; --json, checked
	// above, has it whole.
	assertFitsTerminal(t, text.stdout)
	for _, want := range []string{"TIME", "TYPE", "ACTOR", "USER", "CLIENT", "DETAIL",
		"agreement_created", "Jo Admin", "Sam Ops", "alice", aliceAgreement.ID, "grant_revoked", "1 grant"} {
		if !strings.Contains(text.stdout, want) {
			t.Errorf("audit list --user alice lacks %q:\n%s", want, text.stdout)
		}
	}
	if strings.Contains(text.stdout, "POL-7") {
		t.Errorf("audit list --user alice shows the all-users agreement:\n%s", text.stdout)
	}
}

func TestRevokersMustBeKnown(t *testing.T) {
	dsn := offlineFixture(t)
	environ := map[string]string{"CONSENTRY_DSN": dsn}
	r := runCLI(t, "", environ, "agreements", "create", "--client", "com.example.app", "--all-users",
		"--scope", "openid", "--reference", "POL-7", "--recorded-by", "ops", "--json")
	var a agreementView
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &a) != nil {
		t.Fatalf("create: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	nobody := func() (*user.User, error) { return nil, user.UnknownUserIdError(4242) }
	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"agreements", "revoke", a.ID}, "cannot tell who is revoking the agreement: give --revoked-by NAME"},
		{[]string{"consents", "revoke", "--user", "alice", "--client", "website"}, "cannot tell who is revoking the grants: give --revoked-by NAME"},
		{[]string{"agreements", "revoke", a.ID, "--revoked-by", " "}, "the name of who makes the change is required"},
		{[]string{"consents", "revoke", "--user", "alice", "--client", "website", "--revoked-by", "ops\x1b[2J"}, "control character"},
	} {
		r := runCLIAs(t, nobody, environ, tt.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.wantErr) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tt.args, r.code, r.stderr, tt.wantErr)
		}
	}
	if got := auditTypes(listAudit(t, environ)); got != "agreement_created" {
		t.Errorf("audit events %q; want only the creation", got)
	}
}

func TestAuditListFilters(t *testing.T) {
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
	now := time.Now().UTC().Truncate(time.Second)
	old := now.Add(-72 * time.Hour)
	for _, e := range []storage.AuditEvent{
		{Time: old, Type: storage.EventConsentGiven, Actor: storage.ActorUser, Subject: alice.Subject, ClientID: "website",
			Scopes: []string{"openid", "email"}, Basis: storage.BasisConsent, GrantID: "g1", IPAddress: "192.0.2.7", UserAgent: "Firefox"},
		{Time: old.Add(time.Minute), Type: storage.EventConsentDenied, Actor: storage.ActorUser, Subject: bob.Subject, ClientID: "website"},
		{Time: now.Add(-2 * time.Hour), Type: storage.EventAgreementUsed, Actor: storage.ActorUser, Subject: alice.Subject, ClientID: "com.example.app",
			Scopes: []string{"openid", "offline_access"}, Basis: storage.BasisAgreement, AgreementID: "agr_x", IPAddress: "2001:db8::1"},
		{Time: now.Add(-time.Hour), Type: storage.EventRefreshReuse, Actor: storage.ActorReuseDetection, Subject: alice.Subject, ClientID: "com.example.app",
			Detail: "family revoked\x1b[31m"},
		{Time: now.Add(-30 * time.Minute), Type: storage.EventConsentGiven, Actor: storage.ActorUser, Subject: "gone-subject", ClientID: "deleted-client"},
	} {
		if err := st.AppendAuditEvent(ctx, &e); err != nil {
			t.Fatalf("append %s: %v", e.Type, err)
		}
	}

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"all, oldest first", nil, "consent_given consent_denied agreement_used refresh_token_reuse_detected consent_given"},
		{"--user", []string{"--user", "alice"}, "consent_given agreement_used refresh_token_reuse_detected"},
		{"--client", []string{"--client", "website"}, "consent_given consent_denied"},
		{"--client of a deleted client", []string{"--client", "deleted-client"}, "consent_given"},
		{"--user and --client", []string{"--user", "alice", "--client", "com.example.app"}, "agreement_used refresh_token_reuse_detected"},
		{"--since a time", []string{"--since", now.Add(-2 * time.Hour).Format(time.RFC3339)}, "agreement_used refresh_token_reuse_detected consent_given"},
		{"--since a duration", []string{"--since", "24h"}, "agreement_used refresh_token_reuse_detected consent_given"},
		{"--since and --user", []string{"--since", "90m", "--user", "alice"}, "refresh_token_reuse_detected"},
		{"--limit", []string{"--limit", "2"}, "consent_given consent_denied"},
		{"--limit with --since", []string{"--limit", "1", "--since", "24h"}, "agreement_used"},
		{"--limit 0 is all", []string{"--limit", "0", "--client", "website"}, "consent_given consent_denied"},
		{"nothing matches", []string{"--user", "bob", "--since", "24h"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := auditTypes(listAudit(t, environ, tt.args...)); got != tt.want {
				t.Errorf("audit list %q = %q; want %q", tt.args, got, tt.want)
			}
		})
	}

	events := listAudit(t, environ, "--user", "alice", "--limit", "1")
	if len(events) != 1 {
		t.Fatalf("events %+v", events)
	}
	if e := events[0]; e.Username != "alice" || e.Subject != alice.Subject || e.Scope != "openid email" || e.Basis != "consent" ||
		e.GrantID != "g1" || e.IPAddress != "192.0.2.7" || e.UserAgent != "Firefox" || e.Actor != "user" || !e.Time.Equal(old) {
		t.Errorf("JSON event %+v", e)
	}

	r := runCLI(t, "", environ, "audit", "list")
	if r.code != 0 {
		t.Fatalf("audit list: exit %d, stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 6 {
		t.Fatalf("audit list: %d lines; want a header and 5 events:\n%s", len(lines), r.stdout)
	}
	// The table fits 100 columns; long values are cut with "…", whole in
	// --json (checked above).
	assertFitsTerminal(t, r.stdout)
	for _, want := range []string{old.UTC().Format("2006-01-02 15:04"), "consent_given", "user", "alice", "website", "consent, op",
		"refresh_token_reuse_detected", "reuse_det", "deleted u", "deleted-c"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("audit list lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(lines[3], "agr_x, agre") {
		t.Errorf("agreement_used line lacks its agreement: %q", lines[3])
	}
	wide := runCLI(t, "", environ, "audit", "list", "--user", "alice", "--client", "com.example.app", "--limit", "1")
	if !strings.Contains(wide.stdout, "agr_x, agreement, openid offline_a") {
		t.Errorf("with more room, the detail column shows agreement, basis and scope:\n%s", wide.stdout)
	}
	reuse := runCLI(t, "", environ, "audit", "list", "--since", "90m", "--user", "alice").stdout
	if strings.Contains(r.stdout, "\x1b") || strings.Contains(reuse, "\x1b") || !strings.Contains(reuse, "family revoke") {
		t.Errorf("a control character in the log reaches the terminal unescaped:\n%q", reuse)
	}
	if strings.Contains(r.stdout, "Firefox") {
		t.Errorf("the table shows the user agent:\n%s", r.stdout)
	}

	if r := runCLI(t, "", environ, "audit", "list", "--user", "bob", "--since", "1h"); r.code != 0 || r.stdout != "no audit events\n" {
		t.Errorf("empty list: exit %d, stdout %q", r.code, r.stdout)
	}
	for _, tt := range []struct {
		args    []string
		code    int
		wantErr string
	}{
		{[]string{"--since", "yesterday"}, 2, `--since "yesterday": want an RFC 3339 time`},
		{[]string{"--since", "-24h"}, 2, `--since "-24h"`},
		{[]string{"--limit", "-1"}, 2, "--limit -1: want 0 (all) or more"},
		{[]string{"--limit", "many"}, 2, "invalid value"},
		{[]string{"--user", "carol"}, 1, `user "carol" not found`},
		{[]string{"extra"}, 2, "takes no arguments"},
	} {
		r := runCLI(t, "", environ, append([]string{"audit", "list"}, tt.args...)...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.wantErr) {
			t.Errorf("audit list %q: exit %d, stderr %q; want %d and %q", tt.args, r.code, r.stderr, tt.code, tt.wantErr)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Time
	}{
		{"2026-02-28T00:00:00Z", time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)},
		{"2026-02-28T01:00:00+01:00", time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)},
		{"24h", now.Add(-24 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"0s", now},
	} {
		got, err := parseSince(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestHelpListsAuditAndGC(t *testing.T) {
	r := runCLI(t, "", nil, "help")
	for _, want := range []string{"audit list", "gc "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"help", "audit", "list"}, []string{"--user USERNAME", "--client ID", "--since TIME", "--limit N", "--json", "never holds tokens"}},
		{[]string{"help", "gc"}, []string{"Usage: consentry gc", "--refresh-retry-window", "never touched"}},
		{[]string{"help", "agreements", "create"}, []string{"--user-may-remove", "--user-may-remove=false"}},
		{[]string{"agreements", "revoke", "-h"}, []string{"--revoked-by NAME", "audit log"}},
		{[]string{"consents", "revoke", "-h"}, []string{"--revoked-by NAME", "audit log"}},
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
	if r := runCLI(t, "", nil, "audit"); r.code != 2 || !strings.Contains(r.stderr, "audit needs a subcommand: list") {
		t.Errorf("audit alone: exit %d, stderr %q", r.code, r.stderr)
	}
}

// assertFitsTerminal fails when a line of out is wider than 100 columns.
func assertFitsTerminal(t *testing.T, out string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if n := utf8.RuneCountInString(line); n > 100 {
			t.Errorf("line of %d columns, want at most 100: %q", n, line)
		}
	}
}
