package ldap

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"gopkg.in/yaml.v3"

	"github.com/consentry/consentry/provider/connector"
	"github.com/consentry/consentry/provider/connector/ldap/ldaptest"
)

const passwordEnv = "TEST_LDAP_BIND_PASSWORD"

func getenv(name string) string {
	if name == passwordEnv {
		return ldaptest.BindPassword
	}
	return ""
}

func baseConfig(host string) Config {
	return Config{
		Host:            host,
		TLS:             "none",
		BindDN:          ldaptest.BindDN,
		BindPasswordEnv: passwordEnv,
		Timeout:         3 * time.Second,
		UserSearch: UserSearch{
			BaseDN:         ldaptest.PeopleDN,
			Filter:         "(objectClass=inetOrgPerson)",
			UsernameAttr:   "uid",
			IDAttr:         "entryUUID",
			EmailAttr:      "mail",
			NameAttr:       "cn",
			DisabledFilter: ldaptest.DisabledFilter,
		},
		GroupSearch: &GroupSearch{
			BaseDN:    ldaptest.GroupsDN,
			Filter:    "(objectClass=groupOfNames)",
			GroupAttr: "member",
		},
	}
}

func newConnector(t *testing.T, cfg Config) *Connector {
	t.Helper()
	c, err := New(cfg, getenv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func mustLogin(t *testing.T, c *Connector, username, password string) connector.Identity {
	t.Helper()
	id, ok, err := c.Login(context.Background(), username, password)
	if err != nil || !ok {
		t.Fatalf("Login(%q) = %v, %v; want signed in", username, ok, err)
	}
	return id
}

func TestLogin(t *testing.T) {
	srv := ldaptest.Start(t)
	c := newConnector(t, baseConfig(srv.Host))

	id := mustLogin(t, c, "alice", ldaptest.Alice.Password)
	if id.Username != "alice" || id.Email != ldaptest.Alice.Email || id.Name != ldaptest.Alice.Name {
		t.Errorf("identity = %+v", id)
	}
	if id.EmailVerified {
		t.Error("email verified without email_verified: true")
	}
	if len(id.UserID) != 36 || id.UserID == ldaptest.Alice.DN() {
		t.Errorf("UserID = %q, want the entryUUID", id.UserID)
	}
	if want := []string{"engineering", "staff"}; !slices.Equal(id.Groups, want) {
		t.Errorf("groups = %v, want %v", id.Groups, want)
	}

	for _, tc := range []struct{ name, username, password string }{
		{"wrong password", "alice", "not-her-password"},
		{"other person's password", "alice", ldaptest.Bob.Password},
		{"unknown user", "carol", "whatever"},
		{"empty password", "alice", ""},
		{"filter injection", "*)(uid=*", ldaptest.Alice.Password},
		{"wildcard", "*", ldaptest.Alice.Password},
		{"wildcard prefix", "ali*", ldaptest.Alice.Password},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ok, err := c.Login(context.Background(), tc.username, tc.password)
			if err != nil || ok || id.UserID != "" {
				t.Fatalf("Login(%q, %q) = %+v, %v, %v; want refused without error", tc.username, tc.password, id, ok, err)
			}
		})
	}
}

// The empty-password refusal is the connector's own, not go-ldap's: a
// bind request with an empty password must never be sent.
func TestLoginEmptyPasswordNeverBinds(t *testing.T) {
	srv := ldaptest.Start(t)
	c := newConnector(t, baseConfig(srv.Host))
	var dials atomic.Int64
	dial := c.dial
	c.dial = func(ctx context.Context) (*goldap.Conn, error) { dials.Add(1); return dial(ctx) }
	if _, ok, err := c.Login(context.Background(), "alice", ""); ok || err != nil {
		t.Fatalf("empty password: %v, %v", ok, err)
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("%d connections for an empty password, want none", n)
	}
}

func TestLoginEmailVerified(t *testing.T) {
	srv := ldaptest.Start(t)
	cfg := baseConfig(srv.Host)
	cfg.EmailVerified = true
	if id := mustLogin(t, newConnector(t, cfg), "bob", ldaptest.Bob.Password); !id.EmailVerified {
		t.Error("email not verified with email_verified: true")
	}
}

func TestGroupsFromMemberOf(t *testing.T) {
	srv := ldaptest.Start(t)
	cfg := baseConfig(srv.Host)
	cfg.GroupSearch = nil
	cfg.GroupsFromMemberOf = true
	c := newConnector(t, cfg)
	if id := mustLogin(t, c, "bob", ldaptest.Bob.Password); !slices.Equal(id.Groups, []string{"staff"}) {
		t.Errorf("bob's groups = %v, want [staff]", id.Groups)
	}
	srv.AddMember(t, "engineering", ldaptest.Bob.DN())
	if id := mustLogin(t, c, "bob", ldaptest.Bob.Password); !slices.Equal(id.Groups, []string{"engineering", "staff"}) {
		t.Errorf("bob's groups = %v, want [engineering staff]", id.Groups)
	}
}

