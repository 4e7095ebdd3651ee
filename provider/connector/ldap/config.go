package ldap

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// Config is the type-specific block of an LDAP entry in `connectors:`.
type Config struct {
	// Host is host:port of the directory, e.g. dc1.corp.example.com:636.
	Host string `yaml:"host"`
	// TLS is ldaps (TLS from the first byte, the default), starttls, or none
	// (plain text, allowed only for a loopback host).
	TLS string `yaml:"tls"`
	// CAFile is a PEM file of the CAs that sign the directory's certificate;
	// without it the system roots are used.
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify accepts any certificate (logged at WARN): only for
	// trying things out.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// BindDN is the service account that searches the directory.
	BindDN string `yaml:"bind_dn"`
	// BindPasswordEnv names the environment variable holding the service
	// account's password, so the secret never sits in the file.
	BindPasswordEnv string `yaml:"bind_password_env"`
	// Timeout bounds each dial and each operation (default 5s).
	Timeout time.Duration `yaml:"timeout"`
	// EmailVerified says the directory's email addresses are trusted (only
	// administrators can change them), so they may link to existing users.
	EmailVerified bool `yaml:"email_verified"`

	UserSearch  UserSearch   `yaml:"user_search"`
	GroupSearch *GroupSearch `yaml:"group_search"`
	// GroupsFromMemberOf reads the groups from the user entry's memberOf
	// (Active Directory, OpenLDAP's memberof overlay): each group's name is
	// the value of its DN's first part (the cn).
	GroupsFromMemberOf bool `yaml:"groups_from_member_of"`
}

// UserSearch says where people are and which attributes say what.
type UserSearch struct {
	BaseDN string `yaml:"base_dn"`
	// Filter selects people, e.g. (objectClass=person); default (objectClass=*).
	Filter string `yaml:"filter"`
	// UsernameAttr is matched against the username typed in (uid,
	// sAMAccountName, mail).
	UsernameAttr string `yaml:"username_attr"`
	// IDAttr is the stable id (entryUUID, objectGUID); empty uses the DN,
	// which changes when the person is renamed or moved. objectGUID is
	// binary and is kept as lowercase hex.
	IDAttr    string `yaml:"id_attr"`
	EmailAttr string `yaml:"email_attr"`
	NameAttr  string `yaml:"name_attr"`
	// DisabledFilter matches people who are disabled; they cannot sign in
	// and their offline access ends. Active Directory:
	// (userAccountControl:1.2.840.113556.1.4.803:=2).
	DisabledFilter string `yaml:"disabled_filter"`
}

// GroupSearch finds the groups whose entries name the person.
type GroupSearch struct {
	BaseDN string `yaml:"base_dn"`
	// Filter selects groups, e.g. (objectClass=groupOfNames); default (objectClass=*).
	Filter string `yaml:"filter"`
	// UserAttr is what the group stores of the person: DN (the default) or
	// an attribute of the user entry such as uid (for memberUid).
	UserAttr string `yaml:"user_attr"`
	// GroupAttr is the group's attribute listing its members (member,
	// uniqueMember, memberUid).
	GroupAttr string `yaml:"group_attr"`
	// NameAttr is the group's name (default cn).
	NameAttr string `yaml:"name_attr"`
}

const (
	tlsLDAPS    = "ldaps"
	tlsStartTLS = "starttls"
	tlsNone     = "none"

	defaultTimeout = 5 * time.Second
	userAttrDN     = "DN"
)

// settings is a validated Config with defaults filled in.
type settings struct {
	Config
	bindPassword string
	tlsConfig    *tls.Config // nil for tls: none
}

func (cfg Config) validate(getenv func(string) string) (settings, error) {
	s := settings{Config: cfg}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	host, _, err := net.SplitHostPort(cfg.Host)
	if cfg.Host == "" {
		bad("host: required (host:port of the directory)")
	} else if err != nil || host == "" {
		bad("host: %q is not host:port", cfg.Host)
	}
	if s.TLS == "" {
		s.TLS = tlsLDAPS
	}
	switch s.TLS {
	case tlsLDAPS, tlsStartTLS:
		tc, err := tlsConfig(host, cfg.CAFile, cfg.InsecureSkipVerify)
		if err != nil {
			bad("ca_file: %w", err)
		}
		s.tlsConfig = tc
	case tlsNone:
		// Passwords would cross the network in clear text.
		if host != "" && !isLoopback(host) {
			bad("tls: none is allowed only for a loopback host, not %q: use ldaps or starttls", host)
		}
		if cfg.CAFile != "" || cfg.InsecureSkipVerify {
			bad("tls: none takes no ca_file or insecure_skip_verify")
		}
	default:
		bad("tls: %q is not one of ldaps, starttls, none", cfg.TLS)
	}
	if s.Timeout == 0 {
		s.Timeout = defaultTimeout
	} else if s.Timeout < 0 {
		bad("timeout: must be positive, not %s", cfg.Timeout)
	}
	if cfg.BindDN == "" {
		bad("bind_dn: required (the service account that searches the directory)")
	} else if _, err := goldap.ParseDN(cfg.BindDN); err != nil {
		bad("bind_dn: %q is not a DN: %v", cfg.BindDN, err)
	}
	if cfg.BindPasswordEnv == "" {
		bad("bind_password_env: required (the name of the environment variable holding the service password)")
	} else if s.bindPassword = getenv(cfg.BindPasswordEnv); s.bindPassword == "" {
		bad("bind_password_env: environment variable %s is empty or not set", cfg.BindPasswordEnv)
	}

	us := &s.UserSearch
	if us.BaseDN == "" {
		bad("user_search.base_dn: required")
	} else if _, err := goldap.ParseDN(us.BaseDN); err != nil {
		bad("user_search.base_dn: %q is not a DN: %v", us.BaseDN, err)
	}
	if us.Filter == "" {
		us.Filter = "(objectClass=*)"
	}
	checkFilter("user_search.filter", us.Filter, bad)
	if us.DisabledFilter != "" {
		checkFilter("user_search.disabled_filter", us.DisabledFilter, bad)
	}
	if us.UsernameAttr == "" {
		bad("user_search.username_attr: required (uid, sAMAccountName, ...)")
	}

	if gs := s.GroupSearch; gs != nil {
		if gs.BaseDN == "" {
			bad("group_search.base_dn: required")
		} else if _, err := goldap.ParseDN(gs.BaseDN); err != nil {
			bad("group_search.base_dn: %q is not a DN: %v", gs.BaseDN, err)
		}
		if gs.Filter == "" {
			gs.Filter = "(objectClass=*)"
		}
		checkFilter("group_search.filter", gs.Filter, bad)
		if gs.UserAttr == "" || strings.EqualFold(gs.UserAttr, userAttrDN) {
			gs.UserAttr = userAttrDN
		}
		if gs.GroupAttr == "" {
			bad("group_search.group_attr: required (member, uniqueMember, memberUid)")
		}
		if gs.NameAttr == "" {
			gs.NameAttr = "cn"
		}
	}
	if err := errors.Join(errs...); err != nil {
		return settings{}, err
	}
	return s, nil
}

func checkFilter(key, filter string, bad func(string, ...any)) {
	if _, err := goldap.CompileFilter(filter); err != nil {
		bad("%s: %q is not an LDAP filter: %v", key, filter, err)
	}
}

func tlsConfig(serverName, caFile string, insecure bool) (*tls.Config, error) {
	tc := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	if caFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	tc.RootCAs = pool
	return tc, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
