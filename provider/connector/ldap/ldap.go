package ldap

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/consentry/consentry/provider/connector"
)

var (
	_ connector.PasswordConnector = (*Connector)(nil)
	_ connector.RefreshConnector  = (*Connector)(nil)
)

// poolSize is how many service-bound connections are kept between requests.
const poolSize = 4

// Connector signs people in against an LDAP directory. It is safe for
// concurrent use.
type Connector struct {
	s      settings
	logger *slog.Logger
	// pool holds idle connections bound as the service account.
	pool chan *goldap.Conn
	// dial opens a connection (TLS set up, not bound); tests count calls.
	dial func(ctx context.Context) (*goldap.Conn, error)
}

// New checks cfg and returns the connector; getenv reads the service
// password from the variable named by bind_password_env. It does not
// contact the directory, so Consentry starts while the directory is down.
func New(cfg Config, getenv func(string) string, logger *slog.Logger) (*Connector, error) {
	s, err := cfg.validate(getenv)
	if err != nil {
		return nil, fmt.Errorf("ldap connector: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if s.InsecureSkipVerify && s.TLS != tlsNone {
		logger.Warn("ldap connector: insecure_skip_verify is set: the directory's certificate is not checked", "host", s.Host)
	}
	c := &Connector{s: s, logger: logger, pool: make(chan *goldap.Conn, poolSize)}
	c.dial = c.dialConn
	return c, nil
}

// Close closes the idle pooled connections.
func (c *Connector) Close() {
	for conn := range c.idle() {
		conn.Close()
	}
}

// Login checks username and password against the directory.
func (c *Connector) Login(ctx context.Context, username, password string) (connector.Identity, bool, error) {
	// An empty password would be an unauthenticated bind, which servers
	// accept as success (RFC 4513 5.1.2): never let it reach the directory.
	if username == "" || password == "" {
		return connector.Identity{}, false, nil
	}
	filter := fmt.Sprintf("(&%s(%s=%s)%s)", c.s.UserSearch.Filter, c.s.UserSearch.UsernameAttr,
		goldap.EscapeFilter(username), c.notDisabled())
	var entry *goldap.Entry
	err := c.withService(ctx, func(conn *goldap.Conn) error {
		var err error
		entry, err = c.searchUser(conn, c.s.UserSearch.BaseDN, goldap.ScopeWholeSubtree, filter)
		return err
	})
	if err != nil {
		return connector.Identity{}, false, fmt.Errorf("ldap login %q: %w", username, err)
	}
	if entry == nil {
		return connector.Identity{}, false, nil
	}
	ok, err := c.checkPassword(ctx, entry.DN, password)
	if err != nil || !ok {
		return connector.Identity{}, false, err
	}
	// Groups only once the password is right: a guess costs no group search.
	var groups []string
	err = c.withService(ctx, func(conn *goldap.Conn) error {
		var err error
		groups, err = c.groups(conn, entry)
		return err
	})
	if err != nil {
		return connector.Identity{}, false, fmt.Errorf("ldap login %q: %w", username, err)
	}
	id, err := c.identity(entry, groups)
	if err != nil {
		return connector.Identity{}, false, fmt.Errorf("ldap login %q: %w", username, err)
	}
	return id, true, nil
}

// Refresh looks the person up again by their id: gone or disabled is
// connector.ErrGone; otherwise their current identity and groups.
func (c *Connector) Refresh(ctx context.Context, prev connector.Identity) (connector.Identity, error) {
	base, scope, filter := c.s.UserSearch.BaseDN, goldap.ScopeWholeSubtree, ""
	if c.s.UserSearch.IDAttr == "" {
		base, scope = prev.UserID, goldap.ScopeBaseObject
		filter = fmt.Sprintf("(&%s%s)", c.s.UserSearch.Filter, c.notDisabled())
	} else {
		value, err := c.idFilterValue(prev.UserID)
		if err != nil {
			return connector.Identity{}, fmt.Errorf("ldap refresh %q: %w: %v", prev.UserID, connector.ErrGone, err)
		}
		filter = fmt.Sprintf("(&%s(%s=%s)%s)", c.s.UserSearch.Filter, c.s.UserSearch.IDAttr, value, c.notDisabled())
	}
	var entry *goldap.Entry
	var groups []string
	err := c.withService(ctx, func(conn *goldap.Conn) error {
		var err error
		entry, err = c.searchUser(conn, base, scope, filter)
		if err != nil || entry == nil {
			return err
		}
		groups, err = c.groups(conn, entry)
		return err
	})
	if err != nil {
		return connector.Identity{}, fmt.Errorf("ldap refresh %q: %w", prev.UserID, err)
	}
	if entry == nil {
		return connector.Identity{}, fmt.Errorf("ldap refresh %q: %w", prev.UserID, connector.ErrGone)
	}
	id, err := c.identity(entry, groups)
	if err != nil {
		return connector.Identity{}, fmt.Errorf("ldap refresh %q: %w", prev.UserID, err)
	}
	id.Data = prev.Data
	return id, nil
}

// warnAmbiguous tells the deployer that their username attribute or filter
// does not single people out; such a search signs nobody in.
func (c *Connector) warnAmbiguous(filter, base string) {
	c.logger.Warn("ldap connector: the user search matches more than one entry; nobody is signed in",
		"filter", filter, "base_dn", base)
}

func (c *Connector) notDisabled() string {
	if c.s.UserSearch.DisabledFilter == "" {
		return ""
	}
	return "(!" + c.s.UserSearch.DisabledFilter + ")"
}

// searchUser returns the one entry the search finds, or nil for none or
// more than one, so a loose filter never picks somebody at random.
func (c *Connector) searchUser(conn *goldap.Conn, base string, scope int, filter string) (*goldap.Entry, error) {
	us := c.s.UserSearch
	attrs := []string{us.UsernameAttr}
	for _, a := range []string{us.IDAttr, us.EmailAttr, us.NameAttr} {
		if a != "" {
			attrs = append(attrs, a)
		}
	}
	if c.s.GroupsFromMemberOf {
		attrs = append(attrs, "memberOf")
	}
	if gs := c.s.GroupSearch; gs != nil && gs.UserAttr != userAttrDN {
		attrs = append(attrs, gs.UserAttr)
	}
	req := goldap.NewSearchRequest(base, scope, goldap.NeverDerefAliases, 2, int(c.s.Timeout/time.Second), false, filter, attrs, nil)
	res, err := conn.Search(req)
	switch {
	case goldap.IsErrorAnyOf(err, goldap.LDAPResultNoSuchObject):
		return nil, nil
	case goldap.IsErrorAnyOf(err, goldap.LDAPResultSizeLimitExceeded):
		c.warnAmbiguous(filter, base)
		return nil, nil
	case err != nil:
		return nil, classify(fmt.Sprintf("user search %s under %q", filter, base), err)
	}
	switch len(res.Entries) {
	case 0:
		return nil, nil
	case 1:
		return res.Entries[0], nil
	default:
		c.warnAmbiguous(filter, base)
		return nil, nil
	}
}

// groups returns the sorted, distinct group names of the person.
func (c *Connector) groups(conn *goldap.Conn, user *goldap.Entry) ([]string, error) {
	var names []string
	if c.s.GroupsFromMemberOf {
		for _, dn := range user.GetEqualFoldAttributeValues("memberOf") {
			if name := firstRDNValue(dn); name != "" {
				names = append(names, name)
			}
		}
	}
	if gs := c.s.GroupSearch; gs != nil {
		values := []string{user.DN}
		if gs.UserAttr != userAttrDN {
			values = user.GetEqualFoldAttributeValues(gs.UserAttr)
		}
		for _, v := range values {
			filter := fmt.Sprintf("(&%s(%s=%s))", gs.Filter, gs.GroupAttr, goldap.EscapeFilter(v))
			req := goldap.NewSearchRequest(gs.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0,
				int(c.s.Timeout/time.Second), false, filter, []string{gs.NameAttr}, nil)
			res, err := conn.Search(req)
			if err != nil {
				return nil, classify(fmt.Sprintf("group search %s under %q", filter, gs.BaseDN), err)
			}
			for _, e := range res.Entries {
				if name := e.GetEqualFoldAttributeValue(gs.NameAttr); name != "" {
					names = append(names, name)
				}
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

func firstRDNValue(dn string) string {
	parsed, err := goldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) == 0 || len(parsed.RDNs[0].Attributes) == 0 {
		return ""
	}
	return parsed.RDNs[0].Attributes[0].Value
}

func (c *Connector) identity(e *goldap.Entry, groups []string) (connector.Identity, error) {
	us := c.s.UserSearch
	id := connector.Identity{
		UserID:   e.DN,
		Username: e.GetEqualFoldAttributeValue(us.UsernameAttr),
		Groups:   groups,
	}
	if us.IDAttr != "" {
		raw := e.GetEqualFoldRawAttributeValue(us.IDAttr)
		if len(raw) == 0 {
			return connector.Identity{}, fmt.Errorf("entry %q has no %s", e.DN, us.IDAttr)
		}
		id.UserID = string(raw)
		if c.binaryID() {
			id.UserID = hex.EncodeToString(raw)
		}
	}
	if us.EmailAttr != "" {
		id.Email = e.GetEqualFoldAttributeValue(us.EmailAttr)
		id.EmailVerified = c.s.EmailVerified && id.Email != ""
	}
	if us.NameAttr != "" {
		id.Name = e.GetEqualFoldAttributeValue(us.NameAttr)
	}
	return id, nil
}

// binaryID says the id attribute holds bytes (Active Directory's
// objectGUID), kept as hex because its text form is not stable.
func (c *Connector) binaryID() bool { return strings.EqualFold(c.s.UserSearch.IDAttr, "objectGUID") }

// idFilterValue is the id as it goes into a filter: binary ids byte by
// byte as \hh escapes, others escaped as text.
func (c *Connector) idFilterValue(userID string) (string, error) {
	if !c.binaryID() {
		return goldap.EscapeFilter(userID), nil
	}
	raw, err := hex.DecodeString(userID)
	if err != nil || len(raw) == 0 {
		return "", fmt.Errorf("id %q is not hex", userID)
	}
	var b strings.Builder
	for _, octet := range raw {
		fmt.Fprintf(&b, "\\%02x", octet)
	}
	return b.String(), nil
}

// checkPassword binds as the person on a connection of its own, so the
// pooled connections stay bound as the service account.
func (c *Connector) checkPassword(ctx context.Context, dn, password string) (bool, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return false, fmt.Errorf("ldap bind as %q: %w", dn, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	err = conn.Bind(dn, password)
	switch {
	case err == nil:
		return true, nil
	case goldap.IsErrorAnyOf(err, goldap.LDAPResultInvalidCredentials):
		return false, nil
	default:
		return false, classify(fmt.Sprintf("ldap bind as %q", dn), ctxErr(ctx, err))
	}
}

// withService runs fn on a pooled connection bound as the service account.
// A connection that failed is dropped; when a reused one fails for the
// network (the directory restarted since), fn is tried once more on a fresh
// connection.
func (c *Connector) withService(ctx context.Context, fn func(*goldap.Conn) error) error {
	for conn := range c.idle() {
		if conn.IsClosing() {
			continue
		}
		err := c.runPooled(ctx, conn, fn)
		if !errors.Is(err, connector.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		c.logger.Debug("ldap connector: a pooled connection failed; trying a new one", "host", c.s.Host, "err", err)
		break
	}
	conn, err := c.serviceConn(ctx)
	if err != nil {
		return err
	}
	return c.runPooled(ctx, conn, fn)
}

// runPooled runs fn on conn and puts conn back in the pool if it still works.
func (c *Connector) runPooled(ctx context.Context, conn *goldap.Conn, fn func(*goldap.Conn) error) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err := ctxErr(ctx, fn(conn))
	closedByCtx := !stop()
	if closedByCtx || conn.IsClosing() || errors.Is(err, connector.ErrUnavailable) {
		conn.Close()
		return err
	}
	select {
	case c.pool <- conn:
	default:
		conn.Close()
	}
	return err
}

// serviceConn dials a new connection and binds it as the service account.
func (c *Connector) serviceConn(ctx context.Context) (*goldap.Conn, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := conn.Bind(c.s.BindDN, c.s.bindPassword); err != nil {
		conn.Close()
		if goldap.IsErrorAnyOf(err, goldap.LDAPResultInvalidCredentials) {
			// A configuration mistake, but to the person signing in the
			// directory is just as unusable.
			c.logger.Error("ldap connector: the directory refuses the service account's password", "host", c.s.Host, "bind_dn", c.s.BindDN)
			return nil, fmt.Errorf("%w: service bind as %q refused", connector.ErrUnavailable, c.s.BindDN)
		}
		return nil, classify(fmt.Sprintf("service bind as %q", c.s.BindDN), ctxErr(ctx, err))
	}
	return conn, nil
}

// idle yields the pooled connections until the pool is empty, without waiting.
func (c *Connector) idle() func(yield func(*goldap.Conn) bool) {
	return func(yield func(*goldap.Conn) bool) {
		for {
			select {
			case conn := <-c.pool:
				if !yield(conn) {
					return
				}
			default:
				return
			}
		}
	}
}

func (c *Connector) dialConn(ctx context.Context) (*goldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.s.Timeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", c.s.Host)
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s: %v", connector.ErrUnavailable, c.s.Host, err)
	}
	deadline, _ := ctx.Deadline()
	// The TLS handshakes below have no timeout of their own.
	if err := raw.SetDeadline(deadline); err != nil {
		raw.Close()
		return nil, fmt.Errorf("%w: dial %s: %v", connector.ErrUnavailable, c.s.Host, err)
	}
	var conn *goldap.Conn
	switch c.s.TLS {
	case tlsLDAPS:
		tc := tls.Client(raw, c.s.tlsConfig.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("%w: TLS with %s: %v", connector.ErrUnavailable, c.s.Host, err)
		}
		conn = goldap.NewConn(tc, true)
		conn.Start()
	case tlsStartTLS:
		conn = goldap.NewConn(raw, false)
		conn.Start()
		conn.SetTimeout(c.s.Timeout)
		if err := conn.StartTLS(c.s.tlsConfig.Clone()); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%w: StartTLS with %s: %v", connector.ErrUnavailable, c.s.Host, err)
		}
	default:
		conn = goldap.NewConn(raw, false)
		conn.Start()
	}
	// From here each operation has its own timeout; an idle pooled
	// connection must not expire.
	if err := raw.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: dial %s: %v", connector.ErrUnavailable, c.s.Host, err)
	}
	conn.SetTimeout(c.s.Timeout)
	return conn, nil
}

// classify marks errors of an unreachable or overloaded directory as
// connector.ErrUnavailable; others keep their own meaning.
func classify(what string, err error) error {
	var netErr net.Error
	if goldap.IsErrorAnyOf(err, goldap.ErrorNetwork, goldap.LDAPResultBusy, goldap.LDAPResultUnavailable,
		goldap.LDAPResultTimeLimitExceeded) ||
		errors.As(err, &netErr) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v: %v", connector.ErrUnavailable, what, err)
	}
	return fmt.Errorf("%v: %w", what, err)
}

// ctxErr prefers ctx's error: an operation cut short by closing the
// connection when ctx ended reports a closed connection otherwise.
func ctxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}