func TestGroupSearchByAttribute(t *testing.T) {
	srv := ldaptest.Start(t)
	conn := srv.Conn(t)
	req := goldap.NewAddRequest("cn=ops,"+ldaptest.GroupsDN, nil)
	req.Attribute("objectClass", []string{"posixGroup"})
	req.Attribute("cn", []string{"ops"})
	req.Attribute("gidNumber", []string{"5000"})
	req.Attribute("memberUid", []string{"bob"})
	if err := conn.Add(req); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(srv.Host)
	cfg.GroupSearch = &GroupSearch{BaseDN: ldaptest.GroupsDN, Filter: "(objectClass=posixGroup)", UserAttr: "uid", GroupAttr: "memberUid"}
	if id := mustLogin(t, newConnector(t, cfg), "bob", ldaptest.Bob.Password); !slices.Equal(id.Groups, []string{"ops"}) {
		t.Errorf("bob's groups = %v, want [ops]", id.Groups)
	}
}

func TestRefresh(t *testing.T) {
	srv := ldaptest.Start(t)
	for _, idAttr := range []string{"entryUUID", ""} {
		t.Run("id_attr="+idAttr, func(t *testing.T) {
			user := ldaptest.User{UID: "carol" + idAttr, Name: "Carol Jones", Email: "carol@example.com", Password: "carol-password"}
			srv.AddUser(t, user)
			srv.AddMember(t, "engineering", user.DN())
			cfg := baseConfig(srv.Host)
			cfg.UserSearch.IDAttr = idAttr
			c := newConnector(t, cfg)
			id := mustLogin(t, c, user.UID, user.Password)
			id.Data = []byte("kept")

			got, err := c.Refresh(context.Background(), id)
			if err != nil || got.UserID != id.UserID || !slices.Equal(got.Groups, []string{"engineering"}) || string(got.Data) != "kept" {
				t.Fatalf("Refresh = %+v, %v", got, err)
			}

			srv.RemoveMember(t, "engineering", user.DN())
			if got, err = c.Refresh(context.Background(), id); err != nil || len(got.Groups) != 0 {
				t.Fatalf("Refresh after leaving engineering = %+v, %v; want no groups", got, err)
			}

			srv.Disable(t, user.DN())
			if _, err := c.Refresh(context.Background(), id); !errors.Is(err, connector.ErrGone) {
				t.Fatalf("Refresh when disabled: %v, want ErrGone", err)
			}
			if _, ok, err := c.Login(context.Background(), user.UID, user.Password); ok || err != nil {
				t.Fatalf("Login when disabled: %v, %v; want refused", ok, err)
			}
			enable := goldap.NewModifyRequest(user.DN(), nil)
			enable.Delete("employeeType", nil)
			srv.Modify(t, enable)
			if _, err := c.Refresh(context.Background(), id); err != nil {
				t.Fatalf("Refresh when enabled again: %v", err)
			}

			srv.Delete(t, user.DN())
			if _, err := c.Refresh(context.Background(), id); !errors.Is(err, connector.ErrGone) {
				t.Fatalf("Refresh after deletion: %v, want ErrGone", err)
			}
		})
	}
}

func TestObjectGUIDFilter(t *testing.T) {
	c := &Connector{s: settings{Config: Config{UserSearch: UserSearch{IDAttr: "objectGUID"}}}}
	got, err := c.idFilterValue("0a1bff")
	if err != nil || got != `\0a\1b\ff` {
		t.Errorf("idFilterValue = %q, %v", got, err)
	}
	if _, err := c.idFilterValue("not hex"); err == nil {
		t.Error("no error for an id that is not hex")
	}
}

func TestTLS(t *testing.T) {
	srv := ldaptest.Start(t)
	for _, tc := range []struct{ mode, host string }{
		{"starttls", srv.Host},
		{"ldaps", srv.LDAPSHost},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			cfg := baseConfig(tc.host)
			cfg.TLS, cfg.CAFile = tc.mode, srv.CAFile
			mustLogin(t, newConnector(t, cfg), "alice", ldaptest.Alice.Password)

			// Without the CA the certificate is not trusted.
			cfg.CAFile = ""
			_, _, err := newConnector(t, cfg).Login(context.Background(), "alice", ldaptest.Alice.Password)
			if !errors.Is(err, connector.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("without ca_file: %v, want an untrusted certificate", err)
			}
		})
	}
}

