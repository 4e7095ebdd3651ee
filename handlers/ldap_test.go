package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/consentry/consentry/provider"
	"github.com/consentry/consentry/provider/connector/ldap/ldaptest"
)

// withDirectory configures the local users and the real directory dir as
// connectors, in that order.
func withDirectory(dir *ldaptest.Server) envOption {
	doc := fmt.Sprintf(`connectors:
  - {id: local, type: local, name: Consentry}
  - id: corp
    type: ldap
    name: Example Corp
    config:
      host: %q
      tls: starttls
      ca_file: %q
      bind_dn: %q
      bind_password_env: TEST_LDAP_PASSWORD
      timeout: 2s
      user_search:
        base_dn: %q
        username_attr: uid
        id_attr: entryUUID
        email_attr: mail
        name_attr: cn
        disabled_filter: %q
`, dir.Host, dir.CAFile, ldaptest.BindDN, ldaptest.PeopleDN, ldaptest.DisabledFilter)
	return func(s *envSettings) {
		var cfg provider.Config
		if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
			panic(err)
		}
		s.Config.Connectors = cfg.Connectors
		s.Config.ConnectorRefreshCache = 0
		s.Options = append(s.Options, provider.WithGetenv(func(name string) string {
			if name == "TEST_LDAP_PASSWORD" {
				return ldaptest.BindPassword
			}
			return ""
		}))
	}
}

// Through the real login and consent pages, with a real OpenLDAP server: a
// directory user signs in (created just in time), a wrong directory
// password is refused, removal from the directory ends offline access at
// the next refresh, and with the directory down a local user still signs
// in while a directory user sees the 503 page.
func TestDirectorySignInThroughTheLoginPage(t *testing.T) {
	dir := ldaptest.Start(t)
	e := newEnv(t, withDirectory(dir))
	app := e.offlineApp("calsync")
	bob := ldaptest.Bob

	wrong := e.browser()
	if p := wrong.login(wrong.get(app.request("consent").url), e.Issuer, bob.UID, "not-"+bob.Password); p.Status != http.StatusUnauthorized {
		t.Fatalf("wrong directory password: %d, want 401", p.Status)
	}

	f := app.request("consent")
	b := e.browser()
	consent := b.login(b.get(f.url), e.Issuer, bob.UID, bob.Password)
	tok := f.exchange(b.consent(consent, e.Issuer, "allow").callback(t))
	user, err := e.Provider.Store.GetUserByUsername(context.Background(), bob.UID)
	if err != nil {
		t.Fatalf("the directory user was not created: %v", err)
	}
	if user.ConnectorID != "corp" || user.Email != bob.Email {
		t.Errorf("directory user = %+v, want connector corp and the directory's email", user)
	}
	tok, err = app.refresh(tok)
	if err != nil {
		t.Fatalf("refresh while the person is in the directory: %v", err)
	}

	dir.Delete(t, bob.DN())
	if _, err := app.refresh(tok); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("refresh after the person left the directory: %v, want invalid_grant", err)
	}

	dir.Stop()
	down := e.browser()
	if p := down.loginAt(e.Issuer, ldaptest.Alice.UID, ldaptest.Alice.Password); p.Status != http.StatusServiceUnavailable ||
		!strings.Contains(p.Body, "directory is unavailable") {
		t.Errorf("directory user with the directory down: %d, want the 503 page", p.Status)
	}
	local := e.browser()
	if p := local.loginAt(e.Issuer, "alice", testPassword); !signedIn(p) {
		t.Errorf("a local user could not sign in with the directory down: %d %s", p.Status, p.URL)
	}
}