func TestConnectionReuse(t *testing.T) {
	srv := ldaptest.Start(t)
	c := newConnector(t, baseConfig(srv.Host))
	var dials atomic.Int64
	dial := c.dial
	c.dial = func(ctx context.Context) (*goldap.Conn, error) { dials.Add(1); return dial(ctx) }

	const logins = 5
	var id connector.Identity
	for range logins {
		id = mustLogin(t, c, "alice", ldaptest.Alice.Password)
	}
	// One service connection for all, one short-lived one per password check.
	if n := dials.Load(); n != logins+1 {
		t.Errorf("%d dials for %d logins, want %d", n, logins, logins+1)
	}

	// A pooled connection that broke is replaced.
	for conn := range c.idle() {
		conn.Close()
		c.pool <- conn
		break
	}
	if _, err := c.Refresh(context.Background(), id); err != nil {
		t.Fatalf("Refresh after the pooled connection closed: %v", err)
	}
	// So is one the directory dropped when it restarted.
	srv.Restart(t)
	before := dials.Load()
	if _, err := c.Refresh(context.Background(), id); err != nil {
		t.Fatalf("Refresh after slapd restarted: %v", err)
	}
	if n := dials.Load() - before; n != 1 {
		t.Errorf("%d dials after the restart, want 1", n)
	}
	srv.Stop()
	if _, err := c.Refresh(context.Background(), id); !errors.Is(err, connector.ErrUnavailable) {
		t.Fatalf("Refresh with slapd stopped: %v, want ErrUnavailable", err)
	}
}

// A pooled connection that stopped answering (a firewall dropped it while
// idle) costs one timeout, then the request goes on a new connection.
func TestHalfOpenPooledConnection(t *testing.T) {
	srv := ldaptest.Start(t)
	c := newConnector(t, baseConfig(srv.Host))
	raw, err := net.Dial("tcp", silentListener(t))
	if err != nil {
		t.Fatal(err)
	}
	stale := goldap.NewConn(raw, false)
	stale.Start()
	stale.SetTimeout(200 * time.Millisecond)
	c.pool <- stale
	mustLogin(t, c, "alice", ldaptest.Alice.Password)
	if !stale.IsClosing() {
		t.Error("the connection that did not answer is still open")
	}
}

// silentListener accepts connections and never answers them.
func silentListener(t *testing.T) string {
	t.Helper()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	acceptDone := make(chan struct{})
	t.Cleanup(func() { silent.Close(); <-acceptDone })
	go func() {
		defer close(acceptDone)
		var held []net.Conn // open, never answered
		defer func() {
			for _, conn := range held {
				conn.Close()
			}
		}()
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, conn)
		}
	}()
	return silent.Addr().String()
}

func TestUnavailable(t *testing.T) {
	// Nothing listens: the port of a closed listener.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedHost := closed.Addr().String()
	closed.Close()

	silent := silentListener(t)

	srv := ldaptest.Start(t)
	stoppedCfg := baseConfig(srv.Host)
	stopped := newConnector(t, stoppedCfg)
	mustLogin(t, stopped, "alice", ldaptest.Alice.Password) // a pooled connection, then slapd goes
	srv.Stop()

	for _, tc := range []struct {
		name, host, mode string
		c                *Connector
	}{
		{name: "nothing listens", host: closedHost, mode: "none"},
		{name: "never answers", host: silent, mode: "none"},
		{name: "never answers starttls", host: silent, mode: "starttls"},
		{name: "never answers ldaps", host: silent, mode: "ldaps"},
		{name: "slapd stopped", c: stopped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			if c == nil {
				cfg := baseConfig(tc.host)
				cfg.TLS, cfg.Timeout = tc.mode, 300*time.Millisecond
				c = newConnector(t, cfg)
			}
			_, ok, err := c.Login(context.Background(), "alice", ldaptest.Alice.Password)
			if ok || !errors.Is(err, connector.ErrUnavailable) {
				t.Fatalf("Login = %v, %v; want ErrUnavailable", ok, err)
			}
			if _, err := c.Refresh(context.Background(), connector.Identity{UserID: "x"}); !errors.Is(err, connector.ErrUnavailable) {
				t.Fatalf("Refresh: %v; want ErrUnavailable", err)
			}
		})
	}

	t.Run("context cancelled", func(t *testing.T) {
		cfg := baseConfig(silent)
		cfg.Timeout = time.Hour // only ctx can end it
		c := newConnector(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, _, err := c.Login(ctx, "alice", "pw"); !errors.Is(err, connector.ErrUnavailable) {
			t.Fatalf("Login = %v; want ErrUnavailable", err)
		}
	})
}

func TestLoginAmbiguousUsername(t *testing.T) {
	srv := ldaptest.Start(t)
	cfg := baseConfig(srv.Host)
	cfg.UserSearch.UsernameAttr = "objectClass" // both Alice and Bob have inetOrgPerson
	id, ok, err := newConnector(t, cfg).Login(context.Background(), "inetOrgPerson", ldaptest.Alice.Password)
	if ok || err != nil || id.UserID != "" {
		t.Fatalf("Login = %+v, %v, %v; want nobody", id, ok, err)
	}
}

// The block as it appears under a connector in the YAML file, decoded
// strictly as the caller does.
func TestConfigYAML(t *testing.T) {
	const block = `
host: dc1.corp.example.com:636
tls: ldaps
ca_file: /etc/consentry/corp-ca.pem
bind_dn: CN=svc-consentry,OU=Service Accounts,DC=corp,DC=example,DC=com
bind_password_env: CONSENTRY_LDAP_PASSWORD
timeout: 3s
email_verified: true
user_search:
  base_dn: OU=Staff,DC=corp,DC=example,DC=com
  filter: (&(objectCategory=person)(objectClass=user))
  username_attr: sAMAccountName
  id_attr: objectGUID
  email_attr: mail
  name_attr: displayName
  disabled_filter: (userAccountControl:1.2.840.113556.1.4.803:=2)
groups_from_member_of: true
`
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(block))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Timeout != 3*time.Second || cfg.UserSearch.IDAttr != "objectGUID" || !cfg.GroupsFromMemberOf || cfg.GroupSearch != nil {
		t.Errorf("decoded %+v", cfg)
	}
	cfg.CAFile = ""
	env := func(name string) string { return map[string]string{"CONSENTRY_LDAP_PASSWORD": "pw"}[name] }
	if _, err := New(cfg, env, nil); err != nil {
		t.Errorf("New: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	good := baseConfig("127.0.0.1:389")
	for _, tc := range []struct {
		name, key string
		edit      func(*Config)
	}{
		{"no host", "host:", func(c *Config) { c.Host = "" }},
		{"host without port", "host:", func(c *Config) { c.Host = "ldap.example.com" }},
		{"plain text to another host", "tls: none", func(c *Config) { c.Host = "ldap.example.com:389" }},
		{"unknown tls", "tls:", func(c *Config) { c.TLS = "ssl" }},
		{"missing CA file", "ca_file:", func(c *Config) { c.TLS, c.CAFile = "ldaps", "/nonexistent/ca.pem" }},
		{"no bind DN", "bind_dn:", func(c *Config) { c.BindDN = "" }},
		{"bad bind DN", "bind_dn:", func(c *Config) { c.BindDN = "not a dn" }},
		{"no password variable", "bind_password_env:", func(c *Config) { c.BindPasswordEnv = "" }},
		{"password variable unset", "bind_password_env:", func(c *Config) { c.BindPasswordEnv = "UNSET_VARIABLE" }},
		{"negative timeout", "timeout:", func(c *Config) { c.Timeout = -time.Second }},
		{"no user base", "user_search.base_dn:", func(c *Config) { c.UserSearch.BaseDN = "" }},
		{"bad user filter", "user_search.filter:", func(c *Config) { c.UserSearch.Filter = "(uid=" }},
		{"bad disabled filter", "user_search.disabled_filter:", func(c *Config) { c.UserSearch.DisabledFilter = "x" }},
		{"no username attribute", "user_search.username_attr:", func(c *Config) { c.UserSearch.UsernameAttr = "" }},
		{"no group base", "group_search.base_dn:", func(c *Config) { c.GroupSearch.BaseDN = "" }},
		{"no group attribute", "group_search.group_attr:", func(c *Config) { c.GroupSearch.GroupAttr = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			gs := *good.GroupSearch
			cfg.GroupSearch = &gs
			tc.edit(&cfg)
			_, err := New(cfg, getenv, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("New: %v; want an error naming %q", err, tc.key)
			}
		})
	}
	c, err := New(Config{Host: "ldap.example.com:636", BindDN: "cn=svc,dc=example,dc=com", BindPasswordEnv: passwordEnv,
		UserSearch: UserSearch{BaseDN: "dc=example,dc=com", UsernameAttr: "uid"}}, getenv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || c.s.TLS != "ldaps" || c.s.Timeout != 5*time.Second {
		t.Fatalf("defaults: %+v, %v; want ldaps and 5s", c, err)
	}
}
